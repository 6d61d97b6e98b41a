//! A guardian reads a relative's tests: newest first, a page at a time behind a sealed cursor,
//! only what was sampled since the guardian's binding was verified, and every read audited.

use crate::crypto::SealContext;
use crate::domain::binding::{Binding, BindingId, BindingStatus, GuardianId};
use crate::error::AppError;
use crate::store::{ActionContext, Store, TestRecord};
use crate::usecases::bindings::current_binding;
use crate::usecases::paging::{open_cursor, seal_cursor};

/// One page of a relative's results.
#[derive(Debug, Clone)]
pub struct ResultsPage {
    pub binding: Binding,
    pub tests: Vec<TestRecord>,
    /// Opaque; give it back as `cursor` for the next page.
    pub next_cursor: Option<String>,
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
    let after = open_cursor(store.keys(), cursor, context)?;
    let page = store
        .tests_page(
            &binding.relative_key,
            binding.visible_since(),
            after.as_deref(),
            limit,
            ctx.at,
        )
        .await?;
    // Nothing is shown that was not recorded as seen.
    store.record_results_viewed(&binding, ctx).await?;
    let next_cursor = seal_cursor(store.keys(), page.next_after, context);
    Ok(ResultsPage {
        binding,
        tests: page.tests,
        next_cursor,
    })
}
