//! Nucleic-acid testing: tubes (one person, or pooled 10-in-1 / 20-in-1), what a lab may report,
//! what each person's test then says, and how tests colour the code.

use super::colour::HealthColour;
use super::wire::wire_enum;
use chrono::{DateTime, Duration, Utc};

/// Registrations and results are kept this long by default (`KINCODE_RESULT_RETENTION_DAYS`):
/// the longest observation period, after which a result no longer says anything about today.
pub const DEFAULT_RESULT_RETENTION_DAYS: u32 = 14;
pub const MAX_RESULT_RETENTION_DAYS: u32 = 365;

/// A lab's clock may run a little ahead of ours.
pub fn reporting_clock_skew() -> Duration {
    Duration::minutes(5)
}

/// Whether a result reported at `reported_at` may answer a tube opened at `opened_at`: not
/// before it, in whole seconds. The API shows `sampled_at` in whole seconds, so a lab that
/// reports at exactly the time it was shown (the sample's own second) is on time, whatever
/// fraction of that second the tube was opened at.
pub fn reported_since_opening(reported_at: DateTime<Utc>, opened_at: DateTime<Utc>) -> bool {
    reported_at.timestamp() >= opened_at.timestamp()
}

/// A tube's barcode: 6–32 letters, digits or dashes, as printed on the tube.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TubeId(String);

impl TubeId {
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let ok = (6..=32).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The testing site a checkpoint account belongs to (its token's `site_id` and optional
/// `site_name` claims): shown to guardians with each result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    id: String,
    name: Option<String>,
}

impl Site {
    pub fn parse(id: &str, name: Option<&str>) -> Option<Self> {
        let id = id.trim();
        let id_ok = (1..=64).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(|n| n.chars().filter(|c| !c.is_control()).take(64).collect());
        id_ok.then(|| Self {
            id: id.to_owned(),
            name,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

wire_enum! {
    /// How many people a tube holds: fixed by its first registration.
    pub enum TubeKind {
        Single = "single",
        Pooled10 = "pooled_10",
        Pooled20 = "pooled_20",
    }
}

impl TubeKind {
    /// The most any tube holds: bounds the retries of a contended tube.
    pub const MAX_CAPACITY: u32 = 20;

    pub fn capacity(self) -> u32 {
        match self {
            Self::Single => 1,
            Self::Pooled10 => 10,
            Self::Pooled20 => Self::MAX_CAPACITY,
        }
    }

    pub fn is_pooled(self) -> bool {
        self != Self::Single
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Single => "单人单管",
            Self::Pooled10 => "10人混采",
            Self::Pooled20 => "20人混采",
        }
    }
}

wire_enum! {
    /// What a lab reports for a tube.
    pub enum LabResult {
        Negative = "negative",
        Positive = "positive",
        /// The sample could not be read: the people in it are sampled again.
        Invalid = "invalid",
    }
}

wire_enum! {
    /// One person's test, as the guardian reads it.
    pub enum TestStatus {
        Pending = "pending",
        Negative = "negative",
        Positive = "positive",
        /// Their pooled tube was positive: each person in it must be re-tested alone.
        PooledPositive = "pooled_positive",
        Invalid = "invalid",
    }
}

impl TestStatus {
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "待出结果",
            Self::Negative => "阴性",
            Self::Positive => "阳性",
            Self::PooledPositive => "混采阳性,请尽快单管复检",
            Self::Invalid => "样本无效,请重新采样",
        }
    }
}

/// What a tube's result means for each person in it: a pooled positive says only that
/// someone in the tube is positive.
pub fn person_status(kind: TubeKind, result: LabResult) -> TestStatus {
    match (result, kind.is_pooled()) {
        (LabResult::Negative, _) => TestStatus::Negative,
        (LabResult::Positive, false) => TestStatus::Positive,
        (LabResult::Positive, true) => TestStatus::PooledPositive,
        (LabResult::Invalid, _) => TestStatus::Invalid,
    }
}

/// What a reported result does to a tube that may already have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultChange {
    Store,
    /// The same result again (a replayed batch).
    Unchanged,
    /// A negative or positive result is final: another value contradicts it.
    Conflicts,
}

pub fn judge_result(existing: Option<LabResult>, reported: LabResult) -> ResultChange {
    match existing {
        None => ResultChange::Store,
        Some(current) if current == reported => ResultChange::Unchanged,
        // An invalid run is not an answer: a re-run of the tube may still give one.
        Some(LabResult::Invalid) => ResultChange::Store,
        Some(_) => ResultChange::Conflicts,
    }
}

/// What a tube is when someone is to be added to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TubeState {
    pub kind: TubeKind,
    pub filled: u32,
    /// Reported (it has gone to the lab) or past retention: nobody joins it any more.
    pub closed: bool,
    /// The site that opened it: a tube is a physical object at one site.
    pub site_id: String,
}

