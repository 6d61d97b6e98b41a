//! Sample registration: the code is checked as a scan for nucleic-acid testing, the tube judged
//! (kind, fill, a yellow or red code never pooled), and the person added in one transaction.

use serde::Deserialize;

use crate::codes::keys::VerificationKeys;
use crate::domain::binding::IdempotencyKey;
use crate::domain::code::ScanPurpose;
use crate::domain::nucleic::{admit, Site, TubeId, TubeKind, TubeRefusal};
use crate::error::AppError;
use crate::store::{ActionContext, RegisterError, RegisteredSample, SampleRegistration, Store};
use crate::usecases::codes::scan::{self, ScanResult};

/// `POST /checkpoints/samples` body.
#[derive(Debug, Deserialize)]
pub struct SampleRequest {
    pub code: Option<String>,
    pub tube_id: Option<String>,
    /// `single` (the default for a new tube), `pooled_10` or `pooled_20`; once a tube has
    /// its first person, a different kind is refused and no kind means the tube's own.
    pub tube_kind: Option<String>,
}

/// A registration, with the person as the scanned code resolved them.
#[derive(Debug, Clone)]
pub struct Registered {
    pub sample: RegisteredSample,
    pub scanned: ScanResult,
}

/// Who registers, and where.
pub struct Checkpoint<'a> {
    pub actor: &'a str,
    pub site: &'a Site,
}

fn refusal(refusal: TubeRefusal) -> AppError {
    match refusal {
        TubeRefusal::Full { capacity } => AppError::TubeFull { capacity },
        TubeRefusal::KindMismatch { kind } => AppError::TubeKindMismatch { tube_kind: kind },
        TubeRefusal::Closed => AppError::TubeClosed,
        TubeRefusal::AtAnotherSite => AppError::TubeAtAnotherSite,
        TubeRefusal::PoolingNotAllowed => AppError::PoolingNotAllowed,
    }
}

pub async fn register(
    store: &Store,
    keys: &VerificationKeys,
    checkpoint: Checkpoint<'_>,
    request: SampleRequest,
    idempotency_key: Option<&IdempotencyKey>,
    ctx: ActionContext<'_>,
) -> Result<Registered, AppError> {
    let tube =
        TubeId::parse(request.tube_id.as_deref().unwrap_or("")).ok_or(AppError::InvalidTubeId)?;
    let requested = request
        .tube_kind
        .as_deref()
        .map(|k| TubeKind::parse(k).ok_or(AppError::InvalidTubeKind))
        .transpose()?;
    let code = request.code.unwrap_or_default();
    let scanned = scan::scan(
        store,
        keys,
        code.trim(),
        ScanPurpose::NucleicAcidTest,
        ctx.at,
    )
    .await?;
    let key = idempotency_key.map(IdempotencyKey::as_str);
    // Each lost race on the tube means someone else took a place in it, so within its
    // capacity (plus the read that finds it full) every attempt ends.
    for _ in 0..=TubeKind::MAX_CAPACITY + 1 {
        let state = store.tube_state(&tube, ctx.at).await?;
        let admission = match admit(state, checkpoint.site, requested, scanned.colour) {
            Ok(admission) => admission,
            Err(refused) => {
                // A retry of a registration that filled or closed the tube answers as before.
                if let Some(key) = key {
                    if let Some(sample) = store
                        .registration_replay(
                            checkpoint.actor,
                            key,
                            &tube,
                            &scanned.holder.relative_key,
                        )
                        .await
                        .map_err(register_error)?
                    {
                        return Ok(Registered { sample, scanned });
                    }
                }
                return Err(refusal(refused));
            }
        };
        let registration = SampleRegistration {
            tube: &tube,
            relative_key: &scanned.holder.relative_key,
            binding: &scanned.holder.binding,
            site: checkpoint.site,
            admission,
            actor: checkpoint.actor,
            idempotency_key: key,
        };
        match store.register_sample(registration, ctx).await {
            Ok(sample) => return Ok(Registered { sample, scanned }),
            Err(RegisterError::TubeChanged) => continue,
            Err(other) => return Err(register_error(other)),
        }
    }
    Err(AppError::Conflict)
}

fn register_error(err: RegisterError) -> AppError {
    match err {
        RegisterError::TubeChanged => AppError::Conflict,
        RegisterError::AlreadyInTube => AppError::AlreadyInTube,
        RegisterError::KeyReused => AppError::IdempotencyKeyReused,
        RegisterError::CodeRevoked => AppError::CodeRevoked,
        RegisterError::Failed(e) => e,
    }
}
