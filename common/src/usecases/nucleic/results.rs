//! A guardian reads a relative's tests: newest first, a page at a time behind a sealed cursor,
//! only what was sampled since the guardian's binding was verified, and every read audited.

use chrono::{DateTime, Utc};

use crate::crypto::SealContext;
use crate::domain::binding::{Binding, BindingId, BindingStatus, GuardianId};
use crate::error::AppError;
use crate::store::{ActionContext, Store, TestRecord};
use crate::usecases::bindings::current_binding;

pub const DEFAULT_PAGE_SIZE: usize = 20;
pub const MAX_PAGE_SIZE: usize = 50;

/// One page of a relative's results.
#[derive(Debug, Clone)]
pub struct ResultsPage {
    pub binding: Binding,
    pub tests: Vec<TestRecord>,
    /// Opaque; give it back as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

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

/// Results are shown from the moment the guardian's binding became usable: before it was
/// verified, anyone who knew the ID number could have made it.
fn visible_since(binding: &Binding) -> DateTime<Utc> {
    binding.verified_at.unwrap_or(binding.bound_at)
}

pub async fn results(
    store: &Store,
    guardian: &GuardianId,
    id: &BindingId,
    limit: usize,
    cursor: Option<&str>,
    ctx: ActionContext<'_>,
) -> Result<ResultsPage, AppError> {
    // Results stay readable while face verification is owed after 7: they are not a code.
    let binding = current_binding(store, guardian, id, ctx.at).await?;
    if binding.status != BindingStatus::Active {
        return Err(AppError::BindingNotFound);
    }
    let context = SealContext::ResultsCursor {
        binding_id: binding.id.as_str(),
    };
    let after = cursor
        .map(|c| {
            store
                .keys()
                .open(c, context)
                .map_err(|_| AppError::InvalidCursor)
        })
        .transpose()?;
    let page = store
        .tests_page(
            &binding.relative_key,
            visible_since(&binding),
            after.as_deref(),
            limit,
            ctx.at,
        )
        .await?;
    // Nothing is shown that was not recorded as seen.
    store
        .record_results_viewed(guardian.as_str(), &binding.relative_key, &binding.id, ctx)
        .await?;
    let next_cursor = page.next_after.map(|sk| store.keys().seal(&sk, context));
    Ok(ResultsPage {
        binding,
        tests: page.tests,
        next_cursor,
    })
}
