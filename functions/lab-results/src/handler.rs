//! `POST /lab/results` (labs, scope `kincode/lab`): a batch of tube results. Each row is judged
//! on its own and answered in order; a result reaches every person in the tube at once.

use chrono::{DateTime, Utc};
use kincode_common::error::AppError;
use kincode_common::http::{self, StaffCall, LAB_SCOPE};
use kincode_common::usecases::batch;
use kincode_common::usecases::nucleic::lab::{self, ResultBatch};
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(report(services, &req, now).await))
}

async fn report(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = StaffCall::from_request(req, LAB_SCOPE)?;
    let batch: ResultBatch = http::batch_body(req)?;
    let outcomes = lab::apply_results(&services.store, &call.actor, batch, call.at(now)).await?;
    Ok(http::json_response(
        StatusCode::OK,
        &batch::answer(&outcomes),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kincode_common::domain::code::ScanPurpose;
    use kincode_common::domain::colour::HealthColour;
    use kincode_common::usecases::codes::{current_colour, scan, show};
    use kincode_common::usecases::nucleic::lab::MAX_RESULT_ROWS;
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

    fn batch(rows: Value) -> Value {
        event("lab-results.json").with_body(json!({ "rows": rows }))
    }

    async fn statuses(
        services: &Services,
        binding: &kincode_common::domain::binding::Binding,
        now: DateTime<Utc>,
    ) -> Vec<String> {
        let page = services
            .store
            .tests_page(&binding.relative_key, binding.bound_at, None, 50, now)
            .await
            .unwrap();
        page.tests
            .iter()
            .map(|t| t.status.as_str().to_owned())
            .collect()
    }

    async fn colour(
        services: &Services,
        binding: &kincode_common::domain::binding::Binding,
        now: DateTime<Utc>,
    ) -> HealthColour {
        current_colour(&services.store, &binding.relative_key, now)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn good_rows_are_stored_beside_bad_ones_and_a_replay_changes_nothing() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let now = Utc::now();
        let a = active_relative(&services, EVENT_GUARDIAN, now).await;
        let b = active_relative(&services, EVENT_GUARDIAN, now).await;
        let (tube_a, tube_b) = (fresh_tube(), fresh_tube());
        register_sample_at(&services, &keys, &a, &tube_a, None, now)
            .await
            .unwrap();
        register_sample_at(&services, &keys, &b, &tube_b, None, now)
            .await
            .unwrap();
        let at = now + Duration::hours(6);
        let rows = json!([
            { "tube_id": tube_a, "result": "negative", "reported_at": at },
            { "tube_id": fresh_tube(), "result": "negative", "reported_at": at },
            { "tube_id": tube_b, "result": "maybe", "reported_at": at },
            { "tube_id": tube_b, "result": "negative", "reported_at": at + Duration::hours(1) },
            { "tube_id": tube_b, "result": "negative", "reported_at": now - Duration::hours(1) },
            { "tube_id": "T 1", "result": "negative", "reported_at": at },
            { "tube_id": tube_b, "result": "negative" },
            42,
        ]);
        let (status, body) = call(&services, batch(rows.clone()), at).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            row_outcomes(&body),
            [
                "stored",
                "unknown_tube",
                "invalid_result",
                "invalid_reported_at",
                "invalid_reported_at",
                "invalid_tube_id",
                "invalid_reported_at",
                "malformed_row"
            ]
        );
        assert_eq!(body["results"][0]["people"], 1);
        assert_eq!(
            body["results"][2]["error"]["message"],
            "检测结果只能是 negative、positive 或 invalid"
        );
        assert_eq!(statuses(&services, &a, at).await, ["negative"]);
        assert_eq!(statuses(&services, &b, at).await, ["pending"]);

        let items = all_items(&services).await.len();
        let (_, replayed) = call(&services, batch(rows), at + Duration::minutes(1)).await;
        assert_eq!(row_outcomes(&replayed)[0], "unchanged");
        assert_eq!(row_outcomes(&replayed)[1..], row_outcomes(&body)[1..]);
        assert_eq!(
            all_items(&services).await.len(),
            items,
            "a replay writes nothing"
        );

        let conflicting = json!([{ "tube_id": tube_a, "result": "positive", "reported_at": at }]);
        let (_, body) = call(&services, batch(conflicting), at).await;
        assert_eq!(row_outcomes(&body), ["conflicting_result"]);
        assert_eq!(statuses(&services, &a, at).await, ["negative"]);
    }

    #[tokio::test]
    async fn a_report_at_the_registrations_own_second_is_stored() {
        use chrono::Timelike;
        let services = fresh_services().await;
        let keys = test_key_ring();
        // The tube is opened 0.734 s into a second; the registration shows the whole second.
        let sampled = Utc::now().with_nanosecond(734_000_000).unwrap();
        let binding = active_relative(&services, EVENT_GUARDIAN, sampled).await;
        let tube = fresh_tube();
        let registered = register_sample_at(&services, &keys, &binding, &tube, None, sampled)
            .await
            .unwrap();
        let shown = kincode_common::error::rfc3339(registered.sample.sampled_at);
        assert!(!shown.contains('.'), "whole seconds: {shown}");
        // The lab reports exactly what it was shown (as the contract's link does).
        let rows = json!([{ "tube_id": tube, "result": "negative", "reported_at": shown }]);
        let (status, body) = call(&services, batch(rows), sampled).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(row_outcomes(&body), ["stored"]);
        // A second before it is still before the sample.
        let earlier = kincode_common::error::rfc3339(sampled - Duration::seconds(1));
        let other = fresh_tube();
        register_sample_at(&services, &keys, &binding, &other, None, sampled)
            .await
            .unwrap();
        let rows = json!([{ "tube_id": other, "result": "negative", "reported_at": earlier }]);
        let (_, body) = call(&services, batch(rows), sampled).await;
        assert_eq!(row_outcomes(&body), ["invalid_reported_at"]);
    }

    #[tokio::test]
    async fn a_reported_at_that_is_no_rfc_3339_time_is_invalid_reported_at() {
        let services = fresh_services().await;
        let now = Utc::now();
        let tube = fresh_tube();
        let rows = json!([
            { "tube_id": tube, "result": "negative", "reported_at": "yesterday" },
            { "tube_id": tube, "result": "negative", "reported_at": "2026-13-01T00:00:00Z" },
            { "tube_id": tube, "result": "negative", "reported_at": "2026-11-28T09:30:00" },
            { "tube_id": tube, "result": "negative", "reported_at": "" },
            { "tube_id": tube, "result": "negative", "reported_at": null },
            // A field of the wrong type is the row's shape, not a time.
            { "tube_id": tube, "result": "negative", "reported_at": 1_764_322_200 },
        ]);
        let (status, body) = call(&services, batch(rows), now).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            row_outcomes(&body),
            [
                "invalid_reported_at",
                "invalid_reported_at",
                "invalid_reported_at",
                "invalid_reported_at",
                "invalid_reported_at",
                "malformed_row"
            ]
        );
        assert_eq!(body["results"][0]["error"]["message"], "报告时间不正确");
    }

    #[tokio::test]
    async fn a_pooled_positive_is_yellow_until_single_re_tests_answer() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let t0 = Utc::now() - Duration::hours(12);
        let people = [
            active_relative(&services, EVENT_GUARDIAN, t0).await,
            active_relative(&services, EVENT_GUARDIAN, t0).await,
            active_relative(&services, EVENT_GUARDIAN, t0).await,
        ];
        let pooled = fresh_tube();
        for p in &people {
            register_sample_at(&services, &keys, p, &pooled, Some("pooled_10"), t0)
                .await
                .unwrap();
        }
        let t1 = t0 + Duration::hours(4);
        let (_, body) = call(
            &services,
            batch(json!([{ "tube_id": pooled, "result": "positive", "reported_at": t1 }])),
            t1,
        )
        .await;
        assert_eq!(row_outcomes(&body), ["stored"]);
        assert_eq!(body["results"][0]["people"], 3);
        for p in &people {
            assert_eq!(statuses(&services, p, t1).await, ["pooled_positive"]);
            assert_eq!(colour(&services, p, t1).await, HealthColour::Yellow);
        }

        // Each is re-tested alone: negative clears, positive is red, pending or invalid leaves
        // the pooled positive standing.
        let t2 = t1 + Duration::hours(1);
        let retests: Vec<String> = (0..3).map(|_| fresh_tube()).collect();
        for (p, tube) in people.iter().zip(&retests) {
            register_sample_at(&services, &keys, p, tube, Some("single"), t2)
                .await
                .unwrap();
        }
        let t3 = t2 + Duration::hours(4);
        let rows = json!([
            { "tube_id": retests[0], "result": "negative", "reported_at": t3 },
            { "tube_id": retests[1], "result": "positive", "reported_at": t3 },
            { "tube_id": retests[2], "result": "invalid", "reported_at": t3 },
        ]);
        let (_, body) = call(&services, batch(rows), t3).await;
        assert_eq!(row_outcomes(&body), ["stored", "stored", "stored"]);
        assert_eq!(
            statuses(&services, &people[0], t3).await,
            ["negative", "pooled_positive"]
        );
        assert_eq!(colour(&services, &people[0], t3).await, HealthColour::Green);
        assert_eq!(
            statuses(&services, &people[1], t3).await,
            ["positive", "pooled_positive"]
        );
        assert_eq!(colour(&services, &people[1], t3).await, HealthColour::Red);
        assert_eq!(
            colour(&services, &people[2], t3).await,
            HealthColour::Yellow
        );

        // The invalid re-test is run again: negative answers it (an invalid result is not final).
        let t4 = t3 + Duration::hours(1);
        let (_, body) = call(
            &services,
            batch(json!([{ "tube_id": retests[2], "result": "negative", "reported_at": t4 }])),
            t4,
        )
        .await;
        assert_eq!(row_outcomes(&body), ["stored"]);
        assert_eq!(colour(&services, &people[2], t4).await, HealthColour::Green);
    }

    #[tokio::test]
    async fn each_person_of_a_reported_tube_has_an_audit_record_without_personal_data() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let t0 = Utc::now() - Duration::hours(6);
        let mut people = Vec::new();
        for _ in 0..3 {
            let id = distinct_resident_id(5, t0);
            people.push((
                active_relative_with(&services, EVENT_GUARDIAN, &id, t0).await,
                id,
            ));
        }
        let (single, pooled) = (fresh_tube(), fresh_tube());
        register_sample_at(&services, &keys, &people[0].0, &single, None, t0)
            .await
            .unwrap();
        for (p, _) in &people[1..] {
            register_sample_at(&services, &keys, p, &pooled, Some("pooled_10"), t0)
                .await
                .unwrap();
        }
        // The lab's own time is not the record's: `at` is when the result was stored.
        let now = t0 + Duration::hours(4);
        let reported = now - Duration::minutes(30);
        let rows = json!([
            { "tube_id": single, "result": "negative", "reported_at": reported },
            { "tube_id": pooled, "result": "positive", "reported_at": reported },
        ]);
        let sent = batch(rows);
        let lab = sent["requestContext"]["authorizer"]["jwt"]["claims"]["sub"].clone();
        let request_id = sent["requestContext"]["requestId"].clone();
        let (_, body) = call(&services, sent, now).await;
        assert_eq!(row_outcomes(&body), ["stored", "stored"]);

        for ((person, id), tube, status) in [
            (&people[0], &single, "negative"),
            (&people[1], &pooled, "pooled_positive"),
            (&people[2], &pooled, "pooled_positive"),
        ] {
            let trail = audit_trail(&services, &person.relative_key, "result_reported").await;
            assert_eq!(trail.len(), 1, "one record per person");
            let record = &trail[0];
            assert_eq!(record["actor"].as_s().unwrap(), lab.as_str().unwrap());
            assert_eq!(record["target"].as_s().unwrap(), tube);
            assert_eq!(record["relative_key"].as_s().unwrap(), &person.relative_key);
            assert_eq!(time_attribute(record, "at"), now);
            assert_eq!(
                record["request_id"].as_s().unwrap(),
                request_id.as_str().unwrap()
            );
            assert_no_plaintext(&trail, id, "王小明");
            // What was reported is on the person's test, for the retention period.
            assert_eq!(statuses(&services, person, now).await, [status]);
        }
        // And on the tube, which result and who reported it.
        let items = all_items(&services).await;
        for (tube, result) in [(&single, "negative"), (&pooled, "positive")] {
            let item = items
                .iter()
                .find(|i| {
                    i["pk"].as_s().unwrap() == &format!("T#{tube}")
                        && i["sk"].as_s().unwrap() == "TUBE"
                })
                .expect("the tube");
            assert_eq!(item["result"].as_s().unwrap(), result);
            assert_eq!(item["reported_by"].as_s().unwrap(), lab.as_str().unwrap());
        }
    }

    #[tokio::test]
    async fn a_positive_turns_the_next_render_and_scan_red() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let now = Utc::now();
        let binding = active_relative(&services, EVENT_GUARDIAN, now).await;
        let tube = fresh_tube();
        register_sample_at(&services, &keys, &binding, &tube, None, now)
            .await
            .unwrap();
        let before = show::online_code(
            &services.store,
            &keys,
            &binding.guardian,
            &binding.id,
            request_at(now),
        )
        .await
        .unwrap();
        assert_eq!(before.claims.colour, HealthColour::Green);
        let (_, body) = call(
            &services,
            batch(json!([{ "tube_id": tube, "result": "positive", "reported_at": now }])),
            now,
        )
        .await;
        assert_eq!(row_outcomes(&body), ["stored"]);
        let after = show::online_code(
            &services.store,
            &keys,
            &binding.guardian,
            &binding.id,
            request_at(now),
        )
        .await
        .unwrap();
        assert_eq!(after.claims.colour, HealthColour::Red);
        let scanned = scan::scan(
            &services.store,
            &keys,
            &before.token,
            ScanPurpose::VenueEntry,
            now,
        )
        .await
        .unwrap();
        assert_eq!(
            (scanned.colour, scanned.claims.colour),
            (HealthColour::Red, HealthColour::Green)
        );
    }

    #[tokio::test]
    async fn only_labs_report_and_batches_are_bounded() {
        let services = fresh_services().await;
        let now = Utc::now();
        let rows = json!([{ "tube_id": fresh_tube(), "result": "negative", "reported_at": now }]);
        let (status, _) = call(
            &services,
            batch(rows.clone()).with_scope(Some("kincode/checkpoint")),
            now,
        )
        .await;
        assert_eq!(status, 403);
        let (status, _) = call(&services, batch(rows).without_caller(), now).await;
        assert_eq!(status, 401);
        // Rows as a lab sends them: one over the limit is refused for its count, not its size.
        let many: Vec<Value> = (0..=MAX_RESULT_ROWS)
            .map(|i| json!({"tube_id": format!("XA-20261128-{i:06}"), "result": "negative", "reported_at": now}))
            .collect();
        let (status, body) = call(&services, batch(json!(many)), now).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("batch_too_large"))
        );
        assert_eq!(body["error"]["max_rows"], MAX_RESULT_ROWS);
        let (status, body) = call(
            &services,
            event("lab-results.json").with_body(json!({})),
            now,
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("malformed_request"))
        );
        let services = unreachable_services().await;
        let rows = json!([{ "tube_id": fresh_tube(), "result": "negative", "reported_at": now }]);
        assert_eq!(call(&services, batch(rows), now).await.0, 503);
    }
}
