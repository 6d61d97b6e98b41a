//! Bindings: the guardian's item, the pair guard, the counters, the relative's membership item,
//! verification and unbinding (or any other end of a binding).

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::codes::OfflineCardRecord;
use super::guardians::Member;
use super::transaction::{Role, Transaction};
use super::{
    audit_prefix, dynamodb_error, guardian_pk, log_recorded, n, relative_pk, s, ActionContext,
    AuditAction, AuditSubject, Due, Store, CLEANUP_ACTOR,
};
use crate::adapters::face::RelativeIdentity;
use crate::crypto::SealContext;
use crate::domain::access_log::{AccessActor, AccessEntry, AccessKind};
use crate::domain::binding::{Binding, BindingId, BindingStatus, GuardianId, Verification};
use crate::domain::name::{mask_name, PersonName};
use crate::domain::policy::{
    pending_verification_window, AgeBand, AgeTransition, AgeTransitions, Eligibility,
    VerificationMethod, FACE_QUERIES_PER_SESSION, MAX_GUARDIANS_PER_RELATIVE,
    MAX_RELATIVES_PER_GUARDIAN,
};
use crate::domain::relationship::Relationship;
use crate::domain::resident_id::{mask_resident_id, ResidentId};
use crate::error::AppError;
use zeroize::Zeroizing;

pub(super) fn binding_sk(id: &BindingId) -> String {
    format!("B#{}", id.as_str())
}
fn link_sk(relative_key: &str) -> String {
    format!("L#{relative_key}")
}

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct BindingRecord {
    pk: String,
    sk: String,
    binding_id: String,
    guardian: String,
    relative_key: String,
    name_sealed: String,
    id_number_sealed: String,
    relationship: Relationship,
    age_band: AgeBand,
    verification_method: VerificationMethod,
    pub(super) status: BindingStatus,
    bound_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verified_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verification: Option<Verification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_certify_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pending_face_attempt: Option<String>,
    #[serde(default)]
    face_queries: u32,
    #[serde(default)]
    face_failures: Vec<DateTime<Utc>>,
    version: u64,
    /// The hour of the guardian's last "code shown" entry (epoch seconds): see
    /// `record_code_shown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code_shown_hour: Option<i64>,
    /// Only while pending: when the cleanup removes it if still unverified.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub(super) due: Option<Due>,
    /// A child's: `face_due_at` (bound with the pledge, until face verification) and `ends_at`,
    /// in clear (they tell the birth date; the ID number stays sealed).
    #[serde(flatten)]
    transitions: AgeTransitions,
}

#[derive(Debug, Serialize)]
struct LinkRecord<'a> {
    pk: String,
    sk: String,
    binding_id: &'a str,
}

/// Everything a new binding needs; the store seals the personal data.
pub struct NewBinding<'a> {
    pub id: &'a BindingId,
    pub guardian: &'a GuardianId,
    pub relative_key: &'a str,
    pub name: &'a PersonName,
    pub id_number: &'a ResidentId,
    pub relationship: Relationship,
    pub eligibility: Eligibility,
}

/// Why a bind transaction was refused.
#[derive(Debug)]
pub enum CreateBindingError {
    /// A binding with this id exists: a retry of the same request, or a reused key.
    IdTaken,
    /// A binding with this id was unbound, and codes it issued may still be shown.
    IdRetired,
    AlreadyBound,
    GuardianFull,
    RelativeFull,
    /// An upheld dispute bars this guardian from binding this relative for now.
    Banned,
    Failed(AppError),
}

impl From<AppError> for CreateBindingError {
    fn from(e: AppError) -> Self {
        Self::Failed(e)
    }
}

/// `face_failures` as stored.
fn failures_value(failures: &[DateTime<Utc>]) -> Result<AttributeValue, AppError> {
    serde_dynamo::to_attribute_value(failures)
        .map_err(|e| AppError::Internal(format!("encode failures: {e}")))
}

/// The audit subject of a guardian's own action on a binding.
pub(super) fn binding_subject(binding: &Binding) -> AuditSubject<'_> {
    AuditSubject::Binding {
        actor: binding.guardian.as_str(),
        guardian: &binding.guardian,
        binding: &binding.id,
        relative_key: &binding.relative_key,
    }
}

