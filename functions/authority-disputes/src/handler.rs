//! The health authority's queue of disputed bindings (scope `kincode/authority`):
//! `GET /authority/disputes` lists the open ones, oldest first;
//! `POST /authority/disputes/{dispute_id}/resolution` upholds or dismisses one, once.
//! The people in a dispute appear by handle and declared relationship, never by platform id.

use chrono::{DateTime, Utc};
use kincode_common::answers::{Labelled, Rfc3339};
use kincode_common::domain::dispute::{DisputeReason, DisputeStatus};
use kincode_common::domain::relationship::Relationship;
use kincode_common::error::AppError;
use kincode_common::http::{self, StaffCall, AUTHORITY_SCOPE};
use kincode_common::store::{Dispute, DisputePage};
use kincode_common::usecases::disputes::{self, ResolveRequest};
use kincode_common::usecases::paging::page_size;
use kincode_common::wiring::services::Services;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(if req.method() == Method::GET {
        queue(services, &req).await
    } else {
        resolve(services, &req, now).await
    }))
}

async fn queue(services: &Services, req: &Request) -> Result<Response<Body>, AppError> {
    StaffCall::from_request(req, AUTHORITY_SCOPE)?;
    let limit = page_size(http::query_param(req, "limit"))?;
    let page =
        disputes::open_disputes(&services.store, limit, http::query_param(req, "cursor")).await?;
    Ok(http::json_response(
        StatusCode::OK,
        &QueueAnswer::from(&page),
    ))
}

async fn resolve(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = StaffCall::from_request(req, AUTHORITY_SCOPE)?;
    let id = http::dispute_id(req)?;
    let request: ResolveRequest = http::json_body(req)?;
    let resolved =
        disputes::resolve(&services.store, &call.actor, &id, request, call.at(now)).await?;
    Ok(http::json_response(
        StatusCode::OK,
        &ResolutionAnswer::from(&resolved),
    ))
}

/// A page of the open disputes, oldest first.
#[derive(Serialize)]
struct QueueAnswer<'a> {
    disputes: Vec<OpenDispute<'a>>,
    /// `null` on the last page.
    next_cursor: Option<&'a str>,
}

impl<'a> From<&'a DisputePage> for QueueAnswer<'a> {
    fn from(page: &'a DisputePage) -> Self {
        Self {
            disputes: page.disputes.iter().map(OpenDispute::from).collect(),
            next_cursor: page.next_after.as_ref().map(|id| id.as_str()),
        }
    }
}

#[derive(Serialize)]
struct OpenDispute<'a> {
    id: &'a str,
    opened_at: Rfc3339,
    #[serde(flatten)]
    reason: Labelled<DisputeReason>,
    details: &'a str,
    reporter: Party<'a>,
    disputed: Party<'a>,
}

/// A guardian in a dispute: their handle for the relative, the relationship they declared,
/// since when they hold the relative, and whether that binding was verified (for the disputed
/// one, when reported).
#[derive(Serialize)]
struct Party<'a> {
    handle: &'a str,
    #[serde(flatten)]
    relationship: Labelled<Relationship>,
    bound_at: Rfc3339,
    verified: bool,
}

impl<'a> From<&'a Dispute> for OpenDispute<'a> {
    fn from(d: &'a Dispute) -> Self {
        Self {
            id: d.id.as_str(),
            opened_at: Rfc3339(d.opened_at),
            reason: Labelled(d.reason),
            details: &d.details,
            reporter: Party {
                handle: &d.reporter_handle,
                relationship: Labelled(d.reporter_relationship),
                bound_at: Rfc3339(d.reporter_bound_at),
                // A report is only opened from a verified binding.
                verified: true,
            },
            disputed: Party {
                handle: &d.disputed_handle,
                relationship: Labelled(d.disputed_relationship),
                bound_at: Rfc3339(d.disputed_bound_at),
                verified: d.disputed_verified,
            },
        }
    }
}

/// What a resolution did.
#[derive(Serialize)]
struct ResolutionAnswer<'a> {
    id: &'a str,
    #[serde(flatten)]
    status: Labelled<DisputeStatus>,
    resolved_at: Option<Rfc3339>,
    /// Upheld: whether this ended the binding (`false`: its guardian had unbound it);
    /// `null` when dismissed.
    binding_ended: Option<bool>,
    /// Upheld: until when the disputed guardian may not bind the relative; `null` when
    /// dismissed.
    banned_until: Option<Rfc3339>,
}

