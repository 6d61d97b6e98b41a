//! What a testing site needs to check a printed code with no network: the verification keys
//! and the revoked serials, each kept until the codes they concern have expired.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::keys::KeyRing;
use super::token;
use crate::error::{rfc3339, AppError};
use crate::store::Store;

pub async fn published_keys(
    store: &Store,
    keys: &KeyRing,
    now: DateTime<Utc>,
) -> Result<Value, AppError> {
    let revoked: Vec<Value> = store
        .revocations(now)
        .await?
        .into_iter()
        .map(|(serial, valid_until)| json!({ "cti": serial.to_hex(), "exp": rfc3339(valid_until) }))
        .collect();
    let mut document = keys.jwks(now);
    document["issuer"] = token::ISSUER.into();
    document["code_prefix"] = token::PREFIX.into();
    document["revoked"] = revoked.into();
    document["generated_at"] = rfc3339(now).into();
    Ok(document)
}
