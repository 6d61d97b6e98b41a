//! `POST /checkpoints/samples` (testing-site staff, scope `kincode/checkpoint`, the site from
//! the token's claims): registers the person behind a kin code — online or offline, checked as
//! a scan — into a sample tube. Answers the masked name, the tube and its fill.

use chrono::{DateTime, Utc};
use kincode_common::answers::{Labelled, Rfc3339};
use kincode_common::codes::keys::VerificationKeys;
use kincode_common::domain::code::CodeKind;
use kincode_common::domain::nucleic::TubeKind;
use kincode_common::domain::relationship::Relationship;
use kincode_common::error::AppError;
use kincode_common::http::{self, StaffCall, CHECKPOINT_SCOPE};
use kincode_common::usecases::nucleic::samples::{self, Checkpoint, SampleRequest};
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

pub async fn handle(
    services: &Services,
    keys: &VerificationKeys,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(register(services, keys, &req, now).await))
}

async fn register(
    services: &Services,
    keys: &VerificationKeys,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = StaffCall::from_request(req, CHECKPOINT_SCOPE)?;
    let site = http::site(req)?;
    let key = http::idempotency_key(req)?;
    let request: SampleRequest = http::json_body(req)?;
    let checkpoint = Checkpoint {
        actor: &call.actor,
        site: &site,
    };
    let registered = samples::register(
        &services.store,
        keys,
        checkpoint,
        request,
        key.as_ref(),
        call.at(now),
    )
    .await?;
    let (sample, holder) = (&registered.sample, &registered.scanned.holder);
    let answer = SampleAnswer {
        tube_id: sample.tube.as_str(),
        tube_kind: Labelled(sample.kind),
        capacity: sample.kind.capacity(),
        filled: sample.position,
        name: &holder.masked_name,
        relationship: Labelled(holder.relationship),
        code_kind: registered.scanned.claims.kind,
        site_id: site.id(),
        sampled_at: Rfc3339(sample.sampled_at),
    };
    Ok(http::json_response(StatusCode::CREATED, &answer))
}

