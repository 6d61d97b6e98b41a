//! `DELETE /relatives/{binding_id}`: unbind, 24 hours after binding at the earliest.
//! `DELETE /account`: close the caller's account, every binding unbound.

use chrono::{DateTime, Utc};
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::usecases::bindings;
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde::Serialize;

pub const CLOSE_ACCOUNT_ROUTE: &str = "DELETE /account";

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    let closes = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => {
            ctx.route_key.as_deref() == Some(CLOSE_ACCOUNT_ROUTE)
        }
        _ => false,
    };
    Ok(http::respond(if closes {
        close_account(services, &req, now).await
    } else {
        unbind(services, &req, now).await
    }))
}

/// What a closed account ended.
#[derive(Serialize)]
struct ClosedAnswer {
    bindings_ended: usize,
}

async fn close_account(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let ended = bindings::close_account(&services.store, &call.guardian, call.at(now)).await?;
    Ok(http::json_response(
        StatusCode::OK,
        &ClosedAnswer {
            bindings_ended: ended,
        },
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kincode_tests::*;
    use serde_json::Value;

    async fn call(services: &Services, event: Value, now: DateTime<Utc>) -> (u16, Value) {
        let route = event.route_key();
        let response = handle(services, event.into_request(), now)
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        status_and_json(&response)
    }

    #[tokio::test]
    async fn closing_an_account_waits_for_its_youngest_binding_then_ends_them_all() {
        let services = fresh_services().await;
        let t0 = Utc::now() - Duration::days(3);
        let active = active_relative(&services, EVENT_GUARDIAN, t0).await;
        let younger_at = t0 + Duration::hours(10);
        let pending = bind_relative(
            &services,
            EVENT_GUARDIAN,
            &distinct_resident_id(70, t0),
            younger_at,
        )
        .await
        .unwrap();
        let close = || event("unbind-close-account.json").with_caller(EVENT_GUARDIAN);

        let early = t0 + Duration::hours(30);
        let (status, body) = call(&services, close(), early).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("unbind_too_early")),
            "{body}"
        );
        let available: DateTime<Utc> = body["error"]["unbind_available_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            available.timestamp(),
            (younger_at + Duration::hours(24)).timestamp(),
            "the youngest binding decides"
        );
        assert_eq!(
            counter(&services, &format!("G#{EVENT_GUARDIAN}"), "bound").await,
            2
        );

        // (The answer's time is whole seconds.)
        let available = available + Duration::seconds(1);
        let (status, body) = call(&services, close(), available).await;
        assert_eq!(
            (status, body["bindings_ended"].as_u64()),
            (200, Some(2)),
            "{body}"
        );
        assert_eq!(
            counter(&services, &format!("G#{EVENT_GUARDIAN}"), "bound").await,
            0
        );
        for binding in [&active, &pending] {
            assert_eq!(
                counter(
                    &services,
                    &format!("R#{}", binding.relative_key),
                    "guardians"
                )
                .await,
                0
            );
            let erasure = all_items(&services).await.into_iter().find(|i| {
                i["pk"].as_s().unwrap() == &format!("R#{}", binding.relative_key)
                    && i["sk"].as_s().unwrap() == "ERASE"
            });
            assert!(erasure.is_some(), "the person's erasure is scheduled");
        }
        let anchor = services.store.anchor(&active.id).await.unwrap().unwrap();
        assert!(anchor.revoked_at.is_some(), "its codes are revoked");

        // Closed twice: nothing left to end.
        let (status, body) = call(&services, close(), available).await;
        assert_eq!(
            (status, body["bindings_ended"].as_u64()),
            (200, Some(0)),
            "{body}"
        );
    }

    fn unbind_event(binding: &str) -> Value {
        event("unbind.json").with_path_binding(binding)
    }

    #[tokio::test]
    async fn unbinding_opens_24_hours_after_binding_and_releases_both_counters() {
        let services = fresh_services().await;
        let bound_at = Utc::now();
        let id = resident_id_aged(66, bound_at, 31);
        let binding = bind_relative(&services, EVENT_GUARDIAN, &id, bound_at)
            .await
            .unwrap();
        let relative_pk = format!("R#{}", binding.relative_key);

        let early = bound_at + Duration::hours(24) - Duration::seconds(1);
        let (status, body) = call(&services, unbind_event(binding.id.as_str()), early).await;
        assert_eq!(status, 409, "{body}");
        assert_eq!(
            body["error"]["message"],
            "绑定亲属码成员24小时后,才能进行解绑操作"
        );
        let available: DateTime<Utc> = body["error"]["unbind_available_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            available.timestamp(),
            (bound_at + Duration::hours(24)).timestamp()
        );

        let (status, body) = call(
            &services,
            unbind_event(binding.id.as_str()),
            bound_at + Duration::hours(24),
        )
        .await;
        assert_eq!((status, body), (204, Value::Null));
        assert_eq!(
            counter(&services, &format!("G#{EVENT_GUARDIAN}"), "bound").await,
            0
        );
        assert_eq!(counter(&services, &relative_pk, "guardians").await, 0);
        let remaining: Vec<String> = all_items(&services)
            .await
            .iter()
            .map(|i| i["sk"].as_s().unwrap().clone())
            .filter(|sk| sk.starts_with("B#") || sk.starts_with("L#"))
            .collect();
        assert!(remaining.is_empty(), "{remaining:?}");

        // A repeated DELETE is success; the relative can be bound again.
        let later = bound_at + Duration::hours(25);
        assert_eq!(
            call(&services, unbind_event(binding.id.as_str()), later)
                .await
                .0,
            204
        );
        assert!(bind_relative(&services, EVENT_GUARDIAN, &id, later)
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn the_event_file_binding_and_strangers_bindings_are_not_found() {
        let services = fresh_services().await;
        let now = Utc::now();
        let binding = bind_relative(
            &services,
            EVENT_GUARDIAN,
            &resident_id_aged(70, now, 32),
            now,
        )
        .await
        .unwrap();
        let later = now + Duration::hours(48);
        let (status, body) = call(&services, event("unbind.json"), later).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("binding_not_found"))
        );
        let stranger = unbind_event(binding.id.as_str()).with_caller("user-stranger");
        assert_eq!(call(&services, stranger, later).await.0, 404);
        assert_eq!(
            counter(&services, &format!("G#{EVENT_GUARDIAN}"), "bound").await,
            1,
            "untouched"
        );
        assert_eq!(
            call(
                &services,
                unbind_event(binding.id.as_str()).without_caller(),
                later
            )
            .await
            .0,
            401
        );
    }

    #[tokio::test]
    async fn an_unreachable_table_is_503() {
        let services = unreachable_services().await;
        let (status, _) = call(
            &services,
            unbind_event("3f6d2b1e-8c4a-4f0e-9b7d-2a5c8e1f4d90"),
            Utc::now(),
        )
        .await;
        assert_eq!(status, 503);
    }
}
