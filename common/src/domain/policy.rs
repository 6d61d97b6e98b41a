//! The announcement's rules as plain functions. The clock is always a parameter.

use super::age::completed_years;
use super::wire::wire_enum;
use chrono::{DateTime, Duration, NaiveDate, Utc};

pub const MAX_RELATIVES_PER_GUARDIAN: u32 = 8;
pub const MAX_GUARDIANS_PER_RELATIVE: u32 = 3;
pub const MAX_CHILD_AGE: u32 = 16;
pub const MIN_ELDER_AGE: u32 = 60;
/// Children below this age sign a pledge instead of face recognition.
pub const MIN_FACE_AGE: u32 = 7;
pub const FACE_FAILURES_PER_WINDOW: usize = 5;
/// How often the provider may be asked how one face session ended (each query is a billable
/// call): a person returning from the scan asks once or twice; beyond this the session is
/// given up and a new start (which counts this one as a failure) is needed.
pub const FACE_QUERIES_PER_SESSION: u32 = 10;

pub fn unbind_cooldown() -> Duration {
    Duration::hours(24)
}

/// A binding never verified within this window is removed by the scheduled cleanup, freeing
/// both limits: three days covers a weekend without a face scan, and a pending binding would
/// otherwise hold one of the guardian's eight places for ever.
pub fn pending_verification_window() -> Duration {
    Duration::hours(72)
}

/// Offline cards a relative may have generated per China day, across all their guardians:
/// each is valid 7 days, so a few a day covers a lost print without letting a client flood
/// storage with images.
pub const OFFLINE_CARDS_PER_DAY: u32 = 3;

pub fn face_failure_window() -> Duration {
    Duration::hours(1)
}

wire_enum! {
    pub enum AgeBand {
        /// 0–16
        Child = "child",
        /// 60 and over
        Elder = "elder",
    }
}

