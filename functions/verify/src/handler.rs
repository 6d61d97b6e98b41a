//! `POST /relatives/{binding_id}/verification` starts verification (face session or pledge
//! text); `POST /relatives/{binding_id}/verification/complete` finishes it.

use chrono::{DateTime, Utc};
use kincode_common::bindings::{self, VerificationStart};
use kincode_common::error::AppError;
use kincode_common::face::FaceVerifier;
use kincode_common::http::{self, Call};
use kincode_common::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::json;

pub const COMPLETE_ROUTE: &str = "POST /relatives/{binding_id}/verification/complete";

pub async fn handle(
    services: &Services,
    face: &impl FaceVerifier,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    let completes = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.as_deref() == Some(COMPLETE_ROUTE),
        _ => false,
    };
    Ok(http::respond(if completes {
        complete(services, face, &req, now).await
    } else {
        start(services, face, &req, now).await
    }))
}

async fn start(
    services: &Services,
    face: &impl FaceVerifier,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let id = http::binding_id(req)?;
    let started =
        bindings::start_verification(&services.store, face, &call.guardian, &id, call.at(now))
            .await?;
    let body = match started {
        VerificationStart::Face { certify_id } => {
            json!({ "method": "face", "certify_id": certify_id })
        }
        VerificationStart::Pledge { version, text } => {
            json!({ "method": "pledge", "pledge": { "version": version, "text": text } })
        }
    };
    Ok(http::json_response(StatusCode::OK, &body))
}

async fn complete(
    services: &Services,
    face: &impl FaceVerifier,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let id = http::binding_id(req)?;
    let body = http::json_body(req)?;
    let binding = bindings::complete_verification(
        &services.store,
        face,
        &call.guardian,
        &id,
        body,
        call.at(now),
    )
    .await?;
    Ok(http::json_response(
        StatusCode::OK,
        &http::binding_json(&binding),
    ))
}
