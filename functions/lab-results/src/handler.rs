//! `POST /lab/results` (labs, scope `kincode/lab`): a batch of tube results. Each row is judged
//! on its own and answered in order; a result reaches every person in the tube at once.

use chrono::{DateTime, Utc};
use kincode_common::error::AppError;
use kincode_common::http::{self, StaffCall, LAB_SCOPE};
use kincode_common::services::Services;
use kincode_common::testing::lab::{self, ResultBatch};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(report(services, &req, now).await))
}

async fn report(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = StaffCall::from_request(req, LAB_SCOPE)?;
    let batch: ResultBatch = http::json_body(req)?;
    let outcomes = lab::apply_results(&services.store, &call.actor, batch, call.at(now)).await?;
    let results: Vec<_> = outcomes
        .iter()
        .enumerate()
        .map(|(index, outcome)| outcome.json(index))
        .collect();
    Ok(http::json_response(
        StatusCode::OK,
        &json!({ "results": results }),
    ))
}
