//! A guardian reads a relative's tests: newest first, a page at a time behind a sealed cursor,
//! only what was sampled since the guardian's binding was verified, and every read audited.

use chrono::{DateTime, Utc};

use crate::crypto::SealContext;
use crate::domain::binding::{Binding, BindingId, BindingStatus, GuardianId};
use crate::error::AppError;
use crate::store::{ActionContext, Store, TestRecord};

pub use crate::usecases::paging::{page_size, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// One page of a relative's results.
#[derive(Debug, Clone)]
pub struct ResultsPage {
    pub binding: Binding,
    pub tests: Vec<TestRecord>,
    /// Opaque; give it back as `cursor` for the next page.
    pub next_cursor: Option<String>,
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
    let binding = store
        .binding(guardian, id)
        .await?
        .filter(|b| b.status == BindingStatus::Active)
        .ok_or(AppError::BindingNotFound)?;
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
