//! Showing a code: the online code on the guardian's phone, and the printable offline card.

use chrono::{DateTime, Utc};

use super::{active_binding, current_colour};
use crate::adapters::blobs::BlobStore;
use crate::codes::keys::KeyRing;
use crate::codes::token;
use crate::domain::binding::{Binding, BindingId, GuardianId};
use crate::domain::code::{CodeClaims, CodeKind};
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

/// The online code: lives minutes, the phone refreshes it.
pub async fn online_code(
    store: &Store,
    keys: &KeyRing,
    guardian: &GuardianId,
    id: &BindingId,
    now: DateTime<Utc>,
) -> Result<SignedCode, AppError> {
    sign_code(store, keys, guardian, id, CodeKind::KinOnline, now).await
}

/// An offline card and a link to download it.
#[derive(Debug, Clone)]
pub struct OfflineCardLink {
    pub card: OfflineCardRecord,
    pub colour: crate::domain::colour::HealthColour,
    pub url: String,
}

/// Makes the 7-day card: signs the code, draws the card, marks the image as in flight, stores
/// it, then records the card (quota, audit) in a transaction that also clears the mark.
///
/// Two stores, one answer: a card refused by a rule takes its image away again; a card whose
/// outcome is unknown (the answer lost, a timeout) is read back, and answered as made if it
/// was. Its image is never deleted then, since the record may point to it; if the card never
/// landed, the mark left behind makes the cleanup remove the image.
pub async fn issue_offline_card(
    store: &Store,
    blobs: &BlobStore,
    keys: &KeyRing,
    guardian: &GuardianId,
    id: &BindingId,
    ctx: ActionContext<'_>,
) -> Result<OfflineCardLink, AppError> {
    let code = sign_code(store, keys, guardian, id, CodeKind::KinOffline, ctx.at).await?;
    let png = offline_card_png(&OfflineCard {
        colour: code.claims.colour,
        token: &code.token,
        masked_name: &code.binding.masked_name,
        relationship_label: code.binding.relationship.label(),
        generated_at: code.claims.issued_at,
        valid_until: code.claims.expires_at,
    })
    .map_err(|e| AppError::Internal(format!("draw offline card: {e}")))?;
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
    blobs.put_png(&card.object_key, png).await?;
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
    let url = blobs.download_url(&card.object_key).await?;
    Ok(OfflineCardLink {
        card,
        colour: code.claims.colour,
        url,
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

/// The newest offline card still valid at `now`, with a fresh link.
pub async fn latest_offline_card(
    store: &Store,
    blobs: &BlobStore,
    guardian: &GuardianId,
    id: &BindingId,
    now: DateTime<Utc>,
) -> Result<(OfflineCardRecord, String), AppError> {
    let binding = active_binding(store, guardian, id, now).await?;
    let card = store
        .offline_cards(&binding.id)
        .await?
        .into_iter()
        .find(|c| c.generated_at <= now && now < c.valid_until)
        .ok_or(AppError::OfflineCodeNotFound)?;
    let url = blobs.download_url(&card.object_key).await?;
    Ok((card, url))
}
