//! Keys for personal data: a keyed hash for lookups and AEAD for what must be read back.
//! Primitives come from aws-lc-rs (already in the SDK's dependency tree).

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;

use crate::domain::resident_id::ResidentId;

/// Sealed values are `v1.<base64url(nonce ‖ ciphertext ‖ tag)>`; the prefix leaves room for
/// key rotation.
const SEALED_PREFIX: &str = "v1.";
pub const MIN_LOOKUP_SECRET_LEN: usize = 32;
pub const DATA_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("lookup secret must be at least {MIN_LOOKUP_SECRET_LEN} bytes")]
    LookupSecretTooShort,
    #[error("data key must be exactly {DATA_KEY_LEN} bytes")]
    DataKeyLength,
}

#[derive(Debug, thiserror::Error)]
#[error("sealed value could not be opened")]
pub struct OpenError;

pub struct Keys {
    lookup: hmac::Key,
    data: RandomizedNonceKey,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(<redacted>)")
    }
}

/// What a sealed value belongs to; bound in as associated data so a ciphertext copied onto
/// another item does not open.
#[derive(Debug, Clone, Copy)]
pub enum SealContext<'a> {
    RelativeName {
        binding_id: &'a str,
    },
    RelativeIdNumber {
        binding_id: &'a str,
    },
    /// The masked name a scanned code shows, kept with the code anchor.
    CodeHolderName {
        binding_id: &'a str,
    },
    /// Where the next page of a binding's results starts: sealed, so a client can neither
    /// read nor alter it, nor use it with another binding.
    ResultsCursor {
        binding_id: &'a str,
    },
    /// Where the next page of a relative's access log starts, for one binding.
    AccessLogCursor {
        binding_id: &'a str,
    },
    /// A dispute's free text: the reporter's own words, which may name people.
    DisputeDetails {
        dispute_id: &'a str,
    },
}

impl SealContext<'_> {
    fn aad(&self) -> String {
        match self {
            Self::RelativeName { binding_id } => format!("kincode/name/{binding_id}"),
            Self::RelativeIdNumber { binding_id } => format!("kincode/id/{binding_id}"),
            Self::CodeHolderName { binding_id } => format!("kincode/code-holder/{binding_id}"),
            Self::ResultsCursor { binding_id } => format!("kincode/results-cursor/{binding_id}"),
            Self::AccessLogCursor { binding_id } => {
                format!("kincode/access-log-cursor/{binding_id}")
            }
            Self::DisputeDetails { dispute_id } => format!("kincode/dispute-details/{dispute_id}"),
        }
    }
}

impl Keys {
    pub fn new(lookup_secret: &[u8], data_key: &[u8]) -> Result<Self, KeyError> {
        if lookup_secret.len() < MIN_LOOKUP_SECRET_LEN {
            return Err(KeyError::LookupSecretTooShort);
        }
        if data_key.len() != DATA_KEY_LEN {
            return Err(KeyError::DataKeyLength);
        }
        let data =
            RandomizedNonceKey::new(&AES_256_GCM, data_key).map_err(|_| KeyError::DataKeyLength)?;
        Ok(Self {
            lookup: hmac::Key::new(hmac::HMAC_SHA256, lookup_secret),
            data,
        })
    }

