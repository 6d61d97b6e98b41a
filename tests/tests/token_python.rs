//! Kin code tokens verify in an independent implementation: `tests/python/verify_kc1.py`
//! (base45 + cbor2 + cryptography, no project code) checks them against the published keys.
//!
//! `python3` must have those packages: the README's test command (through
//! `scripts/with-local-stack.sh`) puts the project's pinned venv first on PATH.

use std::path::PathBuf;
use std::process::{Command, Output};

use chrono::{DateTime, TimeZone, Utc};
use kincode_common::codes::keys::{KeyRing, SigningKey, ACTIVATION_DELAY};
use kincode_common::codes::token::{self, ISSUER};
use kincode_common::domain::binding::BindingId;
use kincode_common::domain::code::{CodeClaims, CodeKind};
use kincode_common::domain::colour::HealthColour;
use kincode_tests::repo_root;
use serde_json::{json, Value};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 4, 0, 0).unwrap()
}

/// The published key document in a file of its own, removed when dropped.
struct JwksFile(PathBuf);

impl JwksFile {
    fn publish(keys: &KeyRing) -> Self {
        Self::write(&keys.jwks(now()))
    }

    fn write(jwks: &Value) -> Self {
        let path = std::env::temp_dir().join(format!(
            "kincode-jwks-{}.json",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, jwks.to_string()).expect("write the JWKS file");
        Self(path)
    }
}

impl Drop for JwksFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn python_verify(jwks: &JwksFile, token: &str) -> Output {
    let script = repo_root().join("tests/python/verify_kc1.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg("--jwks")
        .arg(&jwks.0)
        .arg(token)
        .output()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("ModuleNotFoundError"),
        "python3 lacks the verifier's packages; run through scripts/with-local-stack.sh: {stderr}"
    );
    output
}

fn expected_json(claims: &CodeClaims, kid: &str) -> Value {
    json!({
        "iss": ISSUER,
        "iat": claims.issued_at.timestamp(),
        "exp": claims.expires_at.timestamp(),
        "cti": claims.serial.to_hex(),
        "binding": claims.binding.as_str(),
        "kind": claims.kind.as_str(),
        "colour": claims.colour.as_str(),
        "kid": kid,
    })
}

#[test]
fn python_reads_the_same_claims_from_every_kind_and_colour() {
    let keys = KeyRing::generate("k2026py");
    let jwks = JwksFile::publish(&keys);
    for kind in [CodeKind::KinOnline, CodeKind::KinOffline] {
        for colour in HealthColour::ALL {
            let claims = CodeClaims::issue(BindingId::random(), kind, colour, now());
            let text = token::encode(&claims, keys.signer(now()));
            let output = python_verify(&jwks, &text);
            assert!(
                output.status.success(),
                "python rejected {text}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let printed: Value =
                serde_json::from_slice(&output.stdout).expect("the verifier prints JSON");
            assert_eq!(printed, expected_json(&claims, "k2026py"));
            // And the project's own decoder agrees.
            assert_eq!(token::decode(&text, &keys, now()), Ok(claims));
        }
    }
}

#[test]
fn python_rejects_a_token_from_another_ring() {
    let keys = KeyRing::generate("k2026py");
    let jwks = JwksFile::publish(&keys);
    let claims = CodeClaims::issue(
        BindingId::random(),
        CodeKind::KinOffline,
        HealthColour::Green,
        now(),
    );

    // Same kid, different key: only the signature can tell.
    let impostor = KeyRing::generate("k2026py");
    let output = python_verify(&jwks, &token::encode(&claims, impostor.signer(now())));
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains("signature does not verify"));

    let stranger = KeyRing::generate("k2099zz");
    let output = python_verify(&jwks, &token::encode(&claims, stranger.signer(now())));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no published key"));
}

#[test]
fn python_refuses_a_code_issued_after_retirement_or_living_too_long() {
    let old = KeyRing::generate("k-old");
    let next = SigningKey::from_seed("k-new", &[5; 32]).unwrap();
    let rotated_at = now();
    // The new key signs, and the old one retires, at `rotated_at`.
    let keys = old
        .verification_keys()
        .rotated(&next, rotated_at - ACTIVATION_DELAY, rotated_at)
        .unwrap();
    let jwks = JwksFile::write(&keys.jwks(rotated_at));
    let issue = |at| {
        CodeClaims::issue(
            BindingId::random(),
            CodeKind::KinOnline,
            HealthColour::Green,
            at,
        )
    };
    let before = token::encode(&issue(rotated_at), old.signer(rotated_at));
    assert!(python_verify(&jwks, &before).status.success());
    let after = token::encode(
        &issue(rotated_at + chrono::Duration::seconds(1)),
        old.signer(rotated_at),
    );
    let output = python_verify(&jwks, &after);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("issued after its key was retired"));

    let mut long = issue(rotated_at);
    long.expires_at += chrono::Duration::seconds(1);
    let output = python_verify(&jwks, &token::encode(&long, &next));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("longer than its kind allows"));
}