/// The audit subject of what the scheduled cleanup does to a binding.
fn cleanup_subject(binding: &Binding) -> AuditSubject<'_> {
    AuditSubject::Binding {
        actor: CLEANUP_ACTOR,
        guardian: &binding.guardian,
        binding: &binding.id,
        relative_key: &binding.relative_key,
    }
}

/// What a binding awaiting verification satisfies: pending, or active with face verification
/// owed since the pledge (`face_due_at` goes with it). Whether it is due yet is the use case's
/// rule (by the clock); this keeps a write from landing after the binding stopped awaiting it.
const AWAITING_VERIFICATION: &str = "(#status = :pending OR attribute_exists(face_due_at))";

impl Store {
    pub async fn create_binding(
        &self,
        new: NewBinding<'_>,
        ctx: ActionContext<'_>,
    ) -> Result<Binding, CreateBindingError> {
        let (pk, sk) = (guardian_pk(new.guardian), binding_sk(new.id));
        let due = Due::of(&pk, &sk, ctx.at + pending_verification_window());
        let record = BindingRecord {
            pk,
            sk,
            binding_id: new.id.as_str().into(),
            guardian: new.guardian.as_str().into(),
            relative_key: new.relative_key.into(),
            name_sealed: self.keys().seal(
                new.name.expose(),
                SealContext::RelativeName {
                    binding_id: new.id.as_str(),
                },
            ),
            id_number_sealed: self.keys().seal(
                new.id_number.expose(),
                SealContext::RelativeIdNumber {
                    binding_id: new.id.as_str(),
                },
            ),
            relationship: new.relationship,
            age_band: new.eligibility.band,
            verification_method: new.eligibility.method,
            status: BindingStatus::PendingVerification,
            bound_at: ctx.at,
            verified_at: None,
            verification: None,
            pending_certify_id: None,
            pending_face_attempt: None,
            face_queries: 0,
            face_failures: Vec::new(),
            version: 1,
            code_shown_hour: None,
            due: Some(due),
            transitions: new.eligibility.transitions,
        };
        let link = LinkRecord {
            pk: guardian_pk(new.guardian),
            sk: link_sk(new.relative_key),
            binding_id: new.id.as_str(),
        };
        let member = Member {
            binding_id: new.id.clone(),
            guardian: new.guardian.clone(),
            relative_key: new.relative_key.into(),
            relationship: new.relationship,
            bound_at: ctx.at,
            status: BindingStatus::PendingVerification,
            verified_at: None,
        };
        let mut transaction = Transaction::new()
            .with(Role::Binding, self.put_new(&record)?)
            .with(Role::PairGuard, self.put_new(&link)?)
            .with(
                Role::GuardianCount,
                self.counter_update(
                    guardian_pk(new.guardian),
                    "bound",
                    1,
                    MAX_RELATIVES_PER_GUARDIAN,
                )?,
            )
            .with(
                Role::RelativeCount,
                self.counter_update(
                    relative_pk(new.relative_key),
                    "guardians",
                    1,
                    MAX_GUARDIANS_PER_RELATIVE,
                )?,
            )
            .with(
                Role::Audit,
                self.audit_put(
                    AuditSubject::Binding {
                        actor: new.guardian.as_str(),
                        guardian: new.guardian,
                        binding: new.id,
                        relative_key: new.relative_key,
                    },
                    AuditAction::Bound,
                    ctx,
                )?,
            )
            .with(Role::AnchorCheck, self.anchor_absent_check(new.id)?)
            .with(Role::Erasure, self.erasure_absent_check(new.relative_key)?)
            .with(
                Role::AccessLog,
                self.access_put(
                    new.relative_key,
                    AccessEntry::new(
                        AccessKind::Bound,
                        self.guardian_actor(new.relative_key, new.guardian.as_str()),
                        ctx.at,
                    ),
                    ctx,
                )?,
            )
            .with(Role::Membership, self.member_put(&member)?)
            .with(
                Role::Ban,
                self.ban_check(new.guardian, new.relative_key, ctx.at)?,
            );
        transaction.extend(self.age_transition_puts(
            new.guardian,
            new.id,
            new.relative_key,
            &new.eligibility.transitions,
            ctx.at,
        )?);
        match self.transact("bind", transaction).await {
            Ok(()) => {
                log_recorded(AuditAction::Bound, new.id.as_str(), ctx);
                Ok(self.binding_from_record(record)?)
            }
            // Several may refuse at once: the first of these that did answers.
            Err(refusal) => Err(if refusal.refused(Role::Binding) {
                CreateBindingError::IdTaken
            } else if refusal.refused(Role::Ban) {
                CreateBindingError::Banned
            } else if refusal.refused(Role::PairGuard) {
                CreateBindingError::AlreadyBound
            } else if refusal.refused(Role::GuardianCount) {
                CreateBindingError::GuardianFull
            } else if refusal.refused(Role::RelativeCount) {
                CreateBindingError::RelativeFull
            } else if refusal.refused(Role::AnchorCheck) {
                CreateBindingError::IdRetired
            } else if refusal.refused(Role::Erasure) {
                // The person is being erased this moment: a retry succeeds once it is done.
                CreateBindingError::Failed(AppError::Conflict)
            } else {
                CreateBindingError::Failed(refusal.into_error())
            }),
        }
    }

