//! Disputes: a guardian's report of a co-guardian's binding (in the reporter's partition, where
//! they read it back), the authority's queue of open ones, and their resolution. Opening and
//! resolving are one transaction each; an upheld dispute ends the binding with the very items
//! an unbind writes (`Store::ending_transaction`) and bars its guardian in the same write.

use aws_sdk_dynamodb::types::{AttributeValue, Delete, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::codes::OfflineCardRecord;
use super::guardians::Member;
use super::transaction::{Role, Transaction};
use super::{
    audit_retention, dynamodb_error, guardian_pk, log_recorded, n, s, ActionContext, AuditAction,
    AuditSubject, Due, Store,
};
use crate::crypto::SealContext;
use crate::domain::access_log::{AccessActor, AccessEntry, AccessKind};
use crate::domain::binding::{Binding, BindingId, GuardianId};
use crate::domain::china_time::china_date;
use crate::domain::dispute::{
    DisputeDetails, DisputeId, DisputeReason, DisputeStatus, DISPUTES_PER_DAY,
};
use crate::domain::relationship::Relationship;
use crate::error::AppError;

const DISPUTE_PREFIX: &str = "D#";
const QUEUE_PK: &str = "DISPUTES";
const LOCATOR_SK: &str = "DISPUTE";

fn dispute_sk(id: &DisputeId) -> String {
    format!("{DISPUTE_PREFIX}{}", id.as_str())
}
fn locator_pk(id: &DisputeId) -> String {
    format!("{DISPUTE_PREFIX}{}", id.as_str())
}
fn guard_sk(disputed: &BindingId) -> String {
    format!("DG#{}", disputed.as_str())
}

/// A dispute as stored: the people in it by their binding, their handle and the relationship
/// they declared; the free text opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    pub id: DisputeId,
    pub relative_key: String,
    pub reporter: GuardianId,
    pub reporter_binding: BindingId,
    pub reporter_handle: String,
    pub reporter_relationship: Relationship,
    pub reporter_bound_at: DateTime<Utc>,
    pub disputed_guardian: GuardianId,
    pub disputed_binding: BindingId,
    pub disputed_handle: String,
    pub disputed_relationship: Relationship,
    pub disputed_bound_at: DateTime<Utc>,
    /// Whether the disputed binding was verified when reported.
    pub disputed_verified: bool,
    pub reason: DisputeReason,
    /// The reporter's words ("" when none were given).
    pub details: String,
    pub opened_at: DateTime<Utc>,
    pub status: DisputeStatus,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Upheld: whether the resolution ended the binding (`false`: its guardian had unbound it).
    pub binding_ended: Option<bool>,
    /// Upheld: until when the disputed guardian may not bind the relative again.
    pub banned_until: Option<DateTime<Utc>>,
}

/// A report about to be opened.
pub struct NewDispute<'a> {
    pub id: &'a DisputeId,
    /// The reporter's own (active) binding of the relative.
    pub reporter: &'a Binding,
    pub reporter_handle: &'a str,
    pub disputed: &'a Member,
    pub disputed_handle: &'a str,
    pub reason: DisputeReason,
    pub details: &'a DisputeDetails,
}

/// Why opening a dispute was refused.
#[derive(Debug)]
pub enum OpenDisputeError {
    /// The disputed binding ended meanwhile.
    DisputedGone,
    /// The reporter has an open dispute of this binding.
    AlreadyOpen,
    /// The reporter opened `DISPUTES_PER_DAY` today.
    TooMany,
    Failed(AppError),
}

impl From<AppError> for OpenDisputeError {
    fn from(e: AppError) -> Self {
        Self::Failed(e)
    }
}

/// What the authority decided, with what upholding needs.
pub enum Resolution<'a> {
    Dismiss,
    Uphold {
        /// The disputed binding as read (`None`: its guardian has unbound it), and its cards.
        binding: Option<&'a Binding>,
        offline_cards: &'a [OfflineCardRecord],
        banned_until: DateTime<Utc>,
    },
}

/// Why a resolution was refused.
#[derive(Debug)]
pub enum ResolveError {
    /// Someone resolved it first.
    AlreadyResolved,
    /// The disputed binding changed since read (a card, a verification, an unbind): read it
    /// again.
    BindingChanged,
    Failed(AppError),
}

