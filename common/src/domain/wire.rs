//! Enums that travel as strings (the API, the table, the logs). [`wire_enum!`] declares one with
//! each variant's string beside it; `as_str`, `parse`, `ALL` and serde all come from that one
//! table, so no string is written twice.

/// Declares a field-less enum from a table of `Variant = "string",` lines and gives it:
/// `ALL` (every variant, in order), `as_str`, `parse` (exactly those strings, nothing else),
/// and `Serialize`/`Deserialize` as the same strings. The enum is `Debug, Clone, Copy,
/// PartialEq, Eq, Hash`; attributes before `enum` (docs, more derives) are kept.
///
/// ```ignore
/// wire_enum! {
///     /// Ordered from best to worst.
///     #[derive(PartialOrd, Ord)]
///     pub enum HealthColour {
///         Green = "green",
///         Yellow = "yellow",
///         Red = "red",
///     }
/// }
/// ```
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $wire:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$variant_meta])* $variant, )+
        }

        #[allow(dead_code)]
        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [Self; [$($wire),+].len()] = [$(Self::$variant),+];

            /// The variant's string on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }

            /// The variant whose string is exactly `raw`.
            pub fn parse(raw: &str) -> Option<Self> {
                match raw {
                    $($wire => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Strings;
                impl ::serde::de::Visitor<'_> for Strings {
                    type Value = $name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " string"))
                    }
                    fn visit_str<E: ::serde::de::Error>(self, raw: &str) -> Result<$name, E> {
                        $name::parse(raw).ok_or_else(|| E::unknown_variant(raw, &[$($wire),+]))
                    }
                }
                deserializer.deserialize_str(Strings)
            }
        }
    };
}

pub(crate) use wire_enum;

/// Test support: for each enum, every variant's string is what serde writes and reads back,
/// `parse` finds it again, and strings that differ only in case or spelling are refused.
#[cfg(test)]
macro_rules! assert_wire_strings {
    ($($name:ty),+ $(,)?) => {$(
        for variant in <$name>::ALL {
            let text = variant.as_str();
            assert_eq!(serde_json::to_value(variant).unwrap(), text, "{variant:?}");
            assert_eq!(serde_json::from_value::<$name>(text.into()).unwrap(), variant);
            assert_eq!(<$name>::parse(text), Some(variant));
            assert_eq!(<$name>::parse(&text.to_uppercase()), None, "{text}");
            assert_eq!(<$name>::parse(&format!(" {text}")), None, "{text}");
        }
        let distinct: std::collections::BTreeSet<_> = <$name>::ALL.map(<$name>::as_str).into();
        assert_eq!(distinct.len(), <$name>::ALL.len(), "{}", stringify!($name));
        assert!(serde_json::from_value::<$name>("no_such_variant".into()).is_err());
        assert!(serde_json::from_value::<$name>(serde_json::json!(0)).is_err());
    )+};
}

#[cfg(test)]
pub(crate) use assert_wire_strings;

#[cfg(test)]
mod tests {
    wire_enum! {
        /// A table of two.
        #[derive(PartialOrd, Ord)]
        enum Sample {
            /// The first.
            First = "first",
            SecondOne = "second_one",
        }
    }

    #[test]
    fn the_table_gives_strings_order_and_serde() {
        assert_wire_strings!(Sample);
        assert_eq!(Sample::ALL, [Sample::First, Sample::SecondOne]);
        assert_eq!(Sample::SecondOne.as_str(), "second_one");
        assert!(Sample::First < Sample::SecondOne);
        let err = serde_json::from_str::<Sample>("\"third\"").unwrap_err();
        assert!(err.to_string().contains("`second_one`"), "{err}");
    }
}
