//! DynamoDB adapter: the one table that holds bindings, counters, codes, health signals,
//! disputes and the audit trail. Split by what it stores: `bindings`, `guardians` (a
//! relative's guardians, bans), `disputes`, `codes`, `sheets`, `flags`, `nucleic`, `access_log`,
//! `erasure`, `export`, `cleanup`.
//!
//! Item layout (`pk` / `sk`):
//! - `G#<guardian>` / `COUNT`: how many relatives the guardian holds (`bound`).
//! - `G#<guardian>` / `B#<binding id>`: a binding; name and ID number sealed with AEAD. A
//!   pending binding is due for the cleanup 72 h after binding; activation takes that away.
//!   Its `version` moves with every change and every offline card recorded for it.
//! - `G#<guardian>` / `L#<relative key>`: guard item that makes one binding per pair.
//! - `G#<guardian>` / `AGE#<binding id>#<transition>`: a child's age transition still to come
//!   (face verification due at 7 after the pledge, the notice 30 days before 17, the end at
//!   17), due on its day; written with the binding, deleted once done or with the binding.
//! - `G#<guardian>` / `A#<binding id>#<time>#<action>#<request id>`: audit records, with TTL.
//! - `G#<guardian>` / `BAN#<relative key>`: the guardian may not bind the relative until
//!   `until` (epoch seconds): an upheld dispute; the bind transaction checks it.
//! - `G#<reporter>` / `D#<dispute id>`: a dispute the guardian opened against a co-guardian's
//!   binding: who, why (the free text sealed), and its outcome once resolved (then kept a year).
//! - `G#<reporter>` / `DG#<disputed binding id>`: one open dispute per reporter and binding;
//!   removed when the dispute is resolved.
//! - `G#<reporter>` / `DQ#<China date>`: disputes opened that day (`opened`).
//! - `D#<dispute id>` / `DISPUTE`: whose dispute it is (`reporter`), for the authority.
//! - `DISPUTES` / `D#<dispute id>`: the authority's queue, a copy of each open dispute; ids
//!   sort by opening time, so the queue reads oldest first.
//! - `R#<relative key>` / `COUNT`: how many guardians hold the relative (`guardians`).
//! - `R#<relative key>` / `M#<binding id>`: one guardian of the relative (guardian, declared
//!   relationship, since when, status): what co-guardians see. Written by the bind
//!   transaction, rewritten on verification, removed by every transaction that removes the
//!   binding; bindings made before it existed have none until verified or bound again.
//! - `R#<relative key>` / `H#F#<flag>`: a health-authority risk flag for the person.
//! - `R#<relative key>` / `H#T#<sampled at>#<tube>`: one nucleic-acid test of the person, with
//!   its status; beside the flags (`H#`), so one query reads all the colour depends on.
//! - `T#<tube>` / `TUBE`: a sample tube: kind, fill, site, and the lab's result once reported.
//! - `T#<tube>` / `M#<relative key>`: a person in the tube (once per tube), and their test.
//! - `IK#<keyed hash of caller and Idempotency-Key>` / `SAMPLE`: what a registration answered,
//!   for a day, so a retried request answers the same.
//! - `R#<relative key>` / `OQ#<China date>`: offline cards generated that day (`generated`).
//! - `R#<relative key>` / `A#<time>#<action>#<request id>`: the authority's audit records.
//! - `K#<binding id>` / `ANCHOR`: what a scanned code resolves to: active, or revoked at unbind.
//! - `K#<binding id>` / `O#<generated at>#<serial>`: an offline card (its S3 key), until expiry.
//! - `K#<binding id>` / `OP#<S3 key>`: a card image put before its card was recorded; the
//!   card's transaction removes it, the cleanup removes the image of one left behind.
//! - `HS#<sheet id>` / `SHEET`: a household sheet: its cards (binding ids, serials, colours), the
//!   relatives left off it and why, and its PDF's and preview's S3 keys, until its cards expire.
//!   The id is random, or keyed from the caller and their Idempotency-Key.
//! - `HS#<sheet id>` / `OP#<S3 key>`: a sheet's file put before the sheet was recorded (as a
//!   card's image above).
//! - `REVOKED` / `<serial>`: a revoked offline card, published until it would have expired.
//! - `CLEANUP` / `CURSOR`: the first expiry day the scheduled cleanup has not finished.
//!
//! The relative key is an HMAC of the ID number, so guardians binding the same person meet
//! on one counter without the number being a key. Items the cleanup must find carry
//! `expiry_bucket` (their due day and a write shard from their key) and `due_at` (epoch
//! seconds): the `by_expiry` index.
//! Items DynamoDB may also drop by itself carry the TTL attribute `expires_at`.