/// A page of disputes, and where the next one starts.
#[derive(Debug, Clone)]
pub struct DisputePage {
    pub disputes: Vec<Dispute>,
    /// The last dispute of this page, when more follow.
    pub next_after: Option<DisputeId>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DisputeRecord {
    pk: String,
    sk: String,
    dispute_id: String,
    relative_key: String,
    reporter: String,
    reporter_binding: String,
    reporter_handle: String,
    reporter_relationship: Relationship,
    reporter_bound_at: DateTime<Utc>,
    disputed_guardian: String,
    disputed_binding: String,
    disputed_handle: String,
    disputed_relationship: Relationship,
    disputed_bound_at: DateTime<Utc>,
    disputed_verified: bool,
    reason: DisputeReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    details_sealed: Option<String>,
    opened_at: DateTime<Utc>,
    status: DisputeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resolved_at: Option<DateTime<Utc>>,
    /// The authority's caller who resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resolved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    binding_ended: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    banned_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct LocatorRecord {
    pk: String,
    sk: String,
    reporter: String,
}

#[derive(Debug, Serialize)]
struct GuardRecord<'a> {
    pk: String,
    sk: String,
    dispute_id: &'a str,
}

impl Store {
    /// Opens a dispute in one transaction: the dispute, its locator and queue entry, the
    /// reporter's guard for this binding (one open dispute each) and their day's count
    /// (`DISPUTES_PER_DAY`), a check that the disputed binding still stands, and the audit
    /// record in the relative's trail.
    pub async fn open_dispute(
        &self,
        new: NewDispute<'_>,
        ctx: ActionContext<'_>,
    ) -> Result<Dispute, OpenDisputeError> {
        let reporter = &new.reporter.guardian;
        let details_sealed = (!new.details.is_empty()).then(|| {
            self.keys().seal(
                new.details.expose(),
                SealContext::DisputeDetails {
                    dispute_id: new.id.as_str(),
                },
            )
        });
        let record = |pk: String| DisputeRecord {
            pk,
            sk: dispute_sk(new.id),
            dispute_id: new.id.as_str().into(),
            relative_key: new.reporter.relative_key.clone(),
            reporter: reporter.as_str().into(),
            reporter_binding: new.reporter.id.as_str().into(),
            reporter_handle: new.reporter_handle.into(),
            reporter_relationship: new.reporter.relationship,
            reporter_bound_at: new.reporter.bound_at,
            disputed_guardian: new.disputed.guardian.as_str().into(),
            disputed_binding: new.disputed.binding_id.as_str().into(),
            disputed_handle: new.disputed_handle.into(),
            disputed_relationship: new.disputed.relationship,
            disputed_bound_at: new.disputed.bound_at,
            disputed_verified: new.disputed.verified_at.is_some(),
            reason: new.reason,
            details_sealed: details_sealed.clone(),
            opened_at: ctx.at,
            status: DisputeStatus::Open,
            resolved_at: None,
            resolved_by: None,
            binding_ended: None,
            banned_until: None,
        };
        let locator = LocatorRecord {
            pk: locator_pk(new.id),
            sk: LOCATOR_SK.into(),
            reporter: reporter.as_str().into(),
        };
        let guard = GuardRecord {
            pk: guardian_pk(reporter),
            sk: guard_sk(&new.disputed.binding_id),
            dispute_id: new.id.as_str(),
        };
        let stored = record(guardian_pk(reporter));
        let transaction = Transaction::new()
            .with(Role::Dispute, self.put_new(&stored)?)
            .with(Role::DisputeLocator, self.put_new(&locator)?)
            .with(Role::DisputeQueue, self.put_new(&record(QUEUE_PK.into()))?)
            .with(Role::DisputeGuard, self.put_new(&guard)?)
            .with(Role::DisputeQuota, self.dispute_quota(reporter, ctx.at)?)
            .with(
                Role::Membership,
                self.member_exists_check(&new.disputed.relative_key, &new.disputed.binding_id)?,
            )
            .with(
                Role::Audit,
                self.audit_put(
                    AuditSubject::Relative {
                        actor: reporter.as_str(),
                        relative_key: &new.reporter.relative_key,
                        binding: Some(&new.reporter.id),
                        target: Some(new.id.as_str()),
                    },
                    AuditAction::DisputeOpened,
                    ctx,
                )?,
            )
            .with(
                Role::AccessLog,
                self.access_put(
                    &new.reporter.relative_key,
                    AccessEntry::new(
                        AccessKind::BindingDisputed,
                        self.binding_actor(new.reporter),
                        ctx.at,
                    ),
                    ctx,
                )?,
            );
        match self.transact("open dispute", transaction).await {
            Ok(()) => {
                log_recorded(AuditAction::DisputeOpened, new.id.as_str(), ctx);
                Ok(self.dispute_from_record(stored)?)
            }
            // Several may refuse at once: the first of these that did answers.
            Err(refusal) => Err(if refusal.refused(Role::Membership) {
                OpenDisputeError::DisputedGone
            } else if refusal.refused(Role::DisputeGuard) {
                OpenDisputeError::AlreadyOpen
            } else if refusal.refused(Role::DisputeQuota) {
                OpenDisputeError::TooMany
            } else {
                OpenDisputeError::Failed(refusal.into_error())
            }),
        }
    }

