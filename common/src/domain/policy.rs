//! The announcement's rules as plain functions. The clock is always a parameter.

use super::age::{birthday, completed_years};
use super::china_time::china_midnight;
use super::wire::wire_enum;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

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

/// A child verified by the pledge keeps the use of their codes this long after turning 7,
/// while the guardian arranges the face verification the age now asks for.
pub fn face_verification_grace() -> Duration {
    Duration::days(30)
}

/// How long before a child's binding ends (at 17) its guardian is told.
pub fn binding_end_notice() -> Duration {
    Duration::days(30)
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
    pub transitions: AgeTransitions,
}

wire_enum! {
    /// What happens to a child's binding by age, at a moment fixed when it is bound.
    pub enum AgeTransition {
        /// The 7th birthday of a child bound with the pledge: face verification is due.
        FaceDue = "face_due",
        /// 30 days before the 17th birthday (at binding, if that is later): the guardian is told.
        EndingNotice = "ending_notice",
        /// The 17th birthday: the binding ends.
        End = "end",
    }
}

/// What a binding's codes may do at a moment, by the relative's age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeUse {
    Usable,
    /// The grace after the 7th birthday is over and face verification is not done: the codes
    /// stop until it is.
    AwaitingFaceVerification,
    /// The child has turned 17: the binding is over.
    Ended,
}

/// The moments a child's binding changes by age: birthdays at midnight China time, fixed at
/// binding from the birth date. An elder's binding has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AgeTransitions {
    /// The 7th birthday, for a child bound with the pledge until face verification is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face_due_at: Option<DateTime<Utc>>,
    /// The 17th birthday: the kin code is for 0–16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
}

impl AgeTransitions {
    fn of(birth: NaiveDate, band: AgeBand, method: VerificationMethod) -> Self {
        let at_age = |years| china_midnight(birthday(birth, years));
        match band {
            AgeBand::Elder => Self::default(),
            AgeBand::Child => Self {
                face_due_at: (method == VerificationMethod::Pledge).then(|| at_age(MIN_FACE_AGE)),
                ends_at: Some(at_age(MAX_CHILD_AGE + 1)),
            },
        }
    }

    /// Whether face verification is due at `now` (the child has turned 7 since the pledge).
    pub fn face_due(&self, now: DateTime<Utc>) -> bool {
        self.face_due_at.is_some_and(|at| at <= now)
    }

    /// When the codes stop if face verification is still not done.
    pub fn face_deadline(&self) -> Option<DateTime<Utc>> {
        self.face_due_at.map(|at| at + face_verification_grace())
    }

