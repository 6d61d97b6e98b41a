//! A guardian takes out everything kincode holds about a relative they hold (PIPL art. 45):
//! the binding with the name and ID number opened for this answer only, how it was verified,
//! the offline cards issued, the authority's risk flags, the tests and the access log as this
//! guardian may read them (results from their verification on, the log from their binding
//! on), and the binding's own audit trail. The export is recorded before anything is opened.

use crate::adapters::face::RelativeIdentity;
use crate::domain::access_log::AccessEntry;
use crate::domain::binding::{Binding, BindingId, BindingStatus, GuardianId};
use crate::domain::health::RiskSignal;
use crate::error::AppError;
use crate::store::{ActionContext, AuditLine, OfflineCardRecord, Store, TestRecord};
use crate::usecases::paging::MAX_PAGE_SIZE;

pub struct RelativeExport {
    pub binding: Binding,
    /// The relative's name and ID number, opened for this answer.
    pub identity: RelativeIdentity,
    pub offline_cards: Vec<OfflineCardRecord>,
    pub risk_flags: Vec<RiskSignal>,
    /// Newest first.
    pub tests: Vec<TestRecord>,
    /// Newest first.
    pub access_log: Vec<AccessEntry>,
    /// The caller's handle in the access log.
    pub own_handle: String,
    /// The binding's audit trail, oldest first.
    pub history: Vec<AuditLine>,
}

pub async fn export(
    store: &Store,
    guardian: &GuardianId,
    id: &BindingId,
    ctx: ActionContext<'_>,
) -> Result<RelativeExport, AppError> {
    let binding = store
        .binding(guardian, id)
        .await?
        .filter(|b| b.status == BindingStatus::Active)
        .ok_or(AppError::BindingNotFound)?;
    store.record_export(&binding, ctx).await?;
    let relative = &binding.relative_key;
    let identity = store.relative_identity(&binding).await?;
    let offline_cards = store.offline_cards(&binding.id).await?;
    let risk_flags = store.health_signals(relative, ctx.at).await?.flags;

    let since = binding.visible_since();
    let tests = all_pages(|after| async move {
        let page = store
            .tests_page(relative, since, after.as_deref(), MAX_PAGE_SIZE, ctx.at)
            .await?;
        Ok((page.tests, page.next_after))
    })
    .await?;
    let bound_at = binding.bound_at;
    let access_log = all_pages(|after| async move {
        let page = store
            .access_log_page(relative, bound_at, after.as_deref(), MAX_PAGE_SIZE, ctx.at)
            .await?;
        Ok((page.entries, page.next_after))
    })
    .await?;
    let history = store.binding_audit_trail(&binding).await?;
    let own_handle = store.keys().guardian_handle(relative, guardian.as_str());
    Ok(RelativeExport {
        binding,
        identity,
        offline_cards,
        risk_flags,
        tests,
        access_log,
        own_handle,
        history,
    })
}

/// Every page of a list read a page at a time: `page(after)` answers a page and the key the
/// next one starts after, if there is one.
async fn all_pages<T, F, Fut>(mut page: F) -> Result<Vec<T>, AppError>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<String>), AppError>>,
{
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let (items, next) = page(after).await?;
        all.extend(items);
        match next {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}
