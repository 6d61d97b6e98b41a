//! A lab's 500-row batch against the local stack, through the use case the function runs:
//! wall time per batch and per row, for single tubes and for 10-in-1 pooled tubes, and the
//! DynamoDB calls each row made. Prints figures; asserts nothing about time.
//!
//! `scripts/with-local-stack.sh cargo bench -p kincode-tests --bench lab_batch`
//!
//! The local stack serialises every request behind one lock and copies the table for each
//! item of a transaction, so these figures bound moto's cost more than DynamoDB's; the call
//! counts carry over to production unchanged.

use std::time::Instant;

use chrono::{Duration, Utc};
use kincode_common::domain::binding::Binding;
use kincode_common::services::Services;
use kincode_common::store::ActionContext;
use kincode_common::testing::lab::{self, RowOutcome, MAX_RESULT_ROWS};
use kincode_tests::*;
use serde_json::json;

/// `tubes` tubes of `kind`, each holding `people` (the same people in every tube: a person
/// may be in many tubes, and it keeps the setup short).
async fn filled_tubes(
    services: &CountedServices,
    people: &[Binding],
    kind: &str,
    tubes: usize,
) -> Vec<String> {
    let keys = test_key_ring();
    let at = Utc::now() - Duration::hours(2);
    let mut ids = Vec::with_capacity(tubes);
    for _ in 0..tubes {
        let tube = fresh_tube();
        for person in people {
            register_sample_at(&services.0, &keys, person, &tube, Some(kind), at)
                .await
                .expect("registered");
        }
        ids.push(tube);
    }
    ids
}

struct CountedServices(Services, CallCounter);

async fn report(services: &CountedServices, tubes: &[String], label: &str) {
    let now = Utc::now();
    let rows: Vec<_> = tubes
        .iter()
        .map(|t| json!({ "tube_id": t, "result": "negative", "reported_at": now }))
        .collect();
    for pass in ["first", "replay"] {
        let batch = serde_json::from_value(json!({ "rows": rows })).unwrap();
        let ctx = ActionContext {
            request_id: "bench",
            at: now,
        };
        services.1.take();
        let started = Instant::now();
        let outcomes = lab::apply_results(&services.0.store, "lab-bench", batch, ctx)
            .await
            .expect("batch applied");
        let elapsed = started.elapsed();
        let calls = services.1.take();
        let stored = outcomes
            .iter()
            .filter(|o| matches!(o, RowOutcome::Stored { .. }))
            .count();
        println!(
            "lab batch, {label}, {pass}: {} rows ({stored} stored) in {:.2} s = {:.1} ms/row; {} DynamoDB calls ({:.1}/row: {} Query, {} TransactWriteItems)",
            rows.len(),
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1000.0 / rows.len() as f64,
            calls.len(),
            calls.len() as f64 / rows.len() as f64,
            calls.iter().filter(|c| *c == "Query").count(),
            calls.iter().filter(|c| *c == "TransactWriteItems").count(),
        );
    }
}

#[tokio::main]
async fn main() {
    let now = Utc::now() - Duration::hours(3);
    let (single, calls) = counted_services().await;
    let single = CountedServices(single, calls);
    let person = [active_relative(&single.0, "user-bench", now).await];
    let tubes = filled_tubes(&single, &person, "single", MAX_RESULT_ROWS).await;
    report(&single, &tubes, "500 single tubes").await;

    let (pooled, calls) = counted_services().await;
    let pooled = CountedServices(pooled, calls);
    let mut people = Vec::new();
    for i in 0..10 {
        people.push(active_relative(&pooled.0, &format!("user-bench-{}", i / 8), now).await);
    }
    let tubes = filled_tubes(&pooled, &people, "pooled_10", MAX_RESULT_ROWS).await;
    report(&pooled, &tubes, "500 10-in-1 tubes (5,000 people)").await;
}