mod access_log;
mod ages;
mod bindings;
mod cleanup;
mod codes;
mod disputes;
mod erasure;
mod export;
mod flags;
mod guardians;
mod health;
mod nucleic;
mod sheets;
mod transaction;

pub use access_log::AccessLogPage;
pub use ages::DueTransition;
pub use bindings::{CreateBindingError, NewBinding};
pub use cleanup::{CleanupBudget, CleanupReport, DueItem, DuePage, EXPIRY_INDEX};
pub use codes::{CardRecordError, OfflineCardRecord, ScannedAnchor};
pub use disputes::{Dispute, DisputePage, NewDispute, OpenDisputeError, Resolution, ResolveError};
pub use erasure::ErasureStart;
pub use flags::{FlagWrite, FlagWriteOutcome};
pub use guardians::Member;
pub use nucleic::{
    RegisterError, RegisteredSample, SampleRegistration, TestPage, TestRecord, TubeRecord,
};
pub use sheets::{HouseholdSheetRecord, SheetCardEntry, SheetLeftOutEntry, SheetRecorded};
pub use transaction::ItemOrder;

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::Keys;
use crate::domain::binding::{BindingId, GuardianId};
use crate::domain::nucleic::DEFAULT_RESULT_RETENTION_DAYS;
use crate::domain::wire::wire_enum;
use crate::domain::{expiry_bucket, EXPIRY_SHARDS};
use crate::error::AppError;

/// Audit records are kept one year: long enough for disputes over a binding, short enough
/// that people's traces do not outlive the epidemic response.
pub fn audit_retention() -> Duration {
    Duration::days(365)
}

const COUNT_SK: &str = "COUNT";
/// The actor of what the scheduled cleanup does, in audit records.
const CLEANUP_ACTOR: &str = "cleanup";

fn guardian_pk(guardian: &GuardianId) -> String {
    format!("G#{}", guardian.as_str())
}
fn relative_pk(relative_key: &str) -> String {
    format!("R#{relative_key}")
}
fn audit_prefix(id: &BindingId) -> String {
    format!("A#{}#", id.as_str())
}

/// A string attribute of a raw item.
fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

