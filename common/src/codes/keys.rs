//! The keys that sign and check kin codes, kept in two Secrets Manager secrets so that a
//! function that only checks codes can never sign one:
//!
//! - the **signing keys** (render and offline only): the active key's seed, and during a
//!   rotation the next key's, which signs from its `active_from` on,
//!
//!   ```json
//!   {"active":"k2026a","keys":[{"kid":"k2026a","seed":"<base64 of 32 bytes>"},
//!            {"kid":"k2026b","seed":"<base64 of 32 bytes>","active_from":"2026-11-01T00:10:00Z"}]}
//!   ```
//!
//! - the **public keys** (scan, samples and the keys route; published anyway): every key whose
//!   codes may still be in circulation, with the time it stopped signing,
//!
//!   ```json
//!   {"keys":[{"kid":"k2026a","public":"<base64 of 32 bytes>"},
//!            {"kid":"k2025b","public":"<base64 of 32 bytes>","retired_at":"2026-11-01T00:00:00Z"}]}
//!   ```
//!
//! A retired key verifies the codes it signed before `retired_at` (never one issued after it),
//! and is published, until `retired_at` plus the longest code lifetime (the 7-day offline
//! code): by then every code it signed has expired. [`VerificationKeys::rotated`] and
//! [`KeyRing::rotated_config`] are the rotation (`kincode-local rotate-keys`): the new public
//! key is published at once, the new key signs from [`ACTIVATION_DELAY`] later, and the old
//! one retires at that same instant. Functions re-read the secrets every [`KEY_REFRESH`]
//! (`crate::wiring::secrets::LiveKeys`), so by then every verifier knows the new key, and a signer
//! picks its key by the clock ([`KeyRing::signer`]).

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair, ParsedPublicKey, ED25519};
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::code::offline_code_validity;

/// Ed25519 seeds and public keys are both 32 bytes.
pub const KEY_LEN: usize = 32;
pub const MAX_KID_LEN: usize = 16;

/// How long a function keeps the keys it read before reading them again.
pub const KEY_REFRESH: Duration = Duration::minutes(5);

/// From a rotation to the instant its new key signs (and the old one retires): longer than
/// [`KEY_REFRESH`], so every verifier holds the new public key by then, with a margin for the
/// keys route's cache and third-party verifiers (README, "Rotating the code signing key").
pub const ACTIVATION_DELAY: Duration = Duration::minutes(15);

#[derive(Debug, thiserror::Error)]
pub enum KeyRingError {
    /// Only the position is kept: serde's messages can quote values, and values here are keys.
    #[error(
        "signing keys config is not JSON of the expected shape (line {line}, column {column})"
    )]
    Json { line: usize, column: usize },
    #[error("key id {0:?} must be 1..={MAX_KID_LEN} visible ASCII characters")]
    BadKid(String),
    #[error("key {0:?} appears more than once")]
    DuplicateKid(String),
    #[error("the active key {0:?} is not among the keys")]
    ActiveKeyMissing(String),
    #[error("the active key {0:?} has no seed")]
    ActiveKeyWithoutSeed(String),
    #[error("the active key {0:?} cannot be retired")]
    ActiveKeyRetired(String),
    #[error("key {0:?} needs exactly one of `seed` or `public`")]
    KeyMaterial(String),
    #[error("key {0:?}: not base64")]
    BadBase64(String),
    #[error("key {0:?}: must be exactly {KEY_LEN} bytes")]
    BadLength(String),
    #[error("key {0:?}: not an Ed25519 key")]
    Rejected(String),
    #[error("key {0:?}: the public keys hold no seed")]
    SeedInPublicKeys(String),
    #[error("key {0:?}: only a signing key besides the active one has `active_from`")]
    Misscheduled(String),
    #[error("key {kid:?} starts signing at {active_from}: rotate again after that")]
    RotationPending {
        kid: String,
        active_from: DateTime<Utc>,
    },
}

fn check_kid(kid: &str) -> Result<(), KeyRingError> {
    let ok = (1..=MAX_KID_LEN).contains(&kid.len()) && kid.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(KeyRingError::BadKid(kid.to_owned()))
    }
}

