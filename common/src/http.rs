//! HTTP glue shared by every function: who is calling, reading bodies, writing responses.

use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::binding::{BindingId, GuardianId, IdempotencyKey};
use crate::domain::dispute::DisputeId;
use crate::domain::nucleic::Site;
use crate::error::AppError;

/// Bodies here are a few hundred bytes; anything near this is not a real client.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A batch (lab results, risk flags) of 500 rows of up to ~150 bytes each, with room to spare.
pub const MAX_BATCH_BODY_BYTES: usize = 128 * 1024;

/// An authenticated request: who is calling, and the id that traces it.
#[derive(Debug, Clone)]
pub struct Call {
    pub guardian: GuardianId,
    pub request_id: String,
}

impl Call {
    pub fn from_request(req: &Request) -> Result<Self, AppError> {
        Ok(Self {
            guardian: caller(req)?,
            request_id: request_id(req),
        })
    }

    /// The audit context of this call at `now`.
    pub fn at(&self, now: chrono::DateTime<chrono::Utc>) -> crate::store::ActionContext<'_> {
        crate::store::ActionContext {
            request_id: &self.request_id,
            at: now,
        }
    }
}

/// Route scopes of the staff routes (the template's `AuthorizationScopes`; the functions
/// check them again).
pub const CHECKPOINT_SCOPE: &str = "kincode/checkpoint";
pub const AUTHORITY_SCOPE: &str = "kincode/authority";
pub const LAB_SCOPE: &str = "kincode/lab";

/// A call by staff: testing-site staff, labs or the health authority. `actor` is their `sub`.
#[derive(Debug, Clone)]
pub struct StaffCall {
    pub actor: String,
    pub request_id: String,
}

impl StaffCall {
    /// The caller, who must hold `scope`: 401 without a caller, 403 without the scope.
    pub fn from_request(req: &Request, scope: &str) -> Result<Self, AppError> {
        let actor = caller(req)?;
        let claims = jwt_claims(req);
        // `scope` is space-separated (RFC 8693); some issuers send `scp`, which API Gateway
        // renders as `[a b]` when it is an array.
        let granted = ["scope", "scp"]
            .iter()
            .filter_map(|name| claims.and_then(|c| c.get(*name)))
            .flat_map(|value| {
                value
                    .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
                    .filter(|s| !s.is_empty())
            })
            .any(|granted| granted == scope);
        if !granted {
            return Err(AppError::Forbidden);
        }
        Ok(Self {
            actor: actor.as_str().to_owned(),
            request_id: request_id(req),
        })
    }

    pub fn at(&self, now: chrono::DateTime<chrono::Utc>) -> crate::store::ActionContext<'_> {
        crate::store::ActionContext {
            request_id: &self.request_id,
            at: now,
        }
    }
}

/// The testing site of a checkpoint caller, from its token's `site_id` (and `site_name`)
/// claims: 403 without one, since a sample must say where it was taken.
pub fn site(req: &Request) -> Result<Site, AppError> {
    let claims = jwt_claims(req);
    let claim = |name: &str| claims.and_then(|c| c.get(name)).map(String::as_str);
    claim("site_id")
        .and_then(|id| Site::parse(id, claim("site_name")))
        .ok_or(AppError::SiteNotAssigned)
}

/// The route API Gateway matched (`POST /relatives/{binding_id}/disputes`), for a function
/// that serves several.
pub fn route_key(req: &Request) -> Option<&str> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.as_deref(),
        _ => None,
    }
}

/// A query-string parameter, if present.
pub fn query_param<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref()
        .and_then(|params| params.first(name))
}

fn jwt_claims(req: &Request) -> Option<&std::collections::HashMap<String, String>> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .authorizer
            .as_ref()
            .and_then(|a| a.jwt.as_ref())
            .map(|jwt| &jwt.claims),
        _ => None,
    }
}

/// The caller, from the JWT authorizer's `sub` claim. A deployed function never takes
/// identity from the body or a plain header.
pub fn caller(req: &Request) -> Result<GuardianId, AppError> {
    jwt_claims(req)
        .and_then(|claims| claims.get("sub"))
        .and_then(|s| GuardianId::parse(s))
        .ok_or(AppError::Unauthenticated)
}

