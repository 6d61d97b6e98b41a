//! The household sheet: from one request, the offline card of every active relative of the
//! caller on A4 pages (a PDF to print, a PNG preview), behind short-lived links.
//!
//! Each card on it is an ordinary offline card, made by the one path every card takes
//! ([`super::show`]): the relative's daily quota, the card's record and audit, its revocation
//! at unbind, the cleanup of its image. The sheet adds its two files and a record of what it
//! holds, written like a card's image: marked in flight, stored, then recorded (clearing the
//! marks), so no record points to a missing file and no file outlives its hour unrecorded.
//!
//! - **A relative whose quota is used up** is left off, and the answer says who and why; the
//!   family's other cards are not refused for it. When every relative is used up the sheet is
//!   refused as a single card is (429 `offline_code_limit_reached`).
//! - **A failure half-way** (a card, the files or the record: 503) leaves the cards made so far
//!   as what they are, complete offline cards of their own (image, record, quota, revocable,
//!   linked by `GET …/offline-code`); nothing points to anything missing.
//! - **Retries**: with an `Idempotency-Key`, the sheet's id is keyed from the caller and the
//!   key, so a retry after the sheet was recorded answers that sheet (fresh links, no new
//!   card). A retry after a failure makes a new sheet; the cards of the failed attempt count.
//! - **Two requests at once** make two sets of cards, each within the quota (DynamoDB's
//!   conditional counter). With the same Idempotency-Key the first to record its sheet wins;
//!   the other takes its files back and answers the winner's sheet.

use bytes::Bytes;

use super::show::{issue_card, IssuedCard};
use crate::adapters::blobs::BlobStore;
use crate::codes::keys::KeyRing;
use crate::domain::binding::{Binding, GuardianId, IdempotencyKey};
use crate::domain::code::SheetLeftOutReason;
use crate::error::AppError;
use crate::imaging::sheet::household_sheet;
use crate::store::{
    ActionContext, HouseholdSheetRecord, SheetCardEntry, SheetLeftOutEntry, SheetRecorded, Store,
};

/// A card on the sheet and whose it is.
#[derive(Debug, Clone)]
pub struct SheetCard {
    pub binding: Binding,
    pub entry: SheetCardEntry,
}

/// A relative left off the sheet, and why.
#[derive(Debug, Clone)]
pub struct LeftOff {
    pub binding: Binding,
    pub reason: SheetLeftOutReason,
}

impl LeftOff {
    /// The refusal a single card for this relative would have met.
    pub fn refusal(&self) -> AppError {
        match self.reason {
            SheetLeftOutReason::DailyLimitReached => AppError::OfflineCodeLimitReached,
        }
    }
}

/// A recorded sheet with fresh links to its files.
#[derive(Debug, Clone)]
pub struct HouseholdSheetLink {
    pub sheet: HouseholdSheetRecord,
    /// The sheet's cards, in its order, for relatives the caller still holds.
    pub cards: Vec<SheetCard>,
    pub left_off: Vec<LeftOff>,
    pub pdf_url: String,
    pub preview_url: String,
}