/// The key that signs new codes. Its `Debug` shows the kid only.
pub struct SigningKey {
    kid: String,
    key_pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    pub fn from_seed(kid: &str, seed: &[u8]) -> Result<Self, KeyRingError> {
        check_kid(kid)?;
        if seed.len() != KEY_LEN {
            return Err(KeyRingError::BadLength(kid.to_owned()));
        }
        // "Unchecked" only means no public key is given to compare against.
        let key_pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| KeyRingError::Rejected(kid.to_owned()))?;
        Ok(Self {
            kid: kid.to_owned(),
            key_pair,
        })
    }

    /// A fresh random key, with its seed (to store in the signing keys secret).
    ///
    /// # Panics
    /// If `kid` is not 1..=16 visible ASCII characters (a caller's bug), or the system random
    /// source fails.
    pub fn generate_with_seed(kid: &str) -> (Self, [u8; KEY_LEN]) {
        let mut seed = [0u8; KEY_LEN];
        aws_lc_rs::rand::fill(&mut seed).expect("the system random source works");
        let key = Self::from_seed(kid, &seed).expect("generate() needs a valid kid");
        (key, seed)
    }

    fn generate(kid: &str) -> Self {
        Self::generate_with_seed(kid).0
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The 64-byte Ed25519 signature of `message`. Crate-only: nothing but code tokens is
    /// signed with these keys.
    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key_pair.sign(message).as_ref().to_vec()
    }

    fn public_key(&self) -> [u8; KEY_LEN] {
        let mut out = [0u8; KEY_LEN];
        out.copy_from_slice(self.key_pair.public_key().as_ref());
        out
    }

    fn verification_key(&self) -> Result<VerificationKey, KeyRingError> {
        VerificationKey::new(&self.kid, self.public_key(), None)
    }
}

/// A public key that checks codes, with the time it stopped signing if it has.
pub struct VerificationKey {
    kid: String,
    public: [u8; KEY_LEN],
    /// Parsed once: each verification then skips the point decoding.
    parsed: ParsedPublicKey,
    retired_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("x", &B64URL.encode(self.public))
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

impl VerificationKey {
    fn new(
        kid: &str,
        public: [u8; KEY_LEN],
        retired_at: Option<DateTime<Utc>>,
    ) -> Result<Self, KeyRingError> {
        let parsed = ParsedPublicKey::new(&ED25519, public)
            .map_err(|_| KeyRingError::Rejected(kid.to_owned()))?;
        Ok(Self {
            kid: kid.to_owned(),
            public,
            parsed,
            retired_at,
        })
    }

    pub fn public_key(&self) -> &[u8; KEY_LEN] {
        &self.public
    }

    pub fn retired_at(&self) -> Option<DateTime<Utc>> {
        self.retired_at
    }

    /// Past this instant no code signed by the key can still be valid; `None` while it signs.
    pub fn valid_until(&self) -> Option<DateTime<Utc>> {
        self.retired_at
            .map(|retired_at| retired_at + offline_code_validity())
    }

    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.valid_until().is_none_or(|until| now < until)
    }

    /// Whether `signature` is this key's Ed25519 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.parsed.verify_sig(message, signature).is_ok()
    }
}

/// Every key whose codes may still be in circulation: what verifies codes, and what is
/// published. Holds no private key.
#[derive(Debug)]
pub struct VerificationKeys {
    /// In configuration order; a handful at most, so a linear search is the fastest lookup.
    keys: Vec<VerificationKey>,
}

/// The signing keys, and the verification keys (their own, and any given with them).
#[derive(Debug)]
pub struct KeyRing {
    /// The active key: signs until the first of `scheduled` starts.
    signer: SigningKey,
    /// The keys a rotation made, each signing from its `active_from`; in that order.
    scheduled: Vec<(DateTime<Utc>, SigningKey)>,
    verification: VerificationKeys,
}

/// A signing function checks its own codes with the same keys a verifier would.
impl std::ops::Deref for KeyRing {
    type Target = VerificationKeys;

