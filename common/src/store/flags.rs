//! The health authority's risk flags: one item per person and flag, in the person's partition
//! (keyed by the relative key, so every guardian's binding of them sees the same flags).

use aws_sdk_dynamodb::types::{Delete, TransactWriteItem};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::transaction::{Role, Transaction};
use super::{log_recorded, relative_pk, s, ActionContext, AuditAction, AuditSubject, Store};
use crate::domain::health::{RiskFlag, RiskSignal};
use crate::error::AppError;

/// A flag that ended stays readable this long (for disputes), then DynamoDB drops it.
fn ended_flag_retention() -> Duration {
    Duration::days(30)
}

fn flag_sk(flag: RiskFlag) -> String {
    format!("{FLAG_PREFIX}{}", flag.as_str())
}

pub(super) const FLAG_PREFIX: &str = "H#F#";

#[derive(Debug, Serialize, Deserialize)]
pub(super) struct FlagItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    pub(super) signal: RiskSignal,
    /// The window as one comparable value, so a replayed row is recognised as unchanged.
    window: String,
    actor: String,
    updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
}

/// One row of the authority's feed, with the person already turned into their relative key.
#[derive(Debug, Clone, Copy)]
pub enum FlagWrite<'a> {
    Set {
        relative_key: &'a str,
        signal: RiskSignal,
    },
    Clear {
        relative_key: &'a str,
        flag: RiskFlag,
    },
}

/// What a write did: replays and clears of absent flags change nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagWriteOutcome {
    Stored,
    Cleared,
    Unchanged,
}

fn window(signal: &RiskSignal) -> String {
    format!(
        "{}/{}",
        signal.effective_at.timestamp(),
        signal
            .until
            .map_or_else(|| "open".to_owned(), |u| u.timestamp().to_string())
    )
}

impl Store {
    /// Applies one row, with its audit record in the same transaction. A row equal to what is
    /// stored (a replay), or a clear of a flag not set, writes nothing.
    pub async fn write_flag(
        &self,
        write: FlagWrite<'_>,
        actor: &str,
        ctx: ActionContext<'_>,
    ) -> Result<FlagWriteOutcome, AppError> {
        let (relative_key, change, action, done) = match write {
            FlagWrite::Set {
                relative_key,
                signal,
            } => {
                let item = FlagItem {
                    pk: relative_pk(relative_key),
                    sk: flag_sk(signal.flag),
                    window: window(&signal),
                    signal,
                    actor: actor.into(),
                    updated_at: ctx.at,
                    expires_at: signal
                        .until
                        .map(|until| (until + ended_flag_retention()).timestamp()),
                };
                let change = aws_sdk_dynamodb::types::Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(Self::to_item(&item)?))
                    .condition_expression("attribute_not_exists(pk) OR #w <> :w")
                    .expression_attribute_names("#w", "window")
                    .expression_attribute_values(":w", s(window(&signal)))
                    .build()
                    .map_err(|e| AppError::Internal(format!("build put: {e}")))?;
                (
                    relative_key,
                    TransactWriteItem::builder().put(change).build(),
                    AuditAction::RiskFlagSet,
                    FlagWriteOutcome::Stored,
                )
            }
            FlagWrite::Clear { relative_key, flag } => {
                let change = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(Self::key(relative_pk(relative_key), flag_sk(flag))))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .map_err(|e| AppError::Internal(format!("build delete: {e}")))?;
                (
                    relative_key,
                    TransactWriteItem::builder().delete(change).build(),
                    AuditAction::RiskFlagCleared,
                    FlagWriteOutcome::Cleared,
                )
            }
        };
        let audit = self.audit_put(
            AuditSubject::Relative {
                actor,
                relative_key,
                binding: None,
                target: None,
            },
            action,
            ctx,
        )?;
        let transaction = Transaction::new()
            .with(Role::RiskFlag, change)
            .with(Role::Audit, audit);
        match self.transact(action.as_str(), transaction).await {
            Ok(()) => {
                log_recorded(action, actor, ctx);
                Ok(done)
            }
            Err(refusal) if refusal.refused(Role::RiskFlag) => Ok(FlagWriteOutcome::Unchanged),
            Err(refusal) => Err(refusal.into_error()),
        }
    }
}
