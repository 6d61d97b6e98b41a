//! `DELETE /relatives/{binding_id}`: unbind, 24 hours after binding at the earliest.

use chrono::{DateTime, Utc};
use kincode_common::bindings;
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::services::Services;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(unbind(services, &req, now).await))
}

async fn unbind(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let id = http::binding_id(req)?;
    bindings::unbind(&services.store, &call.guardian, &id, call.at(now)).await?;
    Ok(http::no_content())
}