    fn deref(&self) -> &VerificationKeys {
        &self.verification
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigDocument {
    active: String,
    keys: Vec<ConfigKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicDocument {
    keys: Vec<ConfigKey>,
}

/// Unknown fields are refused: a misspelt `retired_at` must not leave a key live for ever.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigKey {
    kid: String,
    seed: Option<String>,
    public: Option<String>,
    retired_at: Option<DateTime<Utc>>,
    /// Signing keys only: when a key a rotation added starts signing.
    active_from: Option<DateTime<Utc>>,
}

fn decode_key_bytes(kid: &str, encoded: &str) -> Result<[u8; KEY_LEN], KeyRingError> {
    let bytes = B64
        .decode(encoded)
        .map_err(|_| KeyRingError::BadBase64(kid.to_owned()))?;
    bytes
        .try_into()
        .map_err(|_| KeyRingError::BadLength(kid.to_owned()))
}

/// Only the position is kept: serde's messages can quote values, and values here are keys.
fn parse_document<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, KeyRingError> {
    serde_json::from_str(text).map_err(|e| KeyRingError::Json {
        line: e.line(),
        column: e.column(),
    })
}

impl VerificationKeys {
    /// Parses the public keys document (see the module docs). A seed is refused: this document
    /// is readable by every verifier, and published.
    pub fn from_json(text: &str) -> Result<Self, KeyRingError> {
        let document: PublicDocument = parse_document(text)?;
        let mut keys = Self {
            keys: Vec::with_capacity(document.keys.len()),
        };
        for entry in &document.keys {
            let public = match (&entry.seed, &entry.public) {
                (None, Some(public)) => decode_key_bytes(&entry.kid, public)?,
                (Some(_), _) => return Err(KeyRingError::SeedInPublicKeys(entry.kid.clone())),
                (None, None) => return Err(KeyRingError::KeyMaterial(entry.kid.clone())),
            };
            if entry.active_from.is_some() {
                return Err(KeyRingError::Misscheduled(entry.kid.clone()));
            }
            keys.push(VerificationKey::new(&entry.kid, public, entry.retired_at)?)?;
        }
        Ok(keys)
    }

    fn push(&mut self, key: VerificationKey) -> Result<(), KeyRingError> {
        check_kid(&key.kid)?;
        if self.keys.iter().any(|v| v.kid == key.kid) {
            return Err(KeyRingError::DuplicateKid(key.kid));
        }
        self.keys.push(key);
        Ok(())
    }

    /// The public keys document of these keys, as [`VerificationKeys::from_json`] reads it.
    pub fn to_json(&self) -> String {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|v| {
                let mut key = json!({"kid": v.kid, "public": B64.encode(v.public)});
                if let Some(retired_at) = v.retired_at {
                    key["retired_at"] =
                        retired_at.to_rfc3339_opts(SecondsFormat::Secs, true).into();
                }
                key
            })
            .collect();
        json!({ "keys": keys }).to_string()
    }

    /// The keys after a rotation at `now` to `next`, which signs from `active_from`: every
    /// key still signing is retired at `active_from`, keys whose codes have all expired by
    /// `now` are dropped, and `next` (a key id not seen before) is added. A retirement still
    /// ahead of `now` belongs to a rotation whose signing keys were never written (the
    /// rotation is refused while a written one is pending): that key signs on, until this
    /// rotation's switch.
    pub fn rotated(
        &self,
        next: &SigningKey,
        now: DateTime<Utc>,
        active_from: DateTime<Utc>,
    ) -> Result<Self, KeyRingError> {
        let mut keys = Self { keys: Vec::new() };
        for key in self.keys.iter().filter(|k| k.is_live(now)) {
            let retired_at = match key.retired_at {
                Some(retired) if retired <= now => retired,
                _ => active_from,
            };
            keys.push(VerificationKey::new(
                &key.kid,
                key.public,
                Some(retired_at),
            )?)?;
        }
        if self.keys.iter().any(|k| k.kid == next.kid) {
            return Err(KeyRingError::DuplicateKid(next.kid.clone()));
        }
        keys.push(next.verification_key()?)?;
        Ok(keys)
    }

    /// The key that checks codes carrying `kid`, if it is still live at `now`.
    pub fn verifier(&self, kid: &[u8], now: DateTime<Utc>) -> Option<&VerificationKey> {
        self.keys
            .iter()
            .find(|v| v.kid.as_bytes() == kid)
            .filter(|v| v.is_live(now))
    }

    /// The published keys: a JWKS document of the keys live at `now`. A retired key carries
    /// `kincode_valid_until` (RFC 3339), the instant it drops out, and `kincode_retired_at`:
    /// a code it signed with a later `iat` is refused.
    pub fn jwks(&self, now: DateTime<Utc>) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter(|v| v.is_live(now))
            .map(|v| {
                let mut jwk = json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "kid": v.kid,
                    "x": B64URL.encode(v.public),
                    "use": "sig",
                    "alg": "EdDSA",
                });
                if let (Some(retired_at), Some(until)) = (v.retired_at, v.valid_until()) {
                    jwk["kincode_retired_at"] =
                        retired_at.to_rfc3339_opts(SecondsFormat::Secs, true).into();
                    jwk["kincode_valid_until"] =
                        until.to_rfc3339_opts(SecondsFormat::Secs, true).into();
                }
                jwk
            })
            .collect();
        json!({ "keys": keys })
    }
}

