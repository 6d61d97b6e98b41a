//! `kincode-local rotate-keys`: one command rotates the code signing key. It reads the public
//! keys secret, writes the public keys with a new key added and every key still signing
//! retired now (keys whose codes have all expired dropped), then the signing keys secret with
//! the new key alone: the public half is in place before anything signs with it.

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use chrono::{DateTime, Utc};
use kincode_common::codes::keys::{KeyRing, SigningKey, VerificationKeys};

use crate::provision::put_secret;

/// What a rotation did (no key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub new_kid: String,
    /// The key ids the public keys hold now, in order.
    pub published: Vec<String>,
}

/// A key id for a key made at `now`: `k` and the minute, UTC (13 characters).
pub fn default_kid(now: DateTime<Utc>) -> String {
    now.format("k%Y%m%d%H%M").to_string()
}

async fn public_keys(
    client: &aws_sdk_secretsmanager::Client,
    name: &str,
) -> Result<VerificationKeys, String> {
    let read = client.get_secret_value().secret_id(name).send().await;
    let text = match read {
        Ok(answer) => answer.secret_string.unwrap_or_default(),
        // The first rotation makes the first key.
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            r#"{"keys":[]}"#.to_owned()
        }
        Err(e) => return Err(format!("read {name}: {}", DisplayErrorContext(&e))),
    };
    VerificationKeys::from_json(&text).map_err(|e| format!("{name}: {e}"))
}

/// Rotates to a new key `kid` at `now`: see the module docs.
pub async fn rotate_keys(
    client: &aws_sdk_secretsmanager::Client,
    signing_secret: &str,
    public_secret: &str,
    kid: &str,
    now: DateTime<Utc>,
) -> Result<Rotated, String> {
    let current = public_keys(client, public_secret).await?;
    let (key, seed) = SigningKey::generate_with_seed(kid);
    let next = current.rotated(&key, now).map_err(|e| e.to_string())?;
    put_secret(client, public_secret, &next.to_json()).await?;
    put_secret(client, signing_secret, &KeyRing::config_json(kid, &seed)).await?;
    let published = next.jwks(now)["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect();
    Ok(Rotated {
        new_kid: kid.to_owned(),
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
