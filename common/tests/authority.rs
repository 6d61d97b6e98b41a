//! The health authority's risk flags (`common/src/usecases/authority.rs`) against the local
//! stack: each row judged on its own, a flag colouring the person within its window, replays
//! and clears of what is not set changing nothing, and a batch refused whole only for its
//! shape or size.

use chrono::{DateTime, Duration, Utc};
use kincode_common::domain::colour::HealthColour;
use kincode_common::error::AppError;
use kincode_common::store::{ActionContext, FlagWriteOutcome};
use kincode_common::usecases::authority::{apply_flags, RowError, RowOutcome, MAX_FLAG_ROWS};
use kincode_common::usecases::codes::current_colour;
use kincode_common::wiring::services::Services;
use kincode_tests::*;
use serde_json::{json, Value};

const STORED: RowOutcome = RowOutcome::Applied(FlagWriteOutcome::Stored);
const CLEARED: RowOutcome = RowOutcome::Applied(FlagWriteOutcome::Cleared);
const UNCHANGED: RowOutcome = RowOutcome::Applied(FlagWriteOutcome::Unchanged);

/// Sends `rows` as the authority at `at`, as a request of its own.
async fn apply(
    services: &Services,
    rows: Value,
    at: DateTime<Utc>,
) -> Result<Vec<RowOutcome>, AppError> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = ActionContext {
        request_id: &request_id,
        at,
    };
    let batch = serde_json::from_value(json!({ "rows": rows })).expect("a batch");
    apply_flags(&services.store, "authority-test", batch, ctx).await
}

async fn colour(services: &Services, relative_key: &str, at: DateTime<Utc>) -> HealthColour {
    current_colour(&services.store, relative_key, at)
        .await
        .expect("colour")
}

#[tokio::test]
async fn a_flag_colours_the_person_from_effective_at_until_until_and_is_audited() {
    let services = fresh_services().await;
    let now = Utc::now();
    let person = distinct_resident_id(70, now);
    let binding = bind_relative(&services, "user-flagged", &person, now)
        .await
        .unwrap();
    let (from, until) = (now + Duration::hours(1), now + Duration::hours(5));
    let rows =
        json!([{ "id_number": person, "flag": "confirmed", "effective_at": from, "until": until }]);
    assert_eq!(apply(&services, rows, now).await.unwrap(), [STORED]);

    let key = &binding.relative_key;
    assert_eq!(colour(&services, key, now).await, HealthColour::Green);
    assert_eq!(colour(&services, key, from).await, HealthColour::Red);
    assert_eq!(
        colour(&services, key, until - Duration::seconds(1)).await,
        HealthColour::Red
    );
    assert_eq!(colour(&services, key, until).await, HealthColour::Green);

    let trail = audit_trail(&services, key, "risk_flag_set").await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0]["actor"].as_s().unwrap(), "authority-test");
    assert_no_plaintext(&all_items(&services).await, &person, "李秀英");
}

#[tokio::test]
async fn each_refused_row_names_its_reason_and_writes_nothing() {
    let services = fresh_services().await;
    let now = Utc::now();
    let person = distinct_resident_id(70, now);
    let mut wrong_check = person.clone();
    let last = if wrong_check.ends_with('0') { "1" } else { "0" };
    wrong_check.replace_range(17.., last);
    let rows = json!([
        "not an object",
        { "id_number": 610113, "flag": "confirmed", "effective_at": now },
        { "id_number": wrong_check, "flag": "confirmed", "effective_at": now },
        { "flag": "confirmed", "effective_at": now },
        { "id_number": person, "flag": "sneezing", "effective_at": now },
        { "id_number": person, "flag": "sneezing", "clear": true },
        { "id_number": person, "flag": "confirmed" },
        { "id_number": person, "flag": "confirmed", "effective_at": now, "until": now },
        { "id_number": person, "flag": "confirmed", "effective_at": now, "until": now - Duration::hours(1) },
    ]);
    let outcomes = apply(&services, rows, now).await.unwrap();
    use RowError::*;
    let expected = [
        MalformedRow,
        MalformedRow,
        InvalidIdNumber,
        InvalidIdNumber,
        InvalidFlag,
        InvalidFlag,
        InvalidWindow,
        InvalidWindow,
        InvalidWindow,
    ]
    .map(RowOutcome::Rejected);
    assert_eq!(outcomes, expected);
    assert!(all_items(&services).await.is_empty(), "nothing written");
}