impl KeyRing {
    /// Parses the signing keys document (see the module docs). Keys given besides the active
    /// one (by seed or public key) verify too.
    pub fn from_json(text: &str) -> Result<Self, KeyRingError> {
        let document: ConfigDocument = parse_document(text)?;
        let mut signer = None;
        let mut scheduled = Vec::new();
        let mut verification = VerificationKeys {
            keys: Vec::with_capacity(document.keys.len()),
        };
        for entry in &document.keys {
            check_kid(&entry.kid)?;
            if verification.keys.iter().any(|v| v.kid == entry.kid) {
                return Err(KeyRingError::DuplicateKid(entry.kid.clone()));
            }
            let is_active = entry.kid == document.active;
            let verifier = match (&entry.seed, &entry.public) {
                (Some(seed), None) => {
                    let key =
                        SigningKey::from_seed(&entry.kid, &decode_key_bytes(&entry.kid, seed)?)?;
                    let verifier =
                        VerificationKey::new(&entry.kid, key.public_key(), entry.retired_at)?;
                    match entry.active_from {
                        Some(_) if is_active || entry.retired_at.is_some() => {
                            return Err(KeyRingError::Misscheduled(entry.kid.clone()))
                        }
                        Some(active_from) => scheduled.push((active_from, key)),
                        None if is_active => signer = Some(key),
                        None => {}
                    }
                    verifier
                }
                (None, Some(public)) => {
                    if is_active {
                        return Err(KeyRingError::ActiveKeyWithoutSeed(entry.kid.clone()));
                    }
                    if entry.active_from.is_some() {
                        return Err(KeyRingError::Misscheduled(entry.kid.clone()));
                    }
                    let public = decode_key_bytes(&entry.kid, public)?;
                    VerificationKey::new(&entry.kid, public, entry.retired_at)?
                }
                _ => return Err(KeyRingError::KeyMaterial(entry.kid.clone())),
            };
            if is_active && entry.retired_at.is_some() {
                return Err(KeyRingError::ActiveKeyRetired(entry.kid.clone()));
            }
            verification.push(verifier)?;
        }
        let signer = signer.ok_or(KeyRingError::ActiveKeyMissing(document.active))?;
        scheduled.sort_by_key(|(active_from, _)| *active_from);
        Ok(Self {
            signer,
            scheduled,
            verification,
        })
    }

    /// A ring with one fresh random key, for tests and local development.
    ///
    /// # Panics
    /// If `kid` is not 1..=16 visible ASCII characters (a caller's bug), or the system random
    /// source fails.
    pub fn generate(kid: &str) -> Self {
        let signer = SigningKey::generate(kid);
        Self::with_signer(signer).expect("a fresh key pair has a valid public key")
    }

    fn with_signer(signer: SigningKey) -> Result<Self, KeyRingError> {
        let verification = VerificationKeys {
            keys: vec![signer.verification_key()?],
        };
        Ok(Self {
            signer,
            scheduled: Vec::new(),
            verification,
        })
    }

