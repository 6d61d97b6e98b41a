//! A relative's name as written on the identity card: Han characters, with `·` between the parts
//! of transliterated minority names.

const MIN_CHARS: usize = 2;
const MAX_CHARS: usize = 20;
const MIDDLE_DOT: char = '·';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonNameError {
    Length,
    InvalidCharacter,
    MisplacedSeparator,
}

/// A valid name. Its `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl std::fmt::Debug for PersonName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonName(<redacted>)")
    }
}

fn is_han(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'     // Extension A
        | '\u{4E00}'..='\u{9FFF}'   // Unified Ideographs
        | '\u{F900}'..='\u{FAFF}'   // Compatibility Ideographs
        | '\u{20000}'..='\u{323AF}' // Extensions B–H (rare characters in names)
    )
}

/// Dots people type for the separator, normalised to U+00B7.
fn separator(c: char) -> bool {
    matches!(c, '·' | '•' | '・' | '‧' | '∙' | '.')
}

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, PersonNameError> {
        let normalised: String = raw
            .trim()
            .chars()
            .map(|c| if separator(c) { MIDDLE_DOT } else { c })
            .collect();
        let count = normalised.chars().count();
        if !(MIN_CHARS..=MAX_CHARS).contains(&count) {
            return Err(PersonNameError::Length);
        }
        if !normalised.chars().all(|c| is_han(c) || c == MIDDLE_DOT) {
            return Err(PersonNameError::InvalidCharacter);
        }
        if normalised.starts_with(MIDDLE_DOT)
            || normalised.ends_with(MIDDLE_DOT)
            || normalised.contains("··")
        {
            return Err(PersonNameError::MisplacedSeparator);
        }
        Ok(Self(normalised))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask_name(&self.0)
    }
}

/// Shows only the last character, as payment apps in China do: `**明`.
pub fn mask_name(name: &str) -> String {
    let count = name.chars().count();
    let last = name.chars().last().unwrap_or('*');
    format!("{}{last}", "*".repeat(count.saturating_sub(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_han_names_and_minority_names() {
        assert_eq!(PersonName::parse("王小明").unwrap().expose(), "王小明");
        assert_eq!(PersonName::parse(" 李雷 ").unwrap().expose(), "李雷");
        assert_eq!(
            PersonName::parse("买买提•艾力").unwrap().expose(),
            "买买提·艾力"
        );
        assert!(PersonName::parse("𠮷野家").is_ok());
    }

    #[test]
    fn refuses_other_scripts_and_symbols() {
        for bad in ["Tom", "王 明", "王1", "王明!", "王明\u{0}", "😀😀"] {
            assert_eq!(
                PersonName::parse(bad),
                Err(PersonNameError::InvalidCharacter),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_bad_lengths_and_separators() {
        assert_eq!(PersonName::parse("王"), Err(PersonNameError::Length));
        assert_eq!(PersonName::parse(""), Err(PersonNameError::Length));
        assert_eq!(
            PersonName::parse(&"王".repeat(21)),
            Err(PersonNameError::Length)
        );
        assert!(PersonName::parse(&"王".repeat(20)).is_ok());
        for bad in ["·王明", "王明·", "王··明"] {
            assert_eq!(
                PersonName::parse(bad),
                Err(PersonNameError::MisplacedSeparator),
                "{bad}"
            );
        }
    }

    #[test]
    fn masks_all_but_the_last_character() {
        assert_eq!(PersonName::parse("王小明").unwrap().masked(), "**明");
        assert_eq!(mask_name("李雷"), "*雷");
        assert_eq!(
            format!("{:?}", PersonName::parse("李雷").unwrap()),
            "PersonName(<redacted>)"
        );
    }
}
