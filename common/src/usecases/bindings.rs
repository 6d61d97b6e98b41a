//! The binding use cases: bind, list, verify, unbind. Handlers translate HTTP to these calls;
//! these apply the domain rules and call the store.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::adapters::face::{FaceOutcome, FaceVerifier};
use crate::domain::binding::{
    Binding, BindingId, BindingStatus, GuardianId, IdempotencyKey, Verification,
};
use crate::domain::china_time::china_date;
use crate::domain::dispute::banned;
use crate::domain::name::PersonName;
use crate::domain::pledge::{PLEDGE_TEXT, PLEDGE_VERSION};
use crate::domain::policy::{
    eligibility, face_locked_until, may_query_face_session, may_unbind, recent_face_failures,
    unbind_available_at, VerificationMethod,
};
use crate::domain::relationship::Relationship;
use crate::domain::resident_id::ResidentId;
use crate::error::AppError;
use crate::store::{
    ActionContext, AuditAction, CreateBindingError, NewBinding, OfflineCardRecord, Store,
};

/// `POST /relatives` body, as typed by the guardian.
#[derive(Debug, Deserialize)]
pub struct BindRequest {
    pub name: Option<String>,
    pub id_number: Option<String>,
    pub relationship: Option<String>,
    pub consent: Option<bool>,
}

pub async fn bind(
    store: &Store,
    guardian: &GuardianId,
    request: BindRequest,
    idempotency_key: Option<&IdempotencyKey>,
    ctx: ActionContext<'_>,
) -> Result<Binding, AppError> {
    let today = china_date(ctx.at);
    let id_number = ResidentId::parse(request.id_number.as_deref().unwrap_or(""), today)
        .map_err(AppError::InvalidResidentId)?;
    let name = PersonName::parse(request.name.as_deref().unwrap_or(""))
        .map_err(|_| AppError::InvalidName)?;
    let relationship = request
        .relationship
        .as_deref()
        .and_then(Relationship::parse)
        .ok_or(AppError::InvalidRelationship)?;
    if request.consent != Some(true) {
        return Err(AppError::ConsentRequired);
    }
    let eligibility =
        eligibility(id_number.birth_date(), today).map_err(AppError::AgeNotEligible)?;

    let relative_key = store.keys().relative_key(&id_number);
    let id = match idempotency_key {
        Some(key) => BindingId::parse(
            &store
                .keys()
                .binding_id_for_retry(guardian.as_str(), key.as_str()),
        )
        .expect("derived ids are canonical UUIDs"),
        None => BindingId::random(),
    };
    let new = NewBinding {
        id: &id,
        guardian,
        relative_key: &relative_key,
        name: &name,
        id_number: &id_number,
        relationship,
        eligibility,
    };
    match store.create_binding(new, ctx).await {
        Ok(binding) => Ok(binding),
        // A retry of the same request finds its own binding and answers as the first time.
        Err(CreateBindingError::IdTaken) => match store.binding(guardian, &id).await? {
            Some(existing) if existing.relative_key == relative_key => Ok(existing),
            _ => Err(AppError::IdempotencyKeyReused),
        },
        // The key's binding was unbound: the id stays retired while its codes could be shown.
        Err(CreateBindingError::IdRetired) => Err(AppError::IdempotencyKeyReused),
        Err(CreateBindingError::AlreadyBound) => Err(AppError::AlreadyBound),
        Err(CreateBindingError::GuardianFull) => Err(AppError::GuardianLimitReached),
        Err(CreateBindingError::RelativeFull) => Err(AppError::RelativeLimitReached),
        // An upheld dispute bars the guardian; read until when, for the answer (a ban that
        // ended in between is a race the client's retry settles).
        Err(CreateBindingError::Banned) => match store.ban_until(guardian, &relative_key).await? {
            Some(until) if banned(until, ctx.at) => Err(AppError::BindingBanned { until }),
            _ => Err(AppError::Conflict),
        },
        Err(CreateBindingError::Failed(e)) => Err(e),
    }
}

/// The caller's bindings at `now`, newest first. One whose child turned 17 is over from that
/// moment, though the cleanup removes it up to an hour later: it is not listed.
pub async fn list(
    store: &Store,
    guardian: &GuardianId,
    now: DateTime<Utc>,
) -> Result<Vec<Binding>, AppError> {
    let mut bindings = store.bindings(guardian).await?;
    bindings.retain(|b| !b.transitions.ended(now));
    Ok(bindings)
}

/// The caller's binding at `now`: another guardian's, an unbound one, or one whose child has
/// turned 17 (before the cleanup removes it) is not found.
pub(crate) async fn current_binding(
    store: &Store,
    guardian: &GuardianId,
    id: &BindingId,
    now: DateTime<Utc>,
) -> Result<Binding, AppError> {
    store
        .binding(guardian, id)
        .await?
        .filter(|b| !b.transitions.ended(now))
        .ok_or(AppError::BindingNotFound)
}

