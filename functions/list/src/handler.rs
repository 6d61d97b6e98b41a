//! `GET /relatives`: the caller's relatives, newest first.

use chrono::{DateTime, Utc};
use kincode_common::bindings;
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

pub async fn handle(
    services: &Services,
    req: Request,
    _now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(list(services, &req).await))
}

async fn list(services: &Services, req: &Request) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let bindings = bindings::list(&services.store, &call.guardian).await?;
    let relatives: Vec<_> = bindings.iter().map(http::binding_json).collect();
    Ok(http::json_response(
        StatusCode::OK,
        &json!({ "relatives": relatives }),
    ))
}