    /// The first moment no code of the binding may be valid, if there is one: no code is
    /// issued valid beyond it.
    pub fn codes_stop_at(&self) -> Option<DateTime<Utc>> {
        [self.face_deadline(), self.ends_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn code_use(&self, now: DateTime<Utc>) -> CodeUse {
        if self.ends_at.is_some_and(|at| at <= now) {
            CodeUse::Ended
        } else if self.face_deadline().is_some_and(|at| at <= now) {
            CodeUse::AwaitingFaceVerification
        } else {
            CodeUse::Usable
        }
    }

    pub fn ended(&self, now: DateTime<Utc>) -> bool {
        self.code_use(now) == CodeUse::Ended
    }

    /// After face verification: nothing more is due before the end.
    pub fn face_verified(self) -> Self {
        Self {
            face_due_at: None,
            ..self
        }
    }

    /// Each transition of a binding made at `bound_at`, and when it falls due.
    pub fn schedule(&self, bound_at: DateTime<Utc>) -> Vec<(AgeTransition, DateTime<Utc>)> {
        let mut due = Vec::new();
        if let Some(at) = self.face_due_at {
            due.push((AgeTransition::FaceDue, at));
        }
        if let Some(end) = self.ends_at {
            let notice = (end - binding_end_notice()).max(bound_at);
            due.push((AgeTransition::EndingNotice, notice));
            due.push((AgeTransition::End, end));
        }
        due
    }
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
    Ok(Eligibility {
        age,
        band,
        method,
        transitions: AgeTransitions::of(birth, band, method),
    })
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
        crate::domain::wire::assert_wire_strings!(AgeBand, VerificationMethod, AgeTransition);
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

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn transitions_of(birth: NaiveDate, today: NaiveDate) -> AgeTransitions {
        eligibility(birth, today).unwrap().transitions
    }

    #[test]
    fn a_pledge_child_owes_face_verification_from_the_seventh_birthday_in_china_time() {
        let t = transitions_of(day(2020, 3, 14), day(2026, 11, 27));
        // Midnight in China is 16:00 UTC the day before.
        assert_eq!(t.face_due_at, Some(utc("2027-03-13T16:00:00Z")));
        assert_eq!(t.ends_at, Some(utc("2037-03-13T16:00:00Z")));
        assert!(!t.face_due(utc("2027-03-13T15:59:59Z")));
        assert!(t.face_due(utc("2027-03-13T16:00:00Z")));
        // The codes keep working for 30 days, then stop until face verification.
        assert_eq!(t.face_deadline(), Some(utc("2027-04-12T16:00:00Z")));
        assert_eq!(t.code_use(utc("2027-04-12T15:59:59Z")), CodeUse::Usable);
        assert_eq!(
            t.code_use(utc("2027-04-12T16:00:00Z")),
            CodeUse::AwaitingFaceVerification
        );
        assert_eq!(t.codes_stop_at(), t.face_deadline());
        // Face verification takes the deadline away; the end at 17 stays.
        let verified = t.face_verified();
        assert_eq!(verified.face_due_at, None);
        assert_eq!(
            verified.code_use(utc("2030-01-01T00:00:00Z")),
            CodeUse::Usable
        );
        assert_eq!(verified.codes_stop_at(), t.ends_at);
    }

    #[test]
    fn leap_day_children_reach_seven_and_seventeen_on_the_first_of_march_in_common_years() {
        // Born 29 February 2020: 2027 and 2037 are common years.
        let t = transitions_of(day(2020, 2, 29), day(2026, 11, 27));
        assert_eq!(
            t.face_due_at,
            Some(utc("2027-02-28T16:00:00Z")),
            "1 March, China time"
        );
        assert_eq!(t.ends_at, Some(utc("2037-02-28T16:00:00Z")));
        // Exactly the day eligibility (completed years) turns: 16 on 28 February, 17 on 1 March.
        assert!(eligibility(day(2020, 2, 29), day(2037, 2, 28)).is_ok());
        assert_eq!(eligibility(day(2020, 2, 29), day(2037, 3, 1)), Err(17));
        // Born 29 February 2016: 2023 and 2033 are common years too.
        let t = transitions_of(day(2016, 2, 29), day(2022, 11, 27));
        assert_eq!(t.face_due_at, Some(utc("2023-02-28T16:00:00Z")));
        assert_eq!(t.ends_at, Some(utc("2033-02-28T16:00:00Z")));
    }

    #[test]
    fn elders_and_children_bound_by_face_owe_nothing_and_elders_never_end() {
        let elder = transitions_of(day(1950, 2, 1), day(2026, 11, 27));
        assert_eq!(elder, AgeTransitions::default());
        assert_eq!(elder.code_use(utc("2100-01-01T00:00:00Z")), CodeUse::Usable);
        assert!(elder.schedule(utc("2026-11-27T00:00:00Z")).is_empty());
        let twelve = transitions_of(day(2014, 6, 1), day(2026, 11, 27));
        assert_eq!(twelve.face_due_at, None);
        assert_eq!(twelve.ends_at, Some(utc("2031-05-31T16:00:00Z")));
    }

    #[test]
    fn a_child_bound_at_six_years_and_364_days_owes_face_verification_the_next_day() {
        let birth = day(2019, 11, 28);
        let bound = utc("2026-11-27T02:00:00Z"); // 10:00 on 27 November, China time
        let e = eligibility(birth, day(2026, 11, 27)).unwrap();
        assert_eq!((e.age, e.method), (6, VerificationMethod::Pledge));
        let t = e.transitions;
        assert_eq!(t.face_due_at, Some(utc("2026-11-27T16:00:00Z")));
        assert!(!t.face_due(bound));
        assert_eq!(t.face_deadline(), Some(utc("2026-12-27T16:00:00Z")));
        let schedule = t.schedule(bound);
        assert_eq!(
            schedule[0],
            (AgeTransition::FaceDue, utc("2026-11-27T16:00:00Z"))
        );
        assert_eq!(
            schedule[1..],
            [
                (AgeTransition::EndingNotice, utc("2036-10-28T16:00:00Z")),
                (AgeTransition::End, utc("2036-11-27T16:00:00Z")),
            ]
        );
    }

    #[test]
    fn a_child_bound_days_before_seventeen_is_told_at_once_and_ends_on_the_birthday() {
        let birth = day(2009, 12, 1);
        let bound = utc("2026-11-27T02:00:00Z");
        let e = eligibility(birth, day(2026, 11, 27)).unwrap();
        assert_eq!((e.age, e.band), (16, AgeBand::Child));
        let t = e.transitions;
        assert_eq!(t.ends_at, Some(utc("2026-11-30T16:00:00Z")));
        assert_eq!(
            t.schedule(bound),
            [
                (AgeTransition::EndingNotice, bound),
                (AgeTransition::End, utc("2026-11-30T16:00:00Z")),
            ]
        );
        assert_eq!(t.code_use(utc("2026-11-30T15:59:59Z")), CodeUse::Usable);
        assert_eq!(t.code_use(utc("2026-11-30T16:00:00Z")), CodeUse::Ended);
        assert!(t.ended(utc("2026-11-30T16:00:00Z")));
        assert_eq!(t.codes_stop_at(), t.ends_at);
    }

    #[test]
    fn the_end_at_seventeen_wins_over_a_face_deadline_it_comes_before() {
        // Not a real child (the pledge is for under-7s), but whichever comes first stops the codes.
        let t = AgeTransitions {
            face_due_at: Some(utc("2030-01-01T00:00:00Z")),
            ends_at: Some(utc("2030-01-10T00:00:00Z")),
        };
        assert_eq!(t.codes_stop_at(), t.ends_at);
        assert_eq!(t.code_use(utc("2030-02-01T00:00:00Z")), CodeUse::Ended);
    }
}
