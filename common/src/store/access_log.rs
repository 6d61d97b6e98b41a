//! The access log: `R#<relative key>` / `AL#<time>#<kind>#<request id>[#<tube>]`, one item
//! per entry, beside the relative's other items so every guardian reads the same log, with
//! a TTL. Entries of a write that changes something go into that write's transaction; the
//! reads (a code shown, a card downloaded, a scan, results read) write theirs alone.

use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::bindings::binding_sk;
use super::transaction::{Role, Transaction};
use super::{
    dynamodb_error, guardian_pk, log_recorded, n, relative_pk, stamp, ActionContext, AuditAction,
    AuditSubject, Due, Store,
};
use crate::domain::access_log::{
    access_log_retention, needs_shown_entry, shown_hour, AccessActor, AccessEntry, AccessKind,
};
use crate::domain::binding::Binding;
use crate::domain::code::ScanPurpose;
use crate::error::AppError;

const ACCESS_LOG_PREFIX: &str = "AL#";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "actor")]
enum ActorRecord {
    Guardian {
        handle: String,
    },
    Site {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        site_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        site_name: Option<String>,
    },
    Lab,
    Authority,
    System,
}

#[derive(Debug, Serialize, Deserialize)]
struct AccessLogItem {
    pk: String,
    sk: String,
    kind: AccessKind,
    at: DateTime<Utc>,
    #[serde(flatten)]
    actor: ActorRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    purpose: Option<ScanPurpose>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tube_id: Option<String>,
    /// TTL attribute (epoch seconds).
    expires_at: i64,
    #[serde(flatten)]
    due: Due,
}

impl From<AccessActor> for ActorRecord {
    fn from(actor: AccessActor) -> Self {
        match actor {
            AccessActor::Guardian { handle } => Self::Guardian { handle },
            AccessActor::Site { id, name } => Self::Site {
                site_id: id,
                site_name: name,
            },
            AccessActor::Lab => Self::Lab,
            AccessActor::Authority => Self::Authority,
            AccessActor::System => Self::System,
        }
    }
}

impl From<ActorRecord> for AccessActor {
    fn from(record: ActorRecord) -> Self {
        match record {
            ActorRecord::Guardian { handle } => Self::Guardian { handle },
            ActorRecord::Site { site_id, site_name } => Self::Site {
                id: site_id,
                name: site_name,
            },
            ActorRecord::Lab => Self::Lab,
            ActorRecord::Authority => Self::Authority,
            ActorRecord::System => Self::System,
        }
    }
}

/// One page of a relative's log, newest first.
#[derive(Debug, Clone)]
pub struct AccessLogPage {
    pub entries: Vec<AccessEntry>,
    /// The last sort key of this page, if there is a next one.
    pub next_after: Option<String>,
}

impl Store {
    /// How `guardian` of the relative appears in its log.
    pub fn guardian_actor(&self, relative_key: &str, guardian: &str) -> AccessActor {
        AccessActor::Guardian {
            handle: self.keys().guardian_handle(relative_key, guardian),
        }
    }

    /// The guardian who acts through `binding`, as the log shows them.
    pub(super) fn binding_actor(&self, binding: &Binding) -> AccessActor {
        self.guardian_actor(&binding.relative_key, binding.guardian.as_str())
    }

    /// The put of one entry, for the transaction of the action it records.
    pub(super) fn access_put(
        &self,
        relative_key: &str,
        entry: AccessEntry,
        ctx: ActionContext<'_>,
    ) -> Result<TransactWriteItem, AppError> {
        let pk = relative_pk(relative_key);
        let mut sk = format!(
            "{ACCESS_LOG_PREFIX}{}#{}#{}",
            stamp(entry.at),
            entry.kind.as_str(),
            ctx.request_id
        );
        // One request may record the same person through several tubes.
        if let Some(tube) = &entry.tube_id {
            sk = format!("{sk}#{tube}");
        }
        let expires = entry.at + access_log_retention();
        self.put_item(
            Self::to_item(&AccessLogItem {
                due: Due::of(&pk, &sk, expires),
                pk,
                sk,
                kind: entry.kind,
                at: entry.at,
                actor: entry.actor.into(),
                purpose: entry.purpose,
                tube_id: entry.tube_id,
                expires_at: expires.timestamp(),
            })?,
            None,
        )
    }

