//! A guardian and the relative's other guardians:
//! `GET /relatives/{binding_id}/guardians` lists every guardian of the relative by handle;
//! `POST /relatives/{binding_id}/disputes` reports one of them as not legitimate;
//! `GET /disputes` lists the caller's reports, newest first, with their outcomes.

use chrono::{DateTime, Utc};
use kincode_common::answers::{Labelled, Rfc3339};
use kincode_common::domain::dispute::{DisputeReason, DisputeStatus};
use kincode_common::domain::relationship::Relationship;
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::store::{Dispute, DisputePage};
use kincode_common::usecases::disputes::{self, CoGuardian, ReportRequest};
use kincode_common::usecases::paging::page_size;
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

pub const GUARDIANS_ROUTE: &str = "GET /relatives/{binding_id}/guardians";
pub const REPORT_ROUTE: &str = "POST /relatives/{binding_id}/disputes";

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(match http::route_key(&req) {
        Some(GUARDIANS_ROUTE) => guardians(services, &req).await,
        Some(REPORT_ROUTE) => report(services, &req, now).await,
        _ => my_disputes(services, &req).await,
    }))
}

async fn guardians(services: &Services, req: &Request) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let id = http::binding_id(req)?;
    let view = disputes::co_guardians(&services.store, &call.guardian, &id).await?;
    let answer = GuardiansAnswer {
        binding_id: view.binding.id.as_str(),
        guardians: view.guardians.iter().map(GuardianAnswer::from).collect(),
    };
    Ok(http::json_response(StatusCode::OK, &answer))
}

async fn report(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let id = http::binding_id(req)?;
    let request: ReportRequest = http::json_body(req)?;
    let dispute =
        disputes::report(&services.store, &call.guardian, &id, request, call.at(now)).await?;
    Ok(http::json_response(
        StatusCode::CREATED,
        &ReportAnswer::from(&dispute),
    ))
}

async fn my_disputes(services: &Services, req: &Request) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let limit = page_size(http::query_param(req, "limit"))?;
    let page = disputes::my_disputes(
        &services.store,
        &call.guardian,
        limit,
        http::query_param(req, "cursor"),
    )
    .await?;
    Ok(http::json_response(
        StatusCode::OK,
        &ReportsAnswer::from(&page),
    ))
}

/// Every guardian of the relative the binding is of.
#[derive(Serialize)]
struct GuardiansAnswer<'a> {
    binding_id: &'a str,
    /// Longest-standing first.
    guardians: Vec<GuardianAnswer<'a>>,
}

#[derive(Serialize)]
struct GuardianAnswer<'a> {
    handle: &'a str,
    #[serde(flatten)]
    relationship: Labelled<Relationship>,
    bound_at: Rfc3339,
    verified: bool,
    /// `null` while pending.
    verified_at: Option<Rfc3339>,
    is_caller: bool,
}

impl<'a> From<&'a CoGuardian> for GuardianAnswer<'a> {
    fn from(g: &'a CoGuardian) -> Self {
        Self {
            handle: &g.handle,
            relationship: Labelled(g.relationship),
            bound_at: Rfc3339(g.bound_at),
            verified: g.verified_at.is_some(),
            verified_at: g.verified_at.map(Rfc3339),
            is_caller: g.is_caller,
        }
    }
}

/// A report as its reporter sees it.
#[derive(Serialize)]
struct ReportAnswer<'a> {
    id: &'a str,
    /// The reporter's own binding of the relative.
    binding_id: &'a str,
    guardian: ReportedGuardian<'a>,
    #[serde(flatten)]
    reason: Labelled<DisputeReason>,
    details: &'a str,
    opened_at: Rfc3339,
    #[serde(flatten)]
    status: Labelled<DisputeStatus>,
    /// `null` while open.
    resolved_at: Option<Rfc3339>,
}

/// The co-guardian a report is about.
#[derive(Serialize)]
struct ReportedGuardian<'a> {
    handle: &'a str,
    #[serde(flatten)]
    relationship: Labelled<Relationship>,
}

impl<'a> From<&'a Dispute> for ReportAnswer<'a> {
    fn from(d: &'a Dispute) -> Self {
        Self {
            id: d.id.as_str(),
            binding_id: d.reporter_binding.as_str(),
            guardian: ReportedGuardian {
                handle: &d.disputed_handle,
                relationship: Labelled(d.disputed_relationship),
            },
            reason: Labelled(d.reason),
            details: &d.details,
            opened_at: Rfc3339(d.opened_at),
            status: Labelled(d.status),
            resolved_at: d.resolved_at.map(Rfc3339),
        }
    }
}

/// A page of the caller's reports.
#[derive(Serialize)]
struct ReportsAnswer<'a> {
    disputes: Vec<ReportAnswer<'a>>,
    /// `null` on the last page.
    next_cursor: Option<&'a str>,
}

