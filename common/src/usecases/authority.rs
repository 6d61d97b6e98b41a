//! The health authority's feed of risk flags: rows validated one by one, each person turned
//! into their relative key on arrival (the ID number is never stored), replays change nothing.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::answers::{self, RowAnswer};
use crate::usecases::batch::{self, IntoRowAnswer, RowRefusal};

use crate::domain::china_time::china_date;
use crate::domain::health::{RiskFlag, RiskSignal};
use crate::domain::resident_id::ResidentId;
use crate::error::AppError;
use crate::store::{ActionContext, FlagWrite, FlagWriteOutcome, Store};

/// Rows per request: a batch answers within the function's time limit on a busy table.
pub const MAX_FLAG_ROWS: usize = 500;

/// `POST /authority/risk-flags` body.
#[derive(Debug, Deserialize)]
pub struct FlagBatch {
    pub rows: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct FlagRow {
    id_number: Option<String>,
    flag: Option<String>,
    effective_at: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    #[serde(default)]
    clear: bool,
}

/// Why a row was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowError {
    MalformedRow,
    InvalidIdNumber,
    InvalidFlag,
    InvalidWindow,
}

impl RowRefusal for RowError {
    fn code(self) -> &'static str {
        match self {
            Self::MalformedRow => "malformed_row",
            Self::InvalidIdNumber => "invalid_id_number",
            Self::InvalidFlag => "invalid_flag",
            Self::InvalidWindow => "invalid_window",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::MalformedRow => "记录格式不正确",
            Self::InvalidIdNumber => "请输入正确的身份证",
            Self::InvalidFlag => "风险类别不正确",
            Self::InvalidWindow => "生效时间或结束时间不正确",
        }
    }
}

/// Each row's outcome, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutcome {
    Applied(FlagWriteOutcome),
    Rejected(RowError),
}

impl IntoRowAnswer for RowOutcome {
    fn row_answer(self, index: usize) -> RowAnswer {
        let done = match self {
            Self::Applied(FlagWriteOutcome::Stored) => answers::RowOutcome::Stored,
            Self::Applied(FlagWriteOutcome::Cleared) => answers::RowOutcome::Cleared,
            Self::Applied(FlagWriteOutcome::Unchanged) => answers::RowOutcome::Unchanged,
            Self::Rejected(error) => return error.rejected(index),
        };
        RowAnswer::done(index, done)
    }
}

/// A row as the store takes it; the ID number is gone once this exists.
enum ParsedRow {
    Set(String, RiskSignal),
    Clear(String, RiskFlag),
}

fn parse_row(store: &Store, raw: &Value, now: DateTime<Utc>) -> Result<ParsedRow, RowError> {
    let row: FlagRow = serde_json::from_value(raw.clone()).map_err(|_| RowError::MalformedRow)?;
    let id = ResidentId::parse(row.id_number.as_deref().unwrap_or(""), china_date(now))
        .map_err(|_| RowError::InvalidIdNumber)?;
    let flag = row
        .flag
        .as_deref()
        .and_then(RiskFlag::parse)
        .ok_or(RowError::InvalidFlag)?;
    let relative_key = store.keys().relative_key(&id);
    if row.clear {
        return Ok(ParsedRow::Clear(relative_key, flag));
    }
    let effective_at = row.effective_at.ok_or(RowError::InvalidWindow)?;
    if row.until.is_some_and(|until| until <= effective_at) {
        return Err(RowError::InvalidWindow);
    }
    Ok(ParsedRow::Set(
        relative_key,
        RiskSignal {
            flag,
            effective_at,
            until: row.until,
        },
    ))
}

/// Applies a batch; good rows are stored even when others are refused. A store outage
/// answers 503 for the whole batch, which is safe to send again (replays change nothing).
pub async fn apply_flags(
    store: &Store,
    actor: &str,
    batch: FlagBatch,
    ctx: ActionContext<'_>,
) -> Result<Vec<RowOutcome>, AppError> {
    let rows = batch::rows(batch.rows, MAX_FLAG_ROWS)?;
    let mut outcomes = Vec::with_capacity(rows.len());
    for raw in &rows {
        let outcome = match parse_row(store, raw, ctx.at) {
            Err(error) => RowOutcome::Rejected(error),
            Ok(ParsedRow::Set(relative_key, signal)) => {
                let write = FlagWrite::Set {
                    relative_key: &relative_key,
                    signal,
                };
                RowOutcome::Applied(store.write_flag(write, actor, ctx).await?)
            }
            Ok(ParsedRow::Clear(relative_key, flag)) => {
                let write = FlagWrite::Clear {
                    relative_key: &relative_key,
                    flag,
                };
                RowOutcome::Applied(store.write_flag(write, actor, ctx).await?)
            }
        };
        outcomes.push(outcome);
    }
    Ok(outcomes)
}
