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

/// The first date on which someone born on `birth` has completed `years`: their birthday that
/// year, or 1 March for a 29 February birth in a common year (as `completed_years` counts).
pub fn birthday(birth: NaiveDate, years: u32) -> NaiveDate {
    let year = birth.year() + years as i32;
    birth.with_year(year).unwrap_or_else(|| {
        NaiveDate::from_ymd_opt(year, 3, 1).expect("1 March exists in every year")
    })
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

    #[test]
    fn a_birthday_is_the_first_day_the_years_are_complete() {
        for (birth, years, expected) in [
            (day(2019, 11, 27), 7, day(2026, 11, 27)),
            (day(2009, 11, 27), 17, day(2026, 11, 27)),
            // 29 February: 1 March in a common year, the day itself in a leap year.
            (day(2020, 2, 29), 7, day(2027, 3, 1)),
            (day(2020, 2, 29), 17, day(2037, 3, 1)),
            (day(2016, 2, 29), 8, day(2024, 2, 29)),
            (day(2019, 12, 31), 7, day(2026, 12, 31)),
        ] {
            let found = birthday(birth, years);
            assert_eq!(found, expected, "{birth} + {years}");
            assert_eq!(completed_years(birth, found), years);
            assert_eq!(completed_years(birth, found.pred_opt().unwrap()), years - 1);
        }
    }
}
