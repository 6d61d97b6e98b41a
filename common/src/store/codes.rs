//! What codes resolve to: the code anchor of an active binding, offline cards and their daily
//! quota, the images in flight, and the published revocations.

use aws_sdk_dynamodb::types::builders::ConditionCheckBuilder;
use aws_sdk_dynamodb::types::{ConditionCheck, Delete, TransactWriteItem, Update};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::bindings::binding_sk;
use super::transaction::{Role, Transaction};
use super::{
    dynamodb_error, guardian_pk, log_recorded, n, relative_pk, s, ActionContext, AuditAction,
    AuditSubject, Due, SortKeyOrder, Store,
};
use crate::crypto::SealContext;
use crate::domain::binding::{Binding, BindingId, BindingStatus, GuardianId};
use crate::domain::china_time::china_date;
use crate::domain::code::{offline_code_validity, CodeSerial};
use crate::domain::policy::OFFLINE_CARDS_PER_DAY;
use crate::domain::relationship::Relationship;
use crate::domain::wire::wire_enum;
use crate::error::AppError;

const ANCHOR_SK: &str = "ANCHOR";
const REVOKED_PK: &str = "REVOKED";
/// DynamoDB's TTL runs a day behind the cleanup: a backstop, never the rule.
fn ttl_slack() -> Duration {
    Duration::days(1)
}

fn anchor_pk(binding: &BindingId) -> String {
    format!("K#{}", binding.as_str())
}

/// Sort-key prefix of an image in flight: put before the image, deleted by the transaction
/// that records the card.
pub(super) const IMAGE_IN_FLIGHT_PREFIX: &str = "OP#";

/// How long after an image was put its card must have been recorded: far beyond any
/// function's timeout, so a marker still there then belongs to a card that never was.
fn image_in_flight_window() -> Duration {
    Duration::hours(1)
}

wire_enum! {
    enum AnchorStatus {
        Active = "active",
        Revoked = "revoked",
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct AnchorRecord {
    pk: String,
    sk: String,
    binding_id: String,
    guardian: String,
    relative_key: String,
    relationship: Relationship,
    masked_name_sealed: String,
    status: AnchorStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<DateTime<Utc>>,
}

/// What a scanned code's binding is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedAnchor {
    pub binding: BindingId,
    pub guardian: GuardianId,
    pub relative_key: String,
    pub relationship: Relationship,
    pub masked_name: String,
    /// Set once the binding was unbound: every code issued for it is void.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An offline card: which S3 object holds its image, and how long it is valid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineCardRecord {
    pub binding_id: String,
    pub serial: String,
    pub object_key: String,
    pub generated_at: DateTime<Utc>,
    pub valid_until: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize)]
struct OfflineCardItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    card: OfflineCardRecord,
    expires_at: i64,
    #[serde(flatten)]
    due: Due,
}

/// An image put to S3 whose card is not (yet) recorded. The card's transaction deletes it;
/// one left behind names an object no record points to, which the cleanup removes.
#[derive(Debug, Serialize, Deserialize)]
struct ImageInFlightItem {
    pk: String,
    sk: String,
    object_key: String,
    expires_at: i64,
    #[serde(flatten)]
    due: Due,
}

/// Why a card was not recorded.
#[derive(Debug)]
pub enum CardRecordError {
    /// DynamoDB refused it for a rule (the day's quota, the binding no longer active), and
    /// the card was not there before: nothing of it was written by any attempt.
    Refused(AppError),
    /// Anything else: an attempt may have landed, so the card may be recorded.
    Unknown(AppError),
}

#[derive(Debug, Serialize, Deserialize)]
struct RevocationItem {
    pk: String,
    sk: String,
    serial: String,
    /// When the revoked code would have expired: published until then.
    valid_until: DateTime<Utc>,
    expires_at: i64,
    #[serde(flatten)]
    due: Due,
}

fn image_in_flight_key(binding: &BindingId, object_key: &str) -> (String, String) {
    (
        anchor_pk(binding),
        format!("{IMAGE_IN_FLIGHT_PREFIX}{object_key}"),
    )
}

