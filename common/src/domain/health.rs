//! The health colour: one rules function, the same one a personal code would use.
//!
//! Signals come from the health authority (risk flags with a window in force) and from
//! nucleic-acid tests (`nucleic::tests_colour`). No signal in force means green; otherwise the
//! worst colour in force.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::colour::HealthColour;
use super::nucleic::{tests_colour, TestSignal};
use super::wire::wire_enum;

wire_enum! {
    /// What the health authority says about a person.
    pub enum RiskFlag {
        Confirmed = "confirmed",
        Suspected = "suspected",
        Asymptomatic = "asymptomatic",
        CloseContact = "close_contact",
        SecondaryContact = "secondary_contact",
        RiskAreaArrival = "risk_area_arrival",
        FeverClinic = "fever_clinic",
    }
}

impl RiskFlag {
    /// The rules table (README: "Health colour").
    pub fn colour(self) -> HealthColour {
        match self {
            Self::Confirmed | Self::Suspected | Self::Asymptomatic | Self::CloseContact => {
                HealthColour::Red
            }
            Self::SecondaryContact | Self::RiskAreaArrival | Self::FeverClinic => {
                HealthColour::Yellow
            }
        }
    }
}

/// A flag in force from `effective_at` (inclusive) until `until` (exclusive), or open-ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskSignal {
    pub flag: RiskFlag,
    pub effective_at: DateTime<Utc>,
    pub until: Option<DateTime<Utc>>,
}

impl RiskSignal {
    pub fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.effective_at <= now && self.until.is_none_or(|until| now < until)
    }
}

/// Everything the colour is computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthSignals {
    pub flags: Vec<RiskSignal>,
    /// Tests within the retention period.
    pub tests: Vec<TestSignal>,
}

/// The colour at `now`: the worst signal in force, green when none is.
pub fn colour(signals: &HealthSignals, now: DateTime<Utc>) -> HealthColour {
    signals
        .flags
        .iter()
        .filter(|s| s.in_force(now))
        .map(|s| s.flag.colour())
        .chain([tests_colour(&signals.tests)])
        .max()
        .unwrap_or(HealthColour::Green)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 2, 0, 0).unwrap()
    }

    fn signals(flags: &[(RiskFlag, i64, Option<i64>)]) -> HealthSignals {
        HealthSignals {
            flags: flags
                .iter()
                .map(|&(flag, from_h, until_h)| RiskSignal {
                    flag,
                    effective_at: t0() + Duration::hours(from_h),
                    until: until_h.map(|h| t0() + Duration::hours(h)),
                })
                .collect(),
            tests: Vec::new(),
        }
    }

    fn one(flag: RiskFlag) -> HealthColour {
        colour(&signals(&[(flag, 0, None)]), t0())
    }

    #[test]
    fn no_signal_is_green() {
        assert_eq!(colour(&HealthSignals::default(), t0()), HealthColour::Green);
    }

    #[test]
    fn confirmed_is_red() {
        assert_eq!(one(RiskFlag::Confirmed), HealthColour::Red);
    }

    #[test]
    fn suspected_is_red() {
        assert_eq!(one(RiskFlag::Suspected), HealthColour::Red);
    }

    #[test]
    fn asymptomatic_is_red() {
        assert_eq!(one(RiskFlag::Asymptomatic), HealthColour::Red);
    }

    #[test]
    fn close_contact_is_red() {
        assert_eq!(one(RiskFlag::CloseContact), HealthColour::Red);
    }

    #[test]
    fn secondary_contact_is_yellow() {
        assert_eq!(one(RiskFlag::SecondaryContact), HealthColour::Yellow);
    }

    #[test]
    fn risk_area_arrival_is_yellow() {
        assert_eq!(one(RiskFlag::RiskAreaArrival), HealthColour::Yellow);
    }

    #[test]
    fn fever_clinic_is_yellow() {
        assert_eq!(one(RiskFlag::FeverClinic), HealthColour::Yellow);
    }

    #[test]
    fn the_worst_flag_in_force_wins() {
        let s = signals(&[
            (RiskFlag::FeverClinic, 0, None),
            (RiskFlag::CloseContact, 0, Some(2)),
        ]);
        assert_eq!(colour(&s, t0()), HealthColour::Red);
        assert_eq!(colour(&s, t0() + Duration::hours(2)), HealthColour::Yellow);
    }

    #[test]
    fn every_flag_window_starts_inclusive_and_ends_exclusive() {
        for flag in RiskFlag::ALL {
            let s = signals(&[(flag, 1, Some(3))]);
            let just_before = t0() + Duration::hours(1) - Duration::seconds(1);
            assert_eq!(colour(&s, just_before), HealthColour::Green, "{flag:?}");
            assert_eq!(colour(&s, t0() + Duration::hours(1)), flag.colour());
            let last = t0() + Duration::hours(3) - Duration::seconds(1);
            assert_eq!(colour(&s, last), flag.colour(), "{flag:?}");
            assert_eq!(colour(&s, t0() + Duration::hours(3)), HealthColour::Green);
        }
    }

    #[test]
    fn flags_and_tests_combine_to_the_worst() {
        use crate::domain::nucleic::{TestStatus, TubeKind};
        let mut s = signals(&[(RiskFlag::SecondaryContact, 0, None)]);
        s.tests.push(TestSignal {
            sampled_at: t0(),
            kind: TubeKind::Single,
            status: TestStatus::Positive,
        });
        assert_eq!(colour(&s, t0()), HealthColour::Red);
        s.tests[0].status = TestStatus::Negative;
        assert_eq!(colour(&s, t0()), HealthColour::Yellow);
        s.flags.clear();
        assert_eq!(colour(&s, t0()), HealthColour::Green);
    }

    #[test]
    fn an_open_ended_flag_stays_in_force() {
        let s = signals(&[(RiskFlag::Confirmed, 0, None)]);
        assert_eq!(colour(&s, t0() + Duration::days(3650)), HealthColour::Red);
    }

    #[test]
    fn names_round_trip() {
        crate::domain::wire::assert_wire_strings!(RiskFlag, HealthColour);
        assert_eq!(RiskFlag::parse("Confirmed"), None);
    }
}
