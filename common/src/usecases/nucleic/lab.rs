//! Lab results: a batch of `{tube_id, result, reported_at}` rows, each judged on its own; a
//! result is stored on the tube and on every person in it at once, and a replay changes
//! nothing.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::Value;

use crate::answers::{self, RowAnswer};
use crate::domain::nucleic::{
    judge_result, reported_since_opening, reporting_clock_skew, LabResult, ResultChange, TubeId,
    TubeKind,
};
use crate::error::AppError;
use crate::store::{ActionContext, Store};
use crate::usecases::batch::{self, IntoRowAnswer, RowRefusal};

/// Rows per request: 500 tubes hold up to 10,000 people and answer well within the
/// function's time limit.
pub const MAX_RESULT_ROWS: usize = 500;
/// Rows worked on at once: each is two round trips, mostly waiting.
const ROWS_IN_FLIGHT: usize = 8;

/// `POST /lab/results` body.
#[derive(Debug, Deserialize)]
pub struct ResultBatch {
    pub rows: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct ResultRow {
    tube_id: Option<String>,
    result: Option<String>,
    /// Parsed after the row, so a string that is no RFC 3339 time is `invalid_reported_at`
    /// (the field's own refusal), not `malformed_row` (a field of the wrong type).
    reported_at: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowError {
    MalformedRow,
    InvalidTubeId,
    InvalidResult,
    InvalidReportedAt,
    UnknownTube,
    ConflictingResult,
}

impl RowRefusal for RowError {
    fn code(self) -> &'static str {
        match self {
            Self::MalformedRow => "malformed_row",
            Self::InvalidTubeId => "invalid_tube_id",
            Self::InvalidResult => "invalid_result",
            Self::InvalidReportedAt => "invalid_reported_at",
            Self::UnknownTube => "unknown_tube",
            Self::ConflictingResult => "conflicting_result",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::MalformedRow => "记录格式不正确",
            Self::InvalidTubeId => "试管条码不正确",
            Self::InvalidResult => "检测结果只能是 negative、positive 或 invalid",
            Self::InvalidReportedAt => "报告时间不正确",
            Self::UnknownTube => "未找到该试管的采样登记",
            Self::ConflictingResult => "该试管已有不同的最终结果",
        }
    }
}

/// Each row's outcome, in the order given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutcome {
    Stored { kind: TubeKind, people: u32 },
    Unchanged,
    Rejected(RowError),
}

impl IntoRowAnswer for RowOutcome {
    fn row_answer(self, index: usize) -> RowAnswer {
        match self {
            Self::Stored { kind, people } => RowAnswer {
                tube_kind: Some(kind),
                people: Some(people),
                ..RowAnswer::done(index, answers::RowOutcome::Stored)
            },
            Self::Unchanged => RowAnswer::done(index, answers::RowOutcome::Unchanged),
            Self::Rejected(error) => error.rejected(index),
        }
    }
}

struct ParsedRow {
    tube: TubeId,
    result: LabResult,
    reported_at: DateTime<Utc>,
}

fn parse_row(raw: Value, now: DateTime<Utc>) -> Result<ParsedRow, RowError> {
    let row: ResultRow = serde_json::from_value(raw).map_err(|_| RowError::MalformedRow)?;
    let tube =
        TubeId::parse(row.tube_id.as_deref().unwrap_or("")).ok_or(RowError::InvalidTubeId)?;
    let result = row
        .result
        .as_deref()
        .and_then(LabResult::parse)
        .ok_or(RowError::InvalidResult)?;
    let reported_at = row
        .reported_at
        .as_deref()
        .and_then(|raw| DateTime::parse_from_rfc3339(raw).ok())
        .map(|at| at.with_timezone(&Utc))
        .filter(|at| *at <= now + reporting_clock_skew())
        .ok_or(RowError::InvalidReportedAt)?;
    Ok(ParsedRow {
        tube,
        result,
        reported_at,
    })
}

/// Applies a batch: good rows are stored even when others are refused. A store outage
/// answers 503 for the whole batch, which is safe to send again (replays change nothing).
pub async fn apply_results(
    store: &Store,
    actor: &str,
    batch: ResultBatch,
    ctx: ActionContext<'_>,
) -> Result<Vec<RowOutcome>, AppError> {
    let rows = batch::rows(batch.rows, MAX_RESULT_ROWS)?;
    stream::iter(
        rows.into_iter()
            .map(|raw| apply_row(store, actor, raw, ctx)),
    )
    .buffered(ROWS_IN_FLIGHT)
    .try_collect()
    .await
}

async fn apply_row(
    store: &Store,
    actor: &str,
    raw: Value,
    ctx: ActionContext<'_>,
) -> Result<RowOutcome, AppError> {
    let row = match parse_row(raw, ctx.at) {
        Ok(row) => row,
        Err(error) => return Ok(RowOutcome::Rejected(error)),
    };
    // A write loses only when someone joined the tube or reported it meanwhile; both are
    // bounded, so retries end.
    for _ in 0..=TubeKind::MAX_CAPACITY + 1 {
        let Some(tube) = store.tube(&row.tube, ctx.at).await? else {
            return Ok(RowOutcome::Rejected(RowError::UnknownTube));
        };
        if !reported_since_opening(row.reported_at, tube.opened_at) {
            return Ok(RowOutcome::Rejected(RowError::InvalidReportedAt));
        }
        match judge_result(tube.result, row.result) {
            ResultChange::Unchanged => return Ok(RowOutcome::Unchanged),
            ResultChange::Conflicts => {
                return Ok(RowOutcome::Rejected(RowError::ConflictingResult))
            }
            ResultChange::Store => {
                if store
                    .record_result(&row.tube, &tube, row.result, row.reported_at, actor, ctx)
                    .await?
                {
                    return Ok(RowOutcome::Stored {
                        kind: tube.kind,
                        people: tube.filled,
                    });
                }
            }
        }
    }
    Err(AppError::Conflict)
}