    /// The reporter's count of the China day, refusing past `DISPUTES_PER_DAY`; gone (the
    /// cleanup, then TTL) two days later.
    fn dispute_quota(
        &self,
        reporter: &GuardianId,
        at: DateTime<Utc>,
    ) -> Result<TransactWriteItem, AppError> {
        let (pk, sk) = (guardian_pk(reporter), format!("DQ#{}", china_date(at)));
        let gone = at + Duration::days(2);
        let due = Due::of(&pk, &sk, gone);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .update_expression("SET opened = if_not_exists(opened, :zero) + :one, expires_at = :ttl, expiry_bucket = :bucket, due_at = :due")
            .condition_expression("attribute_not_exists(opened) OR opened < :max")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(DISPUTES_PER_DAY))
            .expression_attribute_values(":ttl", n(gone.timestamp()))
            .expression_attribute_values(":bucket", s(due.expiry_bucket))
            .expression_attribute_values(":due", n(due.due_at))
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn dispute_from_record(&self, r: DisputeRecord) -> Result<Dispute, AppError> {
        let corrupt = |what: &str| AppError::Internal(format!("stored dispute has invalid {what}"));
        let details = match &r.details_sealed {
            None => String::new(),
            Some(sealed) => self
                .keys()
                .open(
                    sealed,
                    SealContext::DisputeDetails {
                        dispute_id: &r.dispute_id,
                    },
                )
                .map_err(|_| corrupt("details"))?,
        };
        Ok(Dispute {
            id: DisputeId::parse(&r.dispute_id).ok_or_else(|| corrupt("id"))?,
            relative_key: r.relative_key,
            reporter: GuardianId::parse(&r.reporter).ok_or_else(|| corrupt("reporter"))?,
            reporter_binding: BindingId::parse(&r.reporter_binding)
                .ok_or_else(|| corrupt("reporter binding"))?,
            reporter_handle: r.reporter_handle,
            reporter_relationship: r.reporter_relationship,
            reporter_bound_at: r.reporter_bound_at,
            disputed_guardian: GuardianId::parse(&r.disputed_guardian)
                .ok_or_else(|| corrupt("disputed guardian"))?,
            disputed_binding: BindingId::parse(&r.disputed_binding)
                .ok_or_else(|| corrupt("disputed binding"))?,
            disputed_handle: r.disputed_handle,
            disputed_relationship: r.disputed_relationship,
            disputed_bound_at: r.disputed_bound_at,
            disputed_verified: r.disputed_verified,
            reason: r.reason,
            details,
            opened_at: r.opened_at,
            status: r.status,
            resolved_at: r.resolved_at,
            binding_ended: r.binding_ended,
            banned_until: r.banned_until,
        })
    }