/// The person registered, the tube and how full it is now.
#[derive(Serialize)]
struct SampleAnswer<'a> {
    tube_id: &'a str,
    #[serde(flatten)]
    tube_kind: Labelled<TubeKind>,
    capacity: u32,
    /// This person's place in the tube (1 for the first).
    filled: u32,
    name: &'a str,
    #[serde(flatten)]
    relationship: Labelled<Relationship>,
    code_kind: CodeKind,
    site_id: &'a str,
    sampled_at: Rfc3339,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kincode_common::codes::keys::KeyRing;
    use kincode_common::domain::binding::Binding;
    use kincode_common::usecases::codes::show;
    use kincode_tests::*;
    use serde_json::json;
    use serde_json::Value;

    async fn call(
        services: &Services,
        keys: &KeyRing,
        event: Value,
        now: DateTime<Utc>,
    ) -> (u16, Value) {
        let route = event.route_key();
        let response = handle(services, keys, event.into_request(), now)
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        status_and_json(&response)
    }

    fn sample_event(code: &str, tube: &str, kind: Option<&str>) -> Value {
        let mut body = json!({ "code": code, "tube_id": tube });
        if let Some(kind) = kind {
            body["tube_kind"] = kind.into();
        }
        event("samples.json")
            .with_body(body)
            .with_header("idempotency-key", &fresh_idempotency_key())
    }

    async fn online(
        services: &Services,
        keys: &KeyRing,
        b: &Binding,
        now: DateTime<Utc>,
    ) -> String {
        show::online_code(&services.store, keys, &b.guardian, &b.id, request_at(now))
            .await
            .unwrap()
            .token
    }

    fn error_code(body: &Value) -> Option<&str> {
        body["error"]["code"].as_str()
    }

    #[tokio::test]
    async fn an_online_code_registers_into_a_new_tube_with_the_masked_name_and_is_audited() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let now = Utc::now();
        let person = distinct_resident_id(5, now);
        let binding = active_relative_with(&services, EVENT_GUARDIAN, &person, now).await;
        let token = online(&services, &keys, &binding, now).await;
        let tube = fresh_tube();
        let (status, body) = call(
            &services,
            &keys,
            sample_event(&token, &tube, Some("pooled_10")),
            now,
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["name"], "**明");
        assert_eq!(body["tube_id"], tube.as_str());
        assert_eq!(
            (
                body["tube_kind"].as_str(),
                body["capacity"].as_u64(),
                body["filled"].as_u64()
            ),
            (Some("pooled_10"), Some(10), Some(1))
        );
        assert_eq!(body["code_kind"], "kin_online");
        assert_eq!(body["site_id"], "XA-YT-0412");

        // Who (the checkpoint's `sub`), what (the scanned binding, the tube), when (the
        // clock), in the relative's trail, with the request id; no personal data.
        let sent = event("samples.json");
        let claims = &sent["requestContext"]["authorizer"]["jwt"]["claims"];
        let trail = audit_trail(&services, &binding.relative_key, "sample_registered").await;
        assert_eq!(trail.len(), 1);
        let record = &trail[0];
        assert_eq!(
            record["actor"].as_s().unwrap(),
            claims["sub"].as_str().unwrap()
        );
        assert_eq!(record["binding_id"].as_s().unwrap(), binding.id.as_str());
        assert_eq!(
            record["relative_key"].as_s().unwrap(),
            &binding.relative_key
        );
        assert_eq!(record["target"].as_s().unwrap(), &tube);
        assert_eq!(time_attribute(record, "at"), now);
        assert_eq!(
            record["request_id"].as_s().unwrap(),
            sent["requestContext"]["requestId"].as_str().unwrap()
        );
        assert_no_plaintext(&trail, &person, "王小明");
        // The site is kept with the test the registration wrote, by the same caller.
        let test = all_items(&services)
            .await
            .into_iter()
            .find(|i| {
                i.get("tube_id").is_some_and(|t| t.as_s().unwrap() == &tube)
                    && i["pk"] == record["pk"]
                    && i["sk"].as_s().unwrap().starts_with("H#T#")
            })
            .expect("the relative's test");
        assert_eq!(
            test["site_id"].as_s().unwrap(),
            claims["site_id"].as_str().unwrap()
        );
        assert_eq!(test["registered_by"], record["actor"]);
        assert_no_plaintext(&test, &person, "王小明");
    }

    #[tokio::test]
    async fn a_printed_offline_code_registers_too() {
        let services = fresh_services().await;
        let blobs = fresh_bucket(&services).await;
        let keys = test_key_ring();
        let now = Utc::now();
        let binding = active_relative(&services, EVENT_GUARDIAN, now).await;
        let request_id = fresh_idempotency_key();
        let ctx = kincode_common::store::ActionContext {
            request_id: &request_id,
            at: now,
        };
        show::issue_offline_card(
            &services.store,
            &blobs,
            &keys,
            &binding.guardian,
            &binding.id,
            ctx,
        )
        .await
        .unwrap();
        let card = &bucket_objects(&services, &blobs).await[0];
        let token = decode_qr_png(&card.body);
        // Three days later the printed card still registers.
        let later = now + Duration::days(3);
        let (status, body) = call(
            &services,
            &keys,
            sample_event(&token, &fresh_tube(), None),
            later,
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            (body["code_kind"].as_str(), body["tube_kind"].as_str()),
            (Some("kin_offline"), Some("single"))
        );
    }

    #[tokio::test]
    async fn a_pooled_tube_takes_ten_and_refuses_the_eleventh() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let now = Utc::now();
        let tube = fresh_tube();
        let mut people = Vec::new();
        for g in 0..2 {
            for _ in 0..6 {
                people.push(active_relative(&services, &format!("user-fill-{g}"), now).await);
            }
        }
        for (i, person) in people.iter().take(10).enumerate() {
            let token = online(&services, &keys, person, now).await;
            let kind = (i == 0).then_some("pooled_10");
            let (status, body) =
                call(&services, &keys, sample_event(&token, &tube, kind), now).await;
            assert_eq!(
                (status, body["filled"].as_u64()),
                (201, Some(i as u64 + 1)),
                "{body}"
            );
        }
        let token = online(&services, &keys, &people[10], now).await;
        let (status, body) = call(&services, &keys, sample_event(&token, &tube, None), now).await;
        assert_eq!(
            (status, error_code(&body)),
            (409, Some("tube_full")),
            "{body}"
        );
        assert_eq!(body["error"]["capacity"], 10);
        assert_eq!(body["error"]["message"], "该试管已满,请更换新试管");

        // The kind is the first registration's: 20-in-1 for this tube is refused.
        let fresh = fresh_tube();
        let token = online(&services, &keys, &people[10], now).await;
        assert_eq!(
            call(
                &services,
                &keys,
                sample_event(&token, &fresh, Some("pooled_10")),
                now
            )
            .await
            .0,
            201
        );
        let token = online(&services, &keys, &people[11], now).await;
        let (status, body) = call(
            &services,
            &keys,
            sample_event(&token, &fresh, Some("pooled_20")),
            now,
        )
        .await;
        assert_eq!(
            (status, error_code(&body)),
            (409, Some("tube_kind_mismatch"))
        );
        assert_eq!(body["error"]["tube_kind"], "pooled_10");
    }

    #[tokio::test]
    async fn the_same_person_twice_in_a_tube_is_refused_and_a_retry_answers_the_same() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let now = Utc::now();
        let binding = active_relative(&services, EVENT_GUARDIAN, now).await;
        let other = active_relative(&services, EVENT_GUARDIAN, now).await;
        let tube = fresh_tube();
        let token = online(&services, &keys, &binding, now).await;
        let first = sample_event(&token, &tube, Some("pooled_20"));
        let (status, answer) = call(&services, &keys, first.clone(), now).await;
        assert_eq!(status, 201, "{answer}");

        // The same request again (a lost answer, the app retries): the same answer, once stored.
        let items = all_items(&services).await.len();
        let retry = call(&services, &keys, first.clone(), now + Duration::seconds(5)).await;
        assert_eq!(retry, (201, answer.clone()));
        assert_eq!(
            all_items(&services).await.len(),
            items,
            "a retry writes nothing"
        );

        // The same person again, as a new request: refused.
        let again = sample_event(&token, &tube, None);
        let (status, body) = call(&services, &keys, again, now).await;
        assert_eq!((status, error_code(&body)), (409, Some("already_in_tube")));
        assert_eq!(
            body["error"]["message"],
            "该人员已登记在此试管中,请勿重复登记"
        );

        // The key reused for someone else: refused, not answered with the first person.
        let other_token = online(&services, &keys, &other, now).await;
        let mut reused = sample_event(&other_token, &tube, None);
        reused["headers"]["idempotency-key"] = first["headers"]["idempotency-key"].clone();
        let (status, body) = call(&services, &keys, reused, now).await;
        assert_eq!(
            (status, error_code(&body)),
            (422, Some("idempotency_key_reused"))
        );

        // A retry after the tube was filled or reported still answers as the first time.
        assert!(matches!(
            report_result_at(&services, &tube, "negative", now).await,
            kincode_common::usecases::nucleic::lab::RowOutcome::Stored { .. }
        ));
        let late_retry = call(&services, &keys, first, now + Duration::seconds(30)).await;
        assert_eq!(late_retry, (201, answer));
    }

    #[tokio::test]
    async fn a_tube_opened_at_one_site_refuses_every_other_site_and_nothing_is_written() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let now = Utc::now();
        let a = active_relative(&services, EVENT_GUARDIAN, now).await;
        let b = active_relative(&services, EVENT_GUARDIAN, now).await;
        let tube = fresh_tube();
        let token = online(&services, &keys, &a, now).await;
        let (status, body) = call(
            &services,
            &keys,
            sample_event(&token, &tube, Some("pooled_10")),
            now,
        )
        .await;
        assert_eq!(status, 201, "{body}");

        // Another site's staff scan someone else into the same barcode: refused, nothing
        // written (no place, no test, no audit record, the tube still holds one).
        let token = online(&services, &keys, &b, now).await;
        let items = all_items(&services).await.len();
        let elsewhere = sample_event(&token, &tube, None)
            .with_claim("site_id", Some("XA-BL-0001"))
            .with_claim("site_name", Some("碑林区南院门街道核酸采样点"));
        let (status, body) = call(&services, &keys, elsewhere, now).await;
        assert_eq!(
            (status, error_code(&body)),
            (409, Some("tube_at_another_site")),
            "{body}"
        );
        assert_eq!(
            body["error"]["message"],
            "该试管已在其他采样点使用,请更换新试管"
        );
        assert_eq!(all_items(&services).await.len(), items, "nothing written");
        let record = services
            .store
            .tube(
                &kincode_common::domain::nucleic::TubeId::parse(&tube).unwrap(),
                now,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.filled, 1);

        // The site that opened it goes on filling it.
        let (status, body) = call(&services, &keys, sample_event(&token, &tube, None), now).await;
        assert_eq!((status, body["filled"].as_u64()), (201, Some(2)), "{body}");
    }

    #[tokio::test]
    async fn reported_tubes_are_closed_and_yellow_or_red_codes_go_alone() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let now = Utc::now();
        let a = active_relative(&services, EVENT_GUARDIAN, now).await;
        let b = active_relative(&services, EVENT_GUARDIAN, now).await;
        let tube = fresh_tube();
        register_sample_at(&services, &keys, &a, &tube, Some("pooled_10"), now)
            .await
            .unwrap();
        report_result_at(&services, &tube, "negative", now).await;
        let token = online(&services, &keys, &b, now).await;
        let (status, body) = call(&services, &keys, sample_event(&token, &tube, None), now).await;
        assert_eq!((status, error_code(&body)), (409, Some("tube_closed")));

        // b's pooled tube is positive: b is yellow now, and is refused a pooled tube...
        let pooled = fresh_tube();
        register_sample_at(&services, &keys, &b, &pooled, Some("pooled_20"), now)
            .await
            .unwrap();
        report_result_at(&services, &pooled, "positive", now).await;
        let token = online(&services, &keys, &b, now).await;
        let (status, body) = call(
            &services,
            &keys,
            sample_event(&token, &fresh_tube(), Some("pooled_10")),
            now,
        )
        .await;
        assert_eq!(
            (status, error_code(&body)),
            (409, Some("pooling_not_allowed"))
        );
        assert_eq!(body["error"]["message"], "红码、黄码人员须单人单管采样");
        // ...but sampled alone.
        let (status, _) = call(
            &services,
            &keys,
            sample_event(&token, &fresh_tube(), Some("single")),
            now,
        )
        .await;
        assert_eq!(status, 201);
    }

    #[tokio::test]
    async fn bad_input_staff_without_a_site_and_revoked_codes_are_refused() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let bound_at = Utc::now() - Duration::hours(25);
        let binding = active_relative(&services, EVENT_GUARDIAN, bound_at).await;
        let now = Utc::now();
        let token = online(&services, &keys, &binding, now).await;
        for (event, status, code) in [
            (sample_event(&token, "T 1", None), 400, "invalid_tube_id"),
            (
                sample_event(&token, &fresh_tube(), Some("pooled_5")),
                400,
                "invalid_tube_kind",
            ),
            (
                sample_event("KC1:nonsense", &fresh_tube(), None),
                422,
                "code_bad_base45",
            ),
            (
                sample_event(&token, &fresh_tube(), None).with_raw_body("{"),
                400,
                "malformed_request",
            ),
            (
                sample_event(&token, &fresh_tube(), None).with_claim("site_id", None),
                403,
                "site_not_assigned",
            ),
            (
                sample_event(&token, &fresh_tube(), None).with_scope(None),
                403,
                "forbidden",
            ),
            (
                sample_event(&token, &fresh_tube(), None).with_header("idempotency-key", "x"),
                400,
                "malformed_request",
            ),
        ] {
            let (got, body) = call(&services, &keys, event, now).await;
            assert_eq!((got, error_code(&body)), (status, Some(code)), "{body}");
        }
        unbind_relative(&services, EVENT_GUARDIAN, &binding, now).await;
        let (status, body) = call(
            &services,
            &keys,
            sample_event(&token, &fresh_tube(), None),
            now,
        )
        .await;
        assert_eq!((status, error_code(&body)), (422, Some("code_revoked")));
        assert!(
            !all_items(&services)
                .await
                .iter()
                .any(|i| i["pk"].as_s().unwrap().starts_with("T#")),
            "no refused registration left a tube behind"
        );
    }

    #[tokio::test]
    async fn an_unreachable_table_is_503() {
        let keys = test_key_ring();
        let token = {
            let services = fresh_services().await;
            let now = Utc::now();
            let b = active_relative(&services, EVENT_GUARDIAN, now).await;
            online(&services, &keys, &b, now).await
        };
        let services = unreachable_services().await;
        let (status, body) = call(
            &services,
            &keys,
            sample_event(&token, &fresh_tube(), None),
            Utc::now(),
        )
        .await;
        assert_eq!(
            (status, error_code(&body)),
            (503, Some("service_unavailable"))
        );
    }
}
