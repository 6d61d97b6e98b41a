//! How the relative is related to the guardian: a closed list.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relationship {
    Child,
    Parent,
    Grandparent,
    Grandchild,
    Spouse,
    Sibling,
    Other,
}

impl Relationship {
    pub const ALL: [Relationship; 7] = [
        Self::Child,
        Self::Parent,
        Self::Grandparent,
        Self::Grandchild,
        Self::Spouse,
        Self::Sibling,
        Self::Other,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Child => "child",
            Self::Parent => "parent",
            Self::Grandparent => "grandparent",
            Self::Grandchild => "grandchild",
            Self::Spouse => "spouse",
            Self::Sibling => "sibling",
            Self::Other => "other",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Child => "子女",
            Self::Parent => "父母",
            Self::Grandparent => "祖父母/外祖父母",
            Self::Grandchild => "孙子女/外孙子女",
            Self::Spouse => "配偶",
            Self::Sibling => "兄弟姐妹",
            Self::Other => "其他亲属",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_variant() {
        for r in Relationship::ALL {
            assert_eq!(Relationship::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            assert!(!r.label().is_empty());
        }
    }

    #[test]
    fn refuses_unknown_values() {
        for bad in ["", "Child", "friend", "子女"] {
            assert_eq!(Relationship::parse(bad), None, "{bad}");
        }
    }
}
