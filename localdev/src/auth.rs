//! Stands in for API Gateway's JWT authorizer: HS256 tokens signed with a local dev secret, or
//! the explicit `Authorization: Dev <sub> [<scope> ...]` form. Either way the claims land where
//! API Gateway puts them (`requestContext.authorizer.jwt.claims`); without one the answer is
//! 401, and without one of a route's scopes 403.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Map, Value};

pub const ISSUER: &str = "kincode-local";
pub const AUDIENCE: &str = "kincode";
/// Scheme of the plain development form: `Authorization: Dev user-123`, or with scopes and
/// other claims (values percent-encoded) `Authorization: Dev site-7 kincode/checkpoint
/// site_id=XA-0007 site_name=%E9%9B%81%E5%A1%94`.
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
        self.issue_with_claims(sub, &[], now)
    }

    /// A token for `sub` with more claims (a `scope` claim holds space-separated scopes),
    /// valid 30 days.
    pub fn issue_with_claims(
        &self,
        sub: &str,
        extra: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> String {
        let mut claims = json!({
            "sub": sub,
            "iss": ISSUER,
            "aud": AUDIENCE,
            "iat": now.timestamp(),
            "exp": (now + Duration::days(30)).timestamp(),
        });
        for (name, value) in extra {
            claims[*name] = (*value).into();
        }
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
        if let Some(words) = header.strip_prefix(DEV_SCHEME) {
            let mut words = words.split_whitespace();
            let sub = words.next()?;
            let mut claims = BTreeMap::from([
                ("sub".to_owned(), sub.to_owned()),
                ("iss".to_owned(), format!("{ISSUER}/dev")),
            ]);
            let (named, scopes): (Vec<&str>, Vec<&str>) = words.partition(|w| w.contains('='));
            for pair in named {
                // Percent-encoded, as a header value is ASCII: `site_name=%E9%9B%81%E5%A1%94`.
                let (name, value) = form_urlencoded::parse(pair.as_bytes()).next()?;
                if name.is_empty() || name == "sub" {
                    return None;
                }
                claims.insert(name.into_owned(), value.into_owned());
            }
            let scope = scopes.join(" ");
            if !scope.is_empty() {
                claims.insert("scope".to_owned(), scope);
            }
            return Some(claims);
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
                .map(|(k, v)| (k, claim_text(v)))
                .collect(),
        )
    }
}

/// A claim as API Gateway passes it: a string as is, an array as `[a b]`, anything else as JSON.
fn claim_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        Value::Array(items) => {
            let items: Vec<String> = items.into_iter().map(claim_text).collect();
            format!("[{}]", items.join(" "))
        }
        other => other.to_string(),
    }
}

/// API Gateway's scope check: the `scope` or `scp` claim (space-separated; `scp` arrives as
/// `[a b]` when the token holds an array) names at least one of `required` exactly.
pub fn grants_any_scope(claims: &BTreeMap<String, String>, required: &[String]) -> bool {
    ["scope", "scp"]
        .iter()
        .filter_map(|name| claims.get(*name))
        .flat_map(|value| {
            let value = value.trim();
            let listed = value
                .strip_prefix('[')
                .and_then(|v| v.strip_suffix(']'))
                .unwrap_or(value);
            listed.split_whitespace()
        })
        .any(|granted| required.iter().any(|r| r == granted))
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
        let plain = auth.claims(Some("Dev user-9")).unwrap();
        assert_eq!(plain["sub"], "user-9");
        assert!(!plain.contains_key("scope"));
        assert!(auth.claims(Some("Dev ")).is_none());
        assert!(auth.claims(Some("Dev    ")).is_none());
    }

    #[test]
    fn the_dev_form_takes_scopes_after_the_caller() {
        let auth = DevAuth::new(vec![3; 32]);
        let staff = auth
            .claims(Some("Dev  site-7   kincode/checkpoint  kincode/lab "))
            .unwrap();
        assert_eq!(staff["sub"], "site-7");
        assert_eq!(staff["scope"], "kincode/checkpoint kincode/lab");
    }

    #[test]
    fn the_dev_form_takes_other_claims_as_name_value_pairs() {
        let auth = DevAuth::new(vec![3; 32]);
        let staff = auth
            .claims(Some(
                "Dev site-7 kincode/checkpoint site_id=XA-0007 site_name=雁塔",
            ))
            .unwrap();
        assert_eq!(staff["site_id"], "XA-0007");
        assert_eq!(staff["site_name"], "雁塔");
        assert_eq!(staff["scope"], "kincode/checkpoint");
        assert!(auth.claims(Some("Dev site-7 sub=someone-else")).is_none());
        assert!(auth.claims(Some("Dev site-7 =x")).is_none());
    }

    #[test]
    fn issued_tokens_carry_their_scope() {
        let auth = DevAuth::new(vec![3; 32]);
        let token = auth.issue_with_claims(
            "dev-authority",
            &[("scope", "kincode/authority")],
            Utc::now(),
        );
        let claims = auth.claims(Some(&token)).unwrap();
        assert_eq!(claims["sub"], "dev-authority");
        assert_eq!(claims["scope"], "kincode/authority");
        let plain = auth
            .claims(Some(&auth.issue("user-1", Utc::now())))
            .unwrap();
        assert!(!plain.contains_key("scope"));
    }

    #[test]
    fn array_claims_read_as_api_gateway_renders_them() {
        assert_eq!(claim_text(json!(["a/b", "c"])), "[a/b c]");
        assert_eq!(claim_text(json!(12)), "12");
        assert_eq!(claim_text(json!("x y")), "x y");
    }

    #[test]
    fn the_scope_check_matches_whole_scopes_of_scope_or_scp() {
        let required = ["kincode/checkpoint".to_owned()];
        let with = |name: &str, value: &str| {
            BTreeMap::from([
                ("sub".to_owned(), "s".to_owned()),
                (name.to_owned(), value.to_owned()),
            ])
        };
        assert!(grants_any_scope(
            &with("scope", "openid kincode/checkpoint"),
            &required
        ));
        assert!(grants_any_scope(
            &with("scp", "[kincode/checkpoint kincode/lab]"),
            &required
        ));
        assert!(grants_any_scope(
            &with("scp", "kincode/checkpoint"),
            &required
        ));
        assert!(!grants_any_scope(
            &with("scope", "kincode/checkpoints"),
            &required
        ));
        assert!(!grants_any_scope(
            &with("scope", "kincode/checkpoint,x"),
            &required
        ));
        assert!(!grants_any_scope(&with("scope", "kincode"), &required));
        assert!(!grants_any_scope(&with("scope", ""), &required));
        assert!(!grants_any_scope(
            &with("aud", "kincode/checkpoint"),
            &required
        ));
        assert!(grants_any_scope(
            &with("scope", "kincode/authority"),
            &[
                "kincode/checkpoint".to_owned(),
                "kincode/authority".to_owned()
            ]
        ));
    }
}