/// Makes the caller's household sheet (or, for a retried Idempotency-Key, answers the one made).
pub async fn issue_household_sheet(
    store: &Store,
    blobs: &BlobStore,
    keys: &KeyRing,
    guardian: &GuardianId,
    idempotency_key: Option<&IdempotencyKey>,
    ctx: ActionContext<'_>,
) -> Result<HouseholdSheetLink, AppError> {
    let sheet_id = match idempotency_key {
        Some(key) => store
            .keys()
            .sheet_id_for_retry(guardian.as_str(), key.as_str()),
        None => uuid::Uuid::new_v4().simple().to_string(),
    };
    let bindings = store.bindings(guardian).await?;
    if idempotency_key.is_some() {
        if let Some(sheet) = store.household_sheet(&sheet_id).await? {
            return link(blobs, guardian, sheet, &bindings).await;
        }
    }

    // Every relative whose codes may be printed now (verified, not stopped by age).
    let active = bindings.iter().filter(|b| b.codes_usable(ctx.at));
    let mut issued: Vec<IssuedCard> = Vec::new();
    let mut left_out = Vec::new();
    for binding in active {
        match issue_card(store, blobs, keys, binding.clone(), ctx).await {
            Ok(card) => issued.push(card),
            Err(AppError::OfflineCodeLimitReached) => left_out.push(SheetLeftOutEntry {
                binding_id: binding.id.as_str().into(),
                reason: SheetLeftOutReason::DailyLimitReached,
            }),
            // Unbound since the list was read: no longer the caller's relative.
            Err(AppError::BindingNotFound) => {}
            Err(e) => return Err(e),
        }
    }
    if issued.is_empty() {
        return Err(if left_out.is_empty() {
            AppError::NoVerifiedRelatives
        } else {
            AppError::OfflineCodeLimitReached
        });
    }

    let pngs: Vec<&[u8]> = issued.iter().map(|c| &c.png[..]).collect();
    let drawn = household_sheet(&pngs)
        .map_err(|e| AppError::Internal(format!("draw household sheet: {e}")))?;
    let (pdf_key, preview_key) = BlobStore::new_sheet_keys();
    let cards: Vec<SheetCardEntry> = issued
        .iter()
        .map(|c| SheetCardEntry {
            binding_id: c.card.binding_id.clone(),
            serial: c.card.serial.clone(),
            colour: c.colour,
            generated_at: c.card.generated_at,
            valid_until: c.card.valid_until,
        })
        .collect();
    let sheet = HouseholdSheetRecord {
        sheet_id,
        guardian: guardian.as_str().into(),
        pages: drawn.pages as u32,
        generated_at: ctx.at,
        valid_until: cards.iter().map(|c| c.valid_until).max().unwrap_or(ctx.at),
        cards,
        left_out,
        pdf_key,
        preview_key,
    };
    for (key, body) in [
        (&sheet.pdf_key, drawn.pdf),
        (&sheet.preview_key, drawn.preview_png),
    ] {
        store
            .mark_sheet_object_in_flight(&sheet.sheet_id, key, ctx.at)
            .await?;
        blobs.put(key, Bytes::from(body)).await?;
    }
    match store.record_household_sheet(&sheet).await? {
        SheetRecorded::Ours => link(blobs, guardian, sheet, &bindings).await,
        SheetRecorded::Theirs(theirs) => {
            take_back_files(store, blobs, &sheet).await;
            link(blobs, guardian, theirs, &bindings).await
        }
    }
}

/// Fresh links to a recorded sheet, its entries named from the caller's bindings.
async fn link(
    blobs: &BlobStore,
    guardian: &GuardianId,
    sheet: HouseholdSheetRecord,
    bindings: &[Binding],
) -> Result<HouseholdSheetLink, AppError> {
    if sheet.guardian != guardian.as_str() {
        // The id is keyed from the caller: another's sheet under it is a bug, never shown.
        return Err(AppError::Internal(
            "household sheet of another guardian".into(),
        ));
    }
    let binding = |id: &str| bindings.iter().find(|b| b.id.as_str() == id).cloned();
    let cards = sheet
        .cards
        .iter()
        .filter_map(|entry| {
            Some(SheetCard {
                binding: binding(&entry.binding_id)?,
                entry: entry.clone(),
            })
        })
        .collect();
    let left_off = sheet
        .left_out
        .iter()
        .filter_map(|entry| {
            Some(LeftOff {
                binding: binding(&entry.binding_id)?,
                reason: entry.reason,
            })
        })
        .collect();
    let pdf_url = blobs.download_url(&sheet.pdf_key).await?;
    let preview_url = blobs.download_url(&sheet.preview_key).await?;
    Ok(HouseholdSheetLink {
        sheet,
        cards,
        left_off,
        pdf_url,
        preview_url,
    })
}

/// Removes the files of a sheet another request recorded first, then their marks. Either
/// failing leaves the marks, and the cleanup finishes the job.
async fn take_back_files(store: &Store, blobs: &BlobStore, sheet: &HouseholdSheetRecord) {
    for object in sheet.objects() {
        let removed = match blobs.delete(object).await {
            Ok(()) => {
                store
                    .forget_sheet_object_in_flight(&sheet.sheet_id, object)
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = removed {
            tracing::warn!(error = %e, "an unrecorded sheet's file left for the cleanup");
        }
    }
}
