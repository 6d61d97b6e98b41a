//! `POST /relatives`: bind a relative.

use chrono::{DateTime, Utc};
use kincode_common::answers::BindingAnswer;
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::usecases::bindings;
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(bind(services, &req, now).await))
}

async fn bind(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let key = http::idempotency_key(req)?;
    let body = http::json_body(req)?;
    let binding = bindings::bind(
        &services.store,
        &call.guardian,
        body,
        key.as_ref(),
        call.at(now),
    )
    .await?;
    Ok(http::json_response(
        StatusCode::CREATED,
        &BindingAnswer::from(&binding),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kincode_common::domain::binding::{BindingId, GuardianId};
    use kincode_tests::*;
    use serde_json::json;

    async fn call(services: &Services, event: serde_json::Value) -> (u16, serde_json::Value) {
        let route = event.route_key();
        let response = handle(services, event.into_request(), Utc::now())
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        status_and_json(&response)
    }

    fn bind_body(id_number: &str) -> serde_json::Value {
        json!({"name": "王小明", "id_number": id_number, "relationship": "child", "consent": true})
    }

    #[tokio::test]
    async fn event_file_binds_a_relative_pending_verification() {
        let services = fresh_services().await;
        let (status, body) = call(&services, event("bind.json")).await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "pending_verification");
        assert_eq!(body["verification_method"], "face");
        assert_eq!(body["age_band"], "child");
        assert_eq!(body["name"], "**明");
        assert_eq!(body["id_number"], "61************2174");
        assert_eq!(body["relationship_label"], "子女");
        let bound: DateTime<Utc> = body["bound_at"].as_str().unwrap().parse().unwrap();
        let unbind: DateTime<Utc> = body["unbind_available_at"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(unbind - bound, chrono::Duration::hours(24));
        assert_eq!(
            counter(&services, &format!("G#{EVENT_GUARDIAN}"), "bound").await,
            1
        );
    }

    #[tokio::test]
    async fn a_retried_bind_answers_the_same_and_counts_once() {
        let services = fresh_services().await;
        let (first_status, first) = call(&services, event("bind.json")).await;
        let (second_status, second) = call(&services, event("bind.json")).await;
        assert_eq!((first_status, second_status), (201, 201));
        assert_eq!(first["id"], second["id"]);
        assert_eq!(
            counter(&services, &format!("G#{EVENT_GUARDIAN}"), "bound").await,
            1
        );
        let bindings = all_items(&services)
            .await
            .into_iter()
            .filter(|i| i["sk"].as_s().unwrap().starts_with("B#"))
            .count();
        assert_eq!(bindings, 1);
    }

    #[tokio::test]
    async fn an_idempotency_key_reused_for_another_relative_is_refused() {
        let services = fresh_services().await;
        assert_eq!(call(&services, event("bind.json")).await.0, 201);
        let other = resident_id_aged(70, Utc::now(), 1);
        let (status, body) = call(&services, event("bind.json").with_body(bind_body(&other))).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("idempotency_key_reused"))
        );
    }

    #[tokio::test]
    async fn a_key_whose_binding_was_unbound_binds_nothing_while_its_codes_could_be_shown() {
        let services = fresh_services().await;
        let (status, bound) = call(&services, event("bind.json")).await;
        assert_eq!(status, 201, "{bound}");
        let guardian = GuardianId::parse(EVENT_GUARDIAN).unwrap();
        let id = BindingId::parse(bound["id"].as_str().unwrap()).unwrap();
        let pending = services
            .store
            .binding(&guardian, &id)
            .await
            .unwrap()
            .unwrap();
        let active = activate(&services, &pending, Utc::now()).await;
        unbind_relative(
            &services,
            EVENT_GUARDIAN,
            &active,
            Utc::now() + chrono::Duration::hours(25),
        )
        .await;
        // The same request again: the id would come back active, and the codes it issued
        // before the unbind (a printed offline card) would scan as valid again.
        let (status, body) = call(&services, event("bind.json")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("idempotency_key_reused")),
            "{body}"
        );
        let again = event("bind.json").with_header("idempotency-key", "a-fresh-key-0001");
        assert_eq!(call(&services, again).await.0, 201, "a new key binds anew");
    }

    #[tokio::test]
    async fn binding_the_same_relative_twice_is_a_conflict() {
        let services = fresh_services().await;
        assert_eq!(call(&services, event("bind.json")).await.0, 201);
        let again = event("bind.json").with_header("idempotency-key", "another-key-0001");
        let (status, body) = call(&services, again).await;
        assert_eq!(status, 409);
        assert_eq!(body["error"]["code"], "already_bound");
        assert_eq!(body["error"]["message"], "您已绑定该亲属,请勿重复绑定");
    }

    #[tokio::test]
    async fn input_errors_are_4xx_with_chinese_messages() {
        let services = fresh_services().await;
        let adult = resident_id_aged(30, Utc::now(), 5);
        let cases = [
            (
                bind_body("610113201603142175"),
                400,
                "invalid_id_number",
                "请输入正确的身份证",
            ),
            (
                bind_body("６１０１１３２０１６０３１４２１７４"),
                400,
                "invalid_id_number",
                "请输入正确的身份证",
            ),
            (
                bind_body(&adult),
                422,
                "age_not_eligible",
                "暂时只支持绑定16岁以下及60岁以上的亲属",
            ),
            (
                json!({"name": "王小明", "id_number": "610113201603142174", "relationship": "child"}),
                400,
                "consent_required",
                "请先获得亲属授权并同意协议",
            ),
            (
                json!({"name": "Tom", "id_number": "610113201603142174", "relationship": "child", "consent": true}),
                400,
                "invalid_name",
                "请输入正确的姓名",
            ),
            (
                json!({"name": "王小明", "id_number": "610113201603142174", "relationship": "friend", "consent": true}),
                400,
                "invalid_relationship",
                "请选择正确的亲属关系",
            ),
            (
                json!({"name": 5, "id_number": "610113201603142174"}),
                400,
                "malformed_request",
                "请求格式不正确",
            ),
        ];
        for (body, status, code, message) in cases {
            let (got_status, got) = call(
                &services,
                event("bind.json")
                    .with_header("idempotency-key", &fresh_idempotency_key())
                    .with_body(body.clone()),
            )
            .await;
            assert_eq!(got_status, status, "{body} → {got}");
            assert_eq!(got["error"]["code"], code, "{body}");
            assert_eq!(got["error"]["message"], message, "{body}");
        }
        assert!(
            all_items(&services).await.is_empty(),
            "refused requests write nothing"
        );
    }

    #[tokio::test]
    async fn malformed_and_oversized_bodies_are_400() {
        let services = fresh_services().await;
        for raw in ["{", "", "[]", "null", "{\"name\": \"王\u{0}"] {
            let (status, body) = call(&services, event("bind.json").with_raw_body(raw)).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("malformed_request")),
                "{raw:?}"
            );
        }
        let huge = format!("{{\"name\": \"{}\"}}", "王".repeat(10_000));
        let (status, body) = call(&services, event("bind.json").with_raw_body(&huge)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("body_too_large"))
        );
    }

    #[tokio::test]
    async fn no_caller_is_401_and_a_bad_idempotency_key_400() {
        let services = fresh_services().await;
        let (status, body) = call(&services, event("bind.json").without_caller()).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("unauthenticated"))
        );
        let (status, _) = call(
            &services,
            event("bind.json").with_header("idempotency-key", "x"),
        )
        .await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn an_unreachable_table_is_503() {
        let services = unreachable_services().await;
        let (status, body) = call(&services, event("bind.json")).await;
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["message"], "系统繁忙,请稍后再试");
    }
}
