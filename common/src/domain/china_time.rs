//! China time: UTC+8 all year (no daylight saving). The clock people in China read: the
//! calendar of ages and of the daily offline-card quota, the times printed on a card, and
//! the timestamps the face provider's open platform expects.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// UTC+8.
pub const CHINA: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
    Some(offset) => offset,
    None => panic!("UTC+8 is a valid offset"),
};

/// Instant `now` on China's clock.
pub fn china_time(now: DateTime<Utc>) -> DateTime<FixedOffset> {
    now.with_timezone(&CHINA)
}

/// The calendar date in China at instant `now`.
pub fn china_date(now: DateTime<Utc>) -> NaiveDate {
    china_time(now).date_naive()
}

/// The instant China's calendar turns to `day` (its midnight, 16:00 UTC the day before).
pub fn china_midnight(day: NaiveDate) -> DateTime<Utc> {
    (day.and_time(chrono::NaiveTime::MIN)
        - chrono::Duration::seconds(CHINA.local_minus_utc().into()))
    .and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn china_date_turns_at_sixteen_hundred_utc() {
        let before = Utc.with_ymd_and_hms(2026, 11, 26, 15, 59, 59).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 11, 26, 16, 0, 0).unwrap();
        let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
        assert_eq!(china_date(before), day(26));
        assert_eq!(china_date(after), day(27));
        assert_eq!(
            china_time(after).format("%Y-%m-%d %H:%M:%S").to_string(),
            "2026-11-27 00:00:00"
        );
        assert_eq!(china_midnight(day(27)), after);
        assert_eq!(china_date(china_midnight(day(27))), day(27));
    }
}
