//! Erasing a person no guardian holds any more (PIPL art. 47).
//!
//! Every release of a binding (unbind, a pending binding expired) also writes the person's
//! erasure item, `R#<relative key>` / `ERASE`: due a window after the release
//! ([`erasure_window`]), with the released binding added to its `released` set. When it falls
//! due the cleanup erases the person if nobody holds them then; if somebody does, the item
//! only stops being due (the set is kept for the day the last binding goes).
//!
//! An erasure first marks the item `erasing` in a transaction that also checks the guardian
//! counter is zero; a bind checks that mark inside its own transaction, so no binding can be
//! made while the person's items are being removed (it is refused, and succeeds once the
//! erasure is done). Each step is idempotent and the item stays until the last one is done,
//! so a run that stops resumes where it stopped.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::transaction::{Role, Transaction};
use super::{
    audit_prefix, dynamodb_error, guardian_pk, log_recorded, n, relative_pk, s, text,
    ActionContext, AuditAction, AuditSubject, Due, SortKeyOrder, Store, COUNT_SK,
};
use crate::domain::binding::{Binding, BindingId, GuardianId};
use crate::domain::erasure::erasure_window;
use crate::error::AppError;

pub(super) const ERASE_SK: &str = "ERASE";
const SCHEDULED: &str = "scheduled";
const ERASING: &str = "erasing";

/// Where an erasure stands when it falls due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErasureStart {
    /// Nothing to erase (already done).
    Gone,
    /// Somebody holds the person again: nothing is erased.
    Held,
    /// Erase now (or go on erasing): the erasure's own id, and the bindings released since
    /// the person was last erased, as `<guardian>#<binding id>`.
    Erase {
        erasure_id: String,
        released: Vec<String>,
    },
}