/// A time in a sort key: fixed width, so keys sort as their times do.
fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The `by_expiry` index keys of an item due at `at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Due {
    expiry_bucket: String,
    due_at: i64,
}

impl Due {
    /// The item's write shard comes from its key: evenly spread, and the same on every
    /// rewrite of the item, so a retried write never moves it.
    fn of(pk: &str, sk: &str, at: DateTime<Utc>) -> Self {
        Self {
            expiry_bucket: expiry_bucket(at, expiry_shard(pk, sk)),
            due_at: at.timestamp(),
        }
    }
}

fn expiry_shard(pk: &str, sk: &str) -> u32 {
    let mut key = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    key.update(pk.as_bytes());
    key.update(b"\0");
    key.update(sk.as_bytes());
    let digest = key.finish();
    let head: [u8; 8] = digest.as_ref()[..8].try_into().expect("a SHA-256 digest");
    // 64 bits reduced by a small modulus: no shard favoured by more than 2^-57.
    (u64::from_be_bytes(head) % u64::from(EXPIRY_SHARDS)) as u32
}

wire_enum! {
    pub enum AuditAction {
        Bound = "bound",
        FaceStarted = "face_started",
        FaceFailed = "face_failed",
        /// A face provider's answer failed its signature check: refused, never believed.
        FaceResponseRejected = "face_response_rejected",
        Verified = "verified",
        /// Face verification of a binding first verified by the pledge, once the child is 7.
        Reverified = "reverified",
        Unbound = "unbound",
        /// The cleanup removed a binding never verified in time.
        PendingExpired = "pending_expired",
        /// The child bound with the pledge turned 7: face verification is due, the codes stop
        /// after the grace unless it is done (the cleanup's notice).
        FaceVerificationDue = "face_verification_due",
        /// The binding ends at the child's 17th birthday, 30 days from now or sooner (the
        /// cleanup's notice).
        EndingNotice = "ending_notice",
        /// The cleanup ended a binding on the child's 17th birthday, as an unbind would.
        AgedOut = "aged_out",
        OfflineCodeIssued = "offline_code_issued",
        RiskFlagSet = "risk_flag_set",
        RiskFlagCleared = "risk_flag_cleared",
        SampleRegistered = "sample_registered",
        ResultReported = "result_reported",
        ResultsViewed = "results_viewed",
        /// A guardian took out everything held about the relative (PIPL art. 45).
        DataExported = "data_exported",
        /// The cleanup erased a person no guardian held any more (PIPL art. 47).
        PersonErased = "person_erased",
        /// A guardian reported a co-guardian's binding (the relative's trail).
        DisputeOpened = "dispute_opened",
        /// The authority found a dispute founded (the relative's trail).
        DisputeUpheld = "dispute_upheld",
        /// The authority found a dispute unfounded (the relative's trail).
        DisputeDismissed = "dispute_dismissed",
        /// A binding ended by an upheld dispute (its guardian's trail), despite the 24 h rule.
        UnboundByDispute = "unbound_by_dispute",
    }
}

/// One line of a binding's audit trail, as its guardian may read it back.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AuditLine {
    pub at: DateTime<Utc>,
    pub action: AuditAction,
}

#[derive(Debug, Serialize, Deserialize)]
struct AuditRecord {
    pk: String,
    sk: String,
    action: AuditAction,
    /// Who did it: the guardian, the health authority's caller, or `cleanup`.
    actor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    binding_id: Option<String>,
    /// The person, until they are erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    relative_key: Option<String>,
    /// What the action was on, when not the binding itself (a tube).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    request_id: String,
    at: DateTime<Utc>,
    /// TTL attribute (epoch seconds).
    expires_at: i64,
    #[serde(flatten)]
    due: Due,
}

/// One log line per recorded action: ids only, never the person.
fn log_recorded(action: AuditAction, subject: &str, ctx: ActionContext<'_>) {
    tracing::info!(
        action = action.as_str(),
        subject,
        request_id = ctx.request_id,
        "recorded"
    );
}

/// Who did what, when: every write carries one.
#[derive(Debug, Clone, Copy)]
pub struct ActionContext<'a> {
    pub request_id: &'a str,
    pub at: DateTime<Utc>,
}

/// The subject of an audit record: a binding (kept in its guardian's partition) or a person
/// (kept in the relative's partition: the authority's flags, their samples and results, and
/// guardians reading those results).
enum AuditSubject<'a> {
    Binding {
        actor: &'a str,
        guardian: &'a GuardianId,
        binding: &'a BindingId,
        relative_key: &'a str,
    },
    Relative {
        actor: &'a str,
        relative_key: &'a str,
        /// The binding acted through, if any (a scanned code, a guardian's query).
        binding: Option<&'a BindingId>,
        /// What the action was on (a tube), also in the sort key: one request may touch the
        /// same person through several tubes.
        target: Option<&'a str>,
    },
    /// An erased person: recorded under the erasure's own id, never the relative key.
    Erased { erasure_id: &'a str },
}

/// Maps an SDK failure: transport trouble and throttling are a dependency outage (503);
/// anything else is our bug (500). Details go to the logs only.
pub fn dynamodb_error<E>(
    operation: &'static str,
    err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> AppError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    const TRANSIENT: [&str; 6] = [
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionInProgressException",
    ];
    let detail = format!("{operation}: {}", DisplayErrorContext(&err));
    match &err {
        SdkError::ServiceError(ctx) if !TRANSIENT.contains(&ctx.err().code().unwrap_or("")) => {
            AppError::Internal(detail)
        }
        _ => AppError::DependencyUnavailable(detail),
    }
}

/// The order a query returns a partition's items in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKeyOrder {
    Ascending,
    /// Last sort key first: newest first, for keys that start with a time.
    Descending,
}

pub struct Store {
    client: Client,
    table: String,
    /// `None` in the functions that touch no personal data (they are not given the keys).
    keys: Option<Keys>,
    /// How long registrations and results are kept; reads ignore older ones.
    result_retention: Duration,
    /// The order each transaction's items are sent in: as built, but for tests.
    item_order: ItemOrder,
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>, keys: Option<Keys>) -> Self {
        Self {
            client,
            table: table.into(),
            keys,
            result_retention: Duration::days(DEFAULT_RESULT_RETENTION_DAYS.into()),
            item_order: ItemOrder::AsBuilt,
        }
    }

    pub fn with_result_retention(mut self, retention: Duration) -> Self {
        self.result_retention = retention;
        self
    }

    pub fn result_retention(&self) -> Duration {
        self.result_retention
    }

    /// Sends every transaction's items in `order`. For tests: a refusal is read by the name
    /// of the item that refused, so the answers are the same in any order.
    pub fn with_item_order(mut self, order: ItemOrder) -> Self {
        self.item_order = order;
        self
    }

    /// The data keys.
    ///
    /// # Panics
    /// In a function started without them (its `main` chose
    /// `entry::cold_start_without_data_keys`) that calls a use case needing them: a wiring
    /// bug, which the tests of each function's use cases catch.
    pub fn keys(&self) -> &Keys {
        self.keys
            .as_ref()
            .expect("this function was started without the data keys")
    }

    fn to_item<T: Serialize>(record: &T) -> Result<HashMap<String, AttributeValue>, AppError> {
        serde_dynamo::to_item(record).map_err(|e| AppError::Internal(format!("encode item: {e}")))
    }

    fn audit_put(
        &self,
        subject: AuditSubject<'_>,
        action: AuditAction,
        ctx: ActionContext<'_>,
    ) -> Result<TransactWriteItem, AppError> {
        self.put_item(Self::audit_item(subject, action, ctx)?, None)
    }

    /// An audit record written on its own, outside any transaction, and its log line.
    async fn record_alone(
        &self,
        subject: AuditSubject<'_>,
        action: AuditAction,
        logged_subject: &str,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::audit_item(subject, action, ctx)?))
            .send()
            .await
            .map_err(|e| dynamodb_error("put audit record", e))?;
        log_recorded(action, logged_subject, ctx);
        Ok(())
    }

    fn audit_item(
        subject: AuditSubject<'_>,
        action: AuditAction,
        ctx: ActionContext<'_>,
    ) -> Result<HashMap<String, AttributeValue>, AppError> {
        let expires = ctx.at + audit_retention();
        let stamp = format!("{}#{}#{}", stamp(ctx.at), action.as_str(), ctx.request_id);
        let (pk, sk, actor, binding_id, relative_key, target) = match subject {
            AuditSubject::Binding {
                actor,
                guardian,
                binding,
                relative_key,
            } => (
                guardian_pk(guardian),
                format!("{}{stamp}", audit_prefix(binding)),
                actor,
                Some(binding.as_str().to_owned()),
                Some(relative_key),
                None,
            ),
            AuditSubject::Relative {
                actor,
                relative_key,
                binding,
                target,
            } => (
                relative_pk(relative_key),
                match target {
                    Some(target) => format!("A#{stamp}#{target}"),
                    None => format!("A#{stamp}"),
                },
                actor,
                binding.map(|b| b.as_str().to_owned()),
                Some(relative_key),
                target.map(str::to_owned),
            ),
            AuditSubject::Erased { erasure_id } => (
                format!("E#{erasure_id}"),
                format!("A#{stamp}"),
                "cleanup",
                None,
                None,
                None,
            ),
        };
        Self::to_item(&AuditRecord {
            action,
            actor: actor.into(),
            binding_id,
            relative_key: relative_key.map(str::to_owned),
            target,
            request_id: ctx.request_id.into(),
            at: ctx.at,
            expires_at: expires.timestamp(),
            due: Due::of(&pk, &sk, expires),
            pk,
            sk,
        })
    }

    /// One item by key, strongly consistent.
    async fn get(
        &self,
        pk: String,
        sk: String,
        operation: &'static str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, AppError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamodb_error(operation, e))?;
        Ok(out.item)
    }

    /// Every item of partition `pk` whose sort key starts with `prefix`, in `order`, decoded;
    /// all pages.
    async fn query_prefix<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        prefix: &str,
        order: SortKeyOrder,
        operation: &'static str,
    ) -> Result<Vec<T>, AppError> {
        let items = self.query_items(pk, prefix, order, operation).await?;
        serde_dynamo::from_items(items)
            .map_err(|e| AppError::Internal(format!("{operation}: decode: {e}")))
    }

    /// Like `query_prefix`, undecoded: for partitions that hold several kinds of item.
    async fn query_items(
        &self,
        pk: String,
        prefix: &str,
        order: SortKeyOrder,
        operation: &'static str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, AppError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk.clone()));
            // DynamoDB refuses an empty `begins_with` operand: no prefix means the partition.
            query = if prefix.is_empty() {
                query.key_condition_expression("pk = :pk")
            } else {
                query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(prefix))
            };
            let out = query
                .scan_index_forward(order == SortKeyOrder::Ascending)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamodb_error(operation, e))?;
            items.extend(out.items.unwrap_or_default());
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    /// One page of the items of partition `pk` whose sort keys start with `prefix` and sort
    /// at or after `from` (a key under `prefix` that starts with a time), newest first,
    /// starting after the sort key `after` (the last key of the previous page); decoded, with
    /// the last key of this page if there is a next one. One query.
    async fn newest_first_page<T: serde::de::DeserializeOwned>(
        &self,
        pk: String,
        prefix: &str,
        from: &str,
        after: Option<&str>,
        limit: usize,
        operation: &'static str,
    ) -> Result<(Vec<T>, Option<String>), AppError> {
        // A cursor from before `from`, or from elsewhere, starts no page.
        if after.is_some_and(|a| a <= from || !a.starts_with(prefix)) {
            return Ok((Vec::new(), None));
        }
        let start = after.map(|sk| Self::key(pk.clone(), sk.to_owned()));
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(from))
            // `~` sorts after every character a key under `prefix` holds.
            .expression_attribute_values(":to", s(format!("{prefix}~")))
            .scan_index_forward(false)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            // One more than the page: whether there is a next page, without an empty one.
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| dynamodb_error(operation, e))?;
        let mut items = out.items.unwrap_or_default();
        let more = items.len() > limit;
        items.truncate(limit);
        let next_after = more
            .then(|| items.last().and_then(|i| i.get("sk")?.as_s().ok().cloned()))
            .flatten();
        let decoded = serde_dynamo::from_items(items)
            .map_err(|e| AppError::Internal(format!("{operation}: decode: {e}")))?;
        Ok((decoded, next_after))
    }

    /// A put of `record` that holds only if its item is not there yet.
    fn put_new<T: Serialize>(&self, record: &T) -> Result<TransactWriteItem, AppError> {
        self.put_item(Self::to_item(record)?, Some("attribute_not_exists(pk)"))
    }

    fn put_item(
        &self,
        item: HashMap<String, AttributeValue>,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, AppError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(|e| AppError::Internal(format!("build put: {e}")))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn key(pk: String, sk: String) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    /// Adds `delta` to a counter, refusing to pass `max` or go below zero.
    fn counter_update(
        &self,
        pk: String,
        attribute: &str,
        delta: i64,
        max: u32,
    ) -> Result<TransactWriteItem, AppError> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, COUNT_SK.into())))
            .update_expression("SET #c = if_not_exists(#c, :zero) + :delta")
            .expression_attribute_names("#c", attribute)
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":delta", n(delta));
        update = if delta > 0 {
            update
                .condition_expression("attribute_not_exists(#c) OR #c < :max")
                .expression_attribute_values(":max", n(max))
        } else {
            update
                .condition_expression("#c >= :one")
                .expression_attribute_values(":one", n(-delta))
        };
        let update = update
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_actions_read_back_their_strings() {
        crate::domain::wire::assert_wire_strings!(AuditAction);
    }

    #[test]
    fn items_expiring_at_the_same_moment_spread_evenly_over_the_write_shards() {
        let at = DateTime::parse_from_rfc3339("2026-12-05T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // Two audit records of one relative, written in the same request: same day, same
        // due second, different shards. And one item rewritten stays where it was.
        let first = Due::of("R#3f9c", "A#2026-11-28T10:00:00.000Z#bind", at);
        let second = Due::of("R#3f9c", "A#2026-11-28T10:00:00.000Z#tube-1", at);
        assert_eq!(first.due_at, second.due_at);
        assert_ne!(first.expiry_bucket, second.expiry_bucket);
        assert_eq!(
            first,
            Due::of("R#3f9c", "A#2026-11-28T10:00:00.000Z#bind", at)
        );

        // The documented spread: 64,000 items of one day (audit-, binding- and tube-shaped
        // keys) give every shard its 500 within ±20%.
        let per_shard = 500;
        let mut counts = vec![0u32; EXPIRY_SHARDS as usize];
        for i in 0..(EXPIRY_SHARDS * per_shard) {
            let (pk, sk) = match i % 3 {
                0 => (format!("R#{:064x}", i * 7919), format!("A#{i:012}")),
                1 => (format!("G#user-{i}"), format!("B#{i:08x}")),
                _ => (format!("T#T{i:011}"), "TUBE".to_owned()),
            };
            let due = Due::of(&pk, &sk, at);
            let shard: usize = due.expiry_bucket["2026-12-05#".len()..].parse().unwrap();
            counts[shard] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(
            *min >= per_shard * 8 / 10 && *max <= per_shard * 12 / 10,
            "{min}..{max} per shard"
        );
    }
}