impl<'a> From<&'a DisputePage> for ReportsAnswer<'a> {
    fn from(page: &'a DisputePage) -> Self {
        Self {
            disputes: page.disputes.iter().map(ReportAnswer::from).collect(),
            next_cursor: page.next_after.as_ref().map(|id| id.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kincode_common::domain::binding::Binding;
    use kincode_common::store::ActionContext;
    use kincode_common::usecases::disputes::ResolveRequest;
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

    fn guardians_of(binding: &Binding) -> Value {
        event("co-guardians-list.json")
            .with_path_binding(binding.id.as_str())
            .with_caller(binding.guardian.as_str())
    }

    fn report_by(binding: &Binding, body: Value) -> Value {
        event("co-guardians-report.json")
            .with_path_binding(binding.id.as_str())
            .with_caller(binding.guardian.as_str())
            .with_body(body)
    }

    fn handle_of(services: &Services, binding: &Binding, guardian: &str) -> String {
        services
            .store
            .keys()
            .guardian_handle(&binding.relative_key, guardian)
    }

    fn code(body: &Value) -> &str {
        body["error"]["code"].as_str().unwrap_or_default()
    }

    #[tokio::test]
    async fn every_guardian_of_the_relative_is_listed_by_handle_and_the_caller_marked() {
        let services = fresh_services().await;
        let now = Utc::now();
        let person = resident_id_aged(5, now, 611);
        let mine = active_relative_with(&services, EVENT_GUARDIAN, &person, now).await;
        let later = now + chrono::Duration::seconds(1);
        let aunt = bind_relative(&services, "user-aunt", &person, later)
            .await
            .unwrap();
        let (status, body) = call(&services, guardians_of(&mine), now).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["binding_id"], mine.id.as_str());
        assert_eq!(
            body["guardians"],
            json!([
                {
                    "handle": handle_of(&services, &mine, EVENT_GUARDIAN),
                    "relationship": "child", "relationship_label": "子女",
                    "bound_at": kincode_common::error::rfc3339(now),
                    "verified": true, "verified_at": kincode_common::error::rfc3339(now),
                    "is_caller": true,
                },
                {
                    "handle": handle_of(&services, &mine, "user-aunt"),
                    "relationship": "grandparent", "relationship_label": "祖父母/外祖父母",
                    "bound_at": kincode_common::error::rfc3339(later),
                    "verified": false, "verified_at": null,
                    "is_caller": false,
                },
            ])
        );
        assert!(!body.to_string().contains("user-aunt"), "no platform id");

        let (status, body) = call(&services, guardians_of(&aunt), now).await;
        assert_eq!((status, code(&body)), (409, "verification_required"));
        for event in [
            guardians_of(&mine).with_caller("user-someone-else"),
            guardians_of(&mine).with_path_binding("not-a-binding"),
        ] {
            let (status, body) = call(&services, event, now).await;
            assert_eq!((status, code(&body)), (404, "binding_not_found"));
        }
        let (status, _) = call(&services, guardians_of(&mine).without_caller(), now).await;
        assert_eq!(status, 401);
    }

    #[tokio::test]
    async fn a_report_is_answered_as_its_reporter_reads_it_and_refusals_by_their_codes() {
        let services = fresh_services().await;
        let now = Utc::now();
        let person = resident_id_aged(5, now, 612);
        let mine = active_relative_with(&services, EVENT_GUARDIAN, &person, now).await;
        let stranger = active_relative_with(&services, "user-stranger", &person, now).await;
        let theirs = handle_of(&services, &mine, "user-stranger");
        let body =
            json!({ "guardian": theirs, "reason": "not_family", "details": "  不认识此人 " });
        let (status, opened) = call(&services, report_by(&mine, body.clone()), now).await;
        assert_eq!(status, 201, "{opened}");
        assert_eq!(opened["binding_id"], mine.id.as_str());
        assert_eq!(
            opened["guardian"],
            json!({ "handle": theirs, "relationship": "child", "relationship_label": "子女" })
        );
        assert_eq!(
            (
                opened["reason_label"].as_str(),
                opened["details"].as_str(),
                opened["status"].as_str(),
                opened["status_label"].as_str()
            ),
            (
                Some("非亲属关系"),
                Some("不认识此人"),
                Some("open"),
                Some("待卫生健康部门核实")
            )
        );
        assert!(opened["resolved_at"].is_null());
        assert!(!opened.to_string().contains(stranger.id.as_str()));

        let own = handle_of(&services, &mine, EVENT_GUARDIAN);
        let cases = [
            (
                json!({ "guardian": theirs, "reason": "not_family" }),
                409,
                "dispute_already_open",
            ),
            (
                json!({ "guardian": own, "reason": "not_family" }),
                422,
                "dispute_own_binding",
            ),
            (
                json!({ "guardian": "g-AAAAAAAAAAAA", "reason": "other", "details": "x" }),
                404,
                "guardian_not_found",
            ),
            (
                json!({ "guardian": theirs, "reason": "rude" }),
                400,
                "invalid_dispute_reason",
            ),
            (
                json!({ "guardian": theirs, "reason": "other" }),
                400,
                "invalid_dispute_details",
            ),
            (
                json!({ "guardian": theirs, "reason": "other", "details": "长".repeat(201) }),
                400,
                "invalid_dispute_details",
            ),
            (
                json!({ "guardian": 7, "reason": "other" }),
                400,
                "malformed_request",
            ),
        ];
        for (body, status, expected) in cases {
            let (answered, answer) = call(&services, report_by(&mine, body.clone()), now).await;
            assert_eq!((answered, code(&answer)), (status, expected), "{body}");
        }
        let (status, _) = call(
            &services,
            report_by(&mine, body.clone()).with_raw_body("{"),
            now,
        )
        .await;
        assert_eq!(status, 400);
        let pending = bind_relative(&services, "user-aunt", &person, now)
            .await
            .unwrap();
        let (status, answer) = call(&services, report_by(&pending, body.clone()), now).await;
        assert_eq!((status, code(&answer)), (409, "verification_required"));
        let (status, answer) = call(
            &services,
            report_by(&mine, body).with_caller("user-someone-else"),
            now,
        )
        .await;
        assert_eq!((status, code(&answer)), (404, "binding_not_found"));
    }

    #[tokio::test]
    async fn the_fourth_report_of_a_day_is_429() {
        let services = fresh_services().await;
        let now = Utc::now();
        let mut reports = Vec::new();
        for i in 0..2 {
            let person = resident_id_aged(5, now, 620 + i);
            let mine = active_relative_with(&services, EVENT_GUARDIAN, &person, now).await;
            for other in ["user-x", "user-y"] {
                active_relative_with(&services, other, &person, now).await;
                let theirs = handle_of(&services, &mine, other);
                reports.push(report_by(
                    &mine,
                    json!({ "guardian": theirs, "reason": "impersonation" }),
                ));
            }
        }
        let statuses: Vec<u16> = {
            let mut statuses = Vec::new();
            for report in reports {
                let (status, body) = call(&services, report, now).await;
                statuses.push(status);
                if status == 429 {
                    assert_eq!(code(&body), "too_many_disputes");
                }
            }
            statuses
        };
        assert_eq!(statuses, [201, 201, 201, 429]);
    }

    #[tokio::test]
    async fn the_reporter_reads_their_reports_newest_first_with_the_outcome() {
        let services = fresh_services().await;
        let now = Utc::now();
        let person = resident_id_aged(5, now, 631);
        let mine = active_relative_with(&services, EVENT_GUARDIAN, &person, now).await;
        let mut ids = Vec::new();
        for (other, at) in [
            ("user-x", now),
            ("user-y", now + chrono::Duration::seconds(1)),
        ] {
            active_relative_with(&services, other, &person, now).await;
            let body =
                json!({ "guardian": handle_of(&services, &mine, other), "reason": "not_family" });
            let (status, opened) = call(&services, report_by(&mine, body), at).await;
            assert_eq!(status, 201, "{opened}");
            ids.push(opened["id"].as_str().unwrap().to_owned());
        }
        let id = kincode_common::domain::dispute::DisputeId::parse(&ids[0]).unwrap();
        let ctx = ActionContext {
            request_id: "resolve",
            at: now + chrono::Duration::hours(1),
        };
        let decision = ResolveRequest {
            decision: Some("dismiss".into()),
        };
        disputes::resolve(&services.store, "cdc-1", &id, decision, ctx)
            .await
            .unwrap();

        let (status, first) = call(
            &services,
            event("co-guardians-reports.json").with_query("limit", "1"),
            now,
        )
        .await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(first["disputes"][0]["id"], ids[1].as_str());
        assert_eq!(first["disputes"][0]["status"], "open");
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        let (_, second) = call(
            &services,
            event("co-guardians-reports.json")
                .with_query("limit", "1")
                .with_query("cursor", &cursor),
            now,
        )
        .await;
        let older = &second["disputes"][0];
        assert_eq!(older["id"], ids[0].as_str());
        assert_eq!(
            (older["status"].as_str(), older["status_label"].as_str()),
            (Some("dismissed"), Some("经核实,该绑定不存在问题"))
        );
        assert_eq!(
            older["resolved_at"],
            kincode_common::error::rfc3339(now + chrono::Duration::hours(1))
        );
        assert!(second["next_cursor"].is_null());
        // Someone else reads none of them.
        let (_, theirs) = call(
            &services,
            event("co-guardians-reports.json").with_caller("user-x"),
            now,
        )
        .await;
        assert_eq!(theirs["disputes"], json!([]));
        for (name, value, expected) in [
            ("cursor", "nonsense", "invalid_cursor"),
            ("limit", "0", "malformed_request"),
        ] {
            let (status, body) = call(
                &services,
                event("co-guardians-reports.json").with_query(name, value),
                now,
            )
            .await;
            assert_eq!((status, code(&body)), (400, expected));
        }
    }

    #[tokio::test]
    async fn an_unreachable_table_is_503() {
        let services = unreachable_services().await;
        let now = Utc::now();
        for event in [
            event("co-guardians-list.json"),
            event("co-guardians-report.json"),
            event("co-guardians-reports.json"),
        ] {
            let (status, body) = call(&services, event, now).await;
            assert_eq!((status, code(&body)), (503, "service_unavailable"));
        }
    }
}
