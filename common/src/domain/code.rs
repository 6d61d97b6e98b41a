//! What a kin code says, independent of how it is encoded: the claims inside the signed token.
//! No personal data: a random serial, the binding it belongs to (a random id), times, the kind
//! and the colour at issue.

use chrono::{DateTime, Duration, Utc};

use super::binding::BindingId;
use super::colour::HealthColour;
use super::wire::wire_enum;

/// An online code is shown on the guardian's phone and refreshed; it lives minutes.
pub fn online_code_lifetime() -> Duration {
    Duration::minutes(5)
}

/// How often the phone should fetch a fresh online code (well inside its lifetime).
pub fn online_refresh_interval() -> Duration {
    Duration::seconds(60)
}

/// The announcement: an offline code is valid 7 days from generation.
pub fn offline_code_validity() -> Duration {
    Duration::days(7)
}

wire_enum! {
    pub enum CodeKind {
        /// Shown live on the guardian's phone.
        KinOnline = "kin_online",
        /// The printable 7-day card.
        KinOffline = "kin_offline",
    }
}

impl CodeKind {
    pub fn lifetime(self) -> Duration {
        match self {
            Self::KinOnline => online_code_lifetime(),
            Self::KinOffline => offline_code_validity(),
        }
    }
}

wire_enum! {
    /// Why an active relative of the caller is not on their household sheet. The strings are
    /// the API's error codes for the same refusal of a single card.
    pub enum SheetLeftOutReason {
        /// The relative's offline cards for the China day are used up (by any guardian): a
        /// sheet that would count one more leaves the relative off and says so, instead of
        /// refusing the family's other cards.
        DailyLimitReached = "offline_code_limit_reached",
    }
}

wire_enum! {
    /// Why a checkpoint scans a code.
    pub enum ScanPurpose {
        /// Registering a sample at a nucleic-acid testing site.
        NucleicAcidTest = "nucleic_acid_test",
        /// Entering a venue or a residential compound.
        VenueEntry = "venue_entry",
        /// The "一场两站" arrival declaration (airport and stations): kin codes are refused.
        Arrival = "arrival",
    }
}

impl ScanPurpose {
    pub fn label(self) -> &'static str {
        match self {
            Self::NucleicAcidTest => "核酸检测",
            Self::VenueEntry => "场所通行",
            Self::Arrival => "一场两站",
        }
    }

    /// The announcement: a kin code does not serve the arrival declaration (for now).
    pub fn accepts_kin_codes(self) -> bool {
        self != Self::Arrival
    }
}

/// A code's serial (`cti`): 16 random bytes, never derived from the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeSerial(pub [u8; 16]);

impl CodeSerial {
    pub fn random() -> Self {
        Self(*uuid::Uuid::new_v4().as_bytes())
    }

    /// Lower-case hex, as stored and published.
    pub fn to_hex(self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn from_hex(raw: &str) -> Option<Self> {
        if raw.len() != 32 || !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&raw[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(Self(out))
    }
}

/// The claims of a kin code. Times are whole seconds (CWT NumericDate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeClaims {
    pub serial: CodeSerial,
    pub binding: BindingId,
    pub kind: CodeKind,
    pub colour: HealthColour,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl CodeClaims {
    /// A new code of `kind` for `binding`, issued at `now` (truncated to the second).
    pub fn issue(
        binding: BindingId,
        kind: CodeKind,
        colour: HealthColour,
        now: DateTime<Utc>,
    ) -> Self {
        let issued_at = DateTime::from_timestamp(now.timestamp(), 0).expect("in range");
        Self {
            serial: CodeSerial::random(),
            binding,
            kind,
            colour,
            issued_at,
            expires_at: issued_at + kind.lifetime(),
        }
    }

    /// The code expiring at `limit` (whole seconds, rounded down) if that comes sooner.
    pub fn not_after(self, limit: Option<DateTime<Utc>>) -> Self {
        let limit = limit.and_then(|at| DateTime::from_timestamp(at.timestamp(), 0));
        Self {
            expires_at: limit.map_or(self.expires_at, |at| self.expires_at.min(at)),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::wire::assert_wire_strings;
    use chrono::TimeZone;

    #[test]
    fn kinds_and_purposes_read_back_their_strings() {
        assert_wire_strings!(CodeKind, ScanPurpose, SheetLeftOutReason);
    }

    #[test]
    fn offline_codes_last_exactly_seven_days_online_minutes() {
        let now =
            Utc.with_ymd_and_hms(2026, 11, 28, 4, 0, 0).unwrap() + Duration::milliseconds(700);
        let offline = CodeClaims::issue(
            BindingId::random(),
            CodeKind::KinOffline,
            HealthColour::Green,
            now,
        );
        assert_eq!(
            offline.issued_at,
            Utc.with_ymd_and_hms(2026, 11, 28, 4, 0, 0).unwrap()
        );
        assert_eq!(offline.expires_at - offline.issued_at, Duration::days(7));
        let online = CodeClaims::issue(
            BindingId::random(),
            CodeKind::KinOnline,
            HealthColour::Red,
            now,
        );
        assert_eq!(online.expires_at - online.issued_at, Duration::minutes(5));
        assert_ne!(online.serial, offline.serial);
    }

    #[test]
    fn a_code_ends_no_later_than_the_limit_it_is_given() {
        let now = Utc.with_ymd_and_hms(2027, 4, 9, 4, 0, 0).unwrap();
        let issue = || {
            CodeClaims::issue(
                BindingId::random(),
                CodeKind::KinOffline,
                HealthColour::Green,
                now,
            )
        };
        let deadline = Utc.with_ymd_and_hms(2027, 4, 12, 16, 0, 0).unwrap();
        assert_eq!(issue().not_after(Some(deadline)).expires_at, deadline);
        assert_eq!(
            issue()
                .not_after(Some(deadline + Duration::milliseconds(900)))
                .expires_at,
            deadline,
            "whole seconds"
        );
        let later = now + Duration::days(30);
        assert_eq!(
            issue().not_after(Some(later)).expires_at,
            now + Duration::days(7)
        );
        assert_eq!(issue().not_after(None).expires_at, now + Duration::days(7));
    }

    #[test]
    fn serials_round_trip_through_hex() {
        let serial = CodeSerial::random();
        assert_eq!(CodeSerial::from_hex(&serial.to_hex()), Some(serial));
        assert_eq!(CodeSerial::from_hex("zz"), None);
        assert_eq!(CodeSerial::from_hex(&"g".repeat(32)), None);
    }
}