/// Why a person cannot go into a tube.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TubeRefusal {
    Full {
        capacity: u32,
    },
    KindMismatch {
        kind: TubeKind,
    },
    Closed,
    /// The tube was opened at another testing site.
    AtAnotherSite,
    /// A yellow or red code is sampled alone, never pooled.
    PoolingNotAllowed,
}

/// The next place in a tube: its kind (the requested one for a new tube, single by default)
/// and the person's position in it (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    pub kind: TubeKind,
    pub position: u32,
}

/// The next place in the tube for someone sampled at `site`.
pub fn admit(
    tube: Option<TubeState>,
    site: &Site,
    requested: Option<TubeKind>,
    colour: HealthColour,
) -> Result<Admission, TubeRefusal> {
    let admission = match tube {
        None => Admission {
            kind: requested.unwrap_or(TubeKind::Single),
            position: 1,
        },
        Some(tube) => {
            if tube.site_id != site.id() {
                return Err(TubeRefusal::AtAnotherSite);
            }
            if tube.closed {
                return Err(TubeRefusal::Closed);
            }
            if requested.is_some_and(|k| k != tube.kind) {
                return Err(TubeRefusal::KindMismatch { kind: tube.kind });
            }
            if tube.filled >= tube.kind.capacity() {
                return Err(TubeRefusal::Full {
                    capacity: tube.kind.capacity(),
                });
            }
            Admission {
                kind: tube.kind,
                position: tube.filled + 1,
            }
        }
    };
    if admission.kind.is_pooled() && colour != HealthColour::Green {
        return Err(TubeRefusal::PoolingNotAllowed);
    }
    Ok(admission)
}

/// A test as the colour rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestSignal {
    pub sampled_at: DateTime<Utc>,
    pub kind: TubeKind,
    pub status: TestStatus,
}

impl TestSignal {
    /// A single-tube test with an answer: it settles everything sampled before it.
    fn settles(&self, earlier: &TestSignal) -> bool {
        !self.kind.is_pooled()
            && matches!(self.status, TestStatus::Negative | TestStatus::Positive)
            && self.sampled_at > earlier.sampled_at
    }
}

