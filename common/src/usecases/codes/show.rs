//! Showing a code: the online code on the guardian's phone, and the printable offline card.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use super::{active_binding, current_colour};
use crate::adapters::blobs::BlobStore;
use crate::codes::keys::KeyRing;
use crate::codes::token;
use crate::domain::access_log::{AccessEntry, AccessKind};
use crate::domain::binding::{Binding, BindingId, GuardianId};
use crate::domain::code::{CodeClaims, CodeKind};
use crate::domain::colour::HealthColour;
use crate::error::AppError;
use crate::imaging::card::{offline_card_png, OfflineCard};
use crate::store::{ActionContext, CardRecordError, OfflineCardRecord, Store};

/// A freshly signed code and what it was made for.
#[derive(Debug, Clone)]
pub struct SignedCode {
    pub binding: Binding,
    pub claims: CodeClaims,
    pub token: String,
}

async fn sign_code(
    store: &Store,
    keys: &KeyRing,
    guardian: &GuardianId,
    id: &BindingId,
    kind: CodeKind,
    now: DateTime<Utc>,
) -> Result<SignedCode, AppError> {
    let binding = active_binding(store, guardian, id, now).await?;
    sign_code_for(store, keys, binding, kind, now).await
}

/// Signs a code for a binding already read (and found active) with the person's colour now.
async fn sign_code_for(
    store: &Store,
    keys: &KeyRing,
    binding: Binding,
    kind: CodeKind,
    now: DateTime<Utc>,
) -> Result<SignedCode, AppError> {
    let colour = current_colour(store, &binding.relative_key, now).await?;
    // No code outlives the moment the binding's codes stop by age: a printed card is checked
    // offline, where nothing else would stop it.
    let claims = CodeClaims::issue(binding.id.clone(), kind, colour, now)
        .not_after(binding.transitions.codes_stop_at());
    let token = token::encode(&claims, keys.signer(now));
    Ok(SignedCode {
        binding,
        claims,
        token,
    })
}

/// The online code: lives minutes, the phone refreshes it. Showing it is recorded in the
/// relative's access log (once an hour per guardian) before it is answered.
pub async fn online_code(
    store: &Store,
    keys: &KeyRing,
    guardian: &GuardianId,
    id: &BindingId,
    ctx: ActionContext<'_>,
) -> Result<SignedCode, AppError> {
    let code = sign_code(store, keys, guardian, id, CodeKind::KinOnline, ctx.at).await?;
    store.record_code_shown(&code.binding, ctx).await?;
    Ok(code)
}

/// An offline card and a link to download it.
#[derive(Debug, Clone)]
pub struct OfflineCardLink {
    pub card: OfflineCardRecord,
    pub colour: HealthColour,
    pub url: String,
}

/// An offline card recorded, with the picture stored for it.
#[derive(Debug, Clone)]
pub struct IssuedCard {
    pub card: OfflineCardRecord,
    pub colour: HealthColour,
    /// The card's PNG, as stored (the household sheet embeds it).
    pub png: Bytes,
}

/// Makes the 7-day card of the caller's binding `id` and links it.
pub async fn issue_offline_card(
    store: &Store,
    blobs: &BlobStore,
    keys: &KeyRing,
    guardian: &GuardianId,
    id: &BindingId,
    ctx: ActionContext<'_>,
) -> Result<OfflineCardLink, AppError> {
    let binding = active_binding(store, guardian, id, ctx.at).await?;
    let issued = issue_card(store, blobs, keys, binding, ctx).await?;
    let url = blobs.download_url(&issued.card.object_key).await?;
    Ok(OfflineCardLink {
        card: issued.card,
        colour: issued.colour,
        url,
    })
}

/// Makes the 7-day card of `binding` (read as active): signs the code, draws the card, marks
/// the image as in flight, stores it, then records the card (quota, audit) in a transaction
/// that also clears the mark. Every offline card is made here, alone or on a household sheet.
///
/// Two stores, one answer: a card refused by a rule (the day's quota, the binding no longer
/// active) takes its image away again; a card whose outcome is unknown (the answer lost, a
/// timeout) is read back, and answered as made if it was. Its image is never deleted then,
/// since the record may point to it; if the card never landed, the mark left behind makes the
/// cleanup remove the image.
pub(super) async fn issue_card(
    store: &Store,
    blobs: &BlobStore,
    keys: &KeyRing,
    binding: Binding,
    ctx: ActionContext<'_>,
) -> Result<IssuedCard, AppError> {
    let code = sign_code_for(store, keys, binding, CodeKind::KinOffline, ctx.at).await?;
    let png = offline_card_png(&OfflineCard {
        colour: code.claims.colour,
        token: &code.token,
        masked_name: &code.binding.masked_name,
        relationship_label: code.binding.relationship.label(),
        generated_at: code.claims.issued_at,
        valid_until: code.claims.expires_at,
    })
    .map_err(|e| AppError::Internal(format!("draw offline card: {e}")))?;
    let png = Bytes::from(png);
    let card = OfflineCardRecord {
        binding_id: code.binding.id.as_str().into(),
        serial: code.claims.serial.to_hex(),
        object_key: BlobStore::new_card_key(),
        generated_at: code.claims.issued_at,
        valid_until: code.claims.expires_at,
    };
    store
        .mark_image_in_flight(&code.binding.id, &card.object_key, ctx.at)
        .await?;
    blobs.put(&card.object_key, png.clone()).await?;
    match store.record_offline_card(&code.binding, &card, ctx).await {
        Ok(()) => {}
        Err(CardRecordError::Refused(refused)) => {
            take_back_image(store, blobs, &code.binding.id, &card.object_key).await;
            return Err(refused);
        }
        Err(CardRecordError::Unknown(failure)) => {
            if !store.offline_card(&code.binding.id, &card).await? {
                return Err(failure);
            }
            tracing::info!("offline card found recorded after a failed answer");
        }
    }
    Ok(IssuedCard {
        card,
        colour: code.claims.colour,
        png,
    })
}

/// Removes the image of a card that was refused, then its mark. Either failing leaves the
/// mark, and the cleanup finishes the job.
async fn take_back_image(store: &Store, blobs: &BlobStore, id: &BindingId, object_key: &str) {
    let removed = match blobs.delete(object_key).await {
        Ok(()) => store.forget_image_in_flight(id, object_key).await,
        Err(e) => Err(e),
    };
    if let Err(e) = removed {
        tracing::warn!(error = %e, "refused card's image left for the cleanup");
    }
}

/// The newest offline card still valid at `now`, with a fresh link; the download is recorded
/// in the relative's access log.
pub async fn latest_offline_card(
    store: &Store,
    blobs: &BlobStore,
    guardian: &GuardianId,
    id: &BindingId,
    ctx: ActionContext<'_>,
) -> Result<(OfflineCardRecord, String), AppError> {
    let now = ctx.at;
    let binding = active_binding(store, guardian, id, now).await?;
    let card = store
        .offline_cards(&binding.id)
        .await?
        .into_iter()
        .find(|c| c.generated_at <= now && now < c.valid_until)
        .ok_or(AppError::OfflineCodeNotFound)?;
    let url = blobs.download_url(&card.object_key).await?;
    let entry = AccessEntry::new(
        AccessKind::OfflineCardDownloaded,
        store.guardian_actor(&binding.relative_key, guardian.as_str()),
        now,
    );
    store
        .record_access(&binding.relative_key, entry, ctx)
        .await?;
    Ok((card, url))
}
