//! Erasing a person no guardian has held for the erasure window (PIPL art. 47): run by the
//! scheduled cleanup when the person's erasure item falls due. What remains afterwards is
//! what the README's *Personal data: erasure* lists.

use crate::error::AppError;
use crate::store::{ActionContext, ErasureStart, Store};

/// What became of a due erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Erasure {
    /// The person's items are gone.
    Erased { items: u32 },
    /// Somebody holds the person again; nothing was erased.
    Held,
    /// Already done, or being decided by another run at this moment.
    Gone,
}

pub async fn erase(
    store: &Store,
    relative_key: &str,
    ctx: ActionContext<'_>,
) -> Result<Erasure, AppError> {
    let start = match store.begin_erasure(relative_key, ctx.at).await {
        Err(AppError::Conflict) => return Ok(Erasure::Gone),
        other => other?,
    };
    match start {
        ErasureStart::Gone => Ok(Erasure::Gone),
        ErasureStart::Held => Ok(Erasure::Held),
        ErasureStart::Erase {
            erasure_id,
            released,
        } => {
            let items = store
                .erase_relative_items(relative_key, &erasure_id)
                .await?;
            store.forget_released_bindings(&released).await?;
            store.finish_erasure(relative_key, &erasure_id, ctx).await?;
            Ok(Erasure::Erased { items })
        }
    }
}