    /// The configuration text of a ring whose only key comes from `seed` (local development
    /// and the rotation write it; [`KeyRing::from_json`] reads it back).
    pub fn config_json(kid: &str, seed: &[u8; KEY_LEN]) -> String {
        json!({"active": kid, "keys": [{"kid": kid, "seed": B64.encode(seed)}]}).to_string()
    }

    /// The signing keys document after a rotation at `now` to `next` (from `seed`), which
    /// signs from `active_from`: the key signing at `now` keeps signing until then, every other
    /// key is dropped (the public keys keep verifying its codes). Refused while the key of an
    /// earlier rotation has not started signing yet: the old key would outlive its retirement.
    pub fn rotated_config(
        text: &str,
        next: &str,
        seed: &[u8; KEY_LEN],
        now: DateTime<Utc>,
        active_from: DateTime<Utc>,
    ) -> Result<String, KeyRingError> {
        let ring = Self::from_json(text)?;
        if let Some((pending_from, key)) = ring.scheduled.iter().find(|(at, _)| *at > now) {
            return Err(KeyRingError::RotationPending {
                kid: key.kid.clone(),
                active_from: *pending_from,
            });
        }
        let current = ring.signer(now).kid();
        check_kid(next)?;
        if ring.verification.keys.iter().any(|k| k.kid == next) {
            return Err(KeyRingError::DuplicateKid(next.to_owned()));
        }
        let document: ConfigDocument = parse_document(text)?;
        let current_seed = document
            .keys
            .iter()
            .find(|k| k.kid == current)
            .and_then(|k| k.seed.as_deref())
            .ok_or_else(|| KeyRingError::ActiveKeyWithoutSeed(current.to_owned()))?;
        Ok(json!({
            "active": current,
            "keys": [
                {"kid": current, "seed": current_seed},
                {
                    "kid": next,
                    "seed": B64.encode(seed),
                    "active_from": active_from.to_rfc3339_opts(SecondsFormat::Secs, true),
                },
            ],
        })
        .to_string())
    }

    /// The key that signs at `now`: the latest scheduled key whose `active_from` has come, or
    /// else the active one.
    pub fn signer(&self, now: DateTime<Utc>) -> &SigningKey {
        self.scheduled
            .iter()
            .rev()
            .find(|(active_from, _)| *active_from <= now)
            .map_or(&self.signer, |(_, key)| key)
    }

    /// The verification keys alone: what a function that only checks codes is given.
    pub fn verification_keys(&self) -> &VerificationKeys {
        &self.verification
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    const SEED_A: [u8; 32] = [1; 32];
    const SEED_B: [u8; 32] = [2; 32];

    fn public_b64(seed: &[u8; 32]) -> String {
        B64.encode(SigningKey::from_seed("x", seed).unwrap().public_key())
    }

    fn retired_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
    }

    fn two_key_ring() -> KeyRing {
        let text = json!({
            "active": "k2026a",
            "keys": [
                {"kid": "k2026a", "seed": B64.encode(SEED_A)},
                {"kid": "k2025b", "public": public_b64(&SEED_B), "retired_at": "2026-11-01T00:00:00Z"},
            ]
        });
        KeyRing::from_json(&text.to_string()).unwrap()
    }

    #[test]
    fn the_config_names_the_signer_and_every_verifier() {
        let ring = two_key_ring();
        assert_eq!(ring.signer(retired_at()).kid(), "k2026a");
        let now = retired_at();
        assert_eq!(ring.verifier(b"k2026a", now).unwrap().retired_at(), None);
        assert_eq!(
            ring.verifier(b"k2025b", now).unwrap().retired_at(),
            Some(retired_at())
        );
        assert!(ring.verifier(b"k2026", now).is_none());
        assert!(ring.verifier(b"", now).is_none());
    }

    #[test]
    fn a_retired_key_verifies_for_seven_days_after_retirement_then_is_gone() {
        let ring = two_key_ring();
        let last_second = retired_at() + Duration::days(7) - Duration::seconds(1);
        assert!(ring.verifier(b"k2025b", last_second).is_some());
        assert!(ring
            .verifier(b"k2025b", retired_at() + Duration::days(7))
            .is_none());
        // The active key never expires.
        assert!(ring
            .verifier(b"k2026a", retired_at() + Duration::days(3650))
            .is_some());
    }

