//! The colour of a health code, which both the health rules (`health`) and the nucleic-acid
//! rules (`nucleic`) produce.

use super::wire::wire_enum;

wire_enum! {
    /// Ordered from best to worst, so the colour of several signals is their maximum.
    #[derive(PartialOrd, Ord)]
    pub enum HealthColour {
        Green = "green",
        Yellow = "yellow",
        Red = "red",
    }
}

impl HealthColour {
    /// What the person reads: 绿码 / 黄码 / 红码.
    pub fn label(self) -> &'static str {
        match self {
            Self::Green => "绿码",
            Self::Yellow => "黄码",
            Self::Red => "红码",
        }
    }
}
