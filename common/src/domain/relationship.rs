//! How the relative is related to the guardian: a closed list.

use super::wire::wire_enum;

wire_enum! {
    pub enum Relationship {
        Child = "child",
        Parent = "parent",
        Grandparent = "grandparent",
        Grandchild = "grandchild",
        Spouse = "spouse",
        Sibling = "sibling",
        Other = "other",
    }
}

impl Relationship {
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
    use crate::domain::wire::assert_wire_strings;

    #[test]
    fn round_trips_every_variant() {
        assert_wire_strings!(Relationship);
        assert!(Relationship::ALL.iter().all(|r| !r.label().is_empty()));
    }

    #[test]
    fn refuses_unknown_values() {
        for bad in ["", "Child", "friend", "子女"] {
            assert_eq!(Relationship::parse(bad), None, "{bad}");
        }
    }
}
