//! The use cases around kin codes: showing a code, printing the offline card and the household
//! sheet, scanning at a checkpoint, publishing the verification keys.

pub mod publish;
pub mod scan;
pub mod sheet;
pub mod show;

use chrono::{DateTime, Utc};

use crate::domain::binding::{Binding, BindingId, BindingStatus, GuardianId};
use crate::domain::colour::HealthColour;
use crate::domain::health::colour;
use crate::error::AppError;
use crate::store::Store;

/// The person's colour at `now`, from what is stored about them.
pub async fn current_colour(
    store: &Store,
    relative_key: &str,
    now: DateTime<Utc>,
) -> Result<HealthColour, AppError> {
    let signals = store.health_signals(relative_key, now).await?;
    Ok(colour(&signals, now))
}

/// The caller's binding, usable for codes: someone else's is not found, a pending one must
/// be verified first.
async fn active_binding(
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
