//! Co-guardians and disputes. Every guardian of a relative sees the others, each by a handle
//! keyed to the relative (never their platform id); one reports a co-guardian's binding as not
//! legitimate and reads what became of the report. The health authority reads the open
//! reports, oldest first, and upholds (the binding ends at once, its guardian barred from
//! binding the person again for a while) or dismisses each, once.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::binding::{Binding, BindingId, BindingStatus, GuardianId};
use crate::domain::dispute::{
    ban_ends, DisputeDecision, DisputeDetails, DisputeId, DisputeReason, DisputeStatus,
};
use crate::domain::relationship::Relationship;
use crate::error::AppError;
use crate::store::{
    ActionContext, Dispute, DisputePage, NewDispute, OpenDisputeError, Resolution, ResolveError,
    Store,
};

/// A guardian of the relative, as every guardian of the relative sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoGuardian {
    /// `Keys::guardian_handle`: stable for this relative, unlinkable across relatives.
    pub handle: String,
    pub relationship: Relationship,
    pub bound_at: DateTime<Utc>,
    pub verified_at: Option<DateTime<Utc>>,
    /// The one asking.
    pub is_caller: bool,
}

/// The caller's binding and every guardian of its relative, longest-standing first.
#[derive(Debug, Clone)]
pub struct CoGuardians {
    pub binding: Binding,
    pub guardians: Vec<CoGuardian>,
}

/// The caller's verified binding: another's is not found, a pending one must be verified
/// first (until then anyone who knew the ID number could have made it).
async fn verified_binding(
    store: &Store,
    guardian: &GuardianId,
    id: &BindingId,
) -> Result<Binding, AppError> {
    let binding = store
        .binding(guardian, id)
        .await?
        .ok_or(AppError::BindingNotFound)?;
    match binding.status {
        BindingStatus::Active => Ok(binding),
        BindingStatus::PendingVerification => Err(AppError::VerificationRequired),
    }
}

pub async fn co_guardians(
    store: &Store,
    guardian: &GuardianId,
    id: &BindingId,
) -> Result<CoGuardians, AppError> {
    let binding = verified_binding(store, guardian, id).await?;
    let guardians = store
        .guardians_of(&binding.relative_key)
        .await?
        .into_iter()
        .map(|member| CoGuardian {
            handle: store
                .keys()
                .guardian_handle(&binding.relative_key, member.guardian.as_str()),
            relationship: member.relationship,
            bound_at: member.bound_at,
            verified_at: member.verified_at,
            is_caller: member.guardian == *guardian,
        })
        .collect();
    Ok(CoGuardians { binding, guardians })
}

/// `POST /relatives/{binding_id}/disputes` body.
#[derive(Debug, Deserialize)]
pub struct ReportRequest {
    /// The disputed co-guardian's handle.
    pub guardian: Option<String>,
    pub reason: Option<String>,
    pub details: Option<String>,
}

/// Opens a dispute of a co-guardian's binding of the relative the caller holds (verified).
pub async fn report(
    store: &Store,
    guardian: &GuardianId,
    id: &BindingId,
    request: ReportRequest,
    ctx: ActionContext<'_>,
) -> Result<Dispute, AppError> {
    let binding = verified_binding(store, guardian, id).await?;
    let reason = request
        .reason
        .as_deref()
        .and_then(DisputeReason::parse)
        .ok_or(AppError::InvalidDisputeReason)?;
    let details = DisputeDetails::parse(request.details.as_deref().unwrap_or(""), reason)
        .ok_or(AppError::InvalidDisputeDetails)?;
    let keys = store.keys();
    let relative_key = &binding.relative_key;
    let handle_of = |g: &GuardianId| keys.guardian_handle(relative_key, g.as_str());
    let own_handle = handle_of(guardian);
    let wanted = request.guardian.as_deref().unwrap_or("");
    if wanted == own_handle {
        return Err(AppError::DisputeOwnBinding);
    }
    let members = store.guardians_of(relative_key).await?;
    let disputed = members
        .iter()
        .find(|m| m.guardian != *guardian && handle_of(&m.guardian) == wanted)
        .ok_or(AppError::GuardianNotFound)?;
    let dispute_id = DisputeId::opened_at(ctx.at);
    let new = NewDispute {
        id: &dispute_id,
        reporter: &binding,
        reporter_handle: &own_handle,
        disputed,
        disputed_handle: wanted,
        reason,
        details: &details,
    };
    store.open_dispute(new, ctx).await.map_err(|e| match e {
        OpenDisputeError::DisputedGone => AppError::GuardianNotFound,
        OpenDisputeError::AlreadyOpen => AppError::DisputeAlreadyOpen,
        OpenDisputeError::TooMany => AppError::TooManyDisputes,
        OpenDisputeError::Failed(e) => e,
    })
}

