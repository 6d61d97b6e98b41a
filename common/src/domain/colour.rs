//! The colour of a health code, which both the health rules (`health`) and the nucleic-acid
//! rules (`nucleic`) produce.

use serde::{Deserialize, Serialize};

/// Ordered from best to worst, so the colour of several signals is their maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthColour {
    Green,
    Yellow,
    Red,
}

impl HealthColour {
    pub const ALL: [HealthColour; 3] = [Self::Green, Self::Yellow, Self::Red];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Green => "green",
            Self::Yellow => "yellow",
            Self::Red => "red",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == raw)
    }

    /// What the person reads: 绿码 / 黄码 / 红码.
    pub fn label(self) -> &'static str {
        match self {
            Self::Green => "绿码",
            Self::Yellow => "黄码",
            Self::Red => "红码",
        }
    }
}
