//! `kincode-local rotate-keys`: one command rotates the code signing key, with no instance to
//! recycle. It reads both key secrets, writes the public keys with a new key added and every
//! key still signing retired at the switch, `activation_delay` from now (keys whose codes have
//! all expired dropped), then the signing keys with the key signing now and the new one, which
//! signs from the switch on. Functions re-read the secrets every `KEY_REFRESH` (shorter than
//! the delay): every verifier holds the new public key before anything signs with it, and
//! every signer leaves the old key at the instant it retires.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use chrono::{DateTime, Duration, DurationRound, Utc};
use kincode_common::codes::keys::{KeyRing, SigningKey, VerificationKeys};

use crate::provision::put_secret;

/// What a rotation did (no key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub new_kid: String,
    /// When the new key starts signing and the old one retires.
    pub active_from: DateTime<Utc>,
    /// The key ids the public keys hold now, in order.
    pub published: Vec<String>,
}

/// A key id for a key made at `now`: `k` and the minute, UTC (13 characters).
pub fn default_kid(now: DateTime<Utc>) -> String {
    now.format("k%Y%m%d%H%M").to_string()
}

/// The secret's text; `None` before the first rotation made it.
async fn read_secret(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<Option<String>, String> {
    match client.get_secret_value().secret_id(name).send().await {
        Ok(answer) => Ok(Some(answer.secret_string.unwrap_or_default())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(format!("read {name}: {}", DisplayErrorContext(&e))),
    }
}

/// Rotates at `now` to a new key `kid`, which signs from `activation_delay` later: see the
/// module docs. The first rotation makes the first key, signing at once (nothing signed
/// before it). Refused while an earlier rotation's key has not started signing yet.
pub async fn rotate_keys(
    client: &aws_sdk_secretsmanager::Client,
    signing_secret: &str,
    public_secret: &str,
    kid: &str,
    now: DateTime<Utc>,
    activation_delay: Duration,
) -> Result<Rotated, String> {
    // Whole seconds: the public keys carry `retired_at` to the second, and a code's `iat` must
    // not pass its key's `retired_at` by a fraction.
    let active_from = (now + activation_delay)
        .duration_trunc(Duration::seconds(1))
        .map_err(|e| e.to_string())?;
    let public = read_secret(client, public_secret)
        .await?
        .unwrap_or_else(|| r#"{"keys":[]}"#.to_owned());
    let current =
        VerificationKeys::from_json(&public).map_err(|e| format!("{public_secret}: {e}"))?;
    let (key, seed) = SigningKey::generate_with_seed(kid);
    let (signing, active_from) = match read_secret(client, signing_secret).await? {
        Some(text) => (
            KeyRing::rotated_config(&text, kid, &seed, now, active_from)
                .map_err(|e| format!("{signing_secret}: {e}"))?,
            active_from,
        ),
        None => (KeyRing::config_json(kid, &seed), now),
    };
    let next = current
        .rotated(&key, now, active_from)
        .map_err(|e| e.to_string())?;
    put_secret(client, public_secret, &next.to_json()).await?;
    put_secret(client, signing_secret, &signing).await?;
    let published = next.jwks(now)["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect();
    Ok(Rotated {
        new_kid: kid.to_owned(),
        active_from,
        published,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn default_kids_fit_and_name_the_minute() {
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 4, 5, 59).unwrap();
        assert_eq!(default_kid(now), "k202611280405");
        assert!(default_kid(now).len() <= kincode_common::codes::keys::MAX_KID_LEN);
    }
}
