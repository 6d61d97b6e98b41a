//! A relative's guardians as they see each other: one membership item per binding in the
//! relative's partition, written and removed in the transactions that write and remove the
//! binding; and the bans an upheld dispute puts on a guardian, checked by the bind
//! transaction.

use aws_sdk_dynamodb::types::{ConditionCheck, Delete, TransactWriteItem};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{guardian_pk, relative_pk, Due, SortKeyOrder, Store};
use crate::domain::binding::{Binding, BindingId, BindingStatus, GuardianId};
use crate::domain::dispute::DisputeId;
use crate::domain::relationship::Relationship;
use crate::error::AppError;

const MEMBER_PREFIX: &str = "M#";

fn member_sk(binding: &BindingId) -> String {
    format!("{MEMBER_PREFIX}{}", binding.as_str())
}

fn ban_sk(relative_key: &str) -> String {
    format!("BAN#{relative_key}")
}

/// One guardian of a relative: whose binding, the relationship they declared, since when,
/// and whether it is verified. The guardian's platform id stays inside the system: others see
/// a handle made from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub binding_id: BindingId,
    pub guardian: GuardianId,
    pub relative_key: String,
    pub relationship: Relationship,
    pub bound_at: DateTime<Utc>,
    pub status: BindingStatus,
    pub verified_at: Option<DateTime<Utc>>,
}

impl Member {
    /// A binding's membership as it now stands.
    pub(super) fn of(binding: &Binding) -> Self {
        Self {
            binding_id: binding.id.clone(),
            guardian: binding.guardian.clone(),
            relative_key: binding.relative_key.clone(),
            relationship: binding.relationship,
            bound_at: binding.bound_at,
            status: binding.status,
            verified_at: binding.verified_at,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct MemberRecord {
    pk: String,
    sk: String,
    binding_id: String,
    guardian: String,
    relative_key: String,
    relationship: Relationship,
    bound_at: DateTime<Utc>,
    status: BindingStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verified_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize)]
struct BanRecord<'a> {
    pk: String,
    sk: String,
    /// Epoch seconds: the bind transaction compares it with its own time.
    until: i64,
    dispute_id: &'a str,
    /// TTL attribute; the ban means nothing after `until` anyway.
    expires_at: i64,
    #[serde(flatten)]
    due: Due,
}

#[derive(Debug, Deserialize)]
struct BanItem {
    until: i64,
}

impl Store {
    /// The membership of `member` in its relative's partition, as a put (a new binding, or
    /// one verified: the item is rewritten whole, so a binding made before memberships
    /// existed gets one when it is verified).
    pub(super) fn member_put(&self, member: &Member) -> Result<TransactWriteItem, AppError> {
        let record = MemberRecord {
            pk: relative_pk(&member.relative_key),
            sk: member_sk(&member.binding_id),
            binding_id: member.binding_id.as_str().into(),
            guardian: member.guardian.as_str().into(),
            relative_key: member.relative_key.clone(),
            relationship: member.relationship,
            bound_at: member.bound_at,
            status: member.status,
            verified_at: member.verified_at,
        };
        self.put_item(Self::to_item(&record)?, None)
    }

    /// Removes a binding's membership (none for a binding made before they existed).
    pub(super) fn member_delete(
        &self,
        relative_key: &str,
        binding: &BindingId,
    ) -> Result<TransactWriteItem, AppError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                relative_pk(relative_key),
                member_sk(binding),
            )))
            .build()
            .map_err(|e| AppError::Internal(format!("build delete: {e}")))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Holds only while the binding is still one of the relative's guardians.
    pub(super) fn member_exists_check(
        &self,
        relative_key: &str,
        binding: &BindingId,
    ) -> Result<TransactWriteItem, AppError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                relative_pk(relative_key),
                member_sk(binding),
            )))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| AppError::Internal(format!("build check: {e}")))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Every guardian of the relative, longest-standing first.
    pub async fn guardians_of(&self, relative_key: &str) -> Result<Vec<Member>, AppError> {
        let records: Vec<MemberRecord> = self
            .query_prefix(
                relative_pk(relative_key),
                MEMBER_PREFIX,
                SortKeyOrder::Ascending,
                "list guardians",
            )
            .await?;
        let corrupt =
            |what: &str| AppError::Internal(format!("stored membership has invalid {what}"));
        let mut members = records
            .into_iter()
            .map(|r| {
                Ok(Member {
                    binding_id: BindingId::parse(&r.binding_id).ok_or_else(|| corrupt("id"))?,
                    guardian: GuardianId::parse(&r.guardian).ok_or_else(|| corrupt("guardian"))?,
                    relative_key: r.relative_key,
                    relationship: r.relationship,
                    bound_at: r.bound_at,
                    status: r.status,
                    verified_at: r.verified_at,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        members.sort_by(|a, b| {
            a.bound_at
                .cmp(&b.bound_at)
                .then_with(|| a.binding_id.as_str().cmp(b.binding_id.as_str()))
        });
        Ok(members)
    }

    /// Holds unless the guardian is barred from binding the relative at `now`.
    pub(super) fn ban_check(
        &self,
        guardian: &GuardianId,
        relative_key: &str,
        now: DateTime<Utc>,
    ) -> Result<TransactWriteItem, AppError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(guardian_pk(guardian), ban_sk(relative_key))))
            .condition_expression("attribute_not_exists(pk) OR #until <= :now")
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":now", super::n(now.timestamp()))
            .build()
            .map_err(|e| AppError::Internal(format!("build check: {e}")))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Bars the guardian from binding the relative until `until` (replacing an earlier ban,
    /// which ends sooner).
    pub(super) fn ban_put(
        &self,
        guardian: &GuardianId,
        relative_key: &str,
        until: DateTime<Utc>,
        dispute: &DisputeId,
    ) -> Result<TransactWriteItem, AppError> {
        let (pk, sk) = (guardian_pk(guardian), ban_sk(relative_key));
        let record = BanRecord {
            due: Due::of(&pk, &sk, until),
            pk,
            sk,
            until: until.timestamp(),
            dispute_id: dispute.as_str(),
            expires_at: until.timestamp(),
        };
        self.put_item(Self::to_item(&record)?, None)
    }

    /// Until when the guardian is barred from binding the relative, if a ban was ever put.
    pub async fn ban_until(
        &self,
        guardian: &GuardianId,
        relative_key: &str,
    ) -> Result<Option<DateTime<Utc>>, AppError> {
        let Some(item) = self
            .get(guardian_pk(guardian), ban_sk(relative_key), "get ban")
            .await?
        else {
            return Ok(None);
        };
        let ban: BanItem = serde_dynamo::from_item(item)
            .map_err(|e| AppError::Internal(format!("decode ban: {e}")))?;
        Ok(DateTime::from_timestamp(ban.until, 0))
    }
}