/// The colour tests give: a single-tube positive is red, a pooled positive yellow, each until a
/// single-tube test sampled after it answers (negative clears it, positive is red in its own
/// right). Pending, negative and invalid tests colour nothing.
pub fn tests_colour(tests: &[TestSignal]) -> HealthColour {
    tests
        .iter()
        .filter(|test| !tests.iter().any(|later| later.settles(test)))
        .map(|test| match test.status {
            TestStatus::Positive => HealthColour::Red,
            TestStatus::PooledPositive => HealthColour::Yellow,
            _ => HealthColour::Green,
        })
        .max()
        .unwrap_or(HealthColour::Green)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::wire::assert_wire_strings;
    use chrono::TimeZone;

    fn at(hour: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap() + Duration::hours(hour)
    }

    fn test(hour: i64, kind: TubeKind, status: TestStatus) -> TestSignal {
        TestSignal {
            sampled_at: at(hour),
            kind,
            status,
        }
    }

    use TestStatus::*;
    use TubeKind::*;

    #[test]
    fn a_report_at_the_samples_own_second_is_on_time() {
        let opened = at(0) + Duration::milliseconds(734);
        assert!(reported_since_opening(at(0), opened), "the second shown");
        assert!(reported_since_opening(opened, opened));
        assert!(!reported_since_opening(
            at(0) - Duration::milliseconds(1),
            opened
        ));
    }

    #[test]
    fn tube_ids_are_barcodes() {
        assert!(TubeId::parse("XA2026112800001").is_some());
        assert_eq!(TubeId::parse(" T-000123 ").unwrap().as_str(), "T-000123");
        assert!(TubeId::parse("12345").is_none());
        assert!(TubeId::parse(&"1".repeat(33)).is_none());
        assert!(TubeId::parse("T 000123").is_none());
        assert!(TubeId::parse("管000123").is_none());
    }

    #[test]
    fn sites_come_from_claims() {
        let site = Site::parse("XA-YT-0007", Some(" 雁塔区小寨社区采样点 ")).unwrap();
        assert_eq!(site.id(), "XA-YT-0007");
        assert_eq!(site.name(), Some("雁塔区小寨社区采样点"));
        assert_eq!(Site::parse("s1", Some("")).unwrap().name(), None);
        assert!(Site::parse("", None).is_none());
        assert!(Site::parse("site 7", None).is_none());
        assert!(Site::parse(&"s".repeat(65), None).is_none());
    }

    #[test]
    fn kinds_hold_one_ten_or_twenty() {
        assert_eq!(
            TubeKind::ALL.map(TubeKind::capacity),
            [1, 10, TubeKind::MAX_CAPACITY]
        );
        assert_eq!(TubeKind::parse("pooled_5"), None);
    }

    #[test]
    fn kinds_results_and_statuses_read_back_their_strings() {
        assert_wire_strings!(TubeKind, LabResult, TestStatus);
    }

    #[test]
    fn a_pooled_positive_is_not_a_positive() {
        assert_eq!(person_status(Pooled10, LabResult::Positive), PooledPositive);
        assert_eq!(person_status(Pooled20, LabResult::Positive), PooledPositive);
        assert_eq!(person_status(Single, LabResult::Positive), Positive);
        assert_eq!(person_status(Pooled10, LabResult::Negative), Negative);
        assert_eq!(person_status(Single, LabResult::Invalid), Invalid);
    }

    #[test]
    fn final_results_stand_and_invalid_ones_may_be_answered() {
        use LabResult as R;
        assert_eq!(judge_result(None, R::Positive), ResultChange::Store);
        assert_eq!(
            judge_result(Some(R::Negative), R::Negative),
            ResultChange::Unchanged
        );
        assert_eq!(
            judge_result(Some(R::Negative), R::Positive),
            ResultChange::Conflicts
        );
        assert_eq!(
            judge_result(Some(R::Positive), R::Invalid),
            ResultChange::Conflicts
        );
        assert_eq!(
            judge_result(Some(R::Invalid), R::Negative),
            ResultChange::Store
        );
        assert_eq!(
            judge_result(Some(R::Invalid), R::Invalid),
            ResultChange::Unchanged
        );
    }

    const SITE: &str = "XA-YT-0412";

    fn site() -> Site {
        Site::parse(SITE, None).unwrap()
    }

    fn open(kind: TubeKind, filled: u32) -> Option<TubeState> {
        Some(TubeState {
            kind,
            filled,
            closed: false,
            site_id: SITE.into(),
        })
    }

    fn admit(
        tube: Option<TubeState>,
        requested: Option<TubeKind>,
        colour: HealthColour,
    ) -> Result<Admission, TubeRefusal> {
        super::admit(tube, &site(), requested, colour)
    }

    #[test]
    fn a_tube_takes_people_only_at_the_site_that_opened_it() {
        let elsewhere = Site::parse("XA-BL-0001", None).unwrap();
        let green = HealthColour::Green;
        assert_eq!(
            super::admit(open(Pooled10, 1), &elsewhere, None, green),
            Err(TubeRefusal::AtAnotherSite)
        );
        // Whatever else is wrong with it, another site's tube is another site's.
        let closed = Some(TubeState {
            closed: true,
            ..open(Pooled10, 10).unwrap()
        });
        assert_eq!(
            super::admit(closed, &elsewhere, Some(Single), green),
            Err(TubeRefusal::AtAnotherSite)
        );
        assert_eq!(admit(open(Pooled10, 1), None, green).unwrap().position, 2);
        // A new tube is opened by whichever site registers into it first.
        assert!(super::admit(None, &elsewhere, None, green).is_ok());
    }

    #[test]
    fn a_new_tube_takes_the_requested_kind_or_is_single() {
        let green = HealthColour::Green;
        assert_eq!(
            admit(None, None, green),
            Ok(Admission {
                kind: Single,
                position: 1
            })
        );
        assert_eq!(admit(None, Some(Pooled20), green).unwrap().kind, Pooled20);
    }

    #[test]
    fn a_tube_fills_to_its_capacity_and_no_further() {
        let green = HealthColour::Green;
        assert_eq!(admit(open(Pooled10, 9), None, green).unwrap().position, 10);
        assert_eq!(
            admit(open(Pooled10, 10), None, green),
            Err(TubeRefusal::Full { capacity: 10 })
        );
        assert_eq!(
            admit(open(Single, 1), Some(Single), green),
            Err(TubeRefusal::Full { capacity: 1 })
        );
        assert_eq!(admit(open(Pooled20, 19), None, green).unwrap().position, 20);
        assert!(admit(open(Pooled20, 20), None, green).is_err());
    }

    #[test]
    fn the_first_registration_fixes_the_kind() {
        let green = HealthColour::Green;
        assert_eq!(
            admit(open(Pooled10, 3), Some(Pooled20), green),
            Err(TubeRefusal::KindMismatch { kind: Pooled10 })
        );
        assert_eq!(
            admit(open(Pooled10, 3), Some(Pooled10), green)
                .unwrap()
                .position,
            4
        );
    }

    #[test]
    fn a_reported_tube_is_closed() {
        let tube = Some(TubeState {
            closed: true,
            ..open(Pooled10, 2).unwrap()
        });
        assert_eq!(
            admit(tube, None, HealthColour::Green),
            Err(TubeRefusal::Closed)
        );
    }

    #[test]
    fn yellow_and_red_codes_are_never_pooled() {
        for colour in [HealthColour::Yellow, HealthColour::Red] {
            assert_eq!(
                admit(None, Some(Pooled10), colour),
                Err(TubeRefusal::PoolingNotAllowed)
            );
            assert_eq!(
                admit(open(Pooled20, 1), None, colour),
                Err(TubeRefusal::PoolingNotAllowed)
            );
            assert!(admit(None, Some(Single), colour).is_ok());
        }
    }

    #[test]
    fn no_tests_pending_negative_or_invalid_are_green() {
        assert_eq!(tests_colour(&[]), HealthColour::Green);
        for status in [Pending, Negative, Invalid] {
            assert_eq!(
                tests_colour(&[test(0, Single, status), test(1, Pooled10, status)]),
                HealthColour::Green
            );
        }
    }

    #[test]
    fn a_single_positive_is_red_and_a_pooled_positive_yellow() {
        assert_eq!(
            tests_colour(&[test(0, Single, Positive)]),
            HealthColour::Red
        );
        assert_eq!(
            tests_colour(&[test(0, Pooled10, PooledPositive)]),
            HealthColour::Yellow
        );
    }

    #[test]
    fn a_later_single_negative_clears_a_pooled_positive() {
        let tests = [test(0, Pooled10, PooledPositive), test(5, Single, Negative)];
        assert_eq!(tests_colour(&tests), HealthColour::Green);
    }

    #[test]
    fn a_later_single_positive_turns_a_pooled_positive_red() {
        let tests = [test(0, Pooled10, PooledPositive), test(5, Single, Positive)];
        assert_eq!(tests_colour(&tests), HealthColour::Red);
    }

    #[test]
    fn only_a_single_answer_sampled_after_settles() {
        // Still pending, invalid, pooled, or sampled before: none of these answers it.
        for answer in [
            test(5, Single, Pending),
            test(5, Single, Invalid),
            test(5, Pooled20, Negative),
            test(-1, Single, Negative),
            test(0, Single, Negative),
        ] {
            let tests = [test(0, Pooled10, PooledPositive), answer];
            assert_eq!(tests_colour(&tests), HealthColour::Yellow, "{answer:?}");
        }
    }

    #[test]
    fn a_later_single_negative_clears_a_single_positive_but_a_pooled_one_does_not() {
        let cleared = [test(0, Single, Positive), test(24, Single, Negative)];
        assert_eq!(tests_colour(&cleared), HealthColour::Green);
        let pooled = [test(0, Single, Positive), test(24, Pooled10, Negative)];
        assert_eq!(tests_colour(&pooled), HealthColour::Red);
    }
}
