//! `GET /relatives/{binding_id}/export`: everything kincode holds about a relative the caller
//! holds (PIPL art. 45), as JSON, with the name and ID number opened for this answer only;
//! recorded in the binding's audit trail and the relative's access log before it is read.
//! For the caller's active binding only (else 404).

use chrono::{DateTime, Utc};
use kincode_common::answers::{AccessEntryAnswer, Labelled, Rfc3339, TestAnswer};
use kincode_common::domain::binding::Verification;
use kincode_common::domain::health::RiskFlag;
use kincode_common::domain::policy::AgeBand;
use kincode_common::domain::relationship::Relationship;
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::store::AuditAction;
use kincode_common::usecases::export::{self, RelativeExport};
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(export_relative(services, &req, now).await))
}

async fn export_relative(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let id = http::binding_id(req)?;
    let export = export::export(&services.store, &call.guardian, &id, call.at(now)).await?;
    let answer = ExportAnswer::new(&export, now);
    let mut response = http::json_response(StatusCode::OK, &answer);
    // Personal data in the clear: never kept by a cache on the way.
    response
        .headers_mut()
        .insert("cache-control", "no-store".parse().expect("a valid header"));
    Ok(response)
}

/// Everything held about the relative, as this guardian may read it.
#[derive(Serialize)]
struct ExportAnswer<'a> {
    exported_at: Rfc3339,
    relative: RelativeAnswer<'a>,
    binding: BindingRecordAnswer<'a>,
    offline_cards: Vec<OfflineCardAnswer<'a>>,
    risk_flags: Vec<RiskFlagAnswer>,
    /// Newest first, sampled since this binding was verified.
    tests: Vec<TestAnswer<'a>>,
    /// Newest first, since this binding was made.
    access_log: Vec<AccessEntryAnswer<'a>>,
    /// What was done through this binding, oldest first.
    history: Vec<HistoryAnswer>,
}

/// The person, unmasked: the only answer that opens them.
#[derive(Serialize)]
struct RelativeAnswer<'a> {
    name: &'a str,
    id_number: &'a str,
}

#[derive(Serialize)]
struct BindingRecordAnswer<'a> {
    id: &'a str,
    #[serde(flatten)]
    relationship: Labelled<Relationship>,
    age_band: AgeBand,
    bound_at: Rfc3339,
    verified_at: Option<Rfc3339>,
    /// `null` only for a binding verified before the method was recorded.
    verification: Option<VerificationAnswer<'a>>,
}

/// How the binding was verified: face recognition (the provider's certification id) or the
/// pledge (its version).
#[derive(Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
enum VerificationAnswer<'a> {
    Face { certify_id: &'a str },
    Pledge { pledge_version: &'a str },
}

#[derive(Serialize)]
struct OfflineCardAnswer<'a> {
    serial: &'a str,
    generated_at: Rfc3339,
    valid_until: Rfc3339,
}

#[derive(Serialize)]
struct RiskFlagAnswer {
    flag: RiskFlag,
    effective_at: Rfc3339,
    until: Option<Rfc3339>,
}

#[derive(Serialize)]
struct HistoryAnswer {
    at: Rfc3339,
    action: AuditAction,
}

