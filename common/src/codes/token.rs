//! The signed kin code token: `KC1:` + base45(COSE_Sign1), the shape of the EU DCC's `HC1:`
//! without zlib, so any COSE library can check it.
//!
//! - COSE_Sign1, tagged (CBOR tag 18); protected header `{1 (alg): -8 (EdDSA), 4 (kid): bstr}`,
//!   unprotected header empty, signature Ed25519 over the COSE `Sig_structure` with empty
//!   external AAD.
//! - Payload: a CWT claims map, in deterministic order:
//!
//! | label | claim | value |
//! |---|---|---|
//! | 1 (`iss`) | issuer | text, [`ISSUER`] |
//! | 4 (`exp`) | expires at | uint, epoch seconds |
//! | 6 (`iat`) | issued at | uint, epoch seconds |
//! | 7 (`cti`) | serial | bstr, 16 bytes |
//! | [`CLAIM_BINDING`] (-1) | binding id | bstr, the 16 bytes of the UUID |
//! | [`CLAIM_KIND`] (-2) | kind | uint: 1 kin online, 2 kin offline |
//! | [`CLAIM_COLOUR`] (-3) | colour at issue | uint: 1 green, 2 yellow, 3 red |
//!
//! The private labels are one-byte negative integers: the CWT private-use range (< -65536)
//! would cost 4 more bytes per claim, and the QR code is the constraint. A consequence is that
//! strict CWT parsers (coset's `ClaimsSet`) refuse them as unregistered, so the claims are read
//! here as a plain CBOR map; signature checks by any COSE library are unaffected.
//!
//! About 145 bytes of COSE with a 6-character kid, so about 222 characters of text.

use chrono::{DateTime, Duration, Utc};
use coset::cbor::value::Value;
use coset::{
    iana, Algorithm, CborSerializable, CoseSign1, CoseSign1Builder, HeaderBuilder,
    TaggedCborSerializable,
};

use super::keys::{SigningKey, VerificationKeys};
use crate::domain::binding::BindingId;
use crate::domain::code::{CodeClaims, CodeKind, CodeSerial};
use crate::domain::colour::HealthColour;

pub const PREFIX: &str = "KC1:";
/// Refused before any decoding; a real token is about 222 characters.
pub const MAX_TOKEN_CHARS: usize = 400;
pub const ISSUER: &str = "kincode";

/// CWT claim labels (RFC 8392).
pub const CLAIM_ISS: i64 = 1;
pub const CLAIM_EXP: i64 = 4;
pub const CLAIM_IAT: i64 = 6;
pub const CLAIM_CTI: i64 = 7;
/// Private claims: the binding's UUID as 16 bytes, the kind, the colour at issue.
pub const CLAIM_BINDING: i64 = -1;
pub const CLAIM_KIND: i64 = -2;
pub const CLAIM_COLOUR: i64 = -3;

/// How far a verifier's clock may lag the issuer's before a fresh code looks premature.
pub fn max_clock_skew() -> Duration {
    Duration::seconds(60)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("code text is longer than {MAX_TOKEN_CHARS} characters")]
    Oversized,
    #[error("code text does not start with {PREFIX}")]
    WrongPrefix,
    #[error("code text is not base45")]
    BadBase45,
    #[error("code is not a COSE_Sign1 message")]
    BadCose,
    #[error("code is not signed with EdDSA")]
    UnsupportedAlgorithm,
    #[error("code is signed with an unknown or retired key")]
    UnknownKey,
    #[error("code signature does not verify")]
    BadSignature,
    #[error("code claims are missing or malformed")]
    BadClaims,
    #[error("code has expired")]
    Expired,
    #[error("code is not valid yet")]
    NotYetValid,
    #[error("code was issued after its key was retired")]
    IssuedAfterKeyRetired,
    #[error("code lives longer than its kind allows")]
    LifetimeTooLong,
}

