//! Batches from staff systems (the authority's flags, the labs' results): bounded, each row
//! judged on its own, each row's outcome answered in order.

use serde_json::{json, Value};

use crate::error::AppError;

/// Why a row was refused: a stable code and what the operator reads.
pub trait RowRefusal: Copy {
    fn code(self) -> &'static str;
    fn message(self) -> &'static str;
}

/// The rows of a batch body, refused whole when missing or over `max_rows`.
pub fn rows(rows: Option<Vec<Value>>, max_rows: usize) -> Result<Vec<Value>, AppError> {
    let rows = rows.ok_or_else(|| AppError::MalformedRequest("rows missing".into()))?;
    if rows.len() > max_rows {
        return Err(AppError::BatchTooLarge { max_rows });
    }
    Ok(rows)
}

/// A row's outcome as the batch's answer lists it.
pub trait RowAnswer: Copy {
    fn json(self, index: usize) -> Value;
}

/// A batch's answer: `{"results": [...]}`, each row's outcome in the order given.
pub fn answer<R: RowAnswer>(outcomes: &[R]) -> Value {
    let results: Vec<Value> = outcomes
        .iter()
        .enumerate()
        .map(|(index, outcome)| outcome.json(index))
        .collect();
    json!({ "results": results })
}

/// One row's answer: `{"index","outcome"}`, or `outcome: "rejected"` with the error.
pub fn row_json<R: RowRefusal>(index: usize, outcome: Result<&'static str, R>) -> Value {
    match outcome {
        Ok(done) => json!({ "index": index, "outcome": done }),
        Err(refusal) => json!({
            "index": index,
            "outcome": "rejected",
            "error": { "code": refusal.code(), "message": refusal.message() },
        }),
    }
}
