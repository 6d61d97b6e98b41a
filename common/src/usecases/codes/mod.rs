//! The use cases around kin codes: showing a code, printing the offline card and the household
//! sheet, scanning at a checkpoint, publishing the verification keys.

pub mod publish;
pub mod scan;
pub mod sheet;
pub mod show;

use chrono::{DateTime, Utc};

use crate::domain::binding::{Binding, BindingId, GuardianId};
use crate::domain::colour::HealthColour;
use crate::domain::health::colour;
use crate::error::AppError;
use crate::store::Store;
use crate::usecases::bindings::current_binding;

/// The person's colour at `now`, from what is stored about them.
pub async fn current_colour(
    store: &Store,
    relative_key: &str,
    now: DateTime<Utc>,
) -> Result<HealthColour, AppError> {
    let signals = store.health_signals(relative_key, now).await?;
    Ok(colour(&signals, now))
}

/// The caller's binding, usable for codes at `now`: someone else's (or one ended at 17) is not
/// found; a pending one must be verified first, and so must one bound with the pledge whose
/// child turned 7 more than the grace ago.
async fn active_binding(
    store: &Store,
    guardian: &GuardianId,
    id: &BindingId,
    now: DateTime<Utc>,
) -> Result<Binding, AppError> {
    let binding = current_binding(store, guardian, id, now).await?;
    if binding.codes_usable(now) {
        Ok(binding)
    } else {
        Err(AppError::VerificationRequired)
    }
}