#[tokio::test]
async fn good_rows_are_stored_beside_bad_ones_and_replays_or_clears_of_nothing_change_nothing() {
    let services = fresh_services().await;
    let now = Utc::now();
    let person = distinct_resident_id(8, now);
    let binding = bind_relative(&services, "user-contact", &person, now)
        .await
        .unwrap();
    let set = json!({ "id_number": person, "flag": "close_contact", "effective_at": now });
    let batch = json!([set, { "id_number": person, "flag": "nope", "effective_at": now }]);
    assert_eq!(
        apply(&services, batch.clone(), now).await.unwrap(),
        [STORED, RowOutcome::Rejected(RowError::InvalidFlag)]
    );
    assert_eq!(
        colour(&services, &binding.relative_key, now).await,
        HealthColour::Red
    );
    let items = all_items(&services).await.len();
    assert_eq!(
        apply(&services, batch, now + Duration::minutes(5))
            .await
            .unwrap()[0],
        UNCHANGED,
        "the same row again"
    );
    assert_eq!(
        all_items(&services).await.len(),
        items,
        "a replay writes nothing"
    );

    // A new window for the same flag is a change.
    let until = now + Duration::days(14);
    let narrowed = json!([{ "id_number": person, "flag": "close_contact", "effective_at": now, "until": until }]);
    assert_eq!(apply(&services, narrowed, now).await.unwrap(), [STORED]);
    assert_eq!(
        colour(&services, &binding.relative_key, until).await,
        HealthColour::Green
    );

    let clear = json!([{ "id_number": person, "flag": "close_contact", "clear": true }]);
    assert_eq!(
        apply(&services, clear.clone(), now).await.unwrap(),
        [CLEARED]
    );
    assert_eq!(
        colour(&services, &binding.relative_key, now).await,
        HealthColour::Green
    );
    let items = all_items(&services).await.len();
    assert_eq!(apply(&services, clear, now).await.unwrap(), [UNCHANGED]);
    let never_set = json!([{ "id_number": person, "flag": "fever_clinic", "clear": true }]);
    assert_eq!(apply(&services, never_set, now).await.unwrap(), [UNCHANGED]);
    assert_eq!(
        all_items(&services).await.len(),
        items,
        "no audit of nothing"
    );
    let relative = &binding.relative_key;
    assert_eq!(
        audit_trail(&services, relative, "risk_flag_set")
            .await
            .len(),
        2
    );
    assert_eq!(
        audit_trail(&services, relative, "risk_flag_cleared")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn a_batch_without_rows_or_over_the_limit_is_refused_whole() {
    let services = fresh_services().await;
    let now = Utc::now();
    let ctx = ActionContext {
        request_id: "authority-test",
        at: now,
    };
    let no_rows = serde_json::from_value(json!({})).unwrap();
    let refused = apply_flags(&services.store, "authority-test", no_rows, ctx).await;
    assert!(
        matches!(refused, Err(AppError::MalformedRequest(_))),
        "{refused:?}"
    );

    let row = json!({ "id_number": distinct_resident_id(70, now), "flag": "confirmed", "effective_at": now });
    let over = Value::Array(vec![row.clone(); MAX_FLAG_ROWS + 1]);
    let refused = apply(&services, over, now).await;
    assert!(
        matches!(
            refused,
            Err(AppError::BatchTooLarge {
                max_rows: MAX_FLAG_ROWS
            })
        ),
        "{refused:?}"
    );
    assert!(
        all_items(&services).await.is_empty(),
        "not even the good rows"
    );

    // At the limit, every row is judged.
    let full = apply(
        &services,
        Value::Array(vec![json!("x"); MAX_FLAG_ROWS]),
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        full,
        vec![RowOutcome::Rejected(RowError::MalformedRow); MAX_FLAG_ROWS]
    );
}
