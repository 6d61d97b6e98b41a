//! RSA2, as Alipay's open platform names it: RSASSA-PKCS1-v1_5 over SHA-256, base64. Keys come
//! as base64 DER (the app's private key PKCS#8 or PKCS#1, Alipay's public key X.509
//! SubjectPublicKeyInfo), with or without PEM armour.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, ParsedPublicKey, RsaKeyPair};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rsa2KeyError {
    #[error("not base64 DER or PEM")]
    Encoding,
    #[error("not an RSA private key of 2048 to 8192 bits (PKCS#8 or PKCS#1)")]
    PrivateKey,
    #[error("not an RSA public key of 2048 to 8192 bits (X.509 SubjectPublicKeyInfo)")]
    PublicKey,
}

/// The DER inside base64 text, PEM armour and line breaks ignored.
fn der(text: &str) -> Result<Vec<u8>, Rsa2KeyError> {
    let body: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with("-----"))
        .flat_map(|line| line.split_whitespace())
        .collect();
    B64.decode(body).map_err(|_| Rsa2KeyError::Encoding)
}

/// The app's signing key.
pub struct Rsa2Signer(RsaKeyPair);

impl std::fmt::Debug for Rsa2Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rsa2Signer(<redacted>)")
    }
}

impl Rsa2Signer {
    pub fn from_text(text: &str) -> Result<Self, Rsa2KeyError> {
        let der = der(text)?;
        RsaKeyPair::from_pkcs8(&der)
            .or_else(|_| RsaKeyPair::from_der(&der))
            .map(Self)
            .map_err(|_| Rsa2KeyError::PrivateKey)
    }

    /// The base64 signature of `content`.
    pub fn sign(&self, content: &str) -> String {
        let mut signature = vec![0; self.0.public_modulus_len()];
        self.0
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                content.as_bytes(),
                &mut signature,
            )
            .expect("RSA signing with a parsed key and a right-sized buffer does not fail");
        B64.encode(signature)
    }
}

/// Alipay's verification key.
#[derive(Clone)]
pub struct Rsa2Verifier(ParsedPublicKey);

impl std::fmt::Debug for Rsa2Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rsa2Verifier")
    }
}

impl Rsa2Verifier {
    pub fn from_text(text: &str) -> Result<Self, Rsa2KeyError> {
        ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der(text)?)
            .map(Self)
            .map_err(|_| Rsa2KeyError::PublicKey)
    }

    /// Whether `signature` (base64) signs `content` exactly as given.
    pub fn verifies(&self, content: &[u8], signature: &str) -> bool {
        B64.decode(signature)
            .is_ok_and(|signature| self.0.verify_sig(content, &signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PKCS1: &str = include_str!("testdata/app-private-pkcs1.pem");
    const PKCS8: &str = include_str!("testdata/app-private-pkcs8.pem");
    const PUBLIC: &str = include_str!("testdata/app-public.pem");
    const REQUEST: &str = include_str!("testdata/request-content.txt");
    const REQUEST_SIG: &str = include_str!("testdata/request-content.sig");
    const RESPONSE: &str = include_str!("testdata/response-content.txt");
    const RESPONSE_SIG: &str = include_str!("testdata/response-content.sig");

    #[test]
    fn signatures_match_openssl_for_both_private_key_forms() {
        for key in [PKCS1, PKCS8] {
            let signer = Rsa2Signer::from_text(key).unwrap();
            assert_eq!(signer.sign(REQUEST), REQUEST_SIG.trim());
        }
        // Alipay's tools hand keys out as bare base64, without PEM armour.
        let bare: String = PKCS8.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(
            Rsa2Signer::from_text(&bare).unwrap().sign(REQUEST),
            REQUEST_SIG.trim()
        );
    }

    #[test]
    fn an_openssl_signed_response_verifies_and_a_changed_one_does_not() {
        let verifier = Rsa2Verifier::from_text(PUBLIC).unwrap();
        assert!(verifier.verifies(RESPONSE.as_bytes(), RESPONSE_SIG.trim()));
        let changed = RESPONSE.replace("10000", "10001");
        assert!(!verifier.verifies(changed.as_bytes(), RESPONSE_SIG.trim()));
        assert!(!verifier.verifies(RESPONSE.as_bytes(), "not base64!"));
        assert!(!verifier.verifies(RESPONSE.as_bytes(), &REQUEST_SIG.trim()[4..]));
    }

    #[test]
    fn bad_keys_are_configuration_errors() {
        assert_eq!(
            Rsa2Signer::from_text("%%%").unwrap_err(),
            Rsa2KeyError::Encoding
        );
        assert_eq!(
            Rsa2Signer::from_text(PUBLIC).unwrap_err(),
            Rsa2KeyError::PrivateKey
        );
        assert_eq!(
            Rsa2Verifier::from_text("AAAA").unwrap_err(),
            Rsa2KeyError::PublicKey
        );
        assert!(format!("{:?}", Rsa2Signer::from_text(PKCS8).unwrap()).contains("redacted"));
    }
}
