//! Batches from staff systems (the authority's flags, the labs' results): bounded, each row
//! judged on its own, each row's outcome answered in order.

use serde_json::Value;

use crate::answers::{BatchAnswer, RowAnswer};
use crate::error::AppError;

/// Why a row was refused: a stable code and what the operator reads.
pub trait RowRefusal: Copy {
    fn code(self) -> &'static str;
    fn message(self) -> &'static str;

    /// The row's answer: `outcome: "rejected"` with this refusal.
    fn rejected(self, index: usize) -> RowAnswer {
        RowAnswer::rejected(index, self.code(), self.message())
    }
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
pub trait IntoRowAnswer: Copy {
    fn row_answer(self, index: usize) -> RowAnswer;
}

/// A batch's answer: `{"results": [...]}`, each row's outcome in the order given.
pub fn answer<R: IntoRowAnswer>(outcomes: &[R]) -> BatchAnswer {
    let results = outcomes
        .iter()
        .enumerate()
        .map(|(index, outcome)| outcome.row_answer(index))
        .collect();
    BatchAnswer { results }
}