impl TokenError {
    /// Every variant: for the tests that hold each one to its code, message and contract.
    pub const ALL: [TokenError; 12] = [
        Self::Oversized,
        Self::WrongPrefix,
        Self::BadBase45,
        Self::BadCose,
        Self::UnsupportedAlgorithm,
        Self::UnknownKey,
        Self::BadSignature,
        Self::BadClaims,
        Self::Expired,
        Self::NotYetValid,
        Self::IssuedAfterKeyRetired,
        Self::LifetimeTooLong,
    ];

    /// A stable machine-readable name, e.g. for API error bodies and metrics.
    pub fn code(self) -> &'static str {
        match self {
            Self::Oversized => "code_oversized",
            Self::WrongPrefix => "code_wrong_prefix",
            Self::BadBase45 => "code_bad_base45",
            Self::BadCose => "code_malformed",
            Self::UnsupportedAlgorithm => "code_unsupported_algorithm",
            Self::UnknownKey => "code_unknown_key",
            Self::BadSignature => "code_bad_signature",
            Self::BadClaims => "code_bad_claims",
            Self::Expired => "code_expired",
            Self::NotYetValid => "code_not_yet_valid",
            Self::IssuedAfterKeyRetired => "code_issued_after_key_retired",
            Self::LifetimeTooLong => "code_lifetime_too_long",
        }
    }
}

fn kind_value(kind: CodeKind) -> u8 {
    match kind {
        CodeKind::KinOnline => 1,
        CodeKind::KinOffline => 2,
    }
}

fn kind_from_value(value: i64) -> Option<CodeKind> {
    match value {
        1 => Some(CodeKind::KinOnline),
        2 => Some(CodeKind::KinOffline),
        _ => None,
    }
}

fn colour_value(colour: HealthColour) -> u8 {
    match colour {
        HealthColour::Green => 1,
        HealthColour::Yellow => 2,
        HealthColour::Red => 3,
    }
}

fn colour_from_value(value: i64) -> Option<HealthColour> {
    match value {
        1 => Some(HealthColour::Green),
        2 => Some(HealthColour::Yellow),
        3 => Some(HealthColour::Red),
        _ => None,
    }
}

fn claims_payload(claims: &CodeClaims) -> Vec<u8> {
    let binding =
        uuid::Uuid::try_parse(claims.binding.as_str()).expect("a BindingId is a canonical UUID");
    // Deterministic CBOR order: positive labels ascending, then -1, -2, -3.
    let map = Value::Map(vec![
        (CLAIM_ISS.into(), Value::Text(ISSUER.to_owned())),
        (CLAIM_EXP.into(), claims.expires_at.timestamp().into()),
        (CLAIM_IAT.into(), claims.issued_at.timestamp().into()),
        (CLAIM_CTI.into(), Value::Bytes(claims.serial.0.to_vec())),
        (
            CLAIM_BINDING.into(),
            Value::Bytes(binding.as_bytes().to_vec()),
        ),
        (CLAIM_KIND.into(), kind_value(claims.kind).into()),
        (CLAIM_COLOUR.into(), colour_value(claims.colour).into()),
    ]);
    map.to_vec()
        .expect("serialising a CBOR value into memory does not fail")
}

/// The token text for `claims`, signed by `key`. Times are encoded as whole seconds.
pub fn encode(claims: &CodeClaims, key: &SigningKey) -> String {
    let protected = HeaderBuilder::new()
        .algorithm(iana::Algorithm::EdDSA)
        .key_id(key.kid().as_bytes().to_vec())
        .build();
    let message = CoseSign1Builder::new()
        .protected(protected)
        .payload(claims_payload(claims))
        .create_signature(b"", |to_be_signed| key.sign(to_be_signed))
        .build();
    let bytes = message
        .to_tagged_vec()
        .expect("serialising a COSE_Sign1 into memory does not fail");
    format!("{PREFIX}{}", base45::encode(bytes))
}

/// Strict base45: the crate truncates a final character pair worth more than 255 instead of
/// refusing it, so only text that is the encoding of its own decoding is accepted.
fn decode_base45(encoded: &str) -> Result<Vec<u8>, TokenError> {
    let bytes = base45::decode(encoded).map_err(|_| TokenError::BadBase45)?;
    if base45::encode(&bytes) != encoded {
        return Err(TokenError::BadBase45);
    }
    Ok(bytes)
}

fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    let seconds = i64::try_from(value.as_integer()?).ok()?;
    DateTime::from_timestamp(seconds, 0)
}

fn small_integer(value: &Value) -> Option<i64> {
    i64::try_from(value.as_integer()?).ok()
}

fn sixteen_bytes(value: &Value) -> Option<[u8; 16]> {
    value.as_bytes()?.as_slice().try_into().ok()
}

/// The claims map. Unknown claims are ignored (as CWT/JWT verifiers do); a known claim that
/// is repeated, missing or of the wrong type is refused.
fn parse_claims(payload: &[u8]) -> Option<CodeClaims> {
    let Value::Map(entries) = Value::from_slice(payload).ok()? else {
        return None;
    };
    let mut iss = None;
    let mut exp = None;
    let mut iat = None;
    let mut cti = None;
    let mut binding = None;
    let mut kind = None;
    let mut colour = None;
    for (label, value) in &entries {
        let Some(label) = label.as_integer().and_then(|l| i64::try_from(l).ok()) else {
            continue;
        };
        let slot_was_empty = match label {
            CLAIM_ISS => iss.replace(value.as_text()?).is_none(),
            CLAIM_EXP => exp.replace(timestamp(value)?).is_none(),
            CLAIM_IAT => iat.replace(timestamp(value)?).is_none(),
            CLAIM_CTI => cti.replace(sixteen_bytes(value)?).is_none(),
            CLAIM_BINDING => binding.replace(sixteen_bytes(value)?).is_none(),
            CLAIM_KIND => kind
                .replace(kind_from_value(small_integer(value)?)?)
                .is_none(),
            CLAIM_COLOUR => colour
                .replace(colour_from_value(small_integer(value)?)?)
                .is_none(),
            _ => true,
        };
        if !slot_was_empty {
            return None;
        }
    }
    if iss? != ISSUER {
        return None;
    }
    let (issued_at, expires_at) = (iat?, exp?);
    if expires_at <= issued_at {
        return None;
    }
    let binding = uuid::Uuid::from_bytes(binding?).hyphenated().to_string();
    Some(CodeClaims {
        serial: CodeSerial(cti?),
        binding: BindingId::parse(&binding)?,
        kind: kind?,
        colour: colour?,
        issued_at,
        expires_at,
    })
}