/// What the client does next to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerificationStart {
    Face {
        certify_id: String,
        /// The page the client opens for the scan (Alipay's certify URL).
        certify_url: Option<String>,
    },
    Pledge {
        version: &'static str,
        text: &'static str,
    },
}

/// A face attempt's reference for the provider (Alipay's `outer_order_no`, 32 characters):
/// unique per attempt, and traceable to the binding by its first half, the binding id's
/// first 16 hex digits. Nothing about the person.
fn face_attempt(binding: &BindingId) -> String {
    let binding_hex = binding.as_str().replace('-', "");
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{}{}", &binding_hex[..16], &random[..16])
}

/// A provider answer that failed its signature check is refused, and the refusal audited.
async fn refuse_untrusted<T>(
    store: &Store,
    binding: &Binding,
    answer: Result<T, AppError>,
    ctx: ActionContext<'_>,
) -> Result<T, AppError> {
    if let Err(AppError::FaceProviderUntrusted) = answer {
        store
            .record_binding_event(binding, AuditAction::FaceResponseRejected, ctx)
            .await?;
    }
    answer
}

fn refuse_if_face_locked(failures: &[DateTime<Utc>], now: DateTime<Utc>) -> Result<(), AppError> {
    match face_locked_until(failures, now) {
        Some(retry_at) => Err(AppError::TooManyFaceAttempts { retry_at }),
        None => Ok(()),
    }
}

pub async fn start_verification(
    store: &Store,
    face: &impl FaceVerifier,
    guardian: &GuardianId,
    id: &BindingId,
    ctx: ActionContext<'_>,
) -> Result<VerificationStart, AppError> {
    let binding = current_binding(store, guardian, id, ctx.at).await?;
    // A child bound with the pledge is verified again, by face, once 7.
    let Some(method) = binding.verification_due(ctx.at) else {
        return Err(AppError::AlreadyVerified);
    };
    match method {
        VerificationMethod::Pledge => Ok(VerificationStart::Pledge {
            version: PLEDGE_VERSION,
            text: PLEDGE_TEXT,
        }),
        VerificationMethod::Face => {
            // A new attempt abandons an open one, which never passed (the binding would be
            // active): it counts as a failed attempt, so a client that never reports how a scan
            // ended cannot open unlimited (billable) sessions. The attempt is reserved (and the
            // abandoned one counted) by a conditional write before the provider is called:
            // simultaneous starts get one session between them, the others a 409, and a start
            // that would make it the 5th failure within the hour is the 429. An attempt whose
            // provider call failed stays reserved: its session may exist, and is counted if
            // abandoned.
            let mut failures = recent_face_failures(&binding.face_failures, ctx.at);
            if binding.face_attempt_open() {
                failures.push(ctx.at);
            }
            refuse_if_face_locked(&failures, ctx.at)?;
            let attempt = face_attempt(&binding.id);
            store
                .reserve_face_attempt(&binding, &attempt, &failures, ctx)
                .await?;
            let started = {
                let identity = store.relative_identity(&binding).await?;
                face.start(&binding.id, &attempt, &identity).await
                // The name and ID number are wiped here, after the one call that needs them.
            };
            let session = refuse_untrusted(store, &binding, started, ctx).await?;
            store
                .record_face_session(&binding, &attempt, &session.certify_id)
                .await?;
            Ok(VerificationStart::Face {
                certify_id: session.certify_id,
                certify_url: session.certify_url,
            })
        }
    }
}

/// `POST /relatives/{id}/verification/complete` body: the face session's id and the client
/// SDK's evidence, or the pledge version the guardian accepted.
#[derive(Debug, Deserialize)]
pub struct CompleteRequest {
    pub certify_id: Option<String>,
    #[serde(default)]
    pub evidence: Value,
    pub pledge_version: Option<String>,
    pub accepted: Option<bool>,
}

pub async fn complete_verification(
    store: &Store,
    face: &impl FaceVerifier,
    guardian: &GuardianId,
    id: &BindingId,
    request: CompleteRequest,
    ctx: ActionContext<'_>,
) -> Result<Binding, AppError> {
    let binding = current_binding(store, guardian, id, ctx.at).await?;
    let Some(method) = binding.verification_due(ctx.at) else {
        // A retried completion answers as the first one did.
        return Ok(binding);
    };
    let verification = match method {
        VerificationMethod::Pledge => {
            if request.accepted != Some(true) {
                return Err(AppError::ConsentRequired);
            }
            if request.pledge_version.as_deref() != Some(PLEDGE_VERSION) {
                return Err(AppError::PledgeOutdated);
            }
            Verification::Pledge {
                version: PLEDGE_VERSION.into(),
            }
        }
        VerificationMethod::Face => {
            refuse_if_face_locked(&binding.face_failures, ctx.at)?;
            let certify_id = match (&binding.pending_certify_id, &request.certify_id) {
                (Some(pending), Some(given)) if pending == given => pending.clone(),
                _ => return Err(AppError::VerificationNotStarted),
            };
            // Each query of the provider is counted first (a billable call, whatever it
            // answers), so "not finished yet" cannot be asked for ever.
            if !may_query_face_session(binding.face_queries) {
                return Err(AppError::TooManyFaceQueries);
            }
            store.count_face_query(&binding, &certify_id).await?;
            let outcome = face.outcome(&certify_id, &request.evidence).await;
            match refuse_untrusted(store, &binding, outcome, ctx).await? {
                FaceOutcome::Passed => {}
                FaceOutcome::NotFinished => return Err(AppError::FaceNotFinished),
                FaceOutcome::Failed => {
                    let mut failures = recent_face_failures(&binding.face_failures, ctx.at);
                    failures.push(ctx.at);
                    store.record_face_failure(&binding, &failures, ctx).await?;
                    return Err(AppError::FaceVerificationFailed);
                }
            }
            Verification::Face { certify_id }
        }
    };
    store.activate(binding, verification, ctx).await
}