impl<'a> ExportAnswer<'a> {
    fn new(e: &'a RelativeExport, now: DateTime<Utc>) -> Self {
        let b = &e.binding;
        let verification = b.verification.as_ref().map(|v| match v {
            Verification::Face { certify_id } => VerificationAnswer::Face { certify_id },
            Verification::Pledge { version } => VerificationAnswer::Pledge {
                pledge_version: version,
            },
        });
        Self {
            exported_at: Rfc3339(now),
            relative: RelativeAnswer {
                name: e.identity.name(),
                id_number: e.identity.id_number(),
            },
            binding: BindingRecordAnswer {
                id: b.id.as_str(),
                relationship: Labelled(b.relationship),
                age_band: b.age_band,
                bound_at: Rfc3339(b.bound_at),
                verified_at: b.verified_at.map(Rfc3339),
                verification,
            },
            offline_cards: e
                .offline_cards
                .iter()
                .map(|c| OfflineCardAnswer {
                    serial: &c.serial,
                    generated_at: Rfc3339(c.generated_at),
                    valid_until: Rfc3339(c.valid_until),
                })
                .collect(),
            risk_flags: e
                .risk_flags
                .iter()
                .map(|f| RiskFlagAnswer {
                    flag: f.flag,
                    effective_at: Rfc3339(f.effective_at),
                    until: f.until.map(Rfc3339),
                })
                .collect(),
            tests: e.tests.iter().map(TestAnswer::from).collect(),
            access_log: e
                .access_log
                .iter()
                .map(|entry| AccessEntryAnswer::new(entry, &e.own_handle))
                .collect(),
            history: e
                .history
                .iter()
                .map(|line| HistoryAnswer {
                    at: Rfc3339(line.at),
                    action: line.action,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kincode_common::domain::binding::Binding;
    use kincode_tests::*;
    use serde_json::Value;

    async fn call(services: &Services, event: Value, now: DateTime<Utc>) -> (u16, Value) {
        let route = event.route_key();
        let response = handle(services, event.into_request(), now)
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        if response.status() == 200 {
            assert_eq!(response.headers()["cache-control"], "no-store");
        }
        status_and_json(&response)
    }

    fn export_of(binding: &Binding) -> Value {
        event("export.json")
            .with_path_binding(binding.id.as_str())
            .with_caller(binding.guardian.as_str())
    }

    #[tokio::test]
    async fn the_guardian_takes_out_the_person_opened_their_tests_log_and_history() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let t0 = Utc::now() - Duration::hours(3);
        let person = resident_id_aged(5, t0, 414);
        let binding = active_relative_with(&services, EVENT_GUARDIAN, &person, t0).await;
        let tube = fresh_tube();
        register_sample_at(
            &services,
            &keys,
            &binding,
            &tube,
            None,
            t0 + Duration::hours(1),
        )
        .await
        .unwrap();
        report_result_at(&services, &tube, "negative", t0 + Duration::hours(2)).await;
        let now = t0 + Duration::hours(3);

        let (status, body) = call(&services, export_of(&binding), now).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["relative"]["name"], "王小明");
        assert_eq!(body["relative"]["id_number"], person.as_str());
        assert_eq!(body["binding"]["verification"]["method"], "pledge");
        assert_eq!(body["tests"][0]["tube_id"], tube.as_str());
        assert_eq!(body["tests"][0]["status"], "negative");
        let log: Vec<&str> = body["access_log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            log,
            [
                "data_exported",
                "result_reported",
                "sample_registered",
                "code_shown",
                "verified",
                "bound"
            ]
        );
        assert_eq!(body["access_log"][0]["actor"]["you"], true);
        let history: Vec<&str> = body["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["action"].as_str().unwrap())
            .collect();
        assert_eq!(history, ["bound", "verified", "data_exported"]);
        assert!(!body.to_string().contains(EVENT_GUARDIAN), "{body}");
    }

    #[tokio::test]
    async fn strangers_and_pending_bindings_export_nothing_and_leave_no_trace() {
        let services = fresh_services().await;
        let now = Utc::now();
        let binding = active_relative(&services, EVENT_GUARDIAN, now).await;
        let before = all_items(&services).await.len();
        let (status, body) = call(&services, export_of(&binding).with_caller("user-x"), now).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("binding_not_found"))
        );
        let pending = bind_relative(&services, "user-p", &distinct_resident_id(70, now), now)
            .await
            .unwrap();
        let after_bind = all_items(&services).await.len();
        assert!(after_bind > before);
        let (status, _) = call(&services, export_of(&pending), now).await;
        assert_eq!(status, 404);
        assert_eq!(
            all_items(&services).await.len(),
            after_bind,
            "nothing recorded"
        );
    }
}