/// Checks a token's text and returns its claims if it is authentic and valid at `now`.
///
/// In order: length, prefix, base45, COSE_Sign1 structure, algorithm, key id (a key live at
/// `now`), signature, claims, a lifetime (`exp - iat`) within its kind's, not issued after
/// its key's `retired_at` (a retired key signs nothing more, so a later code was forged with
/// a key that may have leaked), not issued in the future (beyond [`max_clock_skew`]), not
/// expired (`now < exp`). Never panics, whatever the input.
pub fn decode(
    text: &str,
    keys: &VerificationKeys,
    now: DateTime<Utc>,
) -> Result<CodeClaims, TokenError> {
    if text.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Oversized);
    }
    let encoded = text.strip_prefix(PREFIX).ok_or(TokenError::WrongPrefix)?;
    let bytes = decode_base45(encoded)?;
    let message = CoseSign1::from_tagged_slice(&bytes).map_err(|_| TokenError::BadCose)?;
    // The unprotected header is not signed: anything in it could be altered unnoticed.
    // Critical headers would be ones this verifier does not understand.
    let header = &message.protected.header;
    if !message.unprotected.is_empty() || !header.crit.is_empty() {
        return Err(TokenError::BadCose);
    }
    let payload = message.payload.as_deref().ok_or(TokenError::BadCose)?;
    if header.alg != Some(Algorithm::Assigned(iana::Algorithm::EdDSA)) {
        return Err(TokenError::UnsupportedAlgorithm);
    }
    let key = keys
        .verifier(&header.key_id, now)
        .ok_or(TokenError::UnknownKey)?;
    message.verify_signature(b"", |signature, signed| {
        if key.verify(signed, signature) {
            Ok(())
        } else {
            Err(TokenError::BadSignature)
        }
    })?;
    let claims = parse_claims(payload).ok_or(TokenError::BadClaims)?;
    if claims.expires_at - claims.issued_at > claims.kind.lifetime() {
        return Err(TokenError::LifetimeTooLong);
    }
    if key
        .retired_at()
        .is_some_and(|retired_at| claims.issued_at > retired_at)
    {
        return Err(TokenError::IssuedAfterKeyRetired);
    }
    if claims.issued_at > now + max_clock_skew() {
        return Err(TokenError::NotYetValid);
    }
    if now >= claims.expires_at {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::keys::KeyRing;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;
    use chrono::TimeZone;
    use coset::Header;

    /// The pinned vector's inputs. The seed is RFC 8032's Ed25519 TEST 1 secret key, so its
    /// public key is published there too.
    const SEED: [u8; 32] = [
        0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec, 0x2c,
        0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae,
        0x7f, 0x60,
    ];
    const KID: &str = "k2026a";

    fn ring() -> KeyRing {
        KeyRing::from_json(&KeyRing::config_json(KID, &SEED)).unwrap()
    }

    fn issued() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 4, 0, 0).unwrap()
    }

    fn pinned_claims() -> CodeClaims {
        CodeClaims {
            serial: CodeSerial([
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff,
            ]),
            binding: BindingId::parse("7c3d9a51-2b64-4f0e-9d1a-5e8f6c2b1a03").unwrap(),
            kind: CodeKind::KinOffline,
            colour: HealthColour::Yellow,
            issued_at: issued(),
            expires_at: issued() + Duration::days(7),
        }
    }

    const PINNED: &str = "KC1:RRQCP9P60EO0$OD846G*68CKJ-7:702QD:.DV3EUYCDF39L2A48DF3VD1JCO55AL72TL6$ZA05F8JJGXNO2SHBW*7AKZ7YBATUC6%10F3-5I9K5 H06C0FD0H98+V79YM2LOY8OK+PHID YF6$KC89/AUU-J4OL3H9OFRLB5$$O-+C9U8:MJ/08X/PX/FFYE9DDKPKWBVG:3T8OO%7NIG5ZJF0";

    #[test]
    fn the_pinned_vector_is_reproduced_exactly() {
        let token = encode(&pinned_claims(), ring().signer(issued()));
        assert_eq!(token, PINNED);
        let rfc8032_public = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        assert_eq!(ring().jwks(issued())["keys"][0]["x"], rfc8032_public);
        assert_eq!(decode(PINNED, &ring(), issued()), Ok(pinned_claims()));
    }

    #[test]
    fn the_bytes_have_the_documented_layout() {
        let token = encode(&pinned_claims(), ring().signer(issued()));
        let bytes = base45::decode(token.strip_prefix(PREFIX).unwrap()).unwrap();
        assert_eq!(bytes.len(), 145);
        assert_eq!(token.len(), 222);
        // Tag 18, a 4-array, then the protected header bstr {1: -8, 4: h'6b32303236 61'}.
        assert_eq!(&bytes[..4], &[0xd2, 0x84, 0x4b, 0xa2]);
        assert_eq!(
            &bytes[4..14],
            &[0x01, 0x27, 0x04, 0x46, b'k', b'2', b'0', b'2', b'6', b'a']
        );
        assert_eq!(bytes[14], 0xa0, "empty unprotected header");
        let message = CoseSign1::from_tagged_slice(&bytes).unwrap();
        let Value::Map(claims) = Value::from_slice(&message.payload.unwrap()).unwrap() else {
            panic!("payload is a map");
        };
        let labels: Vec<i64> = claims
            .iter()
            .map(|(l, _)| i64::try_from(l.as_integer().unwrap()).unwrap())
            .collect();
        assert_eq!(labels, [1, 4, 6, 7, -1, -2, -3]);
        assert_eq!(message.signature.len(), 64);
    }

    #[test]
    fn every_kind_and_colour_round_trips() {
        let keys = KeyRing::generate("t1");
        for kind in [CodeKind::KinOnline, CodeKind::KinOffline] {
            for colour in HealthColour::ALL {
                let claims = CodeClaims::issue(BindingId::random(), kind, colour, issued());
                let token = encode(&claims, keys.signer(issued()));
                assert!(token.len() <= MAX_TOKEN_CHARS);
                assert_eq!(decode(&token, &keys, issued()), Ok(claims.clone()));
                let last_second = claims.expires_at - Duration::seconds(1);
                assert_eq!(decode(&token, &keys, last_second), Ok(claims));
            }
        }
    }

    /// A token with arbitrary headers and payload, signed by `key` over the real Sig_structure.
    fn signed(
        protected: Header,
        unprotected: Header,
        payload: Vec<u8>,
        key: &SigningKey,
    ) -> String {
        let bytes = CoseSign1Builder::new()
            .protected(protected)
            .unprotected(unprotected)
            .payload(payload)
            .create_signature(b"", |tbs| key.sign(tbs))
            .build()
            .to_tagged_vec()
            .unwrap();
        format!("{PREFIX}{}", base45::encode(bytes))
    }

    fn eddsa_header(kid: &str) -> Header {
        HeaderBuilder::new()
            .algorithm(iana::Algorithm::EdDSA)
            .key_id(kid.as_bytes().to_vec())
            .build()
    }

    /// The pinned claims' payload with `edit` applied to its entries.
    fn payload_with(edit: impl FnOnce(&mut Vec<(Value, Value)>)) -> Vec<u8> {
        let Value::Map(mut entries) = Value::from_slice(&claims_payload(&pinned_claims())).unwrap()
        else {
            panic!("payload is a map");
        };
        edit(&mut entries);
        Value::Map(entries).to_vec().unwrap()
    }

    fn without(label: i64) -> impl FnOnce(&mut Vec<(Value, Value)>) {
        move |entries| entries.retain(|(l, _)| *l != Value::from(label))
    }

    fn replacing(label: i64, value: Value) -> impl FnOnce(&mut Vec<(Value, Value)>) {
        move |entries| {
            for (l, v) in entries.iter_mut() {
                if *l == Value::from(label) {
                    *v = value.clone();
                }
            }
        }
    }

    fn claims_error(edit: impl FnOnce(&mut Vec<(Value, Value)>)) -> Result<CodeClaims, TokenError> {
        let keys = ring();
        let token = signed(
            eddsa_header(KID),
            Header::default(),
            payload_with(edit),
            keys.signer(issued()),
        );
        decode(&token, &keys, issued())
    }

    #[test]
    fn each_malformation_gets_its_own_error() {
        let keys = ring();
        let good = encode(&pinned_claims(), keys.signer(issued()));
        let body = good.strip_prefix(PREFIX).unwrap();
        let at = issued();
        let check = |text: &str| decode(text, &keys, at);

        assert_eq!(
            check(&format!("{PREFIX}{}", "A".repeat(MAX_TOKEN_CHARS))),
            Err(TokenError::Oversized)
        );
        assert_eq!(check(&format!("HC1:{body}")), Err(TokenError::WrongPrefix));
        assert_eq!(check(&format!("kc1:{body}")), Err(TokenError::WrongPrefix));
        assert_eq!(check(""), Err(TokenError::WrongPrefix));
        assert_eq!(
            check(&format!("{PREFIX}{}", body.to_lowercase())),
            Err(TokenError::BadBase45)
        );
        assert_eq!(
            check(&format!("{PREFIX}{body}AA")),
            Err(TokenError::BadBase45)
        );
        // ":U" is 44 + 30 * 45 = 1394 > 255: the crate would truncate it to one byte.
        assert_eq!(check(&format!("{PREFIX}:U")), Err(TokenError::BadBase45));
        assert_eq!(
            check(&format!("{PREFIX}{}", base45::encode([0xff, 0xff]))),
            Err(TokenError::BadCose)
        );
        assert_eq!(check(PREFIX), Err(TokenError::BadCose));
        // Valid CBOR but the wrong shape: untagged, the COSE_Mac0 tag, an integer.
        let mut untagged = base45::decode(body).unwrap();
        untagged.remove(0);
        assert_eq!(
            check(&format!("{PREFIX}{}", base45::encode(&untagged))),
            Err(TokenError::BadCose)
        );
        let mut mac0 = base45::decode(body).unwrap();
        mac0[0] = 0xd1;
        assert_eq!(
            check(&format!("{PREFIX}{}", base45::encode(&mac0))),
            Err(TokenError::BadCose)
        );
        assert_eq!(
            check(&format!("{PREFIX}{}", base45::encode([0x01]))),
            Err(TokenError::BadCose)
        );
        // The kid moved into the (unsigned) unprotected header.
        let unprotected_kid = signed(
            HeaderBuilder::new()
                .algorithm(iana::Algorithm::EdDSA)
                .build(),
            HeaderBuilder::new().key_id(KID.as_bytes().to_vec()).build(),
            claims_payload(&pinned_claims()),
            keys.signer(issued()),
        );
        assert_eq!(check(&unprotected_kid), Err(TokenError::BadCose));

        let es256 = HeaderBuilder::new()
            .algorithm(iana::Algorithm::ES256)
            .key_id(KID.as_bytes().to_vec())
            .build();
        let es256 = signed(
            es256,
            Header::default(),
            claims_payload(&pinned_claims()),
            keys.signer(issued()),
        );
        assert_eq!(check(&es256), Err(TokenError::UnsupportedAlgorithm));
        let no_alg = HeaderBuilder::new().key_id(KID.as_bytes().to_vec()).build();
        let no_alg = signed(
            no_alg,
            Header::default(),
            claims_payload(&pinned_claims()),
            keys.signer(issued()),
        );
        assert_eq!(check(&no_alg), Err(TokenError::UnsupportedAlgorithm));

        let stranger = KeyRing::generate("k2099z");
        assert_eq!(
            check(&encode(&pinned_claims(), stranger.signer(issued()))),
            Err(TokenError::UnknownKey)
        );
        let impostor = KeyRing::generate(KID);
        assert_eq!(
            check(&encode(&pinned_claims(), impostor.signer(issued()))),
            Err(TokenError::BadSignature)
        );

        assert_eq!(claims_error(without(CLAIM_EXP)), Err(TokenError::BadClaims));
        assert_eq!(claims_error(|_| {}), Ok(pinned_claims()));

        assert_eq!(
            decode(&good, &keys, pinned_claims().expires_at),
            Err(TokenError::Expired)
        );
        assert_eq!(
            decode(&good, &keys, issued() - Duration::seconds(61)),
            Err(TokenError::NotYetValid)
        );
        assert_eq!(
            decode(&good, &keys, issued() - Duration::seconds(60)),
            Ok(pinned_claims())
        );
    }

    #[test]
    fn every_claim_is_required_and_typed() {
        for label in [
            CLAIM_ISS,
            CLAIM_EXP,
            CLAIM_IAT,
            CLAIM_CTI,
            CLAIM_BINDING,
            CLAIM_KIND,
            CLAIM_COLOUR,
        ] {
            assert_eq!(
                claims_error(without(label)),
                Err(TokenError::BadClaims),
                "{label}"
            );
        }
        let bad_values = [
            (CLAIM_ISS, Value::Text("someone-else".into())),
            (CLAIM_ISS, Value::Bytes(ISSUER.as_bytes().to_vec())),
            (CLAIM_EXP, Value::Text("2026-12-05".into())),
            (CLAIM_EXP, Value::Float(1.8e9)),
            (CLAIM_EXP, Value::from(i64::MAX)),
            (CLAIM_EXP, Value::from(issued().timestamp())),
            (CLAIM_CTI, Value::Bytes(vec![1; 8])),
            (
                CLAIM_BINDING,
                Value::Text("7c3d9a51-2b64-4f0e-9d1a-5e8f6c2b1a03".into()),
            ),
            (CLAIM_BINDING, Value::Bytes(vec![1; 17])),
            (CLAIM_KIND, Value::from(3)),
            (CLAIM_KIND, Value::from(0)),
            (CLAIM_COLOUR, Value::from(4)),
            (CLAIM_COLOUR, Value::Text("green".into())),
        ];
        for (label, value) in bad_values {
            let shown = format!("{label}: {value:?}");
            assert_eq!(
                claims_error(replacing(label, value)),
                Err(TokenError::BadClaims),
                "{shown}"
            );
        }
        let duplicate_kind = |entries: &mut Vec<(Value, Value)>| {
            entries.push((Value::from(CLAIM_KIND), Value::from(1)));
        };
        assert_eq!(claims_error(duplicate_kind), Err(TokenError::BadClaims));
        let unknown_claim = |entries: &mut Vec<(Value, Value)>| {
            entries.push((Value::from(-70000), Value::Text("later".into())));
        };
        assert_eq!(claims_error(unknown_claim), Ok(pinned_claims()));
        let keys = ring();
        let not_a_map = signed(
            eddsa_header(KID),
            Header::default(),
            vec![0x80],
            keys.signer(issued()),
        );
        assert_eq!(
            decode(&not_a_map, &keys, issued()),
            Err(TokenError::BadClaims)
        );
        let trailing = {
            let mut payload = claims_payload(&pinned_claims());
            payload.push(0x00);
            signed(
                eddsa_header(KID),
                Header::default(),
                payload,
                keys.signer(issued()),
            )
        };
        assert_eq!(
            decode(&trailing, &keys, issued()),
            Err(TokenError::BadClaims)
        );
    }

    #[test]
    fn a_retired_key_verifies_until_seven_days_after_retirement() {
        let old = SigningKey::from_seed("k2025b", &[7; 32]).unwrap();
        let retired_at = issued() + Duration::hours(1);
        let config = serde_json::json!({
            "active": KID,
            "keys": [
                {"kid": KID, "seed": B64.encode(SEED)},
                {"kid": "k2025b", "seed": B64.encode([7u8; 32]), "retired_at": retired_at},
            ]
        });
        let keys = KeyRing::from_json(&config.to_string()).unwrap();
        // An offline code signed just before retirement, checked at the end of its life.
        let claims = CodeClaims::issue(
            BindingId::random(),
            CodeKind::KinOffline,
            HealthColour::Green,
            retired_at - Duration::seconds(1),
        );
        let token = encode(&claims, &old);
        let last_second = claims.expires_at - Duration::seconds(1);
        assert_eq!(decode(&token, &keys, last_second), Ok(claims));
        // Past retired_at + 7 days the key itself is gone, so the error names the key.
        let gone = retired_at + Duration::days(7);
        assert_eq!(decode(&token, &keys, gone), Err(TokenError::UnknownKey));
    }

    /// The keys of a rotation from the old key (seed 7) to the pinned one, which signs (and
    /// the old one retires) from `rotated_at`.
    fn rotated_keys(rotated_at: DateTime<Utc>) -> (SigningKey, VerificationKeys) {
        let (old, new) = (
            SigningKey::from_seed("k2025b", &[7; 32]).unwrap(),
            SigningKey::from_seed(KID, &SEED).unwrap(),
        );
        let before = KeyRing::from_json(&KeyRing::config_json("k2025b", &[7; 32])).unwrap();
        let after = before
            .verification_keys()
            .rotated(
                &new,
                rotated_at - crate::codes::keys::ACTIVATION_DELAY,
                rotated_at,
            )
            .unwrap();
        (old, after)
    }

    #[test]
    fn a_code_issued_after_its_keys_retirement_is_refused() {
        let rotated_at = issued();
        let (old, keys) = rotated_keys(rotated_at);
        let claims_at = |iat| {
            CodeClaims::issue(
                BindingId::random(),
                CodeKind::KinOffline,
                HealthColour::Green,
                iat,
            )
        };
        let before = claims_at(rotated_at);
        assert_eq!(
            decode(&encode(&before, &old), &keys, rotated_at),
            Ok(before)
        );
        let after = claims_at(rotated_at + Duration::seconds(1));
        assert_eq!(
            decode(
                &encode(&after, &old),
                &keys,
                rotated_at + Duration::seconds(1)
            ),
            Err(TokenError::IssuedAfterKeyRetired)
        );
    }

    #[test]
    fn a_code_living_longer_than_its_kind_is_refused() {
        let keys = ring();
        for (kind, lifetime) in [
            (CodeKind::KinOnline, Duration::minutes(5)),
            (CodeKind::KinOffline, Duration::days(7)),
        ] {
            let mut claims =
                CodeClaims::issue(BindingId::random(), kind, HealthColour::Green, issued());
            claims.issued_at = issued();
            claims.expires_at = issued() + lifetime;
            assert_eq!(
                decode(&encode(&claims, keys.signer(issued())), &keys, issued()),
                Ok(claims.clone())
            );
            claims.expires_at += Duration::seconds(1);
            assert_eq!(
                decode(&encode(&claims, keys.signer(issued())), &keys, issued()),
                Err(TokenError::LifetimeTooLong),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn error_codes_are_distinct() {
        let all = TokenError::ALL;
        let codes: std::collections::HashSet<_> = all.iter().map(|e| e.code()).collect();
        assert_eq!(codes.len(), all.len());
        assert!(codes.iter().all(|c| c.starts_with("code_")));
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let keys = ring();
        let good = encode(&pinned_claims(), keys.signer(issued()));
        for position in 0..good.len() {
            for bit in 0..8 {
                let mut bytes = good.clone().into_bytes();
                bytes[position] ^= 1 << bit;
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    decode(&text, &keys, issued()).is_err(),
                    "flip of bit {bit} at {position} accepted"
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_rejected() {
        let keys = ring();
        let good = encode(&pinned_claims(), keys.signer(issued()));
        for end in 0..good.len() {
            assert!(decode(&good[..end], &keys, issued()).is_err(), "{end}");
        }
    }

    /// xorshift64*: reproducible noise without a dependency.
    struct Noise(u64);

    impl Noise {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn bytes(&mut self, max_len: usize) -> Vec<u8> {
            let len = (self.next() as usize) % (max_len + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn arbitrary_input_is_rejected_without_panicking() {
        let keys = ring();
        let good_bytes = base45::decode(
            encode(&pinned_claims(), keys.signer(issued()))
                .strip_prefix(PREFIX)
                .unwrap(),
        )
        .unwrap();
        let mut noise = Noise(0x5eed_1234_abcd_ef01);
        for _ in 0..20_000 {
            // Arbitrary text, arbitrary bytes behind the prefix, and CBOR-shaped garbage: a
            // COSE_Sign1 start followed by noise, or the real token with a stretch overwritten.
            let raw = String::from_utf8_lossy(&noise.bytes(300)).into_owned();
            assert!(decode(&raw, &keys, issued()).is_err());
            let behind_prefix = format!("{PREFIX}{}", base45::encode(noise.bytes(260)));
            assert!(decode(&behind_prefix, &keys, issued()).is_err());
            let mut shaped = vec![0xd2, 0x84];
            shaped.extend(noise.bytes(200));
            assert!(decode(
                &format!("{PREFIX}{}", base45::encode(&shaped)),
                &keys,
                issued()
            )
            .is_err());
            let mut mangled = good_bytes.clone();
            let start = (noise.next() as usize) % mangled.len();
            let end = (start + 1 + (noise.next() as usize) % 8).min(mangled.len());
            for byte in &mut mangled[start..end] {
                *byte = noise.next() as u8;
            }
            if mangled != good_bytes {
                let text = format!("{PREFIX}{}", base45::encode(&mangled));
                assert!(decode(&text, &keys, issued()).is_err());
            }
        }
        // Declared lengths far beyond the input must not allocate or panic.
        for huge in [
            &[0xd2, 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
            &[
                0xd2, 0x84, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            &[
                0xd2, 0x84, 0x40, 0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
            &[
                0xd2, 0x84, 0x40, 0xa0, 0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        ] {
            let text = format!("{PREFIX}{}", base45::encode(huge));
            assert_eq!(decode(&text, &keys, issued()), Err(TokenError::BadCose));
        }
    }
}
