//! **Production face verification**: Alipay open-platform identity certification.
//!
//! `alipay.user.certify.open.initialize` opens a session for a name and resident ID (scene
//! `FACE`); `alipay.user.certify.open.certify` is the page the mini-program opens for the scan
//! (a signed URL, built here, never called by us); `alipay.user.certify.open.query` says
//! whether it passed. Requests carry the common parameters and an RSA2 signature over the
//! sorted `key=value` string; a response is believed only after Alipay's signature over the
//! raw text of its `<method>_response` member verifies. Nothing about the person is logged, and
//! the strings here that carry their name and ID number are wiped when dropped.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper::Request;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::rsa2::{Rsa2KeyError, Rsa2Signer, Rsa2Verifier};
use super::{FaceOutcome, FaceSession, FaceVerifier, RelativeIdentity};
use crate::domain::binding::BindingId;
use crate::domain::china_time::china_time;
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
    /// The gateway refused the request itself (`error_response`: our app id, our signature…).
    /// Nothing in it is believed; its codes, made safe to log, only go into the log.
    Refused { code: String, sub_code: String },
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

    /// A business answer this adapter has no outcome for.
    fn refusal(&self, method: &str) -> AppError {
        refused(method, &self.code, self.sub_code.as_deref().unwrap_or(""))
    }
}

/// Alipay said no to a request: for us its service is unavailable, so 503 with nothing changed
/// (never a 500: nothing here is our bug). Codes carry no personal data.
fn refused(method: &str, code: &str, sub_code: &str) -> AppError {
    AppError::DependencyUnavailable(format!("{method} refused: {code} {sub_code}"))
}

/// A code from an unverified answer as it may go into a log line: it could carry anything.
fn loggable(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(64)
        .collect()
}

/// `initialize`'s business content, borrowing the name and ID number rather than copying them
/// into a `serde_json::Value` that would be dropped unwiped. Fields in key order, as
/// `serde_json`'s maps (and so the committed test vector) have them.
#[derive(Serialize)]
struct InitializeContent<'a> {
    biz_code: &'static str,
    identity_param: IdentityParam<'a>,
    merchant_config: MerchantConfig<'a>,
    outer_order_no: &'a str,
}

#[derive(Serialize)]
struct IdentityParam<'a> {
    cert_name: &'a str,
    cert_no: &'a str,
    cert_type: &'static str,
    identity_type: &'static str,
}

#[derive(Serialize)]
struct MerchantConfig<'a> {
    return_url: &'a str,
}

/// China time, as the open platform reads `timestamp`.
fn china_timestamp(now: DateTime<Utc>) -> String {
    china_time(now).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The string the open platform signs: `key=value` pairs sorted by key, joined by `&`, raw
/// (not URL-encoded), with `sign` and empty values left out. It carries `biz_content`, so it
/// is wiped when dropped; the wiped strings here are sized up front, since a growing one
/// would leave unwiped copies behind.
pub fn sign_content(params: &[(String, String)]) -> Zeroizing<String> {
    let mut pairs: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, v)| k != "sign" && !v.is_empty())
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let length = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut content = Zeroizing::new(String::with_capacity(length));
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            content.push('&');
        }
        content.push_str(k);
        content.push('=');
        content.push_str(v);
    }
    content
}

fn form_encode(params: &[(String, String)]) -> Zeroizing<String> {
    // Percent-encoding at most triples a byte.
    let length = params
        .iter()
        .map(|(k, v)| 3 * (k.len() + v.len()) + 2)
        .sum();
    Zeroizing::new(
        form_urlencoded::Serializer::new(String::with_capacity(length))
            .extend_pairs(params)
            .finish(),
    )
}

