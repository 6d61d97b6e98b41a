//! A guardian reads the relative's access log: newest first, a page at a time behind a sealed
//! cursor. Every guardian of the relative reads the same log, each from the moment their own
//! binding was made, and only once it is verified: a binding anyone could make with an ID
//! number and a pledge reads nothing about the relative's past.

use crate::crypto::SealContext;
use crate::domain::access_log::AccessEntry;
use crate::domain::binding::{Binding, BindingId, BindingStatus, GuardianId};
use crate::error::AppError;
use crate::store::{ActionContext, Store};
use crate::usecases::paging::{open_cursor, seal_cursor};

/// One page of the log as the caller sees it.
#[derive(Debug, Clone)]
pub struct AccessLogView {
    pub binding: Binding,
    pub entries: Vec<AccessEntry>,
    /// The caller's own handle: their entries are the ones whose actor carries it.
    pub own_handle: String,
    /// Opaque; give it back as `cursor` for the next page.
    pub next_cursor: Option<String>,
}

impl AccessLogView {
    /// Whether the caller did this.
    pub fn by_caller(&self, entry: &AccessEntry) -> bool {
        entry.is_by(&self.own_handle)
    }
}

pub async fn access_log(
    store: &Store,
    guardian: &GuardianId,
    id: &BindingId,
    limit: usize,
    cursor: Option<&str>,
    ctx: ActionContext<'_>,
) -> Result<AccessLogView, AppError> {
    let binding = store
        .binding(guardian, id)
        .await?
        .filter(|b| b.status == BindingStatus::Active)
        .ok_or(AppError::BindingNotFound)?;
    let context = SealContext::AccessLogCursor {
        binding_id: binding.id.as_str(),
    };
    let after = open_cursor(store.keys(), cursor, context)?;
    let page = store
        .access_log_page(
            &binding.relative_key,
            binding.bound_at,
            after.as_deref(),
            limit,
            ctx.at,
        )
        .await?;
    let own_handle = store
        .keys()
        .guardian_handle(&binding.relative_key, guardian.as_str());
    Ok(AccessLogView {
        next_cursor: seal_cursor(store.keys(), page.next_after, context),
        entries: page.entries,
        own_handle,
        binding,
    })
}
