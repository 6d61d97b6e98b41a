//! Stands in for API Gateway's JWT authorizer: HS256 tokens signed with a local dev secret, or
//! the explicit `Authorization: Dev <sub>` form. Either way the claims land where API Gateway
//! puts them (`requestContext.authorizer.jwt.claims`); without one the answer is 401.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

pub const ISSUER: &str = "kincode-local";
pub const AUDIENCE: &str = "kincode";
/// Scheme of the plain development form: `Authorization: Dev user-123`.
pub const DEV_SCHEME: &str = "Dev ";

pub struct DevAuth {
    secret: Vec<u8>,
}

impl DevAuth {
    pub fn new(secret: Vec<u8>) -> Self {
        Self { secret }
    }

    pub fn secret_base64(&self) -> String {
        B64.encode(&self.secret)
    }

    /// A token for `sub`, valid 30 days.
    pub fn issue(&self, sub: &str, now: DateTime<Utc>) -> String {
        let claims = json!({
            "sub": sub,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now.timestamp(),
            "exp": (now + Duration::days(30)).timestamp(),
        });
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .expect("HS256 signing does not fail")
    }

    /// The claims of a valid `Authorization` header, as API Gateway passes them (strings).
    pub fn claims(&self, authorization: Option<&str>) -> Option<BTreeMap<String, String>> {
        let header = authorization?.trim();
        if let Some(sub) = header.strip_prefix(DEV_SCHEME) {
            let sub = sub.trim();
            return (!sub.is_empty()).then(|| {
                BTreeMap::from([
                    ("sub".to_owned(), sub.to_owned()),
                    ("iss".to_owned(), format!("{ISSUER}/dev")),
                ])
            });
        }
        let token = header.strip_prefix("Bearer ").unwrap_or(header);
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        let data = decode::<Map<String, Value>>(
            token,
            &DecodingKey::from_secret(&self.secret),
            &validation,
        )
        .ok()?;
        Some(
            data.claims
                .into_iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, text)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_others_do_not() {
        let auth = DevAuth::new(vec![3; 32]);
        let token = auth.issue("user-1", Utc::now());
        let claims = auth.claims(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(claims["sub"], "user-1");
        assert_eq!(claims["iss"], ISSUER);
        assert!(claims["exp"].parse::<i64>().is_ok());

        let other = DevAuth::new(vec![4; 32]);
        assert!(other.claims(Some(&format!("Bearer {token}"))).is_none());
        let expired = auth.issue("user-1", Utc::now() - Duration::days(31));
        assert!(auth.claims(Some(&format!("Bearer {expired}"))).is_none());
        assert!(auth.claims(None).is_none());
        assert!(auth.claims(Some("Bearer garbage")).is_none());
    }

    #[test]
    fn the_dev_form_names_the_caller_directly() {
        let auth = DevAuth::new(vec![3; 32]);
        assert_eq!(auth.claims(Some("Dev user-9")).unwrap()["sub"], "user-9");
        assert!(auth.claims(Some("Dev ")).is_none());
    }
}
