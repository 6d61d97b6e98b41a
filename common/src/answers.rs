//! The answers' shapes that more than one function gives: a binding as guardians see it, a
//! relationship, colour, tube kind, dispute reason or status with the label a person reads, a batch's rows, and how
//! times are written. A shape only one function gives is a type in its handler.

use chrono::{DateTime, Utc};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::domain::access_log::{AccessActor, AccessEntry, AccessKind};
use crate::domain::binding::{Binding, BindingStatus};
use crate::domain::code::ScanPurpose;
use crate::domain::colour::HealthColour;
use crate::domain::dispute::{DisputeReason, DisputeStatus};
use crate::domain::nucleic::{TestStatus, TubeKind};
use crate::domain::policy::{unbind_available_at, AgeBand, VerificationMethod};
use crate::domain::relationship::Relationship;
use crate::domain::wire::wire_enum;
use crate::error::rfc3339;
use crate::store::TestRecord;

/// `kind` of every answer about the kin code itself (as opposed to one of its tokens, a
/// [`crate::domain::code::CodeKind`]).
pub const KIN_CODE: &str = "kin_code";
/// What the person reads for it.
pub const KIN_CODE_LABEL: &str = "亲属码";

/// A time as answers write it: RFC 3339 in UTC, whole seconds (`2026-11-28T10:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub DateTime<Utc>);

impl Serialize for Rfc3339 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&rfc3339(self.0))
    }
}

/// A value beside the label a person reads for it, flattened into an answer:
/// `"colour": "red", "colour_label": "红码"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labelled<T>(pub T);

/// A value [`Labelled`] answers: its field's name, its label's, and the label.
pub trait Label: Serialize + Copy {
    const FIELDS: (&'static str, &'static str);
    fn label(self) -> &'static str;
}

impl<T: Label> Serialize for Labelled<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (field, label_field) = T::FIELDS;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry(field, &self.0)?;
        map.serialize_entry(label_field, self.0.label())?;
        map.end()
    }
}

impl Label for Relationship {
    const FIELDS: (&'static str, &'static str) = ("relationship", "relationship_label");
    fn label(self) -> &'static str {
        Relationship::label(self)
    }
}

impl Label for HealthColour {
    const FIELDS: (&'static str, &'static str) = ("colour", "colour_label");
    fn label(self) -> &'static str {
        HealthColour::label(self)
    }
}

impl Label for TubeKind {
    const FIELDS: (&'static str, &'static str) = ("tube_kind", "tube_kind_label");
    fn label(self) -> &'static str {
        TubeKind::label(self)
    }
}

impl Label for AccessKind {
    const FIELDS: (&'static str, &'static str) = ("kind", "kind_label");
    fn label(self) -> &'static str {
        AccessKind::label(self)
    }
}

impl Label for ScanPurpose {
    const FIELDS: (&'static str, &'static str) = ("purpose", "purpose_label");
    fn label(self) -> &'static str {
        ScanPurpose::label(self)
    }
}

impl Label for DisputeReason {
    const FIELDS: (&'static str, &'static str) = ("reason", "reason_label");
    fn label(self) -> &'static str {
        DisputeReason::label(self)
    }
}

impl Label for DisputeStatus {
    const FIELDS: (&'static str, &'static str) = ("status", "status_label");
    fn label(self) -> &'static str {
        DisputeStatus::label(self)
    }
}

/// A binding as guardians see it (bind, verify, list): masked personal data, no relative key.
#[derive(Debug, Clone, Serialize)]
pub struct BindingAnswer<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub id_number: &'a str,
    #[serde(flatten)]
    pub relationship: Labelled<Relationship>,
    pub age_band: AgeBand,
    pub verification_method: VerificationMethod,
    pub status: BindingStatus,
    pub kind: &'static str,
    pub bound_at: Rfc3339,
    pub unbind_available_at: Rfc3339,
    /// `null` until verified.
    pub verified_at: Option<Rfc3339>,
    /// A child's 7th birthday (China time), bound with the pledge: face verification is due
    /// from then; `null` once it is done, or when it is not owed (face from the start, elders).
    pub reverification_due_at: Option<Rfc3339>,
    /// 30 days after `reverification_due_at`: the codes stop then until face verification.
    pub reverification_deadline: Option<Rfc3339>,
    /// A child's 17th birthday (China time): the binding ends then. `null` for an elder.
    pub ends_at: Option<Rfc3339>,
}

impl<'a> From<&'a Binding> for BindingAnswer<'a> {
    fn from(b: &'a Binding) -> Self {
        Self {
            id: b.id.as_str(),
            name: &b.masked_name,
            id_number: &b.masked_id_number,
            relationship: Labelled(b.relationship),
            age_band: b.age_band,
            verification_method: b.verification_method,
            status: b.status,
            kind: KIN_CODE,
            bound_at: Rfc3339(b.bound_at),
            unbind_available_at: Rfc3339(unbind_available_at(b.bound_at)),
            verified_at: b.verified_at.map(Rfc3339),
            reverification_due_at: b.transitions.face_due_at.map(Rfc3339),
            reverification_deadline: b.transitions.face_deadline().map(Rfc3339),
            ends_at: b.transitions.ends_at.map(Rfc3339),
        }
    }
}