    fn mac(&self, domain: &str, parts: &[&str]) -> String {
        let mut ctx = hmac::Context::with_key(&self.lookup);
        ctx.update(domain.as_bytes());
        for part in parts {
            // Length-prefixed so ("ab","c") and ("a","bc") differ.
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part.as_bytes());
        }
        B64.encode(ctx.sign().as_ref())
    }

    /// The key a relative is stored under: the same for every guardian who binds them.
    pub fn relative_key(&self, id: &ResidentId) -> String {
        self.mac("kincode/relative/v1", &[id.expose()])
    }

    /// A binding id derived from the caller's idempotency key, so a retried request names
    /// the same binding. 128 bits, rendered like a UUID.
    pub fn binding_id_for_retry(&self, guardian: &str, idempotency_key: &str) -> String {
        let mac = self.mac("kincode/binding-id/v1", &[guardian, idempotency_key]);
        let bytes = B64.decode(mac).expect("own encoding");
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[..16]);
        uuid::Builder::from_random_bytes(id).into_uuid().to_string()
    }

    /// A household sheet's id derived from the caller's idempotency key, so a retried request
    /// meets the sheet its first attempt recorded. 128 bits, as hex (a random id's form).
    pub fn sheet_id_for_retry(&self, guardian: &str, idempotency_key: &str) -> String {
        let mac = self.mac("kincode/sheet-id/v1", &[guardian, idempotency_key]);
        let bytes = B64.decode(mac).expect("own encoding");
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[..16]);
        uuid::Builder::from_random_bytes(id)
            .into_uuid()
            .simple()
            .to_string()
    }

    /// How a guardian of a relative appears to the relative's other guardians and in its
    /// access log: stable for the pair, unlinkable across relatives, never the platform id.
    /// 72 bits: collisions among a relative's few guardians are out of reach.
    pub fn guardian_handle(&self, relative_key: &str, guardian: &str) -> String {
        let mac = self.mac("kincode/guardian-handle/v1", &[relative_key, guardian]);
        format!("g-{}", &mac[..12])
    }

    /// The key of a registration's replay record: the caller's Idempotency-Key, keyed so the
    /// stored key says nothing and one caller's key never meets another's.
    pub fn replay_key(&self, actor: &str, idempotency_key: &str) -> String {
        self.mac("kincode/replay/v1", &[actor, idempotency_key])
    }

    pub fn seal(&self, plaintext: &str, context: SealContext<'_>) -> String {
        let mut in_out = plaintext.as_bytes().to_vec();
        let nonce = self
            .data
            .seal_in_place_append_tag(Aad::from(context.aad().as_bytes()), &mut in_out)
            .expect("AES-GCM sealing with a valid key does not fail");
        let mut sealed = nonce.as_ref().to_vec();
        sealed.extend_from_slice(&in_out);
        format!("{SEALED_PREFIX}{}", B64.encode(sealed))
    }

    pub fn open(&self, sealed: &str, context: SealContext<'_>) -> Result<String, OpenError> {
        let encoded = sealed.strip_prefix(SEALED_PREFIX).ok_or(OpenError)?;
        let bytes = B64.decode(encoded).map_err(|_| OpenError)?;
        if bytes.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .data
            .open_in_place(nonce, Aad::from(context.aad().as_bytes()), &mut in_out)
            .map_err(|_| OpenError)?;
        String::from_utf8(plaintext.to_vec()).map_err(|_| OpenError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn keys() -> Keys {
        Keys::new(&[7u8; 32], &[9u8; 32]).unwrap()
    }

    #[test]
    fn relative_key_is_stable_and_keyed() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
        let id = ResidentId::parse("11010519491231002X", today).unwrap();
        assert_eq!(keys().relative_key(&id), keys().relative_key(&id));
        let other = Keys::new(&[8u8; 32], &[9u8; 32]).unwrap();
        assert_ne!(keys().relative_key(&id), other.relative_key(&id));
        assert!(!keys().relative_key(&id).contains("1949"));
    }

    #[test]
    fn seal_round_trips_and_is_bound_to_its_context() {
        let k = keys();
        let here = SealContext::RelativeName { binding_id: "a" };
        let sealed = k.seal("王小明", here);
        assert!(sealed.starts_with("v1.") && !sealed.contains("王"));
        assert_ne!(sealed, k.seal("王小明", here), "nonces are random");
        assert_eq!(k.open(&sealed, here).unwrap(), "王小明");
        assert!(k
            .open(&sealed, SealContext::RelativeName { binding_id: "b" })
            .is_err());
        assert!(k
            .open(&sealed, SealContext::RelativeIdNumber { binding_id: "a" })
            .is_err());
        assert!(k.open("v1.AAAA", here).is_err());
        assert!(k.open("garbage", here).is_err());
    }

    #[test]
    fn retry_binding_ids_depend_on_guardian_and_key() {
        let k = keys();
        let a = k.binding_id_for_retry("guardian-1", "key-1");
        assert_eq!(a, k.binding_id_for_retry("guardian-1", "key-1"));
        assert_ne!(a, k.binding_id_for_retry("guardian-2", "key-1"));
        assert_ne!(a, k.binding_id_for_retry("guardian-1", "key-2"));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn retry_sheet_ids_depend_on_guardian_and_key_and_differ_from_binding_ids() {
        let k = keys();
        let a = k.sheet_id_for_retry("guardian-1", "key-1");
        assert_eq!(a, k.sheet_id_for_retry("guardian-1", "key-1"));
        assert_ne!(a, k.sheet_id_for_retry("guardian-2", "key-1"));
        assert_ne!(a, k.sheet_id_for_retry("guardian-1", "key-2"));
        assert_eq!(a.len(), 32);
        let binding = k
            .binding_id_for_retry("guardian-1", "key-1")
            .replace('-', "");
        assert_ne!(a, binding);
    }

    #[test]
    fn guardian_handles_are_stable_per_relative_and_unlinkable_across_relatives() {
        let k = keys();
        let handle = k.guardian_handle("relative-a", "guardian-1");
        assert_eq!(handle, k.guardian_handle("relative-a", "guardian-1"));
        assert_ne!(handle, k.guardian_handle("relative-b", "guardian-1"));
        assert_ne!(handle, k.guardian_handle("relative-a", "guardian-2"));
        assert!(handle.starts_with("g-") && handle.len() == 14);
        assert!(!handle.contains("guardian"));
    }

    #[test]
    fn short_or_wrong_keys_are_refused() {
        assert!(matches!(
            Keys::new(&[1u8; 31], &[1u8; 32]),
            Err(KeyError::LookupSecretTooShort)
        ));
        assert!(matches!(
            Keys::new(&[1u8; 32], &[1u8; 16]),
            Err(KeyError::DataKeyLength)
        ));
    }
}
