//! Property tests of the parsers people's input reaches: the resident-ID parser never panics
//! and agrees with a second implementation written here from GB 11643-1999 alone; the code
//! decoder never panics on anything a scanner could read; masking never reveals the
//! birth-date digits or more than one character of a name.

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use kincode_common::codes::keys::KeyRing;
use kincode_common::codes::token;
use kincode_common::domain::name::mask_name;
use kincode_common::domain::resident_id::{mask_resident_id, ResidentId};
use proptest::prelude::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 28).unwrap()
}

/// GB 11643-1999 read independently: province codes as the standard's table lists them,
/// ISO 7064 MOD 11-2 by its recursive definition, the date by text parsing, the age bound by
/// comparing the date 130 years on.
fn independent(raw: &str, today: NaiveDate) -> Option<NaiveDate> {
    const PROVINCES: &str = "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 \
                             50 51 52 53 54 61 62 63 64 65 71 81 82 83";
    let id: Vec<char> = raw.trim().chars().collect();
    if id.len() != 18 || !id[..17].iter().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let province: String = id[..2].iter().collect();
    if !PROVINCES.split(' ').any(|p| p == province) {
        return None;
    }
    let date: String = id[6..14].iter().collect();
    let birth = NaiveDate::parse_from_str(&date, "%Y%m%d").ok()?;
    if birth > today {
        return None;
    }
    let limit = NaiveDate::from_ymd_opt(birth.year() + 131, birth.month(), birth.day())
        .unwrap_or_else(|| NaiveDate::from_ymd_opt(birth.year() + 131, 3, 1).unwrap());
    if today >= limit {
        return None;
    }
    // MOD 11-2: p ← (p + digit) · 2 mod 11 over the 17 digits; the check value makes the
    // whole sum ≡ 1 (mod 11).
    let p = id[..17]
        .iter()
        .fold(0u32, |p, c| ((p + c.to_digit(10).unwrap()) * 2) % 11);
    let check_value = (12 - p) % 11;
    let expected = if check_value == 10 {
        'X'
    } else {
        char::from_digit(check_value, 10).unwrap()
    };
    (id[17].to_ascii_uppercase() == expected).then_some(birth)
}

/// Near-valid ID numbers: real and unreal provinces, impossible dates, any check character,
/// lower-case x, surrounding whitespace (ideographic space included).
fn near_valid() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![11u32, 31, 44, 61, 65, 83, 10, 20, 47, 66, 99, 0]),
        0u32..10000,
        1850i32..2030,
        0u32..14,
        0u32..33,
        0u32..1000,
        prop::sample::select(vec!["", "X", "x", "0", "1", "5", "9"]),
        prop::sample::select(vec!["", " ", "\u{3000}", "\t"]),
    )
        .prop_map(|(province, region, y, m, d, seq, check, pad)| {
            let body = format!("{province:02}{region:04}{y:04}{m:02}{d:02}{seq:03}");
            let check = if check.is_empty() {
                let bytes = body.as_bytes();
                (kincode_common::domain::resident_id::check_character(bytes) as char).to_string()
            } else {
                check.to_owned()
            };
            format!("{pad}{body}{check}{pad}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_id_parser_never_panics_on_any_text(raw in ".{0,40}") {
        let _ = ResidentId::parse(&raw, today());
    }

    #[test]
    fn the_id_parser_agrees_with_an_independent_reading(raw in near_valid()) {
        let ours = ResidentId::parse(&raw, today()).ok().map(|id| id.birth_date());
        prop_assert_eq!(ours, independent(&raw, today()), "{:?}", raw);
    }

    #[test]
    fn masking_shows_the_province_and_the_last_four_only(raw in near_valid()) {
        if let Ok(id) = ResidentId::parse(&raw, today()) {
            let number = id.expose();
            let masked = mask_resident_id(number);
            prop_assert_eq!(masked.len(), 18);
            prop_assert_eq!(&masked[..2], &number[..2]);
            prop_assert_eq!(&masked[14..], &number[14..]);
            prop_assert!(masked[2..14].chars().all(|c| c == '*'));
            prop_assert!(!masked.contains(&number[6..14]));
        }
    }

    #[test]
    fn a_masked_name_shows_at_most_one_character(name in "\\PC{1,12}") {
        let masked = mask_name(&name);
        let shown = masked.chars().filter(|c| *c != '*').count();
        prop_assert!(shown <= 1, "{} → {}", name, masked);
        prop_assert_eq!(masked.chars().count(), name.chars().count());
    }

    #[test]
    fn the_code_decoder_never_panics_on_any_text(raw in ".{0,400}") {
        let keys = KeyRing::generate("k1");
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 4, 0, 0).unwrap();
        let _ = token::decode(&raw, &keys, now);
        let _ = token::decode(&format!("KC1:{raw}"), &keys, now);
    }

    #[test]
    fn the_code_decoder_never_panics_on_any_base45(raw in "[0-9A-Z $%*+./:-]{0,400}") {
        let keys = KeyRing::generate("k1");
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 4, 0, 0).unwrap();
        let text = format!("KC1:{raw}");
        prop_assert!(token::decode(&text, &keys, now).is_err());
    }
}
