//! **Local Alipay stand-in** (for laptops and tests, never deployed): an HTTP server that speaks
//! the open platform's identity-certification protocol as `AlipayCertify` uses it. It checks
//! every request's RSA2 signature with the app's public key exactly as the gateway would,
//! signs its answers with its own key, and is scriptable per certify id.
//!
//! - `POST /gateway.do` — `alipay.user.certify.open.initialize` and `.query`;
//! - `GET /gateway.do?method=alipay.user.certify.open.certify&…` — the scan page: opening it
//!   is the person passing the scan (unless the session was scripted otherwise);
//! - `POST /_stand-in/script` — `{"certify_id": "…", "outcome": "…"}` scripts a session's
//!   query, `{"initialize": "…"}` the next initialize. Outcomes: `pass`, `fail`,
//!   `not_finished`, `expired`, `error` (busy), `refused` (the gateway's `error_response`, as
//!   for a request it will not run), `declined` (a signed business refusal: the app lacks the
//!   capability), `bad_signature`, `slow`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kincode_common::adapters::face::alipay::sign_content;
use kincode_common::adapters::face::rsa2::{Rsa2Signer, Rsa2Verifier};
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub const GATEWAY_PATH: &str = "/gateway.do";
pub const SCRIPT_PATH: &str = "/_stand-in/script";
/// How long a `slow` answer takes: past the adapter's wait.
const SLOW: Duration = Duration::from_secs(6);

/// A fresh RSA-2048 key pair as the open platform hands keys out: base64 PKCS#8 (private)
/// and base64 X.509 SubjectPublicKeyInfo (public).
pub fn generate_key_pair() -> (String, String) {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
    let private: Pkcs8V1Der = pair.as_der().expect("PKCS#8 export");
    let public: PublicKeyX509Der = pair.public_key().as_der().expect("SPKI export");
    (B64.encode(private.as_ref()), B64.encode(public.as_ref()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    NotFinished,
    Expired,
    Error,
    Refused,
    Declined,
    BadSignature,
    Slow,
}

impl Outcome {
    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "pass" => Self::Pass,
            "fail" => Self::Fail,
            "not_finished" => Self::NotFinished,
            "expired" => Self::Expired,
            "error" => Self::Error,
            "refused" => Self::Refused,
            "declined" => Self::Declined,
            "bad_signature" => Self::BadSignature,
            "slow" => Self::Slow,
            _ => return None,
        })
    }
}

#[derive(Default)]
struct State {
    /// certify id → what its query answers.
    sessions: HashMap<String, Outcome>,
    next_initialize: Option<Outcome>,
    /// Every well-formed initialize's `outer_order_no`, in order.
    outer_order_nos: Vec<String>,
    /// Queries answered (each a billable call at Alipay).
    queries: usize,
}

pub struct AlipayStandIn {
    app_id: String,
    app_key: Rsa2Verifier,
    own_key: Rsa2Signer,
    state: Mutex<State>,
}

/// A running stand-in: where it listens and the key its answers are signed with.
pub struct RunningStandIn {
    pub base_url: String,
    pub alipay_public_key: String,
    pub stand_in: Arc<AlipayStandIn>,
}

impl RunningStandIn {
    pub fn gateway(&self) -> String {
        format!("{}{GATEWAY_PATH}", self.base_url)
    }
}

