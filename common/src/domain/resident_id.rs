//! Resident identity number (GB 11643-1999), parsed once at the edge.

use chrono::NaiveDate;

use super::age::completed_years;
use super::wire::wire_enum;

/// Oldest plausible age: anything older is a typing error, not a person.
const MAX_PLAUSIBLE_AGE: u32 = 130;

/// ISO 7064 MOD 11-2 weights for the first 17 characters.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// Province-level codes (first two digits): the 31 mainland divisions, plus 71 (Taiwan) and
/// 81/82/83, used by residence permits for Hong Kong, Macao and Taiwan residents.
const PROVINCE_CODES: [u8; 35] = [
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83,
];

wire_enum! {
    /// Why a number was refused. Every reason shows the user the same message; the reason is
    /// for the response's details and the logs, and never carries the number itself.
    pub enum ResidentIdError {
        /// 15-digit numbers were issued before 1999 and are no longer valid identity documents.
        LegacyFifteenDigit = "legacy_15_digit",
        WrongLength = "wrong_length",
        /// Anything but ASCII digits (and a final X): full-width digits, inner spaces, letters.
        InvalidCharacter = "invalid_character",
        UnknownRegion = "unknown_region",
        InvalidBirthDate = "invalid_birth_date",
        BirthDateInFuture = "birth_date_in_future",
        ImplausiblyOld = "implausibly_old",
        WrongCheckCharacter = "wrong_check_character",
    }
}

/// A valid 18-character resident ID. Its `Debug` never prints the number.
#[derive(Clone, PartialEq, Eq)]
pub struct ResidentId {
    /// Normalised: ASCII, upper-case `X`.
    number: String,
    birth_date: NaiveDate,
}

impl std::fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResidentId(<redacted>)")
    }
}

impl ResidentId {
    /// Parses what a user typed. Surrounding whitespace is forgiven; nothing else is.
    /// `today` is the current date in China time.
    pub fn parse(raw: &str, today: NaiveDate) -> Result<Self, ResidentIdError> {
        let trimmed = raw.trim();
        if !trimmed.is_ascii() {
            return Err(ResidentIdError::InvalidCharacter);
        }
        let bytes = trimmed.as_bytes();
        if bytes.len() == 15 && bytes.iter().all(u8::is_ascii_digit) {
            return Err(ResidentIdError::LegacyFifteenDigit);
        }
        if bytes.len() != 18 {
            return Err(ResidentIdError::WrongLength);
        }
        let (body, check) = bytes.split_at(17);
        let check = check[0].to_ascii_uppercase();
        if !body.iter().all(u8::is_ascii_digit) || !(check.is_ascii_digit() || check == b'X') {
            return Err(ResidentIdError::InvalidCharacter);
        }
        let digit = |i: usize| u32::from(body[i] - b'0');
        let province = (digit(0) * 10 + digit(1)) as u8;
        if !PROVINCE_CODES.contains(&province) {
            return Err(ResidentIdError::UnknownRegion);
        }
        let number_at =
            |from: usize, len: usize| (from..from + len).fold(0, |n, i| n * 10 + digit(i));
        let birth_date =
            NaiveDate::from_ymd_opt(number_at(6, 4) as i32, number_at(10, 2), number_at(12, 2))
                .ok_or(ResidentIdError::InvalidBirthDate)?;
        if birth_date > today {
            return Err(ResidentIdError::BirthDateInFuture);
        }
        if completed_years(birth_date, today) > MAX_PLAUSIBLE_AGE {
            return Err(ResidentIdError::ImplausiblyOld);
        }
        if check_character(body) != check {
            return Err(ResidentIdError::WrongCheckCharacter);
        }
        let mut number = String::with_capacity(18);
        number.push_str(std::str::from_utf8(body).expect("ASCII digits"));
        number.push(check as char);
        Ok(Self { number, birth_date })
    }

    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// The full number, for keyed hashing and encryption only.
    pub fn expose(&self) -> &str {
        &self.number
    }

    /// What a response may show: the province and the last four characters. The birth-date
    /// digits (7–14) are never shown.
    pub fn masked(&self) -> String {
        mask_resident_id(&self.number)
    }
}

/// The ISO 7064 MOD 11-2 check character for the first 17 digits (ASCII digits assumed).
pub fn check_character(first17: &[u8]) -> u8 {
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    CHECK_CHARS[(sum % 11) as usize]
}