/// A nucleic-acid test as guardians see it (results, export).
#[derive(Serialize)]
pub struct TestAnswer<'a> {
    pub sampled_at: Rfc3339,
    pub site: SiteAnswer<'a>,
    pub tube_id: &'a str,
    pub sampling: Sampling,
    #[serde(flatten)]
    pub tube_kind: Labelled<TubeKind>,
    pub status: TestStatus,
    pub status_label: &'static str,
    /// `null` while pending.
    pub reported_at: Option<Rfc3339>,
}

#[derive(Serialize)]
pub struct SiteAnswer<'a> {
    pub id: &'a str,
    /// `null` when the site's token had no name.
    pub name: Option<&'a str>,
}

/// Alone in the tube, or pooled with others.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampling {
    Single,
    Pooled,
}

impl<'a> From<&'a TestRecord> for TestAnswer<'a> {
    fn from(t: &'a TestRecord) -> Self {
        Self {
            sampled_at: Rfc3339(t.sampled_at),
            site: SiteAnswer {
                id: &t.site_id,
                name: t.site_name.as_deref(),
            },
            tube_id: &t.tube_id,
            sampling: if t.kind.is_pooled() {
                Sampling::Pooled
            } else {
                Sampling::Single
            },
            tube_kind: Labelled(t.kind),
            status: t.status,
            status_label: t.status.label(),
            reported_at: t.reported_at.map(Rfc3339),
        }
    }
}

/// An access-log entry as guardians see it (the access log, export).
#[derive(Serialize)]
pub struct AccessEntryAnswer<'a> {
    pub at: Rfc3339,
    #[serde(flatten)]
    pub kind: Labelled<AccessKind>,
    pub actor: ActorAnswer<'a>,
    /// A scan's purpose: `purpose` and `purpose_label`, present on scans only.
    #[serde(flatten)]
    pub purpose: Option<Labelled<ScanPurpose>>,
    /// The sample tube, on registrations and results only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tube_id: Option<&'a str>,
}

/// Who did it: a guardian by handle, staff by site, never a person's name or platform id.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ActorAnswer<'a> {
    Guardian {
        handle: &'a str,
        /// The caller themself.
        you: bool,
        label: &'static str,
    },
    Site {
        /// `null` when the checkpoint's token named no site.
        site_id: Option<&'a str>,
        site_name: Option<&'a str>,
        label: &'static str,
    },
    Lab {
        label: &'static str,
    },
    Authority {
        label: &'static str,
    },
    System {
        label: &'static str,
    },
}

impl<'a> AccessEntryAnswer<'a> {
    /// `own_handle`: the reader's handle, whose entries say `you`.
    pub fn new(entry: &'a AccessEntry, own_handle: &str) -> Self {
        let actor = match &entry.actor {
            AccessActor::Guardian { handle } => {
                let you = entry.is_by(own_handle);
                ActorAnswer::Guardian {
                    handle,
                    you,
                    label: if you { "我" } else { "其他监护人" },
                }
            }
            AccessActor::Site { id, name } => ActorAnswer::Site {
                site_id: id.as_deref(),
                site_name: name.as_deref(),
                label: "核验点",
            },
            AccessActor::Lab => ActorAnswer::Lab {
                label: "检测机构"
            },
            AccessActor::Authority => ActorAnswer::Authority {
                label: "卫健部门"
            },
            AccessActor::System => ActorAnswer::System { label: "系统" },
        };
        Self {
            at: Rfc3339(entry.at),
            kind: Labelled(entry.kind),
            actor,
            purpose: entry.purpose.map(Labelled),
            tube_id: entry.tube_id.as_deref(),
        }
    }
}

/// A staff batch's answer (lab results, risk flags): each row's outcome in the order given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchAnswer {
    pub results: Vec<RowAnswer>,
}

wire_enum! {
    /// What became of a batch row.
    pub enum RowOutcome {
        Stored = "stored",
        Cleared = "cleared",
        Unchanged = "unchanged",
        Rejected = "rejected",
    }
}

/// One row's outcome; a refused row carries why, a stored lab result its tube's kind and how
/// many people it reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowAnswer {
    pub index: usize,
    pub outcome: RowOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RowRefusal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tube_kind: Option<TubeKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub people: Option<u32>,
}

impl RowAnswer {
    /// A row done (`stored`, `cleared`, `unchanged`).
    pub fn done(index: usize, outcome: RowOutcome) -> Self {
        Self {
            index,
            outcome,
            error: None,
            tube_kind: None,
            people: None,
        }
    }

    /// A row refused: `rejected`, with the refusal's code and the message the operator reads.
    pub fn rejected(index: usize, code: &'static str, message: &'static str) -> Self {
        Self {
            error: Some(RowRefusal { code, message }),
            ..Self::done(index, RowOutcome::Rejected)
        }
    }
}