    /// Records a read of the relative's data on its own.
    pub async fn record_access(
        &self,
        relative_key: &str,
        entry: AccessEntry,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let kind = entry.kind;
        let put = self.access_put(relative_key, entry, ctx)?;
        let put = put
            .put
            .ok_or_else(|| AppError::Internal("an access entry is a put".into()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item))
            .send()
            .await
            .map_err(|e| dynamodb_error("put access entry", e))?;
        tracing::info!(
            access = kind.as_str(),
            request_id = ctx.request_id,
            "access recorded"
        );
        Ok(())
    }

    /// Records a read of the relative's data through `binding` (results, an export): its
    /// audit record and its access-log entry, together, and only while the binding stands, so
    /// nothing is written about a person after their last binding ended (and they were
    /// erased). A binding gone meanwhile is not found, like any read through it.
    pub(super) async fn record_read(
        &self,
        binding: &Binding,
        subject: AuditSubject<'_>,
        action: AuditAction,
        kind: AccessKind,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        let entry = AccessEntry::new(kind, self.binding_actor(binding), ctx.at);
        let transaction = Transaction::new()
            .with(Role::Audit, self.audit_put(subject, action, ctx)?)
            .with(
                Role::AccessLog,
                self.access_put(&binding.relative_key, entry, ctx)?,
            )
            .with(Role::Binding, self.binding_present_check(binding)?);
        match self.transact(action.as_str(), transaction).await {
            Ok(()) => {
                log_recorded(action, binding.id.as_str(), ctx);
                Ok(())
            }
            Err(refusal) if refusal.refused(Role::Binding) => Err(AppError::BindingNotFound),
            Err(refusal) => Err(refusal.into_error()),
        }
    }

    /// Records that the guardian of `binding` showed the code: at most one entry per
    /// guardian and relative per hour. The binding item remembers the hour of its last
    /// entry, read with the binding on every show, so a show in an hour already recorded
    /// writes nothing; the first show of an hour moves the mark and writes the entry in one
    /// transaction. Of simultaneous first shows one writes; the others find the mark moved.
    pub async fn record_code_shown(
        &self,
        binding: &Binding,
        ctx: ActionContext<'_>,
    ) -> Result<(), AppError> {
        if !needs_shown_entry(binding.code_shown_hour, ctx.at) {
            return Ok(());
        }
        let hour = shown_hour(ctx.at);
        let mark = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(
                guardian_pk(&binding.guardian),
                binding_sk(&binding.id),
            )))
            .update_expression("SET code_shown_hour = :hour")
            // Never recreates an unbound binding; leaves `version` alone, so the mark races
            // no other change of the binding.
            .condition_expression(
                "attribute_exists(pk) AND (attribute_not_exists(code_shown_hour) OR code_shown_hour < :hour)",
            )
            .expression_attribute_values(":hour", n(hour.timestamp()))
            .build()
            .map_err(|e| AppError::Internal(format!("build update: {e}")))?;
        let entry = AccessEntry::new(AccessKind::CodeShown, self.binding_actor(binding), ctx.at);
        let transaction = Transaction::new()
            .with(
                Role::Binding,
                TransactWriteItem::builder().update(mark).build(),
            )
            .with(
                Role::AccessLog,
                self.access_put(&binding.relative_key, entry, ctx)?,
            );
        match self.transact("record code shown", transaction).await {
            Ok(()) => Ok(()),
            // Another show recorded this hour first, or the binding just ended.
            Err(refusal) if refusal.refused(Role::Binding) => Ok(()),
            Err(refusal) => Err(refusal.into_error()),
        }
    }

    /// A page of the relative's log, newest first, of entries at or after `since` and still
    /// within retention, starting after the sort key `after`.
    pub async fn access_log_page(
        &self,
        relative_key: &str,
        since: DateTime<Utc>,
        after: Option<&str>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<AccessLogPage, AppError> {
        let from = format!(
            "{ACCESS_LOG_PREFIX}{}",
            stamp(since.max(now - access_log_retention()))
        );
        let (items, next_after): (Vec<AccessLogItem>, _) = self
            .newest_first_page(
                relative_pk(relative_key),
                ACCESS_LOG_PREFIX,
                &from,
                after,
                limit,
                "query access log",
            )
            .await?;
        Ok(AccessLogPage {
            entries: items
                .into_iter()
                .map(|i| AccessEntry {
                    at: i.at,
                    kind: i.kind,
                    actor: i.actor.into(),
                    purpose: i.purpose,
                    tube_id: i.tube_id,
                })
                .collect(),
            next_after,
        })
    }
}