impl<'a> From<&'a Dispute> for ResolutionAnswer<'a> {
    fn from(d: &'a Dispute) -> Self {
        Self {
            id: d.id.as_str(),
            status: Labelled(d.status),
            resolved_at: d.resolved_at.map(Rfc3339),
            binding_ended: d.binding_ended,
            banned_until: d.banned_until.map(Rfc3339),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kincode_common::domain::binding::Binding;
    use kincode_common::domain::dispute::ban_ends;
    use kincode_common::error::rfc3339;
    use kincode_common::store::ActionContext;
    use kincode_common::usecases::disputes::ReportRequest;
    use kincode_tests::*;
    use serde_json::{json, Value};

    async fn call(services: &Services, event: Value, now: DateTime<Utc>) -> (u16, Value) {
        let route = event.route_key();
        let response = handle(services, event.into_request(), now)
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        status_and_json(&response)
    }

    fn code(body: &Value) -> &str {
        body["error"]["code"].as_str().unwrap_or_default()
    }

    fn resolution(id: &str, decision: &str) -> Value {
        event("authority-disputes-resolve.json")
            .with_path_parameter("dispute_id", id)
            .with_body(json!({ "decision": decision }))
    }

    /// A mother reports a stranger holding her child: the dispute's id, and both bindings.
    async fn reported(
        services: &Services,
        sequence: u32,
        at: DateTime<Utc>,
    ) -> (String, Binding, Binding) {
        let person = resident_id_aged(5, at, sequence);
        let mother = active_relative_with(services, "user-mother", &person, at).await;
        let stranger = format!("user-stranger-{sequence}");
        let theirs = active_relative_with(services, &stranger, &person, at).await;
        let request = ReportRequest {
            guardian: Some(
                services
                    .store
                    .keys()
                    .guardian_handle(&mother.relative_key, &stranger),
            ),
            reason: Some("not_family".into()),
            details: Some("不认识此人".into()),
        };
        let ctx = ActionContext {
            request_id: "report",
            at,
        };
        let dispute = disputes::report(&services.store, &mother.guardian, &mother.id, request, ctx)
            .await
            .unwrap();
        (dispute.id.as_str().to_owned(), mother, theirs)
    }

    #[tokio::test]
    async fn the_authority_reads_the_queue_oldest_first_and_without_platform_ids() {
        let services = fresh_services().await;
        let t0 = Utc::now();
        let (first, mother, stranger) = reported(&services, 701, t0).await;
        let (second, ..) = reported(&services, 702, t0 + Duration::seconds(1)).await;
        let (status, page) = call(
            &services,
            event("authority-disputes-list.json").with_query("limit", "1"),
            t0,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        let keys = services.store.keys();
        assert_eq!(
            page["disputes"],
            json!([{
                "id": first,
                "opened_at": rfc3339(t0),
                "reason": "not_family",
                "reason_label": "非亲属关系",
                "details": "不认识此人",
                "reporter": {
                    "handle": keys.guardian_handle(&mother.relative_key, "user-mother"),
                    "relationship": "child", "relationship_label": "子女",
                    "bound_at": rfc3339(t0), "verified": true,
                },
                "disputed": {
                    "handle": keys.guardian_handle(&mother.relative_key, stranger.guardian.as_str()),
                    "relationship": "child", "relationship_label": "子女",
                    "bound_at": rfc3339(t0), "verified": true,
                },
            }])
        );
        let text = page.to_string();
        assert!(!text.contains("user-") && !text.contains(stranger.id.as_str()));
        let cursor = page["next_cursor"].as_str().unwrap();
        let (_, rest) = call(
            &services,
            event("authority-disputes-list.json").with_query("cursor", cursor),
            t0,
        )
        .await;
        assert_eq!(rest["disputes"][0]["id"], second.as_str());
        assert!(rest["next_cursor"].is_null());

        let (status, body) = call(
            &services,
            event("authority-disputes-list.json").with_query("cursor", "x"),
            t0,
        )
        .await;
        assert_eq!((status, code(&body)), (400, "invalid_cursor"));
        let guardian = event("authority-disputes-list.json").with_scope(Some("kin_code"));
        let (status, body) = call(&services, guardian, t0).await;
        assert_eq!((status, code(&body)), (403, "forbidden"));
        let (status, _) = call(
            &services,
            event("authority-disputes-list.json").without_caller(),
            t0,
        )
        .await;
        assert_eq!(status, 401);
    }

    #[tokio::test]
    async fn upholding_answers_what_it_did_and_a_second_resolution_is_409() {
        let services = fresh_services().await;
        let now = Utc::now();
        let (id, _, stranger) = reported(&services, 711, now).await;
        let at = now + Duration::minutes(10);
        let (status, body) = call(&services, resolution(&id, "uphold"), at).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({
                "id": id,
                "status": "upheld",
                "status_label": "举报属实,该绑定已解除",
                "resolved_at": rfc3339(at),
                "binding_ended": true,
                "banned_until": rfc3339(ban_ends(at)),
            })
        );
        assert!(services
            .store
            .binding(&stranger.guardian, &stranger.id)
            .await
            .unwrap()
            .is_none());
        let (status, body) = call(&services, resolution(&id, "dismiss"), at).await;
        assert_eq!((status, code(&body)), (409, "dispute_already_resolved"));
        assert_eq!(body["error"]["outcome"], "upheld");
        let (_, queue) = call(&services, event("authority-disputes-list.json"), at).await;
        assert_eq!(queue["disputes"], json!([]));
    }

    #[tokio::test]
    async fn dismissing_and_the_refusals() {
        let services = fresh_services().await;
        let now = Utc::now();
        let (id, ..) = reported(&services, 721, now).await;
        let (status, body) = call(&services, resolution(&id, "dismiss"), now).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            (
                body["status"].as_str(),
                body["binding_ended"].is_null(),
                body["banned_until"].is_null()
            ),
            (Some("dismissed"), true, true)
        );
        let unknown = "0193c2a4-5e10-7b3c-9d2e-4f6a8b0c1d2e";
        for (event, status, expected) in [
            (resolution(&id, "approve"), 400, "invalid_decision"),
            (
                resolution(&id, "uphold").with_raw_body("[]"),
                400,
                "malformed_request",
            ),
            (resolution(unknown, "uphold"), 404, "dispute_not_found"),
            (resolution("not-an-id", "uphold"), 404, "dispute_not_found"),
            (
                resolution(&id, "uphold").with_scope(Some("kincode/checkpoint")),
                403,
                "forbidden",
            ),
        ] {
            let (answered, body) = call(&services, event, now).await;
            assert_eq!((answered, code(&body)), (status, expected));
        }
    }

    #[tokio::test]
    async fn an_unreachable_table_is_503() {
        let services = unreachable_services().await;
        let now = Utc::now();
        for event in [
            event("authority-disputes-list.json"),
            event("authority-disputes-resolve.json"),
        ] {
            let (status, body) = call(&services, event, now).await;
            assert_eq!((status, code(&body)), (503, "service_unavailable"));
        }
    }
}
