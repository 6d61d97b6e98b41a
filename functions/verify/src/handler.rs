//! `POST /relatives/{binding_id}/verification` starts verification (face session or pledge
//! text); `POST /relatives/{binding_id}/verification/complete` finishes it.

use chrono::{DateTime, Utc};
use kincode_common::adapters::face::FaceVerifier;
use kincode_common::answers::BindingAnswer;
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::usecases::bindings::{self, VerificationStart};
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

pub const COMPLETE_ROUTE: &str = "POST /relatives/{binding_id}/verification/complete";

pub async fn handle(
    services: &Services,
    face: &impl FaceVerifier,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(
        if http::route_key(&req) == Some(COMPLETE_ROUTE) {
            complete(services, face, &req, now).await
        } else {
            start(services, face, &req, now).await
        },
    ))
}

/// How verification goes on: the face session to open, or the pledge to sign.
#[derive(Serialize)]
#[serde(tag = "method", rename_all = "snake_case")]
enum StartAnswer<'a> {
    Face {
        certify_id: &'a str,
        /// `null` when the provider gives no page.
        certify_url: Option<&'a str>,
    },
    Pledge {
        pledge: Pledge<'a>,
    },
}

#[derive(Serialize)]
struct Pledge<'a> {
    version: &'a str,
    text: &'a str,
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
    let body = match &started {
        VerificationStart::Face {
            certify_id,
            certify_url,
        } => StartAnswer::Face {
            certify_id,
            certify_url: certify_url.as_deref(),
        },
        VerificationStart::Pledge { version, text } => StartAnswer::Pledge {
            pledge: Pledge { version, text },
        },
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
        &BindingAnswer::from(&binding),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kincode_common::adapters::face::LocalFaceSimulator;
    use kincode_tests::*;
    use serde_json::{json, Value};

    async fn call(services: &Services, event: Value, now: DateTime<Utc>) -> (u16, Value) {
        let route = event.route_key();
        let response = handle(services, &LocalFaceSimulator, event.into_request(), now)
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        status_and_json(&response)
    }

    async fn start(services: &Services, binding: &str, now: DateTime<Utc>) -> (u16, Value) {
        call(
            services,
            event("verify-start.json").with_path_binding(binding),
            now,
        )
        .await
    }

    async fn complete(
        services: &Services,
        binding: &str,
        body: Value,
        now: DateTime<Utc>,
    ) -> (u16, Value) {
        let event = event("verify-complete.json")
            .with_path_binding(binding)
            .with_body(body);
        call(services, event, now).await
    }

    async fn face_binding(services: &Services, now: DateTime<Utc>) -> String {
        let id = resident_id_aged(10, now, 11);
        bind_relative(services, EVENT_GUARDIAN, &id, now)
            .await
            .unwrap()
            .id
            .as_str()
            .to_owned()
    }

    #[tokio::test]
    async fn event_files_run_face_verification_to_active() {
        let services = fresh_services().await;
        let now = Utc::now();
        let binding = face_binding(&services, now).await;
        let (status, started) = start(&services, &binding, now).await;
        assert_eq!(
            (status, started["method"].as_str()),
            (200, Some("face")),
            "{started}"
        );
        let certify_id = started["certify_id"].as_str().unwrap();

        // The event file's own body carries a passing simulated outcome; only the session differs.
        let mut event = event("verify-complete.json").with_path_binding(&binding);
        let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
        body["certify_id"] = certify_id.into();
        event = event.with_body(body);
        let (status, done) = call(&services, event, now).await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(done["status"], "active");
        assert!(done["verified_at"].is_string());

        // Retrying the completion answers the same; starting again is refused.
        let again = json!({"certify_id": certify_id, "evidence": {"simulated_outcome": "pass"}});
        assert_eq!(
            complete(&services, &binding, again, now).await,
            (200, done.clone()),
            "as stored"
        );
        let (status, body) = start(&services, &binding, now).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("already_verified"))
        );
    }

    #[tokio::test]
    async fn a_failed_face_check_is_422_and_can_be_retried() {
        let services = fresh_services().await;
        let now = Utc::now();
        let binding = face_binding(&services, now).await;
        let certify = start(&services, &binding, now).await.1["certify_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let fail = json!({"certify_id": certify, "evidence": {"simulated_outcome": "fail"}});
        let (status, body) = complete(&services, &binding, fail.clone(), now).await;
        assert_eq!(status, 422);
        assert_eq!(body["error"]["message"], "人脸识别认证失败,请重新认证");
        // The failed session is spent: a new attempt starts a new one.
        let (status, body) = complete(&services, &binding, fail, now).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("verification_not_started"))
        );
        let certify = start(&services, &binding, now).await.1["certify_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let pass = json!({"certify_id": certify, "evidence": {"simulated_outcome": "pass"}});
        assert_eq!(
            complete(&services, &binding, pass, now).await.1["status"],
            "active"
        );
    }

    #[tokio::test]
    async fn five_failures_in_an_hour_lock_face_recognition_until_the_window_passes() {
        let services = fresh_services().await;
        let t0 = Utc::now();
        let binding = face_binding(&services, t0).await;
        for attempt in 0..5 {
            let at = t0 + chrono::Duration::minutes(attempt * 5);
            let certify = start(&services, &binding, at).await.1["certify_id"]
                .as_str()
                .unwrap()
                .to_owned();
            let fail = json!({"certify_id": certify, "evidence": {"simulated_outcome": "fail"}});
            assert_eq!(complete(&services, &binding, fail, at).await.0, 422);
        }
        let later = t0 + chrono::Duration::minutes(30);
        let (status, body) = start(&services, &binding, later).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (429, Some("too_many_face_attempts")),
            "{body}"
        );
        assert_eq!(
            body["error"]["message"],
            "人脸识别失败次数过多,请1小时后再试"
        );
        assert!(body["error"]["retry_at"].is_string());
        // An hour after the first failure, one slot is free again.
        let (status, _) = start(&services, &binding, t0 + chrono::Duration::minutes(61)).await;
        assert_eq!(status, 200);
    }

    #[tokio::test]
    async fn abandoned_sessions_count_toward_the_lockout() {
        let services = fresh_services().await;
        let t0 = Utc::now();
        let binding = face_binding(&services, t0).await;
        // Five starts, none completed: each after the first abandons a session, a failure.
        for minute in 0..5 {
            let at = t0 + chrono::Duration::minutes(minute);
            assert_eq!(start(&services, &binding, at).await.0, 200);
        }
        let (status, body) = start(&services, &binding, t0 + chrono::Duration::minutes(5)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (429, Some("too_many_face_attempts")),
            "{body}"
        );
        // Free once the first abandoned session (at minute 1) is an hour old.
        let free = t0 + chrono::Duration::minutes(61);
        assert_eq!(
            body["error"]["retry_at"],
            kincode_common::error::rfc3339(free)
        );
        assert_eq!(start(&services, &binding, free).await.0, 200);
    }

    #[tokio::test]
    async fn children_under_seven_sign_the_pledge() {
        let services = fresh_services().await;
        let now = Utc::now();
        let id = resident_id_aged(3, now, 12);
        let binding = bind_relative(&services, EVENT_GUARDIAN, &id, now)
            .await
            .unwrap()
            .id
            .as_str()
            .to_owned();
        let (status, started) = start(&services, &binding, now).await;
        assert_eq!((status, started["method"].as_str()), (200, Some("pledge")));
        let version = started["pledge"]["version"].as_str().unwrap().to_owned();
        assert!(started["pledge"]["text"].as_str().unwrap().contains("承诺"));

        let refusals = [
            (
                json!({"pledge_version": "2020-01-v0", "accepted": true}),
                409,
                "pledge_outdated",
            ),
            (
                json!({"pledge_version": version, "accepted": false}),
                400,
                "consent_required",
            ),
        ];
        for (body, status, code) in refusals {
            let (got, answer) = complete(&services, &binding, body, now).await;
            assert_eq!(
                (got, answer["error"]["code"].as_str()),
                (status, Some(code))
            );
        }
        let (status, body) = complete(
            &services,
            &binding,
            json!({"pledge_version": version, "accepted": true}),
            now,
        )
        .await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("active")),
            "{body}"
        );
    }

    #[tokio::test]
    async fn a_child_verified_by_the_pledge_is_verified_again_by_face_at_seven() {
        let services = fresh_services().await;
        let now = Utc::now();
        let id = resident_id_aged(6, now, 13);
        let binding = bind_relative(&services, EVENT_GUARDIAN, &id, now)
            .await
            .unwrap()
            .id
            .as_str()
            .to_owned();
        let version = start(&services, &binding, now).await.1["pledge"]["version"].clone();
        let pledge = json!({"pledge_version": version, "accepted": true});
        let (_, pledged) = complete(&services, &binding, pledge, now).await;
        let time =
            |field: &str| -> DateTime<Utc> { pledged[field].as_str().unwrap().parse().unwrap() };
        let seven = time("reverification_due_at");
        assert_eq!(
            time("reverification_deadline"),
            seven + chrono::Duration::days(30)
        );
        assert!(time("ends_at") > seven);

        // Before the 7th birthday nothing is due; from it, face verification of the active binding.
        let early = start(&services, &binding, seven - chrono::Duration::seconds(1)).await;
        assert_eq!(
            (early.0, early.1["error"]["code"].as_str()),
            (409, Some("already_verified"))
        );
        let (status, started) = start(&services, &binding, seven).await;
        assert_eq!((status, started["method"].as_str()), (200, Some("face")));
        let face = json!({
            "certify_id": started["certify_id"],
            "evidence": {"simulated_outcome": "pass"},
        });
        let (status, done) = complete(&services, &binding, face, seven).await;
        assert_eq!(status, 200, "{done}");
        assert_eq!(
            (
                done["status"].as_str(),
                done["verification_method"].as_str(),
                &done["verified_at"],
                &done["reverification_due_at"],
                &done["reverification_deadline"],
                &done["ends_at"],
            ),
            (
                Some("active"),
                Some("face"),
                &pledged["verified_at"],
                &Value::Null,
                &Value::Null,
                &pledged["ends_at"],
            )
        );
    }

    #[tokio::test]
    async fn another_guardians_binding_is_not_found() {
        let services = fresh_services().await;
        let now = Utc::now();
        let binding = face_binding(&services, now).await;
        let stranger = |e: Value| e.with_path_binding(&binding).with_caller("user-stranger");
        let (status, body) = call(&services, stranger(event("verify-start.json")), now).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("binding_not_found"))
        );
        let (status, _) = call(&services, stranger(event("verify-complete.json")), now).await;
        assert_eq!(status, 404);
        // Malformed ids and unknown ids look the same.
        assert_eq!(start(&services, "not-a-uuid", now).await.0, 404);
        assert_eq!(
            call(&services, event("verify-start.json"), now).await.0,
            404
        );
    }
}