    /// A page of partition `pk`'s disputes after `after`, in `ascending` id (opening) order
    /// or the reverse.
    async fn dispute_page(
        &self,
        pk: String,
        after: Option<&DisputeId>,
        limit: usize,
        ascending: bool,
        operation: &'static str,
    ) -> Result<DisputePage, AppError> {
        let start = after.map(|id| Self::key(pk.clone(), dispute_sk(id)));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(DISPUTE_PREFIX))
            .scan_index_forward(ascending)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            // One more than the page: whether there is a next page, without an empty one.
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| dynamodb_error(operation, e))?;
        let mut records: Vec<DisputeRecord> =
            serde_dynamo::from_items(out.items.unwrap_or_default())
                .map_err(|e| AppError::Internal(format!("{operation}: decode: {e}")))?;
        let more = records.len() > limit;
        records.truncate(limit);
        let disputes = records
            .into_iter()
            .map(|r| self.dispute_from_record(r))
            .collect::<Result<Vec<_>, _>>()?;
        let next_after = more
            .then(|| disputes.last().map(|d| d.id.clone()))
            .flatten();
        Ok(DisputePage {
            disputes,
            next_after,
        })
    }

    /// The disputes a guardian opened, newest first.
    pub async fn disputes_of(
        &self,
        reporter: &GuardianId,
        after: Option<&DisputeId>,
        limit: usize,
    ) -> Result<DisputePage, AppError> {
        self.dispute_page(
            guardian_pk(reporter),
            after,
            limit,
            false,
            "list own disputes",
        )
        .await
    }

    /// The authority's queue: open disputes, oldest first.
    pub async fn open_disputes(
        &self,
        after: Option<&DisputeId>,
        limit: usize,
    ) -> Result<DisputePage, AppError> {
        self.dispute_page(QUEUE_PK.into(), after, limit, true, "list open disputes")
            .await
    }

    /// A dispute by its id, as it now stands.
    pub async fn dispute(&self, id: &DisputeId) -> Result<Option<Dispute>, AppError> {
        let Some(item) = self
            .get(locator_pk(id), LOCATOR_SK.into(), "get dispute locator")
            .await?
        else {
            return Ok(None);
        };
        let locator: LocatorRecord = serde_dynamo::from_item(item)
            .map_err(|e| AppError::Internal(format!("decode dispute locator: {e}")))?;
        let reporter = GuardianId::parse(&locator.reporter).ok_or_else(|| {
            AppError::Internal("stored dispute locator has invalid reporter".into())
        })?;
        let Some(item) = self
            .get(guardian_pk(&reporter), dispute_sk(id), "get dispute")
            .await?
        else {
            return Ok(None);
        };
        let record: DisputeRecord = serde_dynamo::from_item(item)
            .map_err(|e| AppError::Internal(format!("decode dispute: {e}")))?;
        Ok(Some(self.dispute_from_record(record)?))
    }

    /// Resolves an open dispute in one transaction: its outcome (only while it is open, so
    /// it is resolved once), the queue entry and the reporter's guard gone, the audit record
    /// in the relative's trail; kept a year from now. Upholding also bars the disputed
    /// guardian and ends the binding with its ending transaction, or, when its guardian has
    /// unbound it, checks that it is still gone.
    pub async fn resolve_dispute(
        &self,
        dispute: &Dispute,
        resolution: Resolution<'_>,
        actor: &str,
        ctx: ActionContext<'_>,
    ) -> Result<(), ResolveError> {
        let (action, outcome, outcome_entry) = match resolution {
            Resolution::Dismiss => (
                AuditAction::DisputeDismissed,
                DisputeStatus::Dismissed,
                AccessKind::DisputeDismissed,
            ),
            Resolution::Uphold { .. } => (
                AuditAction::DisputeUpheld,
                DisputeStatus::Upheld,
                AccessKind::DisputeUpheld,
            ),
        };
        let mut transaction = match &resolution {
            Resolution::Dismiss => Transaction::new(),
            Resolution::Uphold {
                binding: Some(binding),
                offline_cards,
                ..
            } => self.ending_transaction(
                binding,
                offline_cards,
                AuditSubject::Binding {
                    actor,
                    guardian: &binding.guardian,
                    binding: &binding.id,
                    relative_key: &binding.relative_key,
                },
                AuditAction::UnboundByDispute,
                AccessEntry::new(AccessKind::Unbound, AccessActor::Authority, ctx.at),
                ctx,
            )?,
            Resolution::Uphold { binding: None, .. } => Transaction::new().with(
                Role::Binding,
                self.binding_absent_check(&dispute.disputed_guardian, &dispute.disputed_binding)?,
            ),
        };
        let kept_until = ctx.at + audit_retention();
        let reporter_pk = guardian_pk(&dispute.reporter);
        let due = Due::of(&reporter_pk, &dispute_sk(&dispute.id), kept_until);
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                reporter_pk.clone(),
                dispute_sk(&dispute.id),
            )))
            .condition_expression("#status = :open")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":open", s(DisputeStatus::Open.as_str()))
            .expression_attribute_values(":outcome", s(outcome.as_str()))
            .expression_attribute_values(":at", time_value(ctx.at)?)
            .expression_attribute_values(":by", s(actor))
            .expression_attribute_values(":ttl", n(kept_until.timestamp()))
            .expression_attribute_values(":bucket", s(due.expiry_bucket))
            .expression_attribute_values(":due", n(due.due_at));
        let set = "SET #status = :outcome, resolved_at = :at, resolved_by = :by, expires_at = :ttl, expiry_bucket = :bucket, due_at = :due";
        update = match &resolution {
            Resolution::Dismiss => update.update_expression(set),
            Resolution::Uphold {
                binding,
                banned_until,
                ..
            } => {
                transaction.push(
                    Role::Ban,
                    self.ban_put(
                        &dispute.disputed_guardian,
                        &dispute.relative_key,
                        *banned_until,
                        &dispute.id,
                    )?,
                );
                update
                    .update_expression(format!(
                        "{set}, binding_ended = :ended, banned_until = :until"
                    ))
                    .expression_attribute_values(":ended", AttributeValue::Bool(binding.is_some()))
                    .expression_attribute_values(":until", time_value(*banned_until)?)
            }
        };
        let update = update
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        let (locator_pk, locator_due) = (
            locator_pk(&dispute.id),
            Due::of(&locator_pk(&dispute.id), LOCATOR_SK, kept_until),
        );
        let locator = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(locator_pk, LOCATOR_SK.into())))
            .update_expression("SET expires_at = :ttl, expiry_bucket = :bucket, due_at = :due")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":ttl", n(kept_until.timestamp()))
            .expression_attribute_values(":bucket", s(locator_due.expiry_bucket))
            .expression_attribute_values(":due", n(locator_due.due_at))
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        let delete = |pk: String, sk: String| -> Result<TransactWriteItem, AppError> {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(Self::key(pk, sk)))
                .build()
                .map_err(|e| AppError::Internal(format!("build delete: {e}")))?;
            Ok(TransactWriteItem::builder().delete(delete).build())
        };
        transaction.extend([
            (
                Role::Dispute,
                TransactWriteItem::builder().update(update).build(),
            ),
            (
                Role::DisputeLocator,
                TransactWriteItem::builder().update(locator).build(),
            ),
            (
                Role::DisputeQueue,
                delete(QUEUE_PK.into(), dispute_sk(&dispute.id))?,
            ),
            (
                Role::DisputeGuard,
                delete(reporter_pk, guard_sk(&dispute.disputed_binding))?,
            ),
            (
                Role::Audit,
                self.audit_put(
                    AuditSubject::Relative {
                        actor,
                        relative_key: &dispute.relative_key,
                        binding: Some(&dispute.disputed_binding),
                        target: Some(dispute.id.as_str()),
                    },
                    action,
                    ctx,
                )?,
            ),
            (
                Role::AccessLog,
                self.access_put(
                    &dispute.relative_key,
                    AccessEntry::new(outcome_entry, AccessActor::Authority, ctx.at),
                    ctx,
                )?,
            ),
        ]);
        match self.transact(action.as_str(), transaction).await {
            Ok(()) => {
                log_recorded(action, dispute.id.as_str(), ctx);
                Ok(())
            }
            // Resolved by someone else first: whatever else refused, that is the answer.
            Err(refusal) if refusal.refused(Role::Dispute) => Err(ResolveError::AlreadyResolved),
            Err(refusal) if refusal.refused(Role::Binding) => Err(ResolveError::BindingChanged),
            Err(refusal) => Err(ResolveError::Failed(refusal.into_error())),
        }
    }
}

/// A time as the records store it (what serde writes for `DateTime<Utc>`).
fn time_value(at: DateTime<Utc>) -> Result<AttributeValue, AppError> {
    serde_dynamo::to_attribute_value(at)
        .map_err(|e| AppError::Internal(format!("encode time: {e}")))
}

impl From<AppError> for ResolveError {
    fn from(e: AppError) -> Self {
        Self::Failed(e)
    }
}