/// API Gateway's request id, carried into audit records and logs.
pub fn request_id(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    }
    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// A path parameter naming a binding. A malformed id names nothing: 404, like a missing one.
pub fn binding_id(req: &Request) -> Result<BindingId, AppError> {
    req.path_parameters_ref()
        .and_then(|p| p.first("binding_id"))
        .and_then(BindingId::parse)
        .ok_or(AppError::BindingNotFound)
}

/// A path parameter naming a dispute. A malformed id names nothing: 404, like an unknown one.
pub fn dispute_id(req: &Request) -> Result<DisputeId, AppError> {
    req.path_parameters_ref()
        .and_then(|p| p.first("dispute_id"))
        .and_then(DisputeId::parse)
        .ok_or(AppError::DisputeNotFound)
}

pub fn idempotency_key(req: &Request) -> Result<Option<IdempotencyKey>, AppError> {
    match req.headers().get("idempotency-key") {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(IdempotencyKey::parse)
            .map(Some)
            .ok_or_else(|| AppError::MalformedRequest("bad Idempotency-Key header".into())),
    }
}

/// Parses a JSON body of at most [`MAX_BODY_BYTES`].
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, AppError> {
    json_body_within(req, MAX_BODY_BYTES)
}

/// Parses a batch's JSON body, of at most [`MAX_BATCH_BODY_BYTES`].
pub fn batch_body<T: DeserializeOwned>(req: &Request) -> Result<T, AppError> {
    json_body_within(req, MAX_BATCH_BODY_BYTES)
}

/// serde's messages can quote the input (an ID number), so only the error's category and
/// position are kept.
fn json_body_within<T: DeserializeOwned>(req: &Request, limit: usize) -> Result<T, AppError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => b"",
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => b"",
    };
    if bytes.len() > limit {
        return Err(AppError::BodyTooLarge);
    }
    serde_json::from_slice(bytes).map_err(|e| {
        AppError::MalformedRequest(format!(
            "{:?} error at line {} column {}",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// A JSON answer. Answers are plain data and always serialize; were one not to, the caller
/// gets a 500 (whose body is plain data too) rather than a broken body.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let text = match serde_json::to_string(body) {
        Ok(text) => text,
        Err(e) => return respond(Err(AppError::Internal(format!("serialize answer: {e}")))),
    };
    let mut response = Response::new(Body::Text(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Whether the client asked for the image itself (`Accept: image/png`) rather than JSON.
pub fn wants_png(req: &Request) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.split(';').next().map(str::trim) == Some("image/png"))
}

/// A PNG body; never cached, since a code's colour can change.
pub fn png_response(png: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::Binary(png));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn no_content() -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// Turns a handler's outcome into the response. Every domain outcome is `Ok` for the runtime;
/// 5xx causes are logged here (never the request itself).
pub fn respond(outcome: Result<Response<Body>, AppError>) -> Response<Body> {
    match outcome {
        Ok(response) => response,
        Err(err) => {
            let status =
                StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status.is_server_error() {
                tracing::error!(code = err.code(), error = %err, "request failed");
            } else {
                tracing::info!(
                    code = err.code(),
                    status = status.as_u16(),
                    "request refused"
                );
            }
            let mut response = json_response(status, &err.body());
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER));
            }
            response
        }
    }
}

/// How long a client waits before sending a 503'd request again: a dependency's hiccup (a
/// throttle, a lost connection) is over within seconds, and the request is safe to repeat.
pub const RETRY_AFTER: &str = "2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_503_says_when_to_come_back_and_other_refusals_do_not() {
        let unavailable = respond(Err(AppError::DependencyUnavailable("throttled".into())));
        assert_eq!(unavailable.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(unavailable.headers()[header::RETRY_AFTER], RETRY_AFTER);
        let refused = respond(Err(AppError::Conflict));
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        assert!(refused.headers().get(header::RETRY_AFTER).is_none());
    }
}
