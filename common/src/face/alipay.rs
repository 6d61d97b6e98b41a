//! **Production face verification**: Alipay open-platform identity certification.
//!
//! `alipay.user.certify.open.initialize` opens a session for a name and resident ID (scene
//! `FACE`); `alipay.user.certify.open.certify` is the page the mini-program opens for the scan
//! (a signed URL, built here, never called by us); `alipay.user.certify.open.query` says
//! whether it passed. Requests carry the common parameters and an RSA2 signature over the
//! sorted `key=value` string; a response is believed only after Alipay's signature over the
//! raw text of its `<method>_response` member verifies. Nothing about the person is logged.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, Utc};
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::rsa2::{Rsa2KeyError, Rsa2Signer, Rsa2Verifier};
use super::{FaceOutcome, FaceSession, FaceVerifier, RelativeIdentity};
use crate::domain::binding::BindingId;
use crate::error::AppError;

const INITIALIZE: &str = "alipay.user.certify.open.initialize";
const CERTIFY: &str = "alipay.user.certify.open.certify";
const QUERY: &str = "alipay.user.certify.open.query";
/// Alipay's answer when the certify id is unknown to it or past its 23 hours.
const CERTIFY_ID_GONE: &str = "OPEN_CERTIFY_BILL_NOT_EXIST";
/// One request may wait this long; a query is tried twice, so a verification answers (or
/// gives 503) well within the function's 10 s.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const QUERY_ATTEMPTS: usize = 2;

/// What the city's open-platform app is (README: "Face verification in production").
#[derive(Clone)]
pub struct AlipaySettings {
    pub gateway: String,
    pub app_id: String,
    pub app_private_key: String,
    pub alipay_public_key: String,
    /// The mini-program page Alipay returns to after the scan.
    pub return_url: String,
}