impl Store {
    /// The erasure item's update for the transaction that releases `binding`.
    pub(super) fn erasure_schedule(
        &self,
        binding: &Binding,
        at: DateTime<Utc>,
    ) -> Result<TransactWriteItem, AppError> {
        let (pk, sk) = (relative_pk(&binding.relative_key), ERASE_SK.to_owned());
        let due = Due::of(&pk, &sk, at + erasure_window());
        let released = format!("{}#{}", binding.guardian.as_str(), binding.id.as_str());
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .update_expression(
                "SET expiry_bucket = :bucket, due_at = :due, #state = if_not_exists(#state, :scheduled) ADD released :released",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":bucket", s(due.expiry_bucket))
            .expression_attribute_values(":due", n(due.due_at))
            .expression_attribute_values(":scheduled", s(SCHEDULED))
            .expression_attribute_values(":released", AttributeValue::Ss(vec![released]))
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// For a bind's transaction: holds unless the person is being erased right now.
    pub(super) fn erasure_absent_check(
        &self,
        relative_key: &str,
    ) -> Result<TransactWriteItem, AppError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(relative_pk(relative_key), ERASE_SK.into())))
            .condition_expression("attribute_not_exists(#state) OR #state <> :erasing")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":erasing", s(ERASING))
            .build()
            .map_err(|e| AppError::Internal(format!("build check: {e}")))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Decides a due erasure: marks it `erasing` if nobody holds the person (one transaction
    /// with the guardian counter's check), or takes its due date away if somebody does.
    pub async fn begin_erasure(
        &self,
        relative_key: &str,
        now: DateTime<Utc>,
    ) -> Result<ErasureStart, AppError> {
        let pk = relative_pk(relative_key);
        let Some(item) = self.get(pk.clone(), ERASE_SK.into(), "get erasure").await? else {
            return Ok(ErasureStart::Gone);
        };
        let mut released = item
            .get("released")
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        released.sort();
        if let (Some(ERASING), Some(erasure_id)) =
            (text(&item, "state").as_deref(), text(&item, "erasure_id"))
        {
            return Ok(ErasureStart::Erase {
                erasure_id,
                released,
            });
        }
        let erasure_id = uuid::Uuid::new_v4().simple().to_string();
        let nobody = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk.clone(), COUNT_SK.into())))
            .condition_expression("attribute_not_exists(guardians) OR guardians = :zero")
            .expression_attribute_values(":zero", n(0))
            .build()
            .map_err(|e| AppError::Internal(format!("build check: {e}")))?;
        let mark = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk.clone(), ERASE_SK.into())))
            .update_expression("SET #state = :erasing, erasure_id = :id")
            .condition_expression("#state = :scheduled AND due_at <= :now")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":erasing", s(ERASING))
            .expression_attribute_values(":scheduled", s(SCHEDULED))
            .expression_attribute_values(":id", s(&erasure_id))
            .expression_attribute_values(":now", n(now.timestamp()))
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        let transaction = Transaction::new()
            .with(
                Role::RelativeCount,
                TransactWriteItem::builder().condition_check(nobody).build(),
            )
            .with(
                Role::Erasure,
                TransactWriteItem::builder().update(mark).build(),
            );
        match self.transact("begin erasure", transaction).await {
            Ok(()) => Ok(ErasureStart::Erase {
                erasure_id,
                released,
            }),
            Err(refusal) if refusal.refused(Role::RelativeCount) => {
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(pk, ERASE_SK.into())))
                    .update_expression("REMOVE expiry_bucket, due_at")
                    .condition_expression("#state = :scheduled")
                    .expression_attribute_names("#state", "state")
                    .expression_attribute_values(":scheduled", s(SCHEDULED))
                    .send()
                    .await
                    .map_err(|e| dynamodb_error("postpone erasure", e))?;
                Ok(ErasureStart::Held)
            }
            // Another run decided it meanwhile: the next one sees what it decided.
            Err(refusal) if refusal.refused(Role::Erasure) || refusal.raced() => {
                Err(AppError::Conflict)
            }
            Err(refusal) => Err(refusal.into_error()),
        }
    }

    /// Removes what the person's partition holds about them: tests (and their places in the
    /// tubes), the access log, the day counters, the guardian counter; their audit records
    /// move to the erasure's own partition without the relative key. The health authority's
    /// risk flags stay (theirs, ending with their own windows). Returns how many items went.
    pub async fn erase_relative_items(
        &self,
        relative_key: &str,
        erasure_id: &str,
    ) -> Result<u32, AppError> {
        let items = self
            .query_items(
                relative_pk(relative_key),
                "",
                SortKeyOrder::Ascending,
                "read person to erase",
            )
            .await?;
        let mut erased = 0;
        for item in items {
            let Some(sk) = text(&item, "sk") else {
                continue;
            };
            if sk == ERASE_SK || sk.starts_with("H#F#") {
                continue;
            }
            if sk.starts_with("A#") {
                self.move_audit_record(item, erasure_id).await?;
            } else if sk == COUNT_SK {
                // Only if still zero: never a counter a new binding has just moved.
                self.erase_item(&relative_pk(relative_key), &sk, Some("guardians"))
                    .await?;
            } else {
                if sk.starts_with("H#T#") {
                    if let Some(tube) = text(&item, "tube_id") {
                        let member = format!("M#{relative_key}");
                        self.erase_item(&format!("T#{tube}"), &member, None).await?;
                    }
                }
                self.erase_item(&relative_pk(relative_key), &sk, None)
                    .await?;
            }
            erased += 1;
        }
        Ok(erased)
    }

    /// The audit records of each released binding keep who did what, but lose the relative
    /// key; its code anchor (gone by now, its codes long expired) goes if it is not.
    pub async fn forget_released_bindings(&self, released: &[String]) -> Result<(), AppError> {
        for entry in released {
            let parsed = entry.split_once('#').and_then(|(guardian, binding)| {
                Some((GuardianId::parse(guardian)?, BindingId::parse(binding)?))
            });
            let Some((guardian, binding)) = parsed else {
                continue;
            };
            let pk = guardian_pk(&guardian);
            let records = self
                .query_items(
                    pk.clone(),
                    &audit_prefix(&binding),
                    SortKeyOrder::Ascending,
                    "read released binding's audit",
                )
                .await?;
            for record in records.iter().filter(|r| r.contains_key("relative_key")) {
                let Some(sk) = text(record, "sk") else {
                    continue;
                };
                match self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(pk.clone(), sk)))
                    .update_expression("REMOVE relative_key")
                    .condition_expression("attribute_exists(pk)")
                    .send()
                    .await
                {
                    Ok(_) => {}
                    // Past its own retention meanwhile.
                    Err(SdkError::ServiceError(e))
                        if matches!(
                            e.err(),
                            UpdateItemError::ConditionalCheckFailedException(_)
                        ) => {}
                    Err(e) => return Err(dynamodb_error("strip audit record", e)),
                }
            }
            self.erase_item(&format!("K#{}", binding.as_str()), "ANCHOR", None)
                .await?;
        }
        Ok(())
    }

    /// The last step: the erasure item goes, and the erasure is audited under its own id,
    /// with no relative key, in one transaction.
    pub async fn finish_erasure(
        &self,
        relative_key: &str,
        erasure_id: &str,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let done = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(relative_pk(relative_key), ERASE_SK.into())))
            .condition_expression("#state = :erasing AND erasure_id = :id")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":erasing", s(ERASING))
            .expression_attribute_values(":id", s(erasure_id))
            .build()
            .map_err(|e| AppError::Internal(format!("build delete: {e}")))?;
        let transaction = Transaction::new()
            .with(
                Role::Erasure,
                TransactWriteItem::builder().delete(done).build(),
            )
            .with(
                Role::Audit,
                self.audit_put(
                    AuditSubject::Erased { erasure_id },
                    AuditAction::PersonErased,
                    ctx,
                )?,
            );
        match self.transact("finish erasure", transaction).await {
            Ok(()) => {
                log_recorded(AuditAction::PersonErased, erasure_id, ctx);
                Ok(())
            }
            // Finished by another run.
            Err(refusal) if refusal.refused(Role::Erasure) => Ok(()),
            Err(refusal) => Err(refusal.into_error()),
        }
    }

    /// An audit record of the person, moved to the erasure's partition without the relative
    /// key (the copy and the removal in one transaction; a repeat finds nothing to move).
    async fn move_audit_record(
        &self,
        mut item: HashMap<String, AttributeValue>,
        erasure_id: &str,
    ) -> Result<(), AppError> {
        let (Some(pk), Some(sk)) = (text(&item, "pk"), text(&item, "sk")) else {
            return Ok(());
        };
        let expires_at = item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|at| DateTime::from_timestamp(at, 0))
            .unwrap_or_else(Utc::now);
        let new_pk = format!("E#{erasure_id}");
        let due = Due::of(&new_pk, &sk, expires_at);
        item.remove("relative_key");
        item.insert("pk".into(), s(new_pk));
        item.insert("expiry_bucket".into(), s(due.expiry_bucket));
        item.insert("due_at".into(), n(due.due_at));
        let remove = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(|e| AppError::Internal(format!("build delete: {e}")))?;
        let transaction = Transaction::new()
            .with(Role::Audit, self.put_item(item, None)?)
            .with(
                Role::Erasure,
                TransactWriteItem::builder().delete(remove).build(),
            );
        match self.transact("move audit record", transaction).await {
            Ok(()) => Ok(()),
            Err(refusal) if refusal.refused(Role::Erasure) => Ok(()),
            Err(refusal) => Err(refusal.into_error()),
        }
    }

    /// Deletes one item (if `zero` names an attribute: only while it is zero); an item
    /// already gone, or one the condition keeps, is not an error.
    async fn erase_item(&self, pk: &str, sk: &str, zero: Option<&str>) -> Result<(), AppError> {
        let mut request = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk.into(), sk.into())));
        if let Some(attribute) = zero {
            request = request
                .condition_expression("#counter = :zero")
                .expression_attribute_names("#counter", attribute)
                .expression_attribute_values(":zero", n(0));
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), DeleteItemError::ConditionalCheckFailedException(_)) =>
            {
                Ok(())
            }
            Err(e) => Err(dynamodb_error("erase item", e)),
        }
    }
}
