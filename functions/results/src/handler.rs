//! `GET /relatives/{binding_id}/results?limit=&cursor=`: the relative's nucleic-acid tests,
//! newest first, for the caller's active binding only (else 404).

use chrono::{DateTime, Utc};
use kincode_common::error::{rfc3339, AppError};
use kincode_common::http::{self, Call};
use kincode_common::services::Services;
use kincode_common::testing::results;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::json;

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(query(services, &req, now).await))
}

async fn query(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let id = http::binding_id(req)?;
    let limit = results::page_size(http::query_param(req, "limit"))?;
    let cursor = http::query_param(req, "cursor");
    let page = results::results(
        &services.store,
        &call.guardian,
        &id,
        limit,
        cursor,
        call.at(now),
    )
    .await?;
    let tests: Vec<_> = page
        .tests
        .iter()
        .map(|t| {
            json!({
                "sampled_at": rfc3339(t.sampled_at),
                "site": { "id": t.site_id, "name": t.site_name },
                "tube_id": t.tube_id,
                "sampling": if t.kind.is_pooled() { "pooled" } else { "single" },
                "tube_kind": t.kind.as_str(),
                "tube_kind_label": t.kind.label(),
                "status": t.status.as_str(),
                "status_label": t.status.label(),
                "reported_at": t.reported_at.map(rfc3339),
            })
        })
        .collect();
    Ok(http::json_response(
        StatusCode::OK,
        &json!({
            "binding_id": page.binding.id.as_str(),
            "name": page.binding.masked_name,
            "results": tests,
            "next_cursor": page.next_cursor,
        }),
    ))
}
