//! A lab's 500-row batch against the local stack, through the use case the function runs:
//! wall time per batch and per row, for single tubes and for 10-in-1 pooled tubes, and the
//! DynamoDB calls each row made. Prints figures; asserts nothing about time.
//!
//! `scripts/with-local-stack.sh cargo bench -p kincode-tools --bench lab_batch`
//!
//! The local stack serialises every request behind one lock and copies the table for each
//! item of a transaction, so these figures bound moto's cost more than DynamoDB's; the call
//! counts carry over to production unchanged.

use std::time::Instant;

use chrono::{Duration, Utc};
use kincode_common::domain::nucleic::TubeKind;
use kincode_common::store::ActionContext;
use kincode_common::usecases::nucleic::lab::{self, RowOutcome, MAX_RESULT_ROWS};
use kincode_common::wiring::services::Services;
use kincode_tests::*;
use serde_json::json;

/// Tubes enough for a full batch, each filled with `kind`'s capacity of people. A person may
/// be in many tubes; each is in at most `TUBES_PER_PERSON`, as a real person has a few
/// weeks of tests, not hundreds.
const TUBES_PER_PERSON: usize = 50;

async fn filled_tubes(services: &CountedServices, kind: TubeKind) -> Vec<String> {
    let keys = test_key_ring();
    let at = Utc::now() - Duration::hours(2);
    let groups = MAX_RESULT_ROWS.div_ceil(TUBES_PER_PERSON);
    let mut people = Vec::new();
    for i in 0..groups * kind.capacity() as usize {
        people.push(active_relative(&services.0, &format!("user-bench-{}", i / 8), at).await);
    }
    let mut tubes = Vec::with_capacity(MAX_RESULT_ROWS);
    for i in 0..MAX_RESULT_ROWS {
        let tube = fresh_tube();
        let group = people
            .chunks(kind.capacity() as usize)
            .nth(i % groups)
            .unwrap();
        for person in group {
            register_sample_at(&services.0, &keys, person, &tube, Some(kind.as_str()), at)
                .await
                .expect("registered");
        }
        tubes.push(tube);
    }
    tubes
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
    for (kind, label) in [
        (TubeKind::Single, "500 single tubes"),
        (TubeKind::Pooled10, "500 10-in-1 tubes (5,000 results)"),
    ] {
        let (services, calls) = counted_services().await;
        let services = CountedServices(services, calls);
        let tubes = filled_tubes(&services, kind).await;
        report(&services, &tubes, label).await;
    }
}
