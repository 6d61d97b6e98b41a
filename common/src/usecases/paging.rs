//! Pages of a relative's history (results, the access log, disputes): a page size the caller may ask
//! for, and a cursor sealed so a client can neither read nor alter it, nor use it with
//! another binding or another list.

use crate::crypto::{Keys, SealContext};
use crate::error::AppError;

pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 50;

/// Parses `limit` (1–50, default 20).
pub fn page_size(raw: Option<&str>) -> Result<usize, AppError> {
    match raw {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(raw) => raw
            .parse()
            .ok()
            .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
            .ok_or_else(|| AppError::MalformedRequest("limit must be 1 to 50".into())),
    }
}

/// Where the page the cursor asks for starts (a sort key), or the first page.
pub fn open_cursor(
    keys: &Keys,
    cursor: Option<&str>,
    context: SealContext<'_>,
) -> Result<Option<String>, AppError> {
    cursor
        .map(|c| keys.open(c, context).map_err(|_| AppError::InvalidCursor))
        .transpose()
}

/// The cursor of the next page, if there is one.
pub fn seal_cursor(
    keys: &Keys,
    next_after: Option<String>,
    context: SealContext<'_>,
) -> Option<String> {
    next_after.map(|sk| keys.seal(&sk, context))
}
