//! A guardian's binding to a relative, and the identifiers around it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::policy::{AgeBand, AgeTransitions, VerificationMethod};
use super::relationship::Relationship;
use super::wire::wire_enum;

/// The caller: the `sub` claim of the city platform's token. Opaque, but it becomes part of
/// storage keys, so only printable ASCII without the key separator is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GuardianId(String);

impl GuardianId {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (1..=128).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_graphic() && b != b'#');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A binding's public identifier: a UUID, random or derived from an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BindingId(String);

impl BindingId {
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Anything that is not a canonical UUID is simply not a binding.
    pub fn parse(raw: &str) -> Option<Self> {
        let id = uuid::Uuid::try_parse(raw).ok()?;
        let canonical = id.hyphenated().to_string();
        (canonical == raw).then_some(Self(canonical))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client-chosen key that makes a retried request safe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = (8..=128).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

wire_enum! {
    pub enum BindingStatus {
        /// Bound, but not usable until face recognition or the pledge is done.
        PendingVerification = "pending_verification",
        Active = "active",
    }
}

/// How a binding was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Verification {
    Face { certify_id: String },
    Pledge { version: String },
}

/// A binding as the domain sees it: personal data only in masked form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub id: BindingId,
    pub guardian: GuardianId,
    /// Keyed hash of the relative's ID number; shared by all their guardians.
    pub relative_key: String,
    pub masked_name: String,
    pub masked_id_number: String,
    pub relationship: Relationship,
    pub age_band: AgeBand,
    pub verification_method: VerificationMethod,
    pub status: BindingStatus,
    pub bound_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    pub verification: Option<Verification>,
    /// Face recognition session in progress, if any.
    pub pending_certify_id: Option<String>,
    /// The face attempt reserved before the provider was asked for its session (the
    /// provider's `outer_order_no`): counted as a failure if a new start abandons it.
    pub pending_face_attempt: Option<String>,
    /// How often the provider was asked how the pending session ended.
    pub face_queries: u32,
    pub face_failures: Vec<DateTime<Utc>>,
    /// Its face verification due at 7 (bound with the pledge), its end at 17 (a child).
    pub transitions: AgeTransitions,
    /// Optimistic-concurrency version of the stored item.
    pub version: u64,
    /// The hour of the guardian's last "code shown" entry in the access log.
    pub code_shown_hour: Option<DateTime<Utc>>,
}

impl Binding {
    /// Whether codes may be shown or printed for it at `now`: verified, and not stopped by age
    /// (the grace after the 7th birthday over without face verification, or turned 17).
    pub fn codes_usable(&self, now: DateTime<Utc>) -> bool {
        self.status == BindingStatus::Active
            && matches!(
                self.transitions.code_use(now),
                super::policy::CodeUse::Usable
            )
    }

    /// What was recorded about the relative (results, the access log) is shown to this
    /// guardian from the moment the binding became usable: before it was verified, anyone
    /// who knew the ID number could have made it.
    pub fn visible_since(&self) -> DateTime<Utc> {
        self.verified_at.unwrap_or(self.bound_at)
    }

    /// A face attempt is open (reserved, or its session started): a new start abandons it.
    /// A session recorded before attempts were reserved has no attempt, only its id.
    pub fn face_attempt_open(&self) -> bool {
        self.pending_face_attempt.is_some() || self.pending_certify_id.is_some()
    }

    /// The verification the binding awaits at `now`, if any: face once a child bound with the
    /// pledge has turned 7 (pending or active: an active one is verified again), else the
    /// method it was bound with while pending.
    pub fn verification_due(&self, now: DateTime<Utc>) -> Option<VerificationMethod> {
        if self.transitions.face_due(now) {
            return Some(VerificationMethod::Face);
        }
        match self.status {
            BindingStatus::PendingVerification => Some(self.verification_method),
            BindingStatus::Active => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_their_strings() {
        crate::domain::wire::assert_wire_strings!(BindingStatus);
    }

    #[test]
    fn guardian_ids_are_printable_ascii_without_separator() {
        assert!(GuardianId::parse("8f1c2a7e-user").is_some());
        for bad in ["", "a#b", "a b", "用户", &"a".repeat(129)] {
            assert!(GuardianId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn binding_ids_must_be_canonical_uuids() {
        let id = BindingId::random();
        assert_eq!(BindingId::parse(id.as_str()), Some(id.clone()));
        let upper = id.as_str().to_uppercase();
        for bad in ["", "123", "../etc", upper.as_str()] {
            assert!(BindingId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys_have_sane_length() {
        assert!(IdempotencyKey::parse("a1b2c3d4").is_some());
        assert!(IdempotencyKey::parse("short").is_none());
        assert!(IdempotencyKey::parse("with space inside").is_none());
    }

    fn pledge_child(status: BindingStatus) -> Binding {
        let due: DateTime<Utc> = "2027-03-13T16:00:00Z".parse().unwrap();
        Binding {
            id: BindingId::random(),
            guardian: GuardianId::parse("user-1").unwrap(),
            relative_key: "rk".into(),
            masked_name: "**明".into(),
            masked_id_number: "61************2174".into(),
            relationship: Relationship::Child,
            age_band: AgeBand::Child,
            verification_method: VerificationMethod::Pledge,
            status,
            bound_at: due - chrono::Duration::days(400),
            verified_at: None,
            verification: None,
            pending_certify_id: None,
            pending_face_attempt: None,
            face_queries: 0,
            face_failures: Vec::new(),
            transitions: AgeTransitions {
                face_due_at: Some(due),
                ends_at: Some("2037-03-13T16:00:00Z".parse().unwrap()),
            },
            version: 1,
            code_shown_hour: None,
        }
    }

    #[test]
    fn a_pledge_child_owes_face_verification_once_seven_whether_pending_or_active() {
        let due = "2027-03-13T16:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let before = due - chrono::Duration::seconds(1);
        let pending = pledge_child(BindingStatus::PendingVerification);
        assert_eq!(
            pending.verification_due(before),
            Some(VerificationMethod::Pledge)
        );
        assert_eq!(
            pending.verification_due(due),
            Some(VerificationMethod::Face)
        );
        let active = pledge_child(BindingStatus::Active);
        assert_eq!(active.verification_due(before), None);
        assert_eq!(active.verification_due(due), Some(VerificationMethod::Face));
        let face_verified = Binding {
            transitions: active.transitions.face_verified(),
            ..active
        };
        assert_eq!(face_verified.verification_due(due), None);
    }
}