    pub(super) fn binding_from_record(&self, r: BindingRecord) -> Result<Binding, AppError> {
        let opened = |sealed: &str, ctx| {
            self.keys().open(sealed, ctx).map_err(|_| {
                AppError::Internal(format!(
                    "sealed field of binding {} does not open",
                    r.binding_id
                ))
            })
        };
        let name = opened(
            &r.name_sealed,
            SealContext::RelativeName {
                binding_id: &r.binding_id,
            },
        )?;
        let id_number = opened(
            &r.id_number_sealed,
            SealContext::RelativeIdNumber {
                binding_id: &r.binding_id,
            },
        )?;
        let corrupt = |what: &str| AppError::Internal(format!("stored binding has invalid {what}"));
        Ok(Binding {
            id: BindingId::parse(&r.binding_id).ok_or_else(|| corrupt("id"))?,
            guardian: GuardianId::parse(&r.guardian).ok_or_else(|| corrupt("guardian"))?,
            relative_key: r.relative_key,
            masked_name: mask_name(&name),
            masked_id_number: mask_resident_id(&id_number),
            relationship: r.relationship,
            age_band: r.age_band,
            verification_method: r.verification_method,
            status: r.status,
            bound_at: r.bound_at,
            verified_at: r.verified_at,
            verification: r.verification,
            pending_certify_id: r.pending_certify_id,
            pending_face_attempt: r.pending_face_attempt,
            face_queries: r.face_queries,
            face_failures: r.face_failures,
            transitions: r.transitions,
            version: r.version,
            code_shown_hour: r
                .code_shown_hour
                .and_then(|at| DateTime::from_timestamp(at, 0)),
        })
    }

