//! A checkpoint scans a code: signature, expiry, revocation, the binding still active, then
//! the person's colour now.

use chrono::{DateTime, Utc};

use super::current_colour;
use crate::codes::keys::VerificationKeys;
use crate::codes::token;
use crate::domain::code::{CodeClaims, ScanPurpose};
use crate::domain::colour::HealthColour;
use crate::error::AppError;
use crate::store::{ScannedAnchor, Store};

#[derive(Debug, Clone)]
pub struct ScanResult {
    pub claims: CodeClaims,
    pub holder: ScannedAnchor,
    pub colour: HealthColour,
}

pub async fn scan(
    store: &Store,
    keys: &VerificationKeys,
    code: &str,
    purpose: ScanPurpose,
    now: DateTime<Utc>,
) -> Result<ScanResult, AppError> {
    let claims = token::decode(code, keys, now).map_err(AppError::InvalidCode)?;
    if !purpose.accepts_kin_codes() {
        return Err(AppError::KinCodeNotForArrival);
    }
    // A validly signed code whose binding has no anchor was never usable, or its traces are
    // gone: either way it is void, like an unbound one.
    let holder = store
        .anchor(&claims.binding)
        .await?
        .filter(|anchor| anchor.revoked_at.is_none())
        .ok_or(AppError::CodeRevoked)?;
    let colour = current_colour(store, &holder.relative_key, now).await?;
    Ok(ScanResult {
        claims,
        holder,
        colour,
    })
}