/// Why a row was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RowRefusal {
    pub code: &'static str,
    pub message: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::binding::{BindingId, GuardianId};
    use crate::domain::policy::AgeTransitions;
    use serde_json::json;

    fn binding(verified_at: Option<DateTime<Utc>>) -> Binding {
        Binding {
            id: BindingId::parse("3f6d2b1e-8c4a-4f0e-9b7d-2a5c8e1f4d90").unwrap(),
            guardian: GuardianId::parse("user-1").unwrap(),
            relative_key: "rk-secret".into(),
            masked_name: "**明".into(),
            masked_id_number: "61************2174".into(),
            relationship: Relationship::Grandparent,
            age_band: AgeBand::Elder,
            verification_method: VerificationMethod::Face,
            status: BindingStatus::PendingVerification,
            bound_at: "2026-11-28T10:00:00.250Z".parse().unwrap(),
            verified_at,
            verification: None,
            pending_certify_id: None,
            pending_face_attempt: None,
            face_queries: 0,
            face_failures: Vec::new(),
            code_shown_hour: None,
            transitions: AgeTransitions::default(),
            version: 1,
        }
    }

    #[test]
    fn a_binding_answers_every_field_and_null_until_verified() {
        let pending = binding(None);
        assert_eq!(
            serde_json::to_value(BindingAnswer::from(&pending)).unwrap(),
            json!({
                "id": "3f6d2b1e-8c4a-4f0e-9b7d-2a5c8e1f4d90",
                "name": "**明",
                "id_number": "61************2174",
                "relationship": "grandparent",
                "relationship_label": "祖父母/外祖父母",
                "age_band": "elder",
                "verification_method": "face",
                "status": "pending_verification",
                "kind": "kin_code",
                "bound_at": "2026-11-28T10:00:00Z",
                "unbind_available_at": "2026-11-29T10:00:00Z",
                "verified_at": null,
                "reverification_due_at": null,
                "reverification_deadline": null,
                "ends_at": null,
            })
        );
        let verified = binding(Some("2026-11-28T10:05:00Z".parse().unwrap()));
        let answer = serde_json::to_value(BindingAnswer::from(&verified)).unwrap();
        assert_eq!(answer["verified_at"], "2026-11-28T10:05:00Z");
    }

    #[test]
    fn a_pledge_child_answers_when_face_verification_is_due_and_when_the_binding_ends() {
        let child = Binding {
            age_band: AgeBand::Child,
            verification_method: VerificationMethod::Pledge,
            transitions: AgeTransitions {
                face_due_at: Some("2027-03-13T16:00:00Z".parse().unwrap()),
                ends_at: Some("2037-03-13T16:00:00Z".parse().unwrap()),
            },
            ..binding(Some("2026-11-28T10:05:00Z".parse().unwrap()))
        };
        let answer = serde_json::to_value(BindingAnswer::from(&child)).unwrap();
        assert_eq!(answer["reverification_due_at"], "2027-03-13T16:00:00Z");
        assert_eq!(answer["reverification_deadline"], "2027-04-12T16:00:00Z");
        assert_eq!(answer["ends_at"], "2037-03-13T16:00:00Z");
    }

    #[test]
    fn rows_answer_only_what_their_outcome_has() {
        let stored = RowAnswer {
            tube_kind: Some(TubeKind::Pooled10),
            people: Some(7),
            ..RowAnswer::done(0, RowOutcome::Stored)
        };
        let answer = BatchAnswer {
            results: vec![
                stored,
                RowAnswer::done(1, RowOutcome::Cleared),
                RowAnswer::rejected(2, "invalid_flag", "风险类别不正确"),
            ],
        };
        assert_eq!(
            serde_json::to_value(answer).unwrap(),
            json!({"results": [
                {"index": 0, "outcome": "stored", "tube_kind": "pooled_10", "people": 7},
                {"index": 1, "outcome": "cleared"},
                {"index": 2, "outcome": "rejected",
                 "error": {"code": "invalid_flag", "message": "风险类别不正确"}},
            ]})
        );
        crate::domain::wire::assert_wire_strings!(RowOutcome);
    }

    #[test]
    fn labelled_fields_flatten_beside_the_value() {
        #[derive(Serialize)]
        struct Both {
            #[serde(flatten)]
            colour: Option<Labelled<HealthColour>>,
            #[serde(flatten)]
            tube: Labelled<TubeKind>,
        }
        let both = Both {
            colour: Some(Labelled(HealthColour::Yellow)),
            tube: Labelled(TubeKind::Single),
        };
        assert_eq!(
            serde_json::to_value(both).unwrap(),
            json!({"colour": "yellow", "colour_label": "黄码",
                   "tube_kind": "single", "tube_kind_label": "单人单管"})
        );
        let none = Both {
            colour: None,
            tube: Labelled(TubeKind::Pooled20),
        };
        assert_eq!(
            serde_json::to_value(none).unwrap(),
            json!({"tube_kind": "pooled_20", "tube_kind_label": "20人混采"})
        );
    }
}
