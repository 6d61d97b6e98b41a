//! `GET /relatives`: the caller's relatives, newest first.

use chrono::{DateTime, Utc};
use kincode_common::answers::BindingAnswer;
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::usecases::bindings;
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(list(services, &req, now).await))
}

async fn list(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let bindings = bindings::list(&services.store, &call.guardian, now).await?;
    let relatives = bindings.iter().map(BindingAnswer::from).collect();
    Ok(http::json_response(
        StatusCode::OK,
        &ListAnswer { relatives },
    ))
}

#[derive(Serialize)]
struct ListAnswer<'a> {
    relatives: Vec<BindingAnswer<'a>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kincode_tests::*;

    async fn call(services: &Services, event: serde_json::Value) -> (u16, serde_json::Value) {
        let route = event.route_key();
        let response = handle(services, event.into_request(), Utc::now())
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        status_and_json(&response)
    }

    #[tokio::test]
    async fn lists_the_callers_relatives_newest_first_and_masked() {
        let services = fresh_services().await;
        let t0 = Utc::now();
        let elder = resident_id_aged(75, t0, 21);
        let child = resident_id_aged(5, t0, 22);
        bind_relative(&services, EVENT_GUARDIAN, &elder, t0)
            .await
            .unwrap();
        bind_relative(
            &services,
            EVENT_GUARDIAN,
            &child,
            t0 + chrono::Duration::minutes(1),
        )
        .await
        .unwrap();
        bind_relative(&services, "user-other", &resident_id_aged(80, t0, 23), t0)
            .await
            .unwrap();

        let (status, body) = call(&services, event("list.json")).await;
        assert_eq!(status, 200, "{body}");
        let relatives = body["relatives"].as_array().unwrap();
        assert_eq!(relatives.len(), 2, "only the caller's own");
        assert_eq!(relatives[0]["age_band"], "child");
        assert_eq!(relatives[1]["age_band"], "elder");
        assert_eq!(relatives[0]["verification_method"], "pledge");
        assert_eq!(relatives[0]["kind"], "kin_code");
        // A child's binding says when face verification is due (bound with the pledge) and when
        // it ends; an elder's never ends.
        for field in [
            "reverification_due_at",
            "reverification_deadline",
            "ends_at",
        ] {
            assert!(relatives[0][field].is_string(), "{field}: {}", relatives[0]);
            assert!(relatives[1][field].is_null(), "{field}: {}", relatives[1]);
        }
        for r in relatives {
            assert_eq!(r["name"], "**英");
            let masked = r["id_number"].as_str().unwrap();
            assert_eq!(masked.len(), 18);
            assert_eq!(&masked[2..14], "************");
        }
    }

    #[tokio::test]
    async fn a_child_is_listed_until_the_seventeenth_birthday() {
        let services = fresh_services().await;
        let t0 = Utc::now();
        let child = resident_id_aged(16, t0, 24);
        let ends = bind_relative(&services, EVENT_GUARDIAN, &child, t0)
            .await
            .unwrap()
            .transitions
            .ends_at
            .unwrap();
        let list_at = |now| {
            let services = &services;
            async move {
                let response = handle(services, event("list.json").into_request(), now)
                    .await
                    .expect("handler never errs");
                conforms("GET /relatives", &response);
                status_and_json(&response).1["relatives"].clone()
            }
        };
        let before = list_at(ends - chrono::Duration::seconds(1)).await;
        assert_eq!(before[0]["ends_at"], kincode_common::error::rfc3339(ends));
        assert!(
            before[0]["reverification_due_at"].is_null(),
            "verified by face"
        );
        assert_eq!(list_at(ends).await, serde_json::json!([]));
    }

    #[tokio::test]
    async fn a_new_guardian_has_an_empty_list_and_no_caller_is_401() {
        let services = fresh_services().await;
        let (status, body) = call(&services, event("list.json").with_caller("user-new")).await;
        assert_eq!(
            (status, body["relatives"].as_array().map(Vec::len)),
            (200, Some(0))
        );
        assert_eq!(
            call(&services, event("list.json").without_caller()).await.0,
            401
        );
    }

    #[tokio::test]
    async fn an_unreachable_table_is_503() {
        let services = unreachable_services().await;
        assert_eq!(call(&services, event("list.json")).await.0, 503);
    }
}