impl AlipayStandIn {
    /// Starts one on 127.0.0.1 (a free port) for the app `app_id` whose public key is
    /// `app_public_key`.
    pub async fn start(app_id: &str, app_public_key: &str) -> Result<RunningStandIn, String> {
        let (own_private, own_public) = generate_key_pair();
        let stand_in = Arc::new(Self {
            app_id: app_id.to_owned(),
            app_key: Rsa2Verifier::from_text(app_public_key).map_err(|e| e.to_string())?,
            own_key: Rsa2Signer::from_text(&own_private).map_err(|e| e.to_string())?,
            state: Mutex::default(),
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let base_url = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        tokio::spawn(stand_in.clone().serve(listener));
        Ok(RunningStandIn {
            base_url,
            alipay_public_key: own_public,
            stand_in,
        })
    }

    /// Scripts what `certify_id`'s query answers.
    pub fn script(&self, certify_id: &str, outcome: Outcome) {
        self.lock().sessions.insert(certify_id.to_owned(), outcome);
    }

    /// Scripts the next initialize (`error`, `refused`, `declined`, `bad_signature` or
    /// `slow`; others are normal).
    pub fn script_next_initialize(&self, outcome: Outcome) {
        self.lock().next_initialize = Some(outcome);
    }

    /// The `outer_order_no` of every well-formed initialize received, in order.
    pub fn outer_order_nos(&self) -> Vec<String> {
        self.lock().outer_order_nos.clone()
    }

    /// How many queries it has answered.
    pub fn queries(&self) -> usize {
        self.lock().queries
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let stand_in = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let stand_in = stand_in.clone();
                    async move { Ok::<_, Infallible>(stand_in.handle(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let Ok(body) = Limited::new(body, 64 * 1024).collect().await else {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "too large");
        };
        let body = body.to_bytes();
        let mut params: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        match (parts.method, parts.uri.path()) {
            (Method::POST, SCRIPT_PATH) => self.script_request(&body),
            (Method::POST, GATEWAY_PATH) => {
                // The query string repeats `charset` for the gateway's decoder; each
                // parameter counts once.
                let form: Vec<(String, String)> =
                    form_urlencoded::parse(&body).into_owned().collect();
                params.retain(|(k, _)| !form.iter().any(|(f, _)| f == k));
                params.extend(form);
                self.api(&params).await
            }
            (Method::GET, GATEWAY_PATH) => self.certify_page(&params),
            _ => text(StatusCode::NOT_FOUND, "not found"),
        }
    }

    fn script_request(&self, body: &[u8]) -> Response<Full<Bytes>> {
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let outcome = |field: &str| request[field].as_str().and_then(Outcome::parse);
        match (
            request["certify_id"].as_str(),
            outcome("outcome"),
            outcome("initialize"),
        ) {
            (Some(id), Some(o), _) => self.script(id, o),
            (None, _, Some(o)) => self.script_next_initialize(o),
            _ => {
                return text(
                    StatusCode::BAD_REQUEST,
                    "want {certify_id, outcome} or {initialize}",
                )
            }
        }
        text(StatusCode::NO_CONTENT, "")
    }

    fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// The gateway's own checks: the app, the signature type, the signature.
    fn refusal(&self, params: &[(String, String)]) -> Option<Value> {
        if Self::param(params, "app_id") != self.app_id {
            return Some(gateway_refusal("isv.invalid-app-id"));
        }
        if Self::param(params, "sign_type") != "RSA2" || Self::param(params, "charset") != "utf-8" {
            return Some(gateway_refusal("isv.invalid-signature-type"));
        }
        if !self
            .app_key
            .verifies(sign_content(params).as_bytes(), Self::param(params, "sign"))
        {
            return Some(gateway_refusal("isv.invalid-signature"));
        }
        None
    }

    async fn api(&self, params: &[(String, String)]) -> Response<Full<Bytes>> {
        let method = Self::param(params, "method").to_owned();
        let biz: Value =
            serde_json::from_str(Self::param(params, "biz_content")).unwrap_or(Value::Null);
        let (reply, outcome) = match self.refusal(params) {
            Some(refused) => (refused, Some(Outcome::Refused)),
            None => match method.as_str() {
                "alipay.user.certify.open.initialize" => self.initialize(&biz),
                "alipay.user.certify.open.query" => self.query(&biz),
                _ => (
                    json!({ "code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-method" }),
                    None,
                ),
            },
        };
        if outcome == Some(Outcome::Slow) {
            tokio::time::sleep(SLOW).await;
        }
        // The gateway answers a request it will not run in `error_response`.
        let node = match outcome {
            Some(Outcome::Refused) => "error_response".to_owned(),
            _ => format!("{}_response", method.replace('.', "_")),
        };
        self.signed(&node, &reply, outcome == Some(Outcome::BadSignature))
    }

    fn initialize(&self, biz: &Value) -> (Value, Option<Outcome>) {
        let identity = &biz["identity_param"];
        let well_formed = biz["biz_code"] == "FACE"
            && identity["identity_type"] == "CERT_INFO"
            && identity["cert_type"] == "IDENTITY_CARD"
            && identity["cert_name"]
                .as_str()
                .is_some_and(|n| !n.is_empty())
            && identity["cert_no"].as_str().is_some_and(|n| n.len() == 18)
            && biz["outer_order_no"].as_str().is_some_and(|o| {
                !o.is_empty() && o.len() <= 32 && o.bytes().all(|b| b.is_ascii_alphanumeric())
            });
        if !well_formed {
            return (
                json!({ "code": "40004", "msg": "Business Failed", "sub_code": "ILLEGAL_ARGUMENT_FORMAT", "sub_msg": "参数格式错误" }),
                None,
            );
        }
        let scripted = {
            let mut state = self.lock();
            let outer_order_no = biz["outer_order_no"].as_str().unwrap_or_default();
            state.outer_order_nos.push(outer_order_no.to_owned());
            state.next_initialize.take()
        };
        match scripted {
            Some(Outcome::Error) => return (busy(), scripted),
            Some(Outcome::Refused) => return (gateway_refusal("isv.invalid-signature"), scripted),
            Some(Outcome::Declined) => return (declined(), scripted),
            _ => {}
        }
        let certify_id = uuid::Uuid::new_v4().simple().to_string();
        self.lock()
            .sessions
            .insert(certify_id.clone(), Outcome::NotFinished);
        (
            json!({ "code": "10000", "msg": "Success", "certify_id": certify_id }),
            scripted,
        )
    }

    fn query(&self, biz: &Value) -> (Value, Option<Outcome>) {
        let outcome = {
            let mut state = self.lock();
            state.queries += 1;
            biz["certify_id"]
                .as_str()
                .and_then(|id| state.sessions.get(id).copied())
                .unwrap_or(Outcome::Expired)
        };
        let reply = match outcome {
            Outcome::Pass => {
                json!({ "code": "10000", "msg": "Success", "passed": "T", "material_info": "{}" })
            }
            Outcome::Expired => {
                json!({ "code": "40004", "msg": "Business Failed", "sub_code": "OPEN_CERTIFY_BILL_NOT_EXIST", "sub_msg": "无效的certify_id" })
            }
            Outcome::Error => busy(),
            Outcome::Refused => gateway_refusal("isv.invalid-signature"),
            Outcome::Declined => declined(),
            // Fail, not finished, and the transport faults answer "not passed" when they answer.
            _ => json!({ "code": "10000", "msg": "Success", "passed": "F", "material_info": "{}" }),
        };
        (reply, Some(outcome))
    }

    fn certify_page(&self, params: &[(String, String)]) -> Response<Full<Bytes>> {
        if Self::param(params, "method") != "alipay.user.certify.open.certify"
            || self.refusal(params).is_some()
        {
            return text(StatusCode::BAD_REQUEST, "签名错误 (invalid signature)");
        }
        let biz: Value =
            serde_json::from_str(Self::param(params, "biz_content")).unwrap_or(Value::Null);
        let Some(id) = biz["certify_id"].as_str() else {
            return text(StatusCode::BAD_REQUEST, "no certify_id");
        };
        let mut state = self.lock();
        match state.sessions.get_mut(id) {
            // The person passed the scan, unless the session was scripted otherwise.
            Some(outcome @ Outcome::NotFinished) => *outcome = Outcome::Pass,
            Some(_) => {}
            None => return text(StatusCode::NOT_FOUND, "unknown certify_id"),
        }
        text(StatusCode::OK, "人脸识别已完成(本地支付宝模拟)")
    }

    /// `{"<node>": reply, "sign": …}`, signed over the member's exact text.
    fn signed(&self, node: &str, reply: &Value, corrupt: bool) -> Response<Full<Bytes>> {
        let member = reply.to_string();
        let mut sign = self.own_key.sign(&member);
        if corrupt {
            sign = format!(
                "{}{}",
                if sign.starts_with('A') { "B" } else { "A" },
                &sign[1..]
            );
        }
        let body = format!("{{\"{node}\":{member},\"sign\":{}}}", Value::from(sign));
        let mut response = Response::new(Full::new(Bytes::from(body)));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/html;charset=utf-8"),
        );
        response
    }
}

/// The gateway's refusal of a request it will not run (answered in `error_response`).
fn gateway_refusal(sub_code: &str) -> Value {
    json!({ "code": "40002", "msg": "Invalid Arguments", "sub_code": sub_code, "sub_msg": sub_code })
}

/// A business refusal: the app has not signed the identity-verification capability.
fn declined() -> Value {
    json!({ "code": "40006", "msg": "Insufficient Permissions", "sub_code": "isv.insufficient-isv-permissions", "sub_msg": "ISV权限不足" })
}

fn busy() -> Value {
    json!({ "code": "20000", "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error", "sub_msg": "系统繁忙" })
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
