//! Ages in completed years, on the calendar of China time (`china_time::china_date`).

use chrono::{Datelike, NaiveDate};

/// Completed years between `birth` and `on`.
///
/// People born on 29 February complete a year on 1 March in common years: until 28 February has
/// passed they have not lived the full year (the rule most civil codes, and `chrono`, apply).
pub fn completed_years(birth: NaiveDate, on: NaiveDate) -> u32 {
    if on < birth {
        return 0;
    }
    let years = on.year() - birth.year();
    let birthday_reached = (on.month(), on.day()) >= (birth.month(), birth.day());
    (if birthday_reached { years } else { years - 1 }) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn birthday_completes_the_year() {
        let birth = day(2009, 11, 27);
        assert_eq!(completed_years(birth, day(2026, 11, 26)), 16);
        assert_eq!(completed_years(birth, day(2026, 11, 27)), 17);
        assert_eq!(completed_years(birth, day(2026, 11, 28)), 17);
    }

    #[test]
    fn newborn_is_zero() {
        assert_eq!(completed_years(day(2026, 11, 27), day(2026, 11, 27)), 0);
        assert_eq!(completed_years(day(2025, 11, 28), day(2026, 11, 27)), 0);
    }

    #[test]
    fn leap_day_birthdays_complete_on_the_first_of_march_in_common_years() {
        let birth = day(2008, 2, 29);
        assert_eq!(completed_years(birth, day(2025, 2, 28)), 16);
        assert_eq!(completed_years(birth, day(2025, 3, 1)), 17);
        // In a leap year the birthday itself exists.
        assert_eq!(completed_years(birth, day(2024, 2, 28)), 15);
        assert_eq!(completed_years(birth, day(2024, 2, 29)), 16);
    }
}
