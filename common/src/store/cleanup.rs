//! What the scheduled cleanup reads and removes: due items, found through the `by_expiry`
//! index one expiry bucket at a time (never a Scan), and its resumable cursor.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::ages::AGE_TRANSITION_PREFIX;
use super::bindings::BindingRecord;
use super::codes::{OfflineCardRecord, IMAGE_IN_FLIGHT_PREFIX};
use super::erasure::ERASE_SK;
use super::sheets::{SHEET_PK_PREFIX, SHEET_SK};
use super::{dynamodb_error, n, s, text, ActionContext, Store};
use crate::domain::binding::BindingStatus;
use crate::error::AppError;

pub const EXPIRY_INDEX: &str = "by_expiry";
const CURSOR_PK: &str = "CLEANUP";
const CURSOR_SK: &str = "CURSOR";

/// A due item, by what its key says it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DueItem {
    /// A binding never verified in time: removing it releases both counters.
    PendingBinding { pk: String, sk: String },
    /// A child's age transition: a notice to record, or the binding to end at 17.
    AgeTransition { pk: String, sk: String },
    /// An offline card: its S3 object goes first, then the record.
    OfflineCard { pk: String, sk: String },
    /// An image whose card (or a file whose household sheet) was never recorded (the record's
    /// transaction clears the mark): the object goes first, then the mark.
    ImageInFlight { pk: String, sk: String },
    /// A person no guardian has held for the erasure window: erased, unless held again.
    Erasure { relative_key: String },
    /// A household sheet: its PDF and preview go first, then the record.
    HouseholdSheet { pk: String, sk: String },
    /// Anything else that simply goes: revoked anchors, published revocations, audit
    /// records past retention, daily quotas.
    Plain { pk: String, sk: String },
}

impl DueItem {
    fn classify(pk: String, sk: String) -> Self {
        if pk.starts_with("G#") && sk.starts_with("B#") {
            Self::PendingBinding { pk, sk }
        } else if pk.starts_with("G#") && sk.starts_with(AGE_TRANSITION_PREFIX) {
            Self::AgeTransition { pk, sk }
        } else if (pk.starts_with("K#") || pk.starts_with(SHEET_PK_PREFIX))
            && sk.starts_with(IMAGE_IN_FLIGHT_PREFIX)
        {
            Self::ImageInFlight { pk, sk }
        } else if pk.starts_with(SHEET_PK_PREFIX) && sk == SHEET_SK {
            Self::HouseholdSheet { pk, sk }
        } else if pk.starts_with("K#") && sk.starts_with("O#") {
            Self::OfflineCard { pk, sk }
        } else if let (Some(relative_key), ERASE_SK) = (pk.strip_prefix("R#"), sk.as_str()) {
            Self::Erasure {
                relative_key: relative_key.to_owned(),
            }
        } else {
            Self::Plain { pk, sk }
        }
    }
}

/// One page of due items from an expiry bucket, and where the next page starts.
pub struct DuePage {
    pub items: Vec<DueItem>,
    pub next: Option<HashMap<String, AttributeValue>>,
}

/// How much one run may do.
#[derive(Debug, Clone, Copy)]
pub struct CleanupBudget {
    pub max_items: usize,
    pub max_duration: std::time::Duration,
}

/// What one run did: the structured log line and the function's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CleanupReport {
    pub days_walked: u32,
    pub pending_bindings_released: u32,
    /// Guardians told of an age transition: face verification due at 7, the end at 17 coming.
    pub age_notices_recorded: u32,
    /// Children's bindings ended on the 17th birthday.
    pub bindings_aged_out: u32,
    pub offline_cards_deleted: u32,
    /// Images of cards that were never recorded.
    pub orphan_images_deleted: u32,
    /// Household sheets whose cards expired: their PDF and preview, then the record.
    pub household_sheets_deleted: u32,
    pub items_deleted: u32,
    /// People no guardian held any more, erased.
    pub people_erased: u32,
    /// Items that changed since they were found (e.g. a binding verified meanwhile, an age
    /// transition done by another run).
    pub skipped: u32,
    /// `false` when the budget ran out before every due item was handled.
    pub complete: bool,
}

