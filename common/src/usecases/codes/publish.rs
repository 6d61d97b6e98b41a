//! What a testing site needs to check a printed code with no network: the verification keys
//! and the revoked serials, each kept until the codes they concern have expired.
//!
//! The route is public and anonymous, and the revocations are a whole partition: each
//! instance reads them at most once per [`PUBLISHED_KEYS_TTL`] ([`PublishedKeysCache`]), so a
//! request costs either nothing but memory or one read, however many arrive.

use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{digest, SHA256};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::codes::keys::VerificationKeys;
use crate::codes::token;
use crate::error::{rfc3339, AppError};
use crate::store::Store;

/// How long an instance serves the document it read: a revocation reaches the route within
/// this, and a verifier honouring `Cache-Control` within twice this.
pub fn published_keys_ttl() -> Duration {
    Duration::seconds(PUBLISHED_KEYS_TTL_SECONDS)
}

pub const PUBLISHED_KEYS_TTL_SECONDS: i64 = 60;

/// The published document and its entity tag.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedKeys {
    pub document: Value,
    /// A strong ETag (quoted): a hash of everything but `generated_at`, so an unchanged set of
    /// keys and revocations keeps its tag across reads.
    pub etag: String,
}

impl PublishedKeys {
    /// Whether an `If-None-Match` header value names this document (`*`, or a list of tags,
    /// weak ones compared weakly as RFC 9110 says for this header).
    pub fn matches(&self, if_none_match: &str) -> bool {
        if_none_match
            .split(',')
            .map(str::trim)
            .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == self.etag.as_str())
    }
}

pub async fn published_keys(
    store: &Store,
    keys: &VerificationKeys,
    now: DateTime<Utc>,
) -> Result<PublishedKeys, AppError> {
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
    let hash = digest(&SHA256, document.to_string().as_bytes());
    let etag = format!("\"{}\"", B64URL.encode(&hash.as_ref()[..16]));
    document["generated_at"] = rfc3339(now).into();
    Ok(PublishedKeys { document, etag })
}

/// The document as last read, kept for [`published_keys_ttl`]. One per instance.
#[derive(Debug, Default)]
pub struct PublishedKeysCache {
    read: Mutex<Option<(DateTime<Utc>, Arc<PublishedKeys>)>>,
}

impl PublishedKeysCache {
    /// The document at `now`: the one read within the TTL, else a fresh read (a failed read
    /// is not kept: the next request tries again).
    pub async fn get(
        &self,
        store: &Store,
        keys: &VerificationKeys,
        now: DateTime<Utc>,
    ) -> Result<Arc<PublishedKeys>, AppError> {
        if let Some(fresh) = self.fresh(now) {
            return Ok(fresh);
        }
        let read = Arc::new(published_keys(store, keys, now).await?);
        *self.read.lock().unwrap_or_else(|e| e.into_inner()) = Some((now, read.clone()));
        Ok(read)
    }

    fn fresh(&self, now: DateTime<Utc>) -> Option<Arc<PublishedKeys>> {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let (at, document) = read.as_ref()?;
        // A clock that stepped back makes the copy stale rather than fresh for longer.
        (*at <= now && now < *at + published_keys_ttl()).then(|| document.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(etag: &str) -> PublishedKeys {
        PublishedKeys {
            document: json!({}),
            etag: etag.into(),
        }
    }

    #[test]
    fn if_none_match_names_the_tag_in_a_list_weakly_or_by_star() {
        let keys = published("\"abc\"");
        assert!(keys.matches("\"abc\""));
        assert!(keys.matches("\"x\", \"abc\""));
        assert!(keys.matches("W/\"abc\""));
        assert!(keys.matches("*"));
        assert!(!keys.matches("\"abd\""));
        assert!(!keys.matches("abc"));
        assert!(!keys.matches(""));
    }
}