impl std::fmt::Debug for AlipaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlipaySettings")
            .field("gateway", &self.gateway)
            .field("app_id", &self.app_id)
            .field("return_url", &self.return_url)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AlipayConfigError {
    #[error("app private key: {0}")]
    AppKey(Rsa2KeyError),
    #[error("Alipay public key: {0}")]
    AlipayKey(Rsa2KeyError),
    #[error("gateway is not an http(s) URL")]
    Gateway,
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

pub struct AlipayCertify {
    gateway: String,
    app_id: String,
    signer: Rsa2Signer,
    alipay: Rsa2Verifier,
    return_url: String,
    http: HttpClient,
    attempt_timeout: Duration,
}

/// Why a call gave no usable answer.
#[derive(Debug)]
enum CallError {
    /// Not reached, too slow, or an HTTP error: try later, nothing happened.
    Unreachable(String),
    /// An answer that is not provably Alipay's: never believed.
    Untrusted(&'static str),
}

/// The fields of a verified `<method>_response` this adapter reads.
#[derive(Debug, Deserialize)]
struct Reply {
    code: String,
    #[serde(default)]
    sub_code: Option<String>,
    #[serde(default)]
    certify_id: Option<String>,
    #[serde(default)]
    passed: Option<String>,
}

impl Reply {
    fn succeeded(&self) -> bool {
        self.code == "10000"
    }

    /// Alipay's "try again later": its service unavailable (20000) or rate limit (40005).
    fn busy(&self) -> bool {
        self.code == "20000" || self.code == "40005"
    }
}

/// China time, as the open platform reads `timestamp`.
fn china_timestamp(now: DateTime<Utc>) -> String {
    let china = FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset");
    now.with_timezone(&china)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The string the open platform signs: `key=value` pairs sorted by key, joined by `&`, raw
/// (not URL-encoded), with `sign` and empty values left out.
pub fn sign_content(params: &[(String, String)]) -> String {
    let mut pairs: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, v)| k != "sign" && !v.is_empty())
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn form_encode(params: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

impl AlipayCertify {
    pub fn new(settings: &AlipaySettings) -> Result<Self, AlipayConfigError> {
        let gateway = settings.gateway.trim().to_owned();
        if !(gateway.starts_with("https://") || gateway.starts_with("http://")) {
            return Err(AlipayConfigError::Gateway);
        }
        // Connections are bounded by the attempt timeout around each exchange.
        let connector = crate::outbound::connector(crate::outbound::tls_config(&[]), None);
        Ok(Self {
            gateway,
            app_id: settings.app_id.clone(),
            signer: Rsa2Signer::from_text(&settings.app_private_key)
                .map_err(AlipayConfigError::AppKey)?,
            alipay: Rsa2Verifier::from_text(&settings.alipay_public_key)
                .map_err(AlipayConfigError::AlipayKey)?,
            return_url: settings.return_url.clone(),
            http: Client::builder(TokioExecutor::new()).build(connector),
            attempt_timeout: ATTEMPT_TIMEOUT,
        })
    }

    /// A shorter wait per request (tests of a slow gateway).
    pub fn with_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// The common parameters, `biz_content` and `sign`.
    fn signed_params(
        &self,
        method: &str,
        biz_content: &Value,
        extra: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Vec<(String, String)> {
        let mut params: Vec<(String, String)> = [
            ("app_id", self.app_id.as_str()),
            ("method", method),
            ("format", "JSON"),
            ("charset", "utf-8"),
            ("sign_type", "RSA2"),
            ("version", "1.0"),
        ]
        .into_iter()
        .chain(extra.iter().copied())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        params.push(("timestamp".into(), china_timestamp(now)));
        params.push(("biz_content".into(), biz_content.to_string()));
        let sign = self.signer.sign(&sign_content(&params));
        params.push(("sign".into(), sign));
        params
    }

    async fn call_once(&self, method: &str, biz_content: &Value) -> Result<Reply, CallError> {
        let body = form_encode(&self.signed_params(method, biz_content, &[], Utc::now()));
        let request = Request::post(format!("{}?charset=utf-8", self.gateway))
            .header(
                CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=utf-8",
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| CallError::Unreachable(format!("build request: {e}")))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| CallError::Unreachable(format!("send: {e}")))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| CallError::Unreachable(format!("read: {e}")))?
                .to_bytes();
            if !status.is_success() {
                return Err(CallError::Unreachable(format!("HTTP {status}")));
            }
            Ok(bytes)
        };
        let bytes = tokio::time::timeout(self.attempt_timeout, exchange)
            .await
            .map_err(|_| CallError::Unreachable("timed out".into()))??;
        self.verified_reply(method, &bytes)
    }

    /// The `<method>_response` member, after Alipay's signature over its raw text verified.
    fn verified_reply(&self, method: &str, body: &[u8]) -> Result<Reply, CallError> {
        let text = std::str::from_utf8(body).map_err(|_| CallError::Untrusted("not UTF-8"))?;
        let envelope: std::collections::HashMap<String, &RawValue> =
            serde_json::from_str(text).map_err(|_| CallError::Untrusted("not a JSON object"))?;
        let node = format!("{}_response", method.replace('.', "_"));
        let member = envelope
            .get(&node)
            .ok_or(CallError::Untrusted("no signed response member"))?;
        let sign: String = envelope
            .get("sign")
            .and_then(|s| serde_json::from_str(s.get()).ok())
            .ok_or(CallError::Untrusted("unsigned"))?;
        if !self.alipay.verifies(member.get().as_bytes(), &sign) {
            return Err(CallError::Untrusted("bad signature"));
        }
        serde_json::from_str(member.get()).map_err(|_| CallError::Untrusted("malformed reply"))
    }

    async fn call(
        &self,
        method: &'static str,
        biz_content: &Value,
        attempts: usize,
    ) -> Result<Reply, AppError> {
        let mut last = None;
        for _ in 0..attempts {
            match self.call_once(method, biz_content).await {
                Ok(reply) if reply.busy() => last = Some(format!("busy: {}", reply.code)),
                Ok(reply) => {
                    tracing::info!(
                        method,
                        code = reply.code,
                        sub_code = reply.sub_code.as_deref().unwrap_or(""),
                        "alipay answered"
                    );
                    return Ok(reply);
                }
                Err(CallError::Untrusted(why)) => {
                    tracing::warn!(method, why, "alipay response refused");
                    return Err(AppError::FaceProviderUntrusted);
                }
                Err(CallError::Unreachable(why)) => last = Some(why),
            }
        }
        Err(AppError::DependencyUnavailable(format!(
            "{method}: {}",
            last.unwrap_or_default()
        )))
    }

    /// `initialize`'s business content: a face scan (`FACE`) of the person named by their
    /// resident ID card.
    fn initialize_content(&self, attempt: &str, identity: &RelativeIdentity) -> Value {
        json!({
            "outer_order_no": attempt,
            "biz_code": "FACE",
            "identity_param": {
                "identity_type": "CERT_INFO",
                "cert_type": "IDENTITY_CARD",
                "cert_name": identity.name(),
                "cert_no": identity.id_number(),
            },
            "merchant_config": { "return_url": self.return_url },
        })
    }

    /// The signed page URL the mini-program opens for the scan.
    fn certify_url(&self, certify_id: &str, now: DateTime<Utc>) -> String {
        let params = self.signed_params(
            CERTIFY,
            &json!({ "certify_id": certify_id }),
            &[("return_url", &self.return_url)],
            now,
        );
        format!("{}?{}", self.gateway, form_encode(&params))
    }
}

/// Whether the client reports the scan as ended (the mini-program's certification callback
/// `resultStatus`: 9000 ended, 4000 failed; 6001 is the user backing out). Only Alipay's
/// signed query can make a session pass; this only tells a failure from an unfinished scan.
fn client_reports_scan_ended(evidence: &Value) -> bool {
    matches!(
        evidence.get("result_status").and_then(Value::as_str),
        Some("9000" | "4000")
    )
}

impl FaceVerifier for AlipayCertify {
    async fn start(
        &self,
        _binding: &BindingId,
        attempt: &str,
        identity: &RelativeIdentity,
    ) -> Result<FaceSession, AppError> {
        let biz_content = self.initialize_content(attempt, identity);
        // Not retried: a lost answer would leave a session we cannot name.
        let reply = self.call(INITIALIZE, &biz_content, 1).await?;
        match (reply.succeeded(), reply.certify_id) {
            (true, Some(certify_id)) => Ok(FaceSession {
                certify_url: Some(self.certify_url(&certify_id, Utc::now())),
                certify_id,
            }),
            _ => Err(AppError::Internal(format!(
                "alipay initialize refused: {} {}",
                reply.code,
                reply.sub_code.unwrap_or_default()
            ))),
        }
    }

    async fn outcome(&self, certify_id: &str, evidence: &Value) -> Result<FaceOutcome, AppError> {
        let reply = self
            .call(QUERY, &json!({ "certify_id": certify_id }), QUERY_ATTEMPTS)
            .await?;
        if reply.succeeded() {
            return Ok(match reply.passed.as_deref() {
                Some("T") => FaceOutcome::Passed,
                // "F" until it passes: a failure only once the client says the scan ended.
                _ if client_reports_scan_ended(evidence) => FaceOutcome::Failed,
                _ => FaceOutcome::NotFinished,
            });
        }
        match reply.sub_code.as_deref() {
            Some(CERTIFY_ID_GONE) => Err(AppError::FaceSessionExpired),
            other => Err(AppError::Internal(format!(
                "alipay query refused: {} {}",
                reply.code,
                other.unwrap_or_default()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_sign_content_is_sorted_raw_and_leaves_out_sign_and_empty_values() {
        let params: Vec<(String, String)> = [
            ("timestamp", "2026-11-28 14:30:00"),
            ("app_id", "2021"),
            ("sign", "xyz"),
            ("notify_url", ""),
            ("biz_content", r#"{"a":"b c&d"}"#),
            ("sign_type", "RSA2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            sign_content(&params),
            r#"app_id=2021&biz_content={"a":"b c&d"}&sign_type=RSA2&timestamp=2026-11-28 14:30:00"#
        );
    }

    #[tokio::test]
    async fn an_initialize_request_is_signed_exactly_as_openssl_signs_it() {
        let testdata = |name: &str| {
            std::fs::read_to_string(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("src/face/testdata")
                    .join(name),
            )
            .unwrap()
        };
        let adapter = AlipayCertify::new(&AlipaySettings {
            gateway: "https://openapi.alipay.com/gateway.do".into(),
            app_id: "2021000000000001".into(),
            app_private_key: testdata("app-private-pkcs8.pem"),
            alipay_public_key: testdata("app-public.pem"),
            return_url:
                "alipays://platformapi/startapp?appId=2021000000000001&page=pages/verify/done"
                    .into(),
        })
        .unwrap();
        let identity = RelativeIdentity::new(
            zeroize::Zeroizing::new("张三".into()),
            zeroize::Zeroizing::new("610113201603142174".into()),
        );
        let content = adapter.initialize_content("3f6d2b1e8c4a4f0e9b7d2a5c8e1f4d90", &identity);
        // 14:30 China time.
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 6, 30, 0).unwrap();
        let params = adapter.signed_params(INITIALIZE, &content, &[], at);
        assert_eq!(sign_content(&params), testdata("request-content.txt"));
        let sign = &params.iter().find(|(k, _)| k == "sign").unwrap().1;
        assert_eq!(sign, testdata("request-content.sig").trim());

        // An answer signed by OpenSSL (standing in for Alipay's key) is believed as sent…
        let member = testdata("response-content.txt");
        let signature = testdata("response-content.sig");
        let body = format!(
            r#"{{"alipay_user_certify_open_initialize_response":{member},"sign":"{}"}}"#,
            signature.trim()
        );
        let reply = adapter.verified_reply(INITIALIZE, body.as_bytes()).unwrap();
        assert_eq!(
            (reply.code.as_str(), reply.certify_id.as_deref()),
            ("10000", Some("OC201809253000000393900404029253"))
        );
        // …and not once a byte of it changed, re-spaced, or unsigned.
        let changed = body.replacen("10000", "10001", 1);
        let respaced = body.replacen(r#""code":"#, r#""code": "#, 1);
        let unsigned = format!(r#"{{"alipay_user_certify_open_initialize_response":{member}}}"#);
        for refused in [changed, respaced, unsigned] {
            assert!(matches!(
                adapter.verified_reply(INITIALIZE, refused.as_bytes()),
                Err(CallError::Untrusted(_))
            ));
        }
    }

    #[test]
    fn timestamps_are_china_time() {
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 18, 5, 9).unwrap();
        assert_eq!(china_timestamp(at), "2026-11-29 02:05:09");
    }

    #[test]
    fn only_an_ended_scan_can_fail() {
        assert!(client_reports_scan_ended(&json!({"result_status": "4000"})));
        assert!(client_reports_scan_ended(&json!({"result_status": "9000"})));
        assert!(!client_reports_scan_ended(
            &json!({"result_status": "6001"})
        ));
        assert!(!client_reports_scan_ended(&Value::Null));
    }
}