impl AlipayCertify {
    pub fn new(settings: &AlipaySettings) -> Result<Self, AlipayConfigError> {
        let gateway = settings.gateway.trim().to_owned();
        if !(gateway.starts_with("https://") || gateway.starts_with("http://")) {
            return Err(AlipayConfigError::Gateway);
        }
        // Connections are bounded by the attempt timeout around each exchange.
        let connector =
            crate::adapters::outbound::connector(crate::adapters::outbound::tls_config(&[]), None);
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

    /// The common parameters, `biz_content` and `sign`; wiped when dropped, as `biz_content`
    /// may carry the name and ID number.
    fn signed_params(
        &self,
        method: &str,
        biz_content: &str,
        extra: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Zeroizing<Vec<(String, String)>> {
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
        params.push(("biz_content".into(), biz_content.to_owned()));
        let mut params = Zeroizing::new(params);
        let sign = self.signer.sign(&sign_content(&params));
        params.push(("sign".into(), sign));
        params
    }

    async fn call_once(&self, method: &str, biz_content: &str) -> Result<Reply, CallError> {
        let body = form_encode(&self.signed_params(method, biz_content, &[], Utc::now()));
        let request = Request::post(format!("{}?charset=utf-8", self.gateway))
            .header(
                CONTENT_TYPE,
                "application/x-www-form-urlencoded;charset=utf-8",
            )
            // hyper gets a copy of its own: ours is wiped, the copies in hyper's (and the
            // kernel's) buffers are out of our reach.
            .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
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
        let Some(member) = envelope.get(&node) else {
            // The gateway refuses a request it will not run (a bad app id, our signature…) with
            // `error_response` instead: a failed dependency, not a sign of tampering.
            return Err(match envelope.get("error_response") {
                Some(refusal) => gateway_refusal(refusal),
                None => CallError::Untrusted("no signed response member"),
            });
        };
        let Some(sign) = envelope
            .get("sign")
            .and_then(|s| serde_json::from_str::<String>(s.get()).ok())
        else {
            // Some refusals of our request (a bad app id, say) come unsigned in the method's
            // member too; Alipay's SDK checks only answers that are signed or succeeded. An
            // unsigned answer can only ever be a refusal here, never a pass.
            return Err(match serde_json::from_str::<Reply>(member.get()) {
                Ok(reply) if !reply.succeeded() => gateway_refusal(member),
                _ => CallError::Untrusted("unsigned"),
            });
        };
        if !self.signed_by_alipay(member.get(), &sign) {
            return Err(CallError::Untrusted("bad signature"));
        }
        serde_json::from_str(member.get()).map_err(|_| CallError::Untrusted("malformed reply"))
    }

    /// Whether Alipay's key signed `content`, or `content` with every `\/` read as `/`: the
    /// gateway may sign its text before a JSON encoder escapes the slashes, so Alipay's own SDK
    /// tries that once when a check fails (alipay/alipay-sdk-java-all,
    /// src/main/java/com/alipay/api/AbstractAlipayClient.java, `checkResponseSign`, its
    /// comment "针对JSON \/问题").
    fn signed_by_alipay(&self, content: &str, sign: &str) -> bool {
        self.alipay.verifies(content.as_bytes(), sign)
            || (content.contains("\\/")
                && self
                    .alipay
                    .verifies(content.replace("\\/", "/").as_bytes(), sign))
    }

    async fn call(
        &self,
        method: &'static str,
        biz_content: &str,
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
                // Sending the same request again would be refused again.
                Err(CallError::Refused { code, sub_code }) => {
                    tracing::warn!(method, code, sub_code, "alipay gateway refused the request");
                    return Err(refused(method, &code, &sub_code));
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
    fn initialize_content(&self, attempt: &str, identity: &RelativeIdentity) -> Zeroizing<String> {
        let content = InitializeContent {
            biz_code: "FACE",
            identity_param: IdentityParam {
                cert_name: identity.name(),
                cert_no: identity.id_number(),
                cert_type: "IDENTITY_CARD",
                identity_type: "CERT_INFO",
            },
            merchant_config: MerchantConfig {
                return_url: &self.return_url,
            },
            outer_order_no: attempt,
        };
        // Room for the worst JSON escaping (`\u00XX`, six bytes a byte) of every borrowed value.
        let borrowed = attempt.len() + identity.name().len() + identity.id_number().len();
        let mut json = Vec::with_capacity(256 + 6 * (borrowed + self.return_url.len()));
        serde_json::to_writer(&mut json, &content).expect("string fields serialize");
        Zeroizing::new(String::from_utf8(json).expect("serde_json writes UTF-8"))
    }

    /// The signed page URL the mini-program opens for the scan.
    fn certify_url(&self, certify_id: &str, now: DateTime<Utc>) -> String {
        let params = self.signed_params(
            CERTIFY,
            &json!({ "certify_id": certify_id }).to_string(),
            &[("return_url", &self.return_url)],
            now,
        );
        format!("{}?{}", self.gateway, form_encode(&params).as_str())
    }
}

/// What is logged of the gateway's `error_response`: its codes, nothing else.
fn gateway_refusal(refusal: &RawValue) -> CallError {
    let codes = serde_json::from_str::<Reply>(refusal.get()).ok();
    CallError::Refused {
        code: loggable(codes.as_ref().map_or("", |c| c.code.as_str())),
        sub_code: loggable(
            codes
                .as_ref()
                .and_then(|c| c.sub_code.as_deref())
                .unwrap_or(""),
        ),
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
        match (reply.succeeded(), &reply.certify_id) {
            (true, Some(certify_id)) => Ok(FaceSession {
                certify_url: Some(self.certify_url(certify_id, Utc::now())),
                certify_id: certify_id.clone(),
            }),
            _ => Err(reply.refusal(INITIALIZE)),
        }
    }

    async fn outcome(&self, certify_id: &str, evidence: &Value) -> Result<FaceOutcome, AppError> {
        let biz_content = json!({ "certify_id": certify_id }).to_string();
        let reply = self.call(QUERY, &biz_content, QUERY_ATTEMPTS).await?;
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
            _ => Err(reply.refusal(QUERY)),
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
            sign_content(&params).as_str(),
            r#"app_id=2021&biz_content={"a":"b c&d"}&sign_type=RSA2&timestamp=2026-11-28 14:30:00"#
        );
    }

    fn testdata(name: &str) -> String {
        std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("src/adapters/face/testdata")
                .join(name),
        )
        .unwrap()
    }

    /// The adapter with the test key as both the app's key and "Alipay's".
    fn adapter() -> AlipayCertify {
        AlipayCertify::new(&AlipaySettings {
            gateway: "https://openapi.alipay.com/gateway.do".into(),
            app_id: "2021000000000001".into(),
            app_private_key: testdata("app-private-pkcs8.pem"),
            alipay_public_key: testdata("app-public.pem"),
            return_url:
                "alipays://platformapi/startapp?appId=2021000000000001&page=pages/verify/done"
                    .into(),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn an_initialize_request_is_signed_exactly_as_openssl_signs_it() {
        let adapter = adapter();
        let identity = RelativeIdentity::new(
            zeroize::Zeroizing::new("张三".into()),
            zeroize::Zeroizing::new("610113201603142174".into()),
        );
        let content = adapter.initialize_content("3f6d2b1e8c4a4f0e9b7d2a5c8e1f4d90", &identity);
        // 14:30 China time.
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 6, 30, 0).unwrap();
        let params = adapter.signed_params(INITIALIZE, &content, &[], at);
        assert_eq!(
            sign_content(&params).as_str(),
            testdata("request-content.txt")
        );
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

    #[tokio::test]
    async fn an_answer_signed_before_its_slashes_were_escaped_verifies() {
        let adapter = adapter();
        // OpenSSL signed the text with plain `/`; the body carries it JSON-escaped as `\/`.
        let signed = testdata("slash-response-content.txt");
        assert!(signed.contains('/') && !signed.contains("\\/"));
        let body = |member: &str| {
            format!(
                r#"{{"alipay_user_certify_open_query_response":{member},"sign":"{}"}}"#,
                testdata("slash-response-content.sig").trim()
            )
        };
        let escaped = signed.replace('/', "\\/");
        let reply = adapter
            .verified_reply(QUERY, body(&escaped).as_bytes())
            .unwrap();
        assert_eq!(
            (reply.code.as_str(), reply.passed.as_deref()),
            ("10000", Some("T"))
        );
        assert!(adapter
            .verified_reply(QUERY, body(&signed).as_bytes())
            .is_ok());
        // Reading `\/` as `/` is all the second try forgives.
        let changed = escaped.replacen(r#""T""#, r#""F""#, 1);
        assert!(matches!(
            adapter.verified_reply(QUERY, body(&changed).as_bytes()),
            Err(CallError::Untrusted(_))
        ));
    }

    #[tokio::test]
    async fn the_gateways_error_response_is_a_refusal_whose_codes_alone_are_read() {
        let body = r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature\n张三","sub_msg":"验签出错"},"sign":"bm90IGEgc2lnbmF0dXJl"}"#;
        match adapter().verified_reply(INITIALIZE, body.as_bytes()) {
            Err(CallError::Refused { code, sub_code }) => {
                assert_eq!(
                    (code.as_str(), sub_code.as_str()),
                    ("40002", "isv.invalid-signature")
                );
            }
            other => panic!("a refusal expected, got {other:?}"),
        }
        assert!(matches!(
            adapter().verified_reply(INITIALIZE, br#"{"sign":"AAAA"}"#),
            Err(CallError::Untrusted(_))
        ));
        // Unsigned in the method's member: a refusal when it says so, never a success.
        let unsigned_refusal = r#"{"alipay_user_certify_open_initialize_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-app-id"}}"#;
        assert!(matches!(
            adapter().verified_reply(INITIALIZE, unsigned_refusal.as_bytes()),
            Err(CallError::Refused { code, sub_code }) if code == "40002" && sub_code == "isv.invalid-app-id"
        ));
        let unsigned_success = r#"{"alipay_user_certify_open_initialize_response":{"code":"10000","msg":"Success","certify_id":"OC1"}}"#;
        assert!(matches!(
            adapter().verified_reply(INITIALIZE, unsigned_success.as_bytes()),
            Err(CallError::Untrusted("unsigned"))
        ));
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
