//! `POST /authority/risk-flags` (the health authority, scope `kincode/authority`): a batch of
//! risk flags, or clears. Each row is validated on its own and answered in order; the ID
//! number becomes the relative key on arrival and is never stored.

use chrono::{DateTime, Utc};
use kincode_common::error::AppError;
use kincode_common::http::{self, StaffCall, AUTHORITY_SCOPE};
use kincode_common::usecases::authority::{self, FlagBatch};
use kincode_common::usecases::batch;
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(apply(services, &req, now).await))
}

async fn apply(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = StaffCall::from_request(req, AUTHORITY_SCOPE)?;
    let batch: FlagBatch = http::batch_body(req)?;
    let outcomes =
        authority::apply_flags(&services.store, &call.actor, batch, call.at(now)).await?;
    Ok(http::json_response(
        StatusCode::OK,
        &batch::answer(&outcomes),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kincode_common::domain::colour::HealthColour;
    use kincode_common::usecases::authority::MAX_FLAG_ROWS;
    use kincode_common::usecases::codes::current_colour;
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

    #[tokio::test]
    async fn rows_are_judged_one_by_one_and_a_replay_changes_nothing() {
        let services = fresh_services().await;
        let now = Utc::now();
        let person = resident_id_aged(5, now, 401);
        let binding = active_relative_with(&services, EVENT_GUARDIAN, &person, now).await;
        let batch = json!({ "rows": [
            { "id_number": person, "flag": "secondary_contact", "effective_at": now - Duration::hours(1) },
            { "id_number": "610113201603142175", "flag": "confirmed", "effective_at": now },
            { "id_number": person, "flag": "sneezing", "effective_at": now },
            { "id_number": person, "flag": "fever_clinic", "effective_at": now, "until": now - Duration::hours(1) },
            "not an object",
        ]});
        let (status, body) = call(
            &services,
            event("risk-flags.json").with_body(batch.clone()),
            now,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            row_outcomes(&body),
            [
                "stored",
                "invalid_id_number",
                "invalid_flag",
                "invalid_window",
                "malformed_row"
            ]
        );
        assert_eq!(
            current_colour(&services.store, &binding.relative_key, now)
                .await
                .unwrap(),
            HealthColour::Yellow
        );
        let items_before = all_items(&services).await.len();
        let (_, body) = call(&services, event("risk-flags.json").with_body(batch), now).await;
        assert_eq!(row_outcomes(&body)[0], "unchanged");
        assert_eq!(
            all_items(&services).await.len(),
            items_before,
            "a replay writes nothing"
        );

        let clear = json!({ "rows": [{ "id_number": person, "flag": "secondary_contact", "clear": true }] });
        let (_, body) = call(
            &services,
            event("risk-flags.json").with_body(clear.clone()),
            now,
        )
        .await;
        assert_eq!(row_outcomes(&body), ["cleared"]);
        let (_, body) = call(&services, event("risk-flags.json").with_body(clear), now).await;
        assert_eq!(row_outcomes(&body), ["unchanged"]);
        assert_eq!(
            current_colour(&services.store, &binding.relative_key, now)
                .await
                .unwrap(),
            HealthColour::Green
        );
        let text = format!("{:?}", all_items(&services).await);
        assert!(!text.contains(&person), "the ID number is never stored");
    }

    #[tokio::test]
    async fn only_the_authority_may_send_flags_and_batches_are_bounded() {
        let services = fresh_services().await;
        let now = Utc::now();
        let body = json!({ "rows": [] });
        let checkpoint = event("risk-flags.json")
            .with_body(body.clone())
            .with_scope(Some("kincode/checkpoint"));
        assert_eq!(call(&services, checkpoint, now).await.0, 403);
        assert_eq!(
            call(
                &services,
                event("risk-flags.json").with_body(body).without_caller(),
                now
            )
            .await
            .0,
            401
        );
        // Rows as an authority sends them: one over the limit is refused for its count, not
        // its size.
        let until = now + chrono::Duration::days(14);
        let rows: Vec<Value> = (0..=MAX_FLAG_ROWS)
            .map(|i| {
                let id_number = resident_id_aged(70, now, i as u32 % 1000);
                json!({"id_number": id_number, "flag": "secondary_contact", "effective_at": now, "until": until})
            })
            .collect();
        let (status, body) = call(
            &services,
            event("risk-flags.json").with_body(json!({ "rows": rows })),
            now,
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("batch_too_large"))
        );
        let (status, _) = call(&services, event("risk-flags.json").with_raw_body("{"), now).await;
        assert_eq!(status, 400);
    }

    #[tokio::test]
    async fn an_unreachable_table_is_503() {
        let services = unreachable_services().await;
        let now = Utc::now();
        let batch = json!({ "rows": [{ "id_number": resident_id_aged(5, now, 402), "flag": "confirmed", "effective_at": now }] });
        assert_eq!(
            call(&services, event("risk-flags.json").with_body(batch), now)
                .await
                .0,
            503
        );
    }
}