    /// The caller's binding, or `None`: another guardian's binding is simply not found.
    pub async fn binding(
        &self,
        guardian: &GuardianId,
        id: &BindingId,
    ) -> Result<Option<Binding>, AppError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(guardian_pk(guardian), binding_sk(id))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamodb_error("get binding", e))?;
        out.item
            .map(|item| {
                let record: BindingRecord = serde_dynamo::from_item(item)
                    .map_err(|e| AppError::Internal(format!("decode binding: {e}")))?;
                self.binding_from_record(record)
            })
            .transpose()
    }

    /// All of the caller's bindings, newest first (at most eight, one page).
    pub async fn bindings(&self, guardian: &GuardianId) -> Result<Vec<Binding>, AppError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(guardian_pk(guardian)))
            .expression_attribute_values(":prefix", s("B#"))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamodb_error("list bindings", e))?;
        let records: Vec<BindingRecord> =
            serde_dynamo::from_items(out.items.unwrap_or_default())
                .map_err(|e| AppError::Internal(format!("decode bindings: {e}")))?;
        let mut bindings = records
            .into_iter()
            .map(|r| self.binding_from_record(r))
            .collect::<Result<Vec<_>, _>>()?;
        bindings.sort_by(|a, b| {
            b.bound_at
                .cmp(&a.bound_at)
                .then_with(|| b.id.as_str().cmp(a.id.as_str()))
        });
        Ok(bindings)
    }

    /// Applies `set` to a binding awaiting verification if nobody changed it since it was read,
    /// with an audit record in the same transaction. A lost race is a 409 the client can retry.
    async fn update_awaiting(
        &self,
        binding: &Binding,
        set: &str,
        values: Vec<(&str, AttributeValue)>,
        action: AuditAction,
        extra: Vec<(Role, TransactWriteItem)>,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                guardian_pk(&binding.guardian),
                binding_sk(&binding.id),
            )))
            .update_expression(format!("{set}, version = version + :one"))
            .condition_expression(format!("version = :version AND {AWAITING_VERIFICATION}"))
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":version", n(binding.version))
            .expression_attribute_values(
                ":pending",
                s(BindingStatus::PendingVerification.as_str()),
            );
        for (name, value) in values {
            update = update.expression_attribute_values(name, value);
        }
        let update = update
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        let mut transaction = Transaction::new()
            .with(
                Role::Binding,
                TransactWriteItem::builder().update(update).build(),
            )
            .with(
                Role::Audit,
                self.audit_put(binding_subject(binding), action, ctx)?,
            );
        transaction.extend(extra);
        match self.transact("update binding", transaction).await {
            Ok(()) => {
                log_recorded(action, binding.id.as_str(), ctx);
                Ok(())
            }
            Err(refusal) if refusal.refused(Role::Binding) => Err(AppError::Conflict),
            Err(refusal) => Err(refusal.into_error()),
        }
    }

    /// Reserves a face attempt before the provider is asked for a session: the attempt, and
    /// the failures that count now (the attempt it abandons among them), in one write that
    /// holds only if the binding is unchanged since read. Of simultaneous starts one wins;
    /// the others are a 409 and never reach the provider.
    pub async fn reserve_face_attempt(
        &self,
        binding: &Binding,
        attempt: &str,
        recent_failures: &[DateTime<Utc>],
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        self.update_awaiting(
            binding,
            "REMOVE pending_certify_id, face_queries SET pending_face_attempt = :attempt, face_failures = :failures",
            vec![
                (":attempt", s(attempt)),
                (":failures", failures_value(recent_failures)?),
            ],
            AuditAction::FaceStarted,
            Vec::new(),
            ctx,
        )
        .await
    }

    /// Records the provider's session of the reserved `attempt`, unless a newer start has
    /// replaced the attempt meanwhile (409: that start counted this one as abandoned).
    pub async fn record_face_session(
        &self,
        binding: &Binding,
        attempt: &str,
        certify_id: &str,
    ) -> Result<(), AppError> {
        self.update_binding_if(
            binding,
            "SET pending_certify_id = :certify",
            &format!("pending_face_attempt = :attempt AND {AWAITING_VERIFICATION}"),
            vec![(":certify", s(certify_id)), (":attempt", s(attempt))],
            "record face session",
        )
        .await
    }

    /// Counts one query of the pending session before the provider is asked: only while
    /// the session is still the pending one and has been asked fewer than
    /// `FACE_QUERIES_PER_SESSION` times, so simultaneous completions never ask more often.
    pub async fn count_face_query(
        &self,
        binding: &Binding,
        certify_id: &str,
    ) -> Result<(), AppError> {
        self.update_binding_if(
            binding,
            "ADD face_queries :one",
            &format!(
                "pending_certify_id = :certify AND {AWAITING_VERIFICATION} \
                 AND (attribute_not_exists(face_queries) OR face_queries < :max)"
            ),
            vec![
                (":one", n(1)),
                (":certify", s(certify_id)),
                (":max", n(FACE_QUERIES_PER_SESSION)),
            ],
            "count face query",
        )
        .await
    }

    /// One conditional `UpdateItem` of a binding awaiting verification (`#status` and
    /// `:pending` are provided); a failed condition is a 409 (something changed since it was
    /// read).
    async fn update_binding_if(
        &self,
        binding: &Binding,
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
        operation: &'static str,
    ) -> Result<(), AppError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                guardian_pk(&binding.guardian),
                binding_sk(&binding.id),
            )))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(
                ":pending",
                s(BindingStatus::PendingVerification.as_str()),
            );
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(ctx))
                if matches!(
                    ctx.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Err(AppError::Conflict)
            }
            Err(e) => Err(dynamodb_error(operation, e)),
        }
    }

    /// The relative's name and ID number, opened for one call to the face provider.
    pub async fn relative_identity(&self, binding: &Binding) -> Result<RelativeIdentity, AppError> {
        let item = self
            .get(
                guardian_pk(&binding.guardian),
                binding_sk(&binding.id),
                "get binding identity",
            )
            .await?
            .ok_or(AppError::BindingNotFound)?;
        let record: BindingRecord = serde_dynamo::from_item(item)
            .map_err(|e| AppError::Internal(format!("decode binding: {e}")))?;
        let open = |sealed: &str, ctx| {
            self.keys()
                .open(sealed, ctx)
                .map(Zeroizing::new)
                .map_err(|_| AppError::Internal("sealed identity does not open".into()))
        };
        let binding_id = binding.id.as_str();
        Ok(RelativeIdentity::new(
            open(
                &record.name_sealed,
                SealContext::RelativeName { binding_id },
            )?,
            open(
                &record.id_number_sealed,
                SealContext::RelativeIdNumber { binding_id },
            )?,
        ))
    }

    /// An audit record of something that changed nothing on the binding.
    pub async fn record_binding_event(
        &self,
        binding: &Binding,
        action: AuditAction,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        self.record_alone(binding_subject(binding), action, binding.id.as_str(), ctx)
            .await
    }

    /// Records a failed attempt; the session is spent, the next attempt starts a new one.
    pub async fn record_face_failure(
        &self,
        binding: &Binding,
        recent_failures: &[DateTime<Utc>],
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        self.update_awaiting(
            binding,
            "REMOVE pending_certify_id, pending_face_attempt, face_queries SET face_failures = :failures",
            vec![(":failures", failures_value(recent_failures)?)],
            AuditAction::FaceFailed,
            Vec::new(),
            ctx,
        )
        .await
    }

    /// Makes a pending binding usable, its codes resolvable (the code anchor) and its
    /// co-guardians see it verified, or records a binding bound with the pledge verified again
    /// by face, in one transaction; returns the binding as now stored. Face verification also
    /// takes away the face verification due at 7 (and its transition item). A binding verified
    /// again keeps its first `verified_at`: the results its guardian may read start there.
    pub async fn activate(
        &self,
        binding: Binding,
        verification: Verification,
        ctx: ActionContext<'_>,
    ) -> Result<Binding, AppError> {
        let (method, transitions) = match verification {
            Verification::Face { .. } => (
                VerificationMethod::Face,
                binding.transitions.face_verified(),
            ),
            Verification::Pledge { .. } => (VerificationMethod::Pledge, binding.transitions),
        };
        let action = match binding.status {
            BindingStatus::PendingVerification => AuditAction::Verified,
            BindingStatus::Active => AuditAction::Reverified,
        };
        let encoded = serde_dynamo::to_attribute_value(&verification)
            .map_err(|e| AppError::Internal(format!("encode verification: {e}")))?;
        let verified_at = serde_dynamo::to_attribute_value(ctx.at)
            .map_err(|e| AppError::Internal(format!("encode time: {e}")))?;
        let mut extra = match method {
            VerificationMethod::Face => {
                self.age_transition_deletes(&binding, Some(AgeTransition::FaceDue))?
            }
            VerificationMethod::Pledge => Vec::new(),
        };
        let face_due_removed = match method {
            VerificationMethod::Face => ", face_due_at",
            VerificationMethod::Pledge => "",
        };
        let verified = Binding {
            status: BindingStatus::Active,
            verification_method: method,
            verified_at: binding.verified_at.or(Some(ctx.at)),
            verification: Some(verification),
            pending_certify_id: None,
            pending_face_attempt: None,
            face_queries: 0,
            transitions,
            version: binding.version + 1,
            ..binding.clone()
        };
        if binding.status == BindingStatus::PendingVerification {
            extra.push((Role::Anchor, self.anchor_put(&verified)?));
        }
        let member = Member {
            status: BindingStatus::Active,
            verified_at: verified.verified_at,
            ..Member::of(&binding)
        };
        extra.push((Role::Membership, self.member_put(&member)?));
        extra.push((
            Role::AccessLog,
            self.access_put(
                &binding.relative_key,
                AccessEntry::new(AccessKind::Verified, self.binding_actor(&binding), ctx.at),
                ctx,
            )?,
        ));
        self.update_awaiting(
            &binding,
            &format!(
                "REMOVE pending_certify_id, pending_face_attempt, face_queries, expiry_bucket, due_at{face_due_removed} \
                 SET #status = :active, verified_at = if_not_exists(verified_at, :at), \
                 verification = :verification, verification_method = :method"
            ),
            vec![
                (":active", s(BindingStatus::Active.as_str())),
                (":at", verified_at),
                (":verification", encoded),
                (":method", s(method.as_str())),
            ],
            action,
            extra,
            ctx,
        )
        .await?;
        Ok(verified)
    }

    /// Unbinds: the binding's ending transaction (`ending_transaction`), its audit record the
    /// guardian's `unbound`.
    pub async fn delete_binding(
        &self,
        binding: &Binding,
        offline_cards: &[OfflineCardRecord],
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let entry = AccessEntry::new(AccessKind::Unbound, self.binding_actor(binding), ctx.at);
        let transaction = self.ending_transaction(
            binding,
            offline_cards,
            binding_subject(binding),
            AuditAction::Unbound,
            entry,
            ctx,
        )?;
        self.end_binding(binding, AuditAction::Unbound, transaction, ctx)
            .await
    }

    /// The cleanup ends a child's binding on the 17th birthday, as an unbind does, audited as
    /// the cleanup's.
    pub async fn age_out_binding(
        &self,
        binding: &Binding,
        offline_cards: &[OfflineCardRecord],
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let entry = AccessEntry::new(AccessKind::AgedOut, AccessActor::System, ctx.at);
        let transaction = self.ending_transaction(
            binding,
            offline_cards,
            cleanup_subject(binding),
            AuditAction::AgedOut,
            entry,
            ctx,
        )?;
        self.end_binding(binding, AuditAction::AgedOut, transaction, ctx)
            .await
    }

    /// Removes a binding that was never verified in time (the scheduled cleanup). Refused
    /// (`Conflict`) if it changed since read, e.g. it was just verified.
    pub(super) async fn expire_pending_binding(
        &self,
        binding: &Binding,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let entry = AccessEntry::new(AccessKind::BindingExpired, AccessActor::System, ctx.at);
        let transaction = self.ending_transaction(
            binding,
            &[],
            cleanup_subject(binding),
            AuditAction::PendingExpired,
            entry,
            ctx,
        )?;
        self.end_binding(binding, AuditAction::PendingExpired, transaction, ctx)
            .await
    }

    /// The items that end a binding, whoever ends it (its guardian, the cleanup, an upheld
    /// dispute): the binding (only if unchanged since read: `Role::Binding` refuses
    /// otherwise), its pair guard and membership, both counters released, and the audit
    /// record; for an active binding also its code anchor revoked and each of its still-valid
    /// offline cards on the published revocation list.
    pub(super) fn ending_transaction(
        &self,
        binding: &Binding,
        offline_cards: &[OfflineCardRecord],
        subject: AuditSubject<'_>,
        action: AuditAction,
        entry: AccessEntry,
        ctx: ActionContext<'_>,
    ) -> Result<Transaction, AppError> {
        let delete = |sk: String, condition: Option<&str>| -> Result<TransactWriteItem, AppError> {
            let mut d = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(guardian_pk(&binding.guardian), sk)))
                .set_condition_expression(condition.map(str::to_owned));
            if condition.is_some() {
                d = d.expression_attribute_values(":version", n(binding.version));
            }
            let d = d
                .build()
                .map_err(|e| AppError::Internal(format!("build delete: {e}")))?;
            Ok(TransactWriteItem::builder().delete(d).build())
        };
        let mut transaction = Transaction::new()
            .with(
                Role::Binding,
                delete(binding_sk(&binding.id), Some("version = :version"))?,
            )
            .with(
                Role::PairGuard,
                delete(link_sk(&binding.relative_key), None)?,
            )
            .with(
                Role::Membership,
                self.member_delete(&binding.relative_key, &binding.id)?,
            )
            .with(
                Role::GuardianCount,
                self.counter_update(guardian_pk(&binding.guardian), "bound", -1, 0)?,
            )
            .with(
                Role::RelativeCount,
                self.counter_update(relative_pk(&binding.relative_key), "guardians", -1, 0)?,
            )
            .with(Role::Audit, self.audit_put(subject, action, ctx)?)
            .with(
                Role::AccessLog,
                self.access_put(&binding.relative_key, entry, ctx)?,
            )
            .with(Role::Erasure, self.erasure_schedule(binding, ctx.at)?);
        transaction.extend(self.age_transition_deletes(binding, None)?);
        if binding.status == BindingStatus::Active {
            transaction.push(Role::Anchor, self.anchor_revoke(&binding.id, ctx.at)?);
            for card in offline_cards.iter().filter(|c| c.valid_until > ctx.at) {
                transaction.push(Role::Revocation, self.revocation_put(card)?);
            }
        }
        Ok(transaction)
    }

    /// Sends a binding's ending transaction; a binding changed since read is a 409.
    async fn end_binding(
        &self,
        binding: &Binding,
        action: AuditAction,
        transaction: Transaction,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        match self.transact(action.as_str(), transaction).await {
            Ok(()) => {
                log_recorded(action, binding.id.as_str(), ctx);
                Ok(())
            }
            Err(refusal) if refusal.refused(Role::Binding) => Err(AppError::Conflict),
            Err(refusal) => Err(refusal.into_error()),
        }
    }

    /// Holds only while the binding is not there: an upheld dispute of a binding that its
    /// guardian has meanwhile unbound.
    pub(super) fn binding_absent_check(
        &self,
        guardian: &GuardianId,
        id: &BindingId,
    ) -> Result<TransactWriteItem, AppError> {
        self.binding_check(guardian, id, "attribute_not_exists(pk)")
    }

    /// Holds only while the binding is there: a read of the relative's data (results, an
    /// export) is recorded only through a binding that still stands, so nothing is written
    /// about a person after their last binding ended, and so after they were erased.
    pub(super) fn binding_present_check(
        &self,
        binding: &Binding,
    ) -> Result<TransactWriteItem, AppError> {
        self.binding_check(&binding.guardian, &binding.id, "attribute_exists(pk)")
    }

    fn binding_check(
        &self,
        guardian: &GuardianId,
        id: &BindingId,
        condition: &str,
    ) -> Result<TransactWriteItem, AppError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(guardian_pk(guardian), binding_sk(id))))
            .condition_expression(condition)
            .build()
            .map_err(|e| AppError::Internal(format!("build check: {e}")))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Whether this guardian's binding was already ended, by their unbind or at the child's
    /// 17th birthday (so a repeated DELETE, or one racing the cleanup, succeeds).
    pub async fn was_unbound(
        &self,
        guardian: &GuardianId,
        id: &BindingId,
    ) -> Result<bool, AppError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .filter_expression("#action IN (:unbound, :aged_out)")
            .expression_attribute_names("#action", "action")
            .expression_attribute_values(":pk", s(guardian_pk(guardian)))
            .expression_attribute_values(":prefix", s(audit_prefix(id)))
            .expression_attribute_values(":unbound", s(AuditAction::Unbound.as_str()))
            .expression_attribute_values(":aged_out", s(AuditAction::AgedOut.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamodb_error("audit lookup", e))?;
        Ok(out.count > 0)
    }
}