/// Masks an already-valid number (also used on numbers decrypted from the store).
pub fn mask_resident_id(number: &str) -> String {
    let (head, tail) = (&number[..2], &number[number.len() - 4..]);
    format!("{head}{}{tail}", "*".repeat(12))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_back_their_strings() {
        crate::domain::wire::assert_wire_strings!(ResidentIdError);
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn id_born(birth: NaiveDate, sequence: u32) -> String {
        with_check(&format!(
            "610113{}{:03}",
            birth.format("%Y%m%d"),
            sequence % 1000
        ))
    }

    fn with_check(body: &str) -> String {
        format!("{body}{}", check_character(body.as_bytes()) as char)
    }

    const TODAY: (i32, u32, u32) = (2026, 11, 27);
    fn today() -> NaiveDate {
        day(TODAY.0, TODAY.1, TODAY.2)
    }

    #[test]
    fn accepts_published_sample_numbers() {
        // GB 11643-1999 appendix example and a number ending in X.
        let id = ResidentId::parse("11010519491231002X", today()).unwrap();
        assert_eq!(id.birth_date(), day(1949, 12, 31));
        assert_eq!(id.expose(), "11010519491231002X");
        // A well-formed number whose holder would be 146: refused as implausible.
        assert_eq!(
            ResidentId::parse("440524188001010014", today()),
            Err(ResidentIdError::ImplausiblyOld)
        );
    }

    #[test]
    fn lower_case_x_is_normalised() {
        let id = ResidentId::parse("11010519491231002x", today()).unwrap();
        assert_eq!(id.expose(), "11010519491231002X");
    }

    #[test]
    fn surrounding_whitespace_is_forgiven() {
        assert!(ResidentId::parse("  11010519491231002X\n", today()).is_ok());
    }

    #[test]
    fn every_wrong_check_character_is_refused() {
        let valid = id_born(day(2015, 6, 1), 123);
        let right = valid.as_bytes()[17];
        for c in b"0123456789X" {
            if *c == right {
                continue;
            }
            let mut wrong = valid.clone().into_bytes();
            wrong[17] = *c;
            let wrong = String::from_utf8(wrong).unwrap();
            assert_eq!(
                ResidentId::parse(&wrong, today()),
                Err(ResidentIdError::WrongCheckCharacter),
                "{wrong}"
            );
        }
    }

    #[test]
    fn single_digit_typos_are_caught_by_the_checksum() {
        let valid = id_born(day(1950, 3, 9), 42).into_bytes();
        for pos in 14..17 {
            for d in b'0'..=b'9' {
                if d == valid[pos] {
                    continue;
                }
                let mut typo = valid.clone();
                typo[pos] = d;
                let typo = String::from_utf8(typo).unwrap();
                assert!(ResidentId::parse(&typo, today()).is_err(), "{typo}");
            }
        }
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let cases = [
            ("", ResidentIdError::WrongLength),
            ("1101051949123100", ResidentIdError::WrongLength),
            ("11010519491231002X1", ResidentIdError::WrongLength),
            ("110105194912310", ResidentIdError::LegacyFifteenDigit),
            ("1101051949 231002X", ResidentIdError::InvalidCharacter),
            (
                "１１０１０５１９４９１２３１００２Ｘ",
                ResidentIdError::InvalidCharacter,
            ),
            ("11010519491231002Y", ResidentIdError::InvalidCharacter),
            ("1101051949123100XX", ResidentIdError::InvalidCharacter),
            ("X10105194912310020", ResidentIdError::InvalidCharacter),
            ("11010519491231é02X", ResidentIdError::InvalidCharacter),
            ("-1010519491231002X", ResidentIdError::InvalidCharacter),
        ];
        for (raw, expected) in cases {
            assert_eq!(ResidentId::parse(raw, today()), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn region_must_be_a_known_province() {
        for region in [
            "00", "10", "16", "20", "39", "47", "55", "60", "66", "70", "84", "99",
        ] {
            // A valid checksum, so only the region is wrong.
            let fixed = with_check(&format!(
                "{region}0113{}",
                &id_born(day(2015, 6, 1), 1)[6..17]
            ));
            assert_eq!(
                ResidentId::parse(&fixed, today()),
                Err(ResidentIdError::UnknownRegion),
                "{region}"
            );
        }
        for region in [11, 65, 71, 81, 82, 83] {
            let fixed = with_check(&format!("{region}{}", &id_born(day(2015, 6, 1), 1)[2..17]));
            assert!(ResidentId::parse(&fixed, today()).is_ok(), "{region}");
        }
    }

    fn with_birth_digits(date: &str) -> String {
        with_check(&format!("610113{date}123"))
    }

    #[test]
    fn birth_date_must_be_a_real_calendar_day() {
        for bad in [
            "20150230", "20150229", "19000229", "20151301", "20150001", "20150100", "20150431",
        ] {
            assert_eq!(
                ResidentId::parse(&with_birth_digits(bad), today()),
                Err(ResidentIdError::InvalidBirthDate),
                "{bad}"
            );
        }
        // Leap days that exist.
        for good in ["20160229", "20000229", "19600229"] {
            assert!(
                ResidentId::parse(&with_birth_digits(good), today()).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn birth_date_may_be_today_but_not_tomorrow() {
        assert!(ResidentId::parse(&with_birth_digits("20261127"), today()).is_ok());
        assert_eq!(
            ResidentId::parse(&with_birth_digits("20261128"), today()),
            Err(ResidentIdError::BirthDateInFuture)
        );
    }

    #[test]
    fn absurdly_old_birth_dates_are_refused() {
        assert!(ResidentId::parse(&with_birth_digits("18961127"), today()).is_ok()); // 130
        assert_eq!(
            ResidentId::parse(&with_birth_digits("18951126"), today()),
            Err(ResidentIdError::ImplausiblyOld)
        );
    }

    #[test]
    fn masking_hides_the_birth_date() {
        let id = ResidentId::parse("11010519491231002X", today()).unwrap();
        assert_eq!(id.masked(), "11************002X");
        assert!(!id.masked().contains("19491231"));
        assert_eq!(format!("{id:?}"), "ResidentId(<redacted>)");
    }
}