wire_enum! {
    pub enum VerificationMethod {
        Face = "face",
        Pledge = "pledge",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eligibility {
    pub age: u32,
    pub band: AgeBand,
    pub method: VerificationMethod,
}

/// Who may be bound on `today` (China date). `Err` carries the age that was refused.
pub fn eligibility(birth: NaiveDate, today: NaiveDate) -> Result<Eligibility, u32> {
    let age = completed_years(birth, today);
    let band = match age {
        a if a <= MAX_CHILD_AGE => AgeBand::Child,
        a if a >= MIN_ELDER_AGE => AgeBand::Elder,
        a => return Err(a),
    };
    let method = if age >= MIN_FACE_AGE {
        VerificationMethod::Face
    } else {
        VerificationMethod::Pledge
    };
    Ok(Eligibility { age, band, method })
}

pub fn unbind_available_at(bound_at: DateTime<Utc>) -> DateTime<Utc> {
    bound_at + unbind_cooldown()
}

pub fn may_unbind(bound_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now >= unbind_available_at(bound_at)
}

/// Failures that still count against the caller at `now`. One stamped after `now` counts too:
/// a simultaneous request that began later (or an instance whose clock is ahead) wrote it, and
/// the caller rewrites the list from this one: dropping it would lose a counted attempt.
pub fn recent_face_failures(failures: &[DateTime<Utc>], now: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let since = now - face_failure_window();
    failures.iter().copied().filter(|t| *t > since).collect()
}

/// `Some(time)` when face recognition is locked until `time`.
pub fn face_locked_until(failures: &[DateTime<Utc>], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let mut recent = recent_face_failures(failures, now);
    if recent.len() < FACE_FAILURES_PER_WINDOW {
        return None;
    }
    recent.sort();
    // Unlocked once the oldest failure that keeps the count at the limit leaves the window.
    let pivot = recent[recent.len() - FACE_FAILURES_PER_WINDOW];
    Some(pivot + face_failure_window())
}

/// Whether the provider may be asked once more about a session asked about `queries` times.
pub fn may_query_face_session(queries: u32) -> bool {
    queries < FACE_QUERIES_PER_SESSION
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn bands_and_methods_read_back_their_strings() {
        crate::domain::wire::assert_wire_strings!(AgeBand, VerificationMethod);
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_day_before_the_seventeenth_birthday_is_still_a_child() {
        let birth = day(2009, 11, 27);
        let e = eligibility(birth, day(2026, 11, 26)).unwrap();
        assert_eq!(
            (e.age, e.band, e.method),
            (16, AgeBand::Child, VerificationMethod::Face)
        );
        assert_eq!(eligibility(birth, day(2026, 11, 27)), Err(17));
    }

    #[test]
    fn the_sixtieth_birthday_makes_an_elder() {
        let birth = day(1966, 11, 27);
        assert_eq!(eligibility(birth, day(2026, 11, 26)), Err(59));
        let e = eligibility(birth, day(2026, 11, 27)).unwrap();
        assert_eq!(
            (e.age, e.band, e.method),
            (60, AgeBand::Elder, VerificationMethod::Face)
        );
    }

    #[test]
    fn leap_day_births_around_both_limits() {
        // Born 2008-02-29: 17 only on 1 March 2025.
        assert!(eligibility(day(2008, 2, 29), day(2025, 2, 28)).is_ok());
        assert_eq!(eligibility(day(2008, 2, 29), day(2025, 3, 1)), Err(17));
        // Born 1964-02-29: 60 on 29 February 2024 (a leap year).
        assert_eq!(eligibility(day(1964, 2, 29), day(2024, 2, 28)), Err(59));
        assert!(eligibility(day(1964, 2, 29), day(2024, 2, 29)).is_ok());
        // Born 1961-02-28, the day before a leap-day-less March: 60 on 2021-02-28.
        assert_eq!(eligibility(day(1961, 2, 28), day(2021, 2, 27)), Err(59));
        assert!(eligibility(day(1961, 2, 28), day(2021, 2, 28)).is_ok());
    }

    #[test]
    fn face_from_seven_pledge_below() {
        let birth = day(2019, 11, 27);
        assert_eq!(
            eligibility(birth, day(2026, 11, 26)).unwrap().method,
            VerificationMethod::Pledge
        );
        assert_eq!(
            eligibility(birth, day(2026, 11, 27)).unwrap().method,
            VerificationMethod::Face
        );
        assert_eq!(
            eligibility(day(2026, 11, 27), day(2026, 11, 27))
                .unwrap()
                .method,
            VerificationMethod::Pledge
        );
    }

    #[test]
    fn unbind_opens_exactly_24_hours_after_binding() {
        let bound = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        assert!(!may_unbind(
            bound,
            bound + Duration::hours(24) - Duration::seconds(1)
        ));
        assert!(may_unbind(bound, bound + Duration::hours(24)));
        assert_eq!(unbind_available_at(bound), bound + Duration::hours(24));
    }

    #[test]
    fn a_face_session_is_queried_at_most_ten_times() {
        assert!(may_query_face_session(0));
        assert!(may_query_face_session(FACE_QUERIES_PER_SESSION - 1));
        assert!(!may_query_face_session(FACE_QUERIES_PER_SESSION));
    }

    #[test]
    fn a_failure_stamped_after_now_by_a_simultaneous_request_still_counts() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 10, 0, 0).unwrap();
        let failures = [
            now - Duration::minutes(61),
            now - Duration::minutes(5),
            now + Duration::milliseconds(300),
        ];
        assert_eq!(
            recent_face_failures(&failures, now),
            [
                now - Duration::minutes(5),
                now + Duration::milliseconds(300)
            ]
        );
    }

    #[test]
    fn five_failures_in_an_hour_lock_face_recognition() {
        let t0 = Utc.with_ymd_and_hms(2026, 11, 27, 10, 0, 0).unwrap();
        let failures: Vec<_> = (0..5).map(|i| t0 + Duration::minutes(i * 10)).collect();
        assert_eq!(
            face_locked_until(&failures[..4], t0 + Duration::minutes(45)),
            None
        );
        let now = t0 + Duration::minutes(45);
        assert_eq!(
            face_locked_until(&failures, now),
            Some(t0 + Duration::hours(1))
        );
        // An hour after the first failure only four remain in the window.
        assert_eq!(face_locked_until(&failures, t0 + Duration::hours(1)), None);
    }
}