/// A page cursor: the id of the last dispute of the previous page. Nothing secret (it is in
/// that page's answer), but it must be an id.
fn after(cursor: Option<&str>) -> Result<Option<DisputeId>, AppError> {
    cursor
        .map(|c| DisputeId::parse(c).ok_or(AppError::InvalidCursor))
        .transpose()
}

/// The disputes the caller opened, newest first, with their outcomes.
pub async fn my_disputes(
    store: &Store,
    guardian: &GuardianId,
    limit: usize,
    cursor: Option<&str>,
) -> Result<DisputePage, AppError> {
    store
        .disputes_of(guardian, after(cursor)?.as_ref(), limit)
        .await
}

/// The authority's queue: open disputes, oldest first.
pub async fn open_disputes(
    store: &Store,
    limit: usize,
    cursor: Option<&str>,
) -> Result<DisputePage, AppError> {
    store.open_disputes(after(cursor)?.as_ref(), limit).await
}

/// `POST /authority/disputes/{dispute_id}/resolution` body.
#[derive(Debug, Deserialize)]
pub struct ResolveRequest {
    pub decision: Option<String>,
}

/// How often a resolution reads the disputed binding again when it changed meanwhile (a card,
/// its verification, its unbind).
const RESOLVE_ATTEMPTS: usize = 3;

/// Resolves an open dispute; a resolved one is a 409 naming its outcome. Upholding ends the
/// disputed binding at once (the 24 h rule is the guardian's, not the authority's), with its
/// codes and cards revoked, and bars its guardian from binding the person until
/// `ban_ends(now)`; a binding its guardian has unbound meanwhile still gets the
/// outcome and the ban.
pub async fn resolve(
    store: &Store,
    actor: &str,
    id: &DisputeId,
    request: ResolveRequest,
    ctx: ActionContext<'_>,
) -> Result<Dispute, AppError> {
    let decision = request
        .decision
        .as_deref()
        .and_then(DisputeDecision::parse)
        .ok_or(AppError::InvalidDecision)?;
    let mut attempt = 1;
    loop {
        let dispute = store.dispute(id).await?.ok_or(AppError::DisputeNotFound)?;
        if dispute.status != DisputeStatus::Open {
            return Err(AppError::DisputeAlreadyResolved {
                outcome: dispute.status,
            });
        }
        let (outcome, ended, banned_until) = match decision {
            DisputeDecision::Dismiss => (
                store
                    .resolve_dispute(&dispute, Resolution::Dismiss, actor, ctx)
                    .await,
                None,
                None,
            ),
            DisputeDecision::Uphold => {
                // Read like an unbind: the binding, then its cards; a card recorded after
                // this read moves the binding's version, and the write below then refuses.
                let binding = store
                    .binding(&dispute.disputed_guardian, &dispute.disputed_binding)
                    .await?;
                let offline_cards = match &binding {
                    Some(b) if b.status == BindingStatus::Active => {
                        store.offline_cards(&b.id).await?
                    }
                    _ => Vec::new(),
                };
                let banned_until = ban_ends(ctx.at);
                let resolution = Resolution::Uphold {
                    binding: binding.as_ref(),
                    offline_cards: &offline_cards,
                    banned_until,
                };
                (
                    store
                        .resolve_dispute(&dispute, resolution, actor, ctx)
                        .await,
                    Some(binding.is_some()),
                    Some(banned_until),
                )
            }
        };
        match outcome {
            Ok(()) => {
                return Ok(Dispute {
                    status: decision.outcome(),
                    resolved_at: Some(ctx.at),
                    binding_ended: ended,
                    banned_until,
                    ..dispute
                })
            }
            // Someone resolved it first (the next read says how), the binding changed, or
            // another write held an item: read again.
            Err(
                ResolveError::AlreadyResolved
                | ResolveError::BindingChanged
                | ResolveError::Failed(AppError::Conflict),
            ) if attempt < RESOLVE_ATTEMPTS => {}
            Err(ResolveError::AlreadyResolved | ResolveError::BindingChanged) => {
                return Err(AppError::Conflict)
            }
            Err(ResolveError::Failed(e)) => return Err(e),
        }
        attempt += 1;
    }
}