impl Store {
    /// Items of one expiry bucket (a day's shard) due at or before `now`, a page at a time.
    pub async fn due_page(
        &self,
        bucket: &str,
        now: DateTime<Utc>,
        start: Option<HashMap<String, AttributeValue>>,
        limit: i32,
    ) -> Result<DuePage, AppError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(EXPIRY_INDEX)
            .key_condition_expression("expiry_bucket = :bucket AND due_at <= :now")
            .expression_attribute_values(":bucket", s(bucket))
            .expression_attribute_values(":now", n(now.timestamp()))
            .set_exclusive_start_key(start)
            .limit(limit)
            .send()
            .await
            .map_err(|e| dynamodb_error("query due items", e))?;
        let items = out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| Some(DueItem::classify(text(item, "pk")?, text(item, "sk")?)))
            .collect();
        Ok(DuePage {
            items,
            next: out.last_evaluated_key,
        })
    }

    /// Removes a pending binding that is still pending and due; `false` if it is not (any
    /// more), which is not an error: it was verified or removed meanwhile.
    pub async fn expire_pending(
        &self,
        pk: &str,
        sk: &str,
        ctx: ActionContext<'_>,
    ) -> Result<bool, AppError> {
        let Some(item) = self.get(pk.into(), sk.into(), "get due binding").await? else {
            return Ok(false);
        };
        let record: BindingRecord = serde_dynamo::from_item(item)
            .map_err(|e| AppError::Internal(format!("decode binding: {e}")))?;
        let due = record
            .due
            .as_ref()
            .is_some_and(|d| d.due_at <= ctx.at.timestamp());
        if record.status != BindingStatus::PendingVerification || !due {
            return Ok(false);
        }
        let binding = self.binding_from_record(record)?;
        match self.expire_pending_binding(&binding, ctx).await {
            Ok(()) => Ok(true),
            Err(AppError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The offline card record behind a due key, if still there.
    pub async fn due_offline_card(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<OfflineCardRecord>, AppError> {
        self.get(pk.into(), sk.into(), "get due card")
            .await?
            .map(|item| {
                serde_dynamo::from_item(item)
                    .map_err(|e| AppError::Internal(format!("decode card: {e}")))
            })
            .transpose()
    }

    /// Deletes an item if it is (still) due at `now`; `false` if it is gone or not due.
    pub async fn delete_due(
        &self,
        pk: &str,
        sk: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk.into(), sk.into())))
            .condition_expression("due_at <= :now")
            .expression_attribute_values(":now", n(now.timestamp()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(ctx))
                if matches!(
                    ctx.err(),
                    DeleteItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Ok(false)
            }
            Err(e) => Err(dynamodb_error("delete due item", e)),
        }
    }

    /// The first expiry day the cleanup has not finished, if it ever ran.
    pub async fn cleanup_cursor(&self) -> Result<Option<DateTime<Utc>>, AppError> {
        let item = self
            .get(CURSOR_PK.into(), CURSOR_SK.into(), "get cleanup cursor")
            .await?;
        Ok(item
            .as_ref()
            .and_then(|i| text(i, "day"))
            .and_then(|h| DateTime::parse_from_rfc3339(&h).ok())
            .map(|h| h.with_timezone(&Utc)))
    }

    pub async fn set_cleanup_cursor(&self, day: DateTime<Utc>) -> Result<(), AppError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(CURSOR_PK))
            .item("sk", s(CURSOR_SK))
            .item("day", s(crate::error::rfc3339(day)))
            .send()
            .await
            .map_err(|e| dynamodb_error("set cleanup cursor", e))?;
        Ok(())
    }
}
