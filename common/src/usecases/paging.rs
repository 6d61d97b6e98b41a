//! Pages of a list a client reads a piece at a time (results, disputes): the page size.

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
