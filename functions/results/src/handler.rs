//! `GET /relatives/{binding_id}/results?limit=&cursor=`: the relative's nucleic-acid tests,
//! newest first, for the caller's active binding only (else 404).

use chrono::{DateTime, Utc};
use kincode_common::answers::TestAnswer;
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::usecases::nucleic::results;
use kincode_common::usecases::paging;
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

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
    let limit = paging::page_size(http::query_param(req, "limit"))?;
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
    let answer = ResultsAnswer {
        binding_id: page.binding.id.as_str(),
        name: &page.binding.masked_name,
        results: page.tests.iter().map(TestAnswer::from).collect(),
        next_cursor: page.next_cursor.as_deref(),
    };
    Ok(http::json_response(StatusCode::OK, &answer))
}

/// A page of the relative's tests, newest first.
#[derive(Serialize)]
struct ResultsAnswer<'a> {
    binding_id: &'a str,
    name: &'a str,
    results: Vec<TestAnswer<'a>>,
    /// `null` on the last page.
    next_cursor: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kincode_common::domain::binding::Binding;
    use kincode_common::error::rfc3339;
    use kincode_tests::*;
    use serde_json::json;
    use serde_json::Value;

    async fn call(services: &Services, event: Value, now: DateTime<Utc>) -> (u16, Value) {
        let route = event.route_key();
        let response = handle(services, event.into_request(), now)
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        status_and_json(&response)
    }

    fn query(binding: &Binding) -> Value {
        event("results.json")
            .with_path_binding(binding.id.as_str())
            .with_caller(binding.guardian.as_str())
    }

    fn tubes(body: &Value) -> Vec<String> {
        body["results"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|r| r["tube_id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn the_guardian_reads_tests_newest_first_and_strangers_get_404() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let t0 = Utc::now() - Duration::hours(30);
        let binding = active_relative(&services, EVENT_GUARDIAN, t0).await;
        let (pooled, single) = (fresh_tube(), fresh_tube());
        register_sample_at(
            &services,
            &keys,
            &binding,
            &pooled,
            Some("pooled_20"),
            t0 + Duration::hours(1),
        )
        .await
        .unwrap();
        report_result_at(&services, &pooled, "negative", t0 + Duration::hours(5)).await;
        register_sample_at(
            &services,
            &keys,
            &binding,
            &single,
            None,
            t0 + Duration::hours(26),
        )
        .await
        .unwrap();
        let now = t0 + Duration::hours(27);

        let (status, body) = call(&services, query(&binding), now).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(tubes(&body), [single.clone(), pooled.clone()]);
        let newest = &body["results"][0];
        assert_eq!(
            (
                newest["status"].as_str(),
                newest["sampling"].as_str(),
                newest["status_label"].as_str()
            ),
            (Some("pending"), Some("single"), Some("待出结果"))
        );
        assert!(newest["reported_at"].is_null());
        assert_eq!(
            newest["site"],
            json!({ "id": "XA-YT-0412", "name": "雁塔区小寨街道核酸采样点" })
        );
        let oldest = &body["results"][1];
        assert_eq!(
            (
                oldest["status"].as_str(),
                oldest["sampling"].as_str(),
                oldest["tube_kind"].as_str()
            ),
            (Some("negative"), Some("pooled"), Some("pooled_20"))
        );
        assert_eq!(oldest["reported_at"], rfc3339(t0 + Duration::hours(5)));
        assert!(body["next_cursor"].is_null());
        assert_eq!(body["name"], "**明");

        // Another guardian, a malformed id, an unknown one: all 404, with nothing to tell apart.
        for event in [
            query(&binding).with_caller("user-someone-else"),
            query(&binding).with_path_binding("not-a-binding"),
            query(&binding).with_path_binding("0b7f8e2a-1c3d-4e5f-8a9b-0c1d2e3f4a5b"),
        ] {
            let (status, body) = call(&services, event, now).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (404, Some("binding_not_found"))
            );
        }
        assert_eq!(
            call(&services, query(&binding).without_caller(), now)
                .await
                .0,
            401
        );
        assert_eq!(
            call(&services, query(&binding).with_query("limit", "0"), now)
                .await
                .0,
            400
        );
        assert_eq!(
            call(&services, query(&binding).with_query("limit", "51"), now)
                .await
                .0,
            400
        );
    }

    #[tokio::test]
    async fn a_second_guardian_sees_the_same_tests_from_their_own_verification_on() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let t0 = Utc::now() - Duration::hours(10);
        let person = resident_id_aged(4, t0, 812);
        let mother = active_relative_with(&services, "user-mother", &person, t0).await;
        let before = fresh_tube();
        register_sample_at(
            &services,
            &keys,
            &mother,
            &before,
            None,
            t0 + Duration::hours(1),
        )
        .await
        .unwrap();
        let father =
            active_relative_with(&services, "user-father", &person, t0 + Duration::hours(2)).await;
        let after = fresh_tube();
        register_sample_at(
            &services,
            &keys,
            &father,
            &after,
            Some("pooled_10"),
            t0 + Duration::hours(3),
        )
        .await
        .unwrap();
        report_result_at(&services, &after, "negative", t0 + Duration::hours(4)).await;
        let now = t0 + Duration::hours(5);
        let (_, mothers) = call(&services, query(&mother), now).await;
        assert_eq!(tubes(&mothers), [after.clone(), before]);
        let (_, fathers) = call(&services, query(&father), now).await;
        assert_eq!(tubes(&fathers), [after]);
        assert_eq!(
            fathers["results"][0], mothers["results"][0],
            "the same test, read alike"
        );
        // A pending binding of the same person sees nothing yet.
        let pending = bind_relative(&services, "user-aunt", &person, now)
            .await
            .unwrap();
        let (status, _) = call(&services, query(&pending), now).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn pages_follow_a_sealed_cursor_and_a_tampered_one_is_refused() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let t0 = Utc::now() - Duration::hours(20);
        let binding = active_relative(&services, EVENT_GUARDIAN, t0).await;
        let other = active_relative(&services, EVENT_GUARDIAN, t0).await;
        let mut sampled = Vec::new();
        for hour in 1..=5 {
            let tube = fresh_tube();
            register_sample_at(
                &services,
                &keys,
                &binding,
                &tube,
                None,
                t0 + Duration::hours(hour),
            )
            .await
            .unwrap();
            sampled.push(tube);
        }
        register_sample_at(&services, &keys, &other, &fresh_tube(), None, t0)
            .await
            .unwrap();
        sampled.reverse();
        let now = t0 + Duration::hours(6);

        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut event = query(&binding).with_query("limit", "2");
            if let Some(c) = &cursor {
                event = event.with_query("cursor", c);
            }
            let (status, body) = call(&services, event, now).await;
            assert_eq!(status, 200, "{body}");
            pages += 1;
            seen.extend(tubes(&body));
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!((seen, pages), (sampled.clone(), 3));

        let (_, first) = call(&services, query(&binding).with_query("limit", "2"), now).await;
        let cursor = first["next_cursor"].as_str().unwrap().to_owned();
        assert!(
            !cursor.contains("H#") && !cursor.contains(&sampled[1]),
            "opaque: {cursor}"
        );
        let mut tampered = cursor.clone().into_bytes();
        let middle = tampered.len() / 2;
        tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in [tampered.as_str(), "v1.AAAA", "H#T#2026"] {
            let (status, body) =
                call(&services, query(&binding).with_query("cursor", bad), now).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (400, Some("invalid_cursor")),
                "{bad}"
            );
        }
        // A cursor is bound to its binding: another binding's page cannot start from it.
        let (status, _) = call(&services, query(&other).with_query("cursor", &cursor), now).await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn every_query_is_in_the_relatives_audit_trail_without_personal_data() {
        let (services, calls) = counted_services().await;
        let now = Utc::now();
        let person = resident_id_aged(5, now, 733);
        let binding = active_relative_with(&services, EVENT_GUARDIAN, &person, now).await;
        calls.take();
        let (status, _) = call(&services, query(&binding), now).await;
        assert_eq!(status, 200);
        assert_eq!(
            calls.take(),
            ["GetItem", "Query", "TransactWriteItems"],
            "one Query per page; the audit record and the access log together"
        );
        let trail = audit_trail(&services, &binding.relative_key, "results_viewed").await;
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0]["actor"].as_s().unwrap(), EVENT_GUARDIAN);
        assert_eq!(trail[0]["binding_id"].as_s().unwrap(), binding.id.as_str());
        assert_eq!(time_attribute(&trail[0], "at"), now);
        assert_no_plaintext(&all_items(&services).await, &person, "王小明");
        // No answer without its audit record.
        let down = unreachable_services().await;
        assert_eq!(call(&down, query(&binding), now).await.0, 503);
    }
}