    #[test]
    fn the_published_keys_are_the_live_ones() {
        let ring = two_key_ring();
        let live = ring.jwks(retired_at());
        let keys = live["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys[0],
            json!({
                "kty": "OKP", "crv": "Ed25519", "kid": "k2026a", "use": "sig", "alg": "EdDSA",
                "x": B64URL.encode(SigningKey::from_seed("x", &SEED_A).unwrap().public_key()),
            })
        );
        assert_eq!(keys[1]["kid"], "k2025b");
        assert_eq!(keys[1]["kincode_valid_until"], "2026-11-08T00:00:00Z");
        let later = ring.jwks(retired_at() + Duration::days(7));
        let kids: Vec<_> = later["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, ["k2026a"]);
    }

    #[test]
    fn config_json_reads_back_as_the_same_key() {
        let ring = KeyRing::from_json(&KeyRing::config_json("dev", &SEED_A)).unwrap();
        assert_eq!(ring.signer(Utc::now()).kid(), "dev");
        let expected = SigningKey::from_seed("dev", &SEED_A).unwrap().public_key();
        assert_eq!(
            ring.verifier(b"dev", Utc::now()).unwrap().public_key(),
            &expected
        );
    }

    #[test]
    fn generated_rings_have_distinct_keys() {
        let a = KeyRing::generate("t");
        let b = KeyRing::generate("t");
        let now = Utc::now();
        assert_ne!(
            a.verifier(b"t", now).unwrap().public_key(),
            b.verifier(b"t", now).unwrap().public_key()
        );
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let ring = KeyRing::from_json(&KeyRing::config_json("dev", &SEED_A)).unwrap();
        let printed = format!("{ring:?}");
        assert!(printed.contains("dev"));
        // Neither the seed (in any common rendering) nor its bytes appear.
        assert!(!printed.contains(&B64.encode(SEED_A)));
        assert!(!printed.contains(&B64URL.encode(SEED_A)));
        assert!(!printed.contains("1, 1, 1, 1"));
    }

    #[test]
    fn signing_keys_need_a_valid_kid_and_a_32_byte_seed() {
        assert!(matches!(
            SigningKey::from_seed("", &SEED_A),
            Err(KeyRingError::BadKid(_))
        ));
        assert!(matches!(
            SigningKey::from_seed("k", &[1; 31]),
            Err(KeyRingError::BadLength(_))
        ));
    }

    fn config_error(text: Value) -> KeyRingError {
        KeyRing::from_json(&text.to_string()).unwrap_err()
    }

    #[test]
    fn bad_configs_are_refused_with_the_reason() {
        let seed = B64.encode(SEED_A);
        let public = public_b64(&SEED_B);
        assert!(matches!(
            KeyRing::from_json("{not json"),
            Err(KeyRingError::Json { .. })
        ));
        assert!(matches!(
            config_error(
                json!({"active": "a", "keys": [{"kid": "a", "seed": seed, "retird_at": "2026-11-01T00:00:00Z"}]})
            ),
            KeyRingError::Json { .. }
        ));
        assert!(matches!(
            config_error(json!({"active": "a", "keys": [{"kid": "b", "seed": seed}]})),
            KeyRingError::ActiveKeyMissing(k) if k == "a"
        ));
        assert!(matches!(
            config_error(json!({"active": "a", "keys": []})),
            KeyRingError::ActiveKeyMissing(_)
        ));
        assert!(matches!(
            config_error(json!({"active": "a", "keys": [{"kid": "a", "public": public}]})),
            KeyRingError::ActiveKeyWithoutSeed(_)
        ));
        assert!(matches!(
            config_error(
                json!({"active": "a", "keys": [{"kid": "a", "seed": seed, "retired_at": "2026-11-01T00:00:00Z"}]})
            ),
            KeyRingError::ActiveKeyRetired(_)
        ));
        assert!(matches!(
            config_error(
                json!({"active": "a", "keys": [{"kid": "a", "seed": seed}, {"kid": "a", "public": public}]})
            ),
            KeyRingError::DuplicateKid(_)
        ));
        assert!(matches!(
            config_error(
                json!({"active": "a", "keys": [{"kid": "a", "seed": seed, "public": public}]})
            ),
            KeyRingError::KeyMaterial(_)
        ));
        assert!(matches!(
            config_error(json!({"active": "a", "keys": [{"kid": "a"}]})),
            KeyRingError::KeyMaterial(_)
        ));
        assert!(matches!(
            config_error(json!({"active": "a", "keys": [{"kid": "a", "seed": "not base64!"}]})),
            KeyRingError::BadBase64(_)
        ));
        assert!(matches!(
            config_error(
                json!({"active": "a", "keys": [{"kid": "a", "seed": B64.encode([1u8; 31])}]})
            ),
            KeyRingError::BadLength(_)
        ));
        assert!(matches!(
            config_error(
                json!({"active": "a", "keys": [{"kid": "a", "seed": seed}, {"kid": "b", "public": B64.encode([1u8; 33])}]})
            ),
            KeyRingError::BadLength(_)
        ));
        for bad_kid in ["", "has space", "k\u{4e00}", "abcdefghijklmnopq", "tab\t"] {
            assert!(
                matches!(
                    config_error(
                        json!({"active": bad_kid, "keys": [{"kid": bad_kid, "seed": seed}]})
                    ),
                    KeyRingError::BadKid(_)
                ),
                "{bad_kid:?}"
            );
        }
        assert!(matches!(
            config_error(
                json!({"active": "a", "keys": [{"kid": "a", "seed": seed}, {"kid": "b", "public": public, "retired_at": "yesterday"}]})
            ),
            KeyRingError::Json { .. }
        ));
    }

    #[test]
    fn config_errors_do_not_echo_key_material() {
        let seed = B64.encode(SEED_A);
        let misplaced = config_error(json!({"active": "a", "keys": seed}));
        assert!(!misplaced.to_string().contains(&seed), "{misplaced}");
        let mistyped = config_error(json!({"active": "a", "keys": [{"kid": "a", "seed": [seed]}]}));
        assert!(!mistyped.to_string().contains(&seed), "{mistyped}");
    }

    #[test]
    fn the_public_keys_read_back_and_hold_no_seed() {
        let ring = two_key_ring();
        let public = VerificationKeys::from_json(&ring.verification_keys().to_json()).unwrap();
        assert_eq!(public.jwks(retired_at()), ring.jwks(retired_at()));
        let text = public.to_json();
        assert!(!text.contains(&B64.encode(SEED_A)));
        assert!(matches!(
            VerificationKeys::from_json(
                &json!({"keys": [{"kid": "a", "seed": B64.encode(SEED_A)}]}).to_string()
            ),
            Err(KeyRingError::SeedInPublicKeys(_))
        ));
    }

    #[test]
    fn a_rotation_retires_the_signing_keys_adds_the_new_one_and_drops_the_expired() {
        let ring = two_key_ring();
        let next = SigningKey::from_seed("k2027a", &[3; 32]).unwrap();
        let at = retired_at() + Duration::days(7);
        let from = at + ACTIVATION_DELAY;
        let rotated = ring.verification_keys().rotated(&next, at, from).unwrap();
        // k2025b's codes have all expired by then; k2026a retires when k2027a starts.
        let keys = rotated.jwks(at);
        let kids: Vec<_> = keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].clone())
            .collect();
        assert_eq!(kids, ["k2026a", "k2027a"]);
        assert_eq!(
            rotated.verifier(b"k2026a", at).unwrap().retired_at(),
            Some(from)
        );
        assert_eq!(rotated.verifier(b"k2027a", at).unwrap().retired_at(), None);
        assert!(matches!(
            rotated.rotated(&next, at, from),
            Err(KeyRingError::DuplicateKid(_))
        ));
    }

    #[test]
    fn a_rotation_after_one_that_never_wrote_its_signing_keys_retires_the_old_key_at_its_own_switch(
    ) {
        let ring = two_key_ring();
        let at = retired_at() + Duration::days(7);
        let lost = SigningKey::from_seed("k2027a", &[3; 32]).unwrap();
        // The public keys were written, the signing keys' write failed: k2026a still signs.
        let half = ring
            .verification_keys()
            .rotated(&lost, at, at + ACTIVATION_DELAY)
            .unwrap();
        let again = at + Duration::minutes(2);
        let next = SigningKey::from_seed("k2027b", &[4; 32]).unwrap();
        let rotated = half
            .rotated(&next, again, again + ACTIVATION_DELAY)
            .unwrap();
        assert_eq!(
            rotated.verifier(b"k2026a", again).unwrap().retired_at(),
            Some(again + ACTIVATION_DELAY),
            "k2026a signs until this rotation's switch, so it retires then"
        );
    }

    #[test]
    fn a_sixteen_character_kid_is_the_longest_accepted() {
        let kid = "abcdefghijklmnop";
        let ring = KeyRing::from_json(&KeyRing::config_json(kid, &SEED_A)).unwrap();
        assert_eq!(ring.signer(Utc::now()).kid(), kid);
    }

    #[test]
    fn a_ring_mid_rotation_signs_with_the_old_key_until_the_new_one_starts() {
        let now = retired_at();
        let from = now + ACTIVATION_DELAY;
        let text = KeyRing::config_json("k-old", &SEED_A);
        let rotated = KeyRing::rotated_config(&text, "k-new", &SEED_B, now, from).unwrap();
        let ring = KeyRing::from_json(&rotated).unwrap();
        assert_eq!(ring.signer(now).kid(), "k-old");
        assert_eq!(ring.signer(from - Duration::seconds(1)).kid(), "k-old");
        assert_eq!(ring.signer(from).kid(), "k-new");
        assert_eq!(ring.signer(from + Duration::days(30)).kid(), "k-new");
        // Both verify their own codes; the new seed is the one given.
        assert_eq!(
            ring.verifier(b"k-new", now).unwrap().public_key(),
            SigningKey::from_seed("x", &SEED_B)
                .unwrap()
                .public_key()
                .as_ref()
        );
        assert!(ring.verifier(b"k-old", now).is_some());
        // A second rotation before the first key starts is refused ...
        assert!(matches!(
            KeyRing::rotated_config(&rotated, "k-next", &[3; 32], from - Duration::seconds(1), from + ACTIVATION_DELAY),
            Err(KeyRingError::RotationPending { kid, active_from }) if kid == "k-new" && active_from == from
        ));
        // ... and after it, the key signing then is kept, the one before dropped.
        let later = from + Duration::days(8);
        let again = KeyRing::rotated_config(
            &rotated,
            "k-next",
            &[3; 32],
            later,
            later + ACTIVATION_DELAY,
        )
        .unwrap();
        let ring = KeyRing::from_json(&again).unwrap();
        assert_eq!(ring.signer(later).kid(), "k-new");
        assert_eq!(ring.signer(later + ACTIVATION_DELAY).kid(), "k-next");
        assert!(ring.verifier(b"k-old", later).is_none());
        assert!(matches!(
            KeyRing::rotated_config(
                &again,
                "k-new",
                &[4; 32],
                later + Duration::days(1),
                later + Duration::days(2)
            ),
            Err(KeyRingError::DuplicateKid(_))
        ));
    }

    #[test]
    fn only_a_scheduled_signing_key_carries_active_from() {
        let seed = B64.encode(SEED_A);
        let from = "2026-11-01T00:15:00Z";
        assert!(matches!(
            config_error(
                json!({"active": "a", "keys": [{"kid": "a", "seed": seed, "active_from": from}]})
            ),
            KeyRingError::Misscheduled(_)
        ));
        assert!(matches!(
            config_error(
                json!({"active": "a", "keys": [{"kid": "a", "seed": seed}, {"kid": "b", "public": public_b64(&SEED_B), "active_from": from}]})
            ),
            KeyRingError::Misscheduled(_)
        ));
        assert!(matches!(
            VerificationKeys::from_json(
                &json!({"keys": [{"kid": "b", "public": public_b64(&SEED_B), "active_from": from}]}).to_string()
            ),
            Err(KeyRingError::Misscheduled(_))
        ));
    }
}