fn card_sk(card: &OfflineCardRecord) -> String {
    format!(
        "O#{}#{}",
        card.generated_at.format("%Y-%m-%dT%H:%M:%SZ"),
        card.serial
    )
}

impl Store {
    /// The anchor written when a binding becomes active (in the activation transaction).
    pub(super) fn anchor_put(&self, binding: &Binding) -> Result<TransactWriteItem, AppError> {
        let record = AnchorRecord {
            pk: anchor_pk(&binding.id),
            sk: ANCHOR_SK.into(),
            binding_id: binding.id.as_str().into(),
            guardian: binding.guardian.as_str().into(),
            relative_key: binding.relative_key.clone(),
            relationship: binding.relationship,
            masked_name_sealed: self.keys().seal(
                &binding.masked_name,
                SealContext::CodeHolderName {
                    binding_id: binding.id.as_str(),
                },
            ),
            status: AnchorStatus::Active,
            revoked_at: None,
        };
        self.put_item(Self::to_item(&record)?, None)
    }

    /// Voids every code of a binding (in the unbind transaction). The anchor stays, revoked,
    /// until the longest-lived code it could have issued has expired.
    pub(super) fn anchor_revoke(
        &self,
        binding: &BindingId,
        at: DateTime<Utc>,
    ) -> Result<TransactWriteItem, AppError> {
        let until = at + offline_code_validity();
        let pk = anchor_pk(binding);
        let due = Due::of(&pk, ANCHOR_SK, until);
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, ANCHOR_SK.into())))
            .update_expression(
                "SET #status = :revoked, revoked_at = :at, expires_at = :ttl, expiry_bucket = :bucket, due_at = :due",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":revoked", s(AnchorStatus::Revoked.as_str()))
            .expression_attribute_values(":at", s(crate::error::rfc3339(at)))
            .expression_attribute_values(":ttl", n((until + ttl_slack()).timestamp()))
            .expression_attribute_values(":bucket", s(due.expiry_bucket))
            .expression_attribute_values(":due", n(due.due_at))
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A transaction item that holds only while the binding's codes are valid (not unbound).
    pub(super) fn anchor_active_check(
        &self,
        binding: &BindingId,
    ) -> Result<TransactWriteItem, AppError> {
        self.anchor_check(
            binding,
            ConditionCheck::builder()
                .condition_expression("#status = :active")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":active", s(AnchorStatus::Active.as_str())),
        )
    }

    /// A transaction item that holds only for a binding id that never had codes. An id whose
    /// codes were revoked must not become active again while they can still be shown (a
    /// printed card would scan as valid).
    pub(super) fn anchor_absent_check(
        &self,
        binding: &BindingId,
    ) -> Result<TransactWriteItem, AppError> {
        self.anchor_check(
            binding,
            ConditionCheck::builder().condition_expression("attribute_not_exists(pk)"),
        )
    }

    fn anchor_check(
        &self,
        binding: &BindingId,
        check: ConditionCheckBuilder,
    ) -> Result<TransactWriteItem, AppError> {
        let check = check
            .table_name(&self.table)
            .set_key(Some(Self::key(anchor_pk(binding), ANCHOR_SK.into())))
            .build()
            .map_err(|e| AppError::Internal(format!("build check: {e}")))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// A revoked offline card on the published list (in the unbind transaction).
    pub(super) fn revocation_put(
        &self,
        card: &OfflineCardRecord,
    ) -> Result<TransactWriteItem, AppError> {
        let item = RevocationItem {
            pk: REVOKED_PK.into(),
            sk: card.serial.clone(),
            serial: card.serial.clone(),
            valid_until: card.valid_until,
            expires_at: (card.valid_until + ttl_slack()).timestamp(),
            due: Due::of(REVOKED_PK, &card.serial, card.valid_until),
        };
        self.put_item(Self::to_item(&item)?, None)
    }

    /// What a code of `binding` resolves to, or `None` if it never became active.
    pub async fn anchor(&self, binding: &BindingId) -> Result<Option<ScannedAnchor>, AppError> {
        let Some(item) = self
            .get(anchor_pk(binding), ANCHOR_SK.into(), "get code anchor")
            .await?
        else {
            return Ok(None);
        };
        let record: AnchorRecord = serde_dynamo::from_item(item)
            .map_err(|e| AppError::Internal(format!("decode anchor: {e}")))?;
        let corrupt = |what: &str| AppError::Internal(format!("stored anchor has invalid {what}"));
        let masked_name = self
            .keys()
            .open(
                &record.masked_name_sealed,
                SealContext::CodeHolderName {
                    binding_id: &record.binding_id,
                },
            )
            .map_err(|_| corrupt("sealed name"))?;
        Ok(Some(ScannedAnchor {
            binding: BindingId::parse(&record.binding_id).ok_or_else(|| corrupt("id"))?,
            guardian: GuardianId::parse(&record.guardian).ok_or_else(|| corrupt("guardian"))?,
            relative_key: record.relative_key,
            relationship: record.relationship,
            masked_name,
            revoked_at: match record.status {
                AnchorStatus::Active => None,
                AnchorStatus::Revoked => Some(record.revoked_at.unwrap_or(DateTime::UNIX_EPOCH)),
            },
        }))
    }

    /// Marks `object_key` as an image in flight for `binding`, before the image is put.
    pub async fn mark_image_in_flight(
        &self,
        binding: &BindingId,
        object_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AppError> {
        let (pk, sk) = image_in_flight_key(binding, object_key);
        let due_at = now + image_in_flight_window();
        let item = ImageInFlightItem {
            due: Due::of(&pk, &sk, due_at),
            pk,
            sk,
            object_key: object_key.into(),
            expires_at: (due_at + ttl_slack()).timestamp(),
        };
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::to_item(&item)?))
            .send()
            .await
            .map_err(|e| dynamodb_error("mark image in flight", e))?;
        Ok(())
    }

    /// The object an image-in-flight marker names, if the marker is still there (read
    /// consistently: the expiry index may still list a marker its card's transaction deleted).
    pub async fn image_in_flight(&self, pk: &str, sk: &str) -> Result<Option<String>, AppError> {
        let item = self
            .get(pk.into(), sk.into(), "get image in flight")
            .await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get("object_key"))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    /// Forgets an image in flight whose card was refused, once its object is gone.
    pub async fn forget_image_in_flight(
        &self,
        binding: &BindingId,
        object_key: &str,
    ) -> Result<(), AppError> {
        let (pk, sk) = image_in_flight_key(binding, object_key);
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .send()
            .await
            .map_err(|e| dynamodb_error("forget image in flight", e))?;
        Ok(())
    }

    /// Records a new offline card in one transaction: the relative's daily quota, the binding's
    /// version (only while it is active: an unbind that read the binding's cards before this
    /// commits fails its own version check and reads them again, so no card escapes its
    /// revocation), the card, its image-in-flight marker removed, and the audit record.
    pub async fn record_offline_card(
        &self,
        binding: &Binding,
        card: &OfflineCardRecord,
        ctx: ActionContext<'_>,
    ) -> Result<(), CardRecordError> {
        let transaction = self
            .offline_card_transaction(binding, card, ctx)
            .map_err(CardRecordError::Refused)?;
        let refusal = match self.transact("offline card", transaction).await {
            Ok(()) => {
                log_recorded(AuditAction::OfflineCodeIssued, binding.id.as_str(), ctx);
                return Ok(());
            }
            Err(refusal) => refusal,
        };
        if refusal.refused(Role::OfflineCard) {
            // The card is there already: an earlier attempt of this very write landed (an
            // SDK retry after a lost answer, where the request token is not honoured). Its
            // other conditions say nothing then: they met that attempt's own writes.
            Err(CardRecordError::Unknown(AppError::DependencyUnavailable(
                "offline card: already recorded".into(),
            )))
        } else if refusal.refused(Role::CardQuota) {
            Err(CardRecordError::Refused(AppError::OfflineCodeLimitReached))
        } else if refusal.refused(Role::Binding) {
            Err(CardRecordError::Refused(AppError::BindingNotFound))
        } else {
            // Anything else may follow an attempt that landed (a lost answer, then a retry
            // that met a conflict or a throttle, timed out or failed): unknown.
            Err(CardRecordError::Unknown(refusal.into_error()))
        }
    }

    fn offline_card_transaction(
        &self,
        binding: &Binding,
        card: &OfflineCardRecord,
        ctx: ActionContext<'_>,
    ) -> Result<Transaction, AppError> {
        let (pk, sk) = (anchor_pk(&binding.id), card_sk(card));
        let item = OfflineCardItem {
            due: Due::of(&pk, &sk, card.valid_until),
            pk,
            sk,
            card: card.clone(),
            expires_at: (card.valid_until + ttl_slack()).timestamp(),
        };
        let day = china_date(ctx.at);
        // The quota item goes with the day: gone (cleanup, then TTL) two days after it.
        let (quota_pk, quota_sk) = (relative_pk(&binding.relative_key), format!("OQ#{day}"));
        let quota_due = Due::of(&quota_pk, &quota_sk, ctx.at + Duration::days(2));
        let quota = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(quota_pk, quota_sk)))
            .update_expression("SET generated = if_not_exists(generated, :zero) + :one, expires_at = :ttl, expiry_bucket = :bucket, due_at = :due")
            .condition_expression("attribute_not_exists(generated) OR generated < :max")
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":max", n(OFFLINE_CARDS_PER_DAY))
            .expression_attribute_values(":ttl", n((ctx.at + Duration::days(2) + ttl_slack()).timestamp()))
            .expression_attribute_values(":bucket", s(quota_due.expiry_bucket))
            .expression_attribute_values(":due", n(quota_due.due_at))
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        let version = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                guardian_pk(&binding.guardian),
                binding_sk(&binding.id),
            )))
            .update_expression("SET version = version + :one")
            .condition_expression("#status = :active")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":active", s(BindingStatus::Active.as_str()))
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        let (marker_pk, marker_sk) = image_in_flight_key(&binding.id, &card.object_key);
        let marker = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(marker_pk, marker_sk)))
            .build()
            .map_err(|e| AppError::Internal(format!("build delete: {e}")))?;
        Ok(Transaction::new()
            .with(
                Role::CardQuota,
                TransactWriteItem::builder().update(quota).build(),
            )
            .with(
                Role::Binding,
                TransactWriteItem::builder().update(version).build(),
            )
            .with(Role::OfflineCard, self.put_new(&item)?)
            .with(
                Role::ImageInFlight,
                TransactWriteItem::builder().delete(marker).build(),
            )
            .with(
                Role::Audit,
                self.audit_put(
                    AuditSubject::Binding {
                        actor: binding.guardian.as_str(),
                        guardian: &binding.guardian,
                        binding: &binding.id,
                        relative_key: &binding.relative_key,
                    },
                    AuditAction::OfflineCodeIssued,
                    ctx,
                )?,
            ))
    }

    /// The card, if it is recorded (read consistently): settles a write whose answer was lost.
    pub async fn offline_card(
        &self,
        binding: &BindingId,
        card: &OfflineCardRecord,
    ) -> Result<bool, AppError> {
        Ok(self
            .get(anchor_pk(binding), card_sk(card), "get offline card")
            .await?
            .is_some())
    }

    /// A binding's offline cards, newest first (expired ones included: callers filter).
    pub async fn offline_cards(
        &self,
        binding: &BindingId,
    ) -> Result<Vec<OfflineCardRecord>, AppError> {
        let items: Vec<OfflineCardItem> = self
            .query_prefix(
                anchor_pk(binding),
                "O#",
                SortKeyOrder::Descending,
                "list offline cards",
            )
            .await?;
        Ok(items.into_iter().map(|i| i.card).collect())
    }

    /// The published revocations still in force at `now`: (serial, valid until).
    pub async fn revocations(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(CodeSerial, DateTime<Utc>)>, AppError> {
        let items: Vec<RevocationItem> = self
            .query_prefix(
                REVOKED_PK.into(),
                "",
                SortKeyOrder::Ascending,
                "list revocations",
            )
            .await?;
        Ok(items
            .into_iter()
            .filter(|r| r.valid_until > now)
            .filter_map(|r| Some((CodeSerial::from_hex(&r.serial)?, r.valid_until)))
            .collect())
    }
}