/// How often a binding's end reads again when a card was recorded between its reads and its
/// write.
const END_ATTEMPTS: usize = 3;

/// Runs `once` again while it loses a race: a card recorded meanwhile moved the binding's
/// version (or its transaction held the binding), so the binding and its cards are read again
/// and that card is revoked too.
async fn retrying_conflicts<T, F, Fut>(mut once: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AppError>>,
{
    let mut attempt = 1;
    loop {
        match once().await {
            Err(AppError::Conflict) if attempt < END_ATTEMPTS => attempt += 1,
            outcome => return outcome,
        }
    }
}

pub async fn unbind(
    store: &Store,
    guardian: &GuardianId,
    id: &BindingId,
    ctx: ActionContext<'_>,
) -> Result<(), AppError> {
    retrying_conflicts(|| unbind_once(store, guardian, id, ctx)).await
}

/// An active binding's offline cards, read after the binding: they go on the published
/// revocation list in the transaction that ends it. A card recorded after this read changes
/// the binding's version, and that transaction then fails its check.
async fn cards_to_revoke(
    store: &Store,
    binding: &Binding,
) -> Result<Vec<OfflineCardRecord>, AppError> {
    match binding.status {
        BindingStatus::Active => store.offline_cards(&binding.id).await,
        BindingStatus::PendingVerification => Ok(Vec::new()),
    }
}

/// Closes the caller's kincode account: every binding of theirs ends, as an unbind each (codes
/// revoked, counters released, audited, the person's erasure scheduled). The 24-hour rule
/// holds per binding, so while any binding is younger the closure is refused as a whole with
/// the moment it becomes possible, and nothing ends: a half-closed account would surprise its
/// owner. A binding made while the closure runs is not ended by it. Returns how many ended.
pub async fn close_account(
    store: &Store,
    guardian: &GuardianId,
    ctx: ActionContext<'_>,
) -> Result<usize, AppError> {
    let bindings = store.bindings(guardian).await?;
    let youngest = bindings
        .iter()
        .filter(|b| !may_unbind(b.bound_at, ctx.at))
        .map(|b| unbind_available_at(b.bound_at))
        .max();
    if let Some(available_at) = youngest {
        return Err(AppError::UnbindTooEarly { available_at });
    }
    for binding in &bindings {
        unbind(store, guardian, &binding.id, ctx).await?;
    }
    tracing::info!(
        bindings = bindings.len(),
        request_id = ctx.request_id,
        "account closed"
    );
    Ok(bindings.len())
}

async fn unbind_once(
    store: &Store,
    guardian: &GuardianId,
    id: &BindingId,
    ctx: ActionContext<'_>,
) -> Result<(), AppError> {
    let Some(binding) = store.binding(guardian, id).await? else {
        // Unbinding twice is success, and so is unbinding one the cleanup ended at 17; someone
        // else's binding stays not found.
        return match store.was_unbound(guardian, id).await? {
            true => Ok(()),
            false => Err(AppError::BindingNotFound),
        };
    };
    if !may_unbind(binding.bound_at, ctx.at) {
        return Err(AppError::UnbindTooEarly {
            available_at: unbind_available_at(binding.bound_at),
        });
    }
    let offline_cards = cards_to_revoke(store, &binding).await?;
    store.delete_binding(&binding, &offline_cards, ctx).await
}

/// Ends a child's binding on the 17th birthday (the scheduled cleanup), as an unbind ends it:
/// codes revoked, counters released, audited (`aged_out`). `false` if there is nothing to end
/// (the binding is gone, or the birthday has not come).
pub async fn end_at_age_limit(
    store: &Store,
    guardian: &GuardianId,
    id: &BindingId,
    ctx: ActionContext<'_>,
) -> Result<bool, AppError> {
    retrying_conflicts(|| async move {
        let Some(binding) = store.binding(guardian, id).await? else {
            return Ok(false);
        };
        if !binding.transitions.ended(ctx.at) {
            return Ok(false);
        }
        let offline_cards = cards_to_revoke(store, &binding).await?;
        store
            .age_out_binding(&binding, &offline_cards, ctx)
            .await
            .map(|()| true)
    })
    .await
}
