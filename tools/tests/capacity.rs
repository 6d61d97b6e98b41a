//! The read and write units each operation consumes, metered on the real data path (local
//! stack) by DynamoDB's published rules (`kincode_tools::capacity`), against the documented
//! figures in `docs/capacity-units.json` that the capacity model (`docs/capacity.md`) is
//! computed from. A change in what an operation consumes fails here until the figures (and
//! so the model) are regenerated:
//!
//! `KINCODE_WRITE_CAPACITY=1 scripts/with-local-stack.sh cargo test -p kincode-tools --test capacity`

use chrono::{Duration, Utc};
use kincode_common::adapters::face::LocalFaceSimulator;
use kincode_common::domain::binding::{GuardianId, IdempotencyKey};
use kincode_common::domain::code::ScanPurpose;
use kincode_common::store::{ActionContext, CleanupBudget};
use kincode_common::usecases::bindings::{self, CompleteRequest, VerificationStart};
use kincode_common::usecases::codes::{publish, scan, show};
use kincode_common::usecases::{authority, cleanup};
use kincode_tests::*;
use kincode_tools::capacity::{CapacityTable, Consumed, Metered};
use kincode_tools::capacity_model::{self, Inputs, Scenario};
use serde_json::json;

const FIGURES: &str = "docs/capacity-units.json";

fn cleanup_budget() -> CleanupBudget {
    CleanupBudget {
        max_items: 1000,
        max_duration: std::time::Duration::from_secs(60),
    }
}

#[tokio::test]
async fn each_operation_consumes_the_documented_capacity() {
    let metered = Metered::new().await;
    let mut measured = CapacityTable::new();
    let guardian = GuardianId::parse("user-capacity").unwrap();
    let key = IdempotencyKey::parse("capacity-key-0001").unwrap();
    let now = Utc::now();
    let ctx = ActionContext {
        request_id: "capacity",
        at: now,
    };
    let id_number = resident_id_aged(66, now, 71);
    let keys = test_key_ring();
    let blobs = fresh_bucket(&metered.services).await;

    metered.start().await;
    let binding = bindings::bind(
        &metered.services.store,
        &guardian,
        parent_bind_request(&id_number),
        Some(&key),
        ctx,
    )
    .await
    .unwrap();
    measured.insert("bind".into(), metered.finish().await);

    metered.start().await;
    bindings::list(&metered.services.store, &guardian, now)
        .await
        .unwrap();
    measured.insert("list".into(), metered.finish().await);

    let face = LocalFaceSimulator;
    metered.start().await;
    let VerificationStart::Face { certify_id, .. } =
        bindings::start_verification(&metered.services.store, &face, &guardian, &binding.id, ctx)
            .await
            .unwrap()
    else {
        panic!("a 66-year-old verifies by face");
    };
    measured.insert("verify: start".into(), metered.finish().await);
    let complete = CompleteRequest {
        certify_id: Some(certify_id),
        evidence: json!({"simulated_outcome": "pass"}),
        pledge_version: None,
        accepted: None,
    };
    metered.start().await;
    bindings::complete_verification(
        &metered.services.store,
        &face,
        &guardian,
        &binding.id,
        complete,
        ctx,
    )
    .await
    .unwrap();
    measured.insert("verify: complete".into(), metered.finish().await);

    metered.start().await;
    let code = show::online_code(&metered.services.store, &keys, &guardian, &binding.id, ctx)
        .await
        .unwrap();
    measured.insert(
        "render (the first show of the hour: the access log)".into(),
        metered.finish().await,
    );
    metered.start().await;
    show::online_code(&metered.services.store, &keys, &guardian, &binding.id, ctx)
        .await
        .unwrap();
    measured.insert(
        "render (again within the hour)".into(),
        metered.finish().await,
    );

    metered.start().await;
    scan::scan_at_checkpoint(
        &metered.services.store,
        &keys,
        &code.token,
        ScanPurpose::VenueEntry,
        Some(&test_site()),
        ctx,
    )
    .await
    .unwrap();
    measured.insert("scan".into(), metered.finish().await);

    metered.start().await;
    show::issue_offline_card(
        &metered.services.store,
        &blobs,
        &keys,
        &guardian,
        &binding.id,
        ctx,
    )
    .await
    .unwrap();
    measured.insert("offline card: issue".into(), metered.finish().await);
    metered.start().await;
    show::latest_offline_card(&metered.services.store, &blobs, &guardian, &binding.id, ctx)
        .await
        .unwrap();
    measured.insert("offline card: fetch".into(), metered.finish().await);

    metered.start().await;
    publish::published_keys(&metered.services.store, &keys, now)
        .await
        .unwrap();
    measured.insert("published keys".into(), metered.finish().await);

    // A pooled tube: the first registration opens it, the next ones add a place.
    let tube = fresh_tube();
    metered.start().await;
    register_sample_with_code(
        &metered.services,
        &keys,
        &code.token,
        &tube,
        Some("pooled_10"),
        now,
    )
    .await
    .unwrap();
    measured.insert(
        "registration (opens the tube)".into(),
        metered.finish().await,
    );
    let second = active_relative(&metered.services, "user-capacity-2", now).await;
    let second_code = show::online_code(
        &metered.services.store,
        &keys,
        &second.guardian,
        &second.id,
        request_at(now),
    )
    .await
    .unwrap();
    metered.start().await;
    register_sample_with_code(
        &metered.services,
        &keys,
        &second_code.token,
        &tube,
        None,
        now,
    )
    .await
    .unwrap();
    measured.insert(
        "registration (a tube already open)".into(),
        metered.finish().await,
    );

    // A single tube, for what a lab row costs per person in it.
    let single_tube = fresh_tube();
    register_sample_with_code(
        &metered.services,
        &keys,
        &code.token,
        &single_tube,
        None,
        now,
    )
    .await
    .unwrap();
    metered.start().await;
    report_result_at(&metered.services, &single_tube, "negative", now).await;
    measured.insert("lab row (a single tube)".into(), metered.finish().await);

    metered.start().await;
    report_result_at(&metered.services, &tube, "negative", now).await;
    measured.insert(
        "lab row (a pooled tube holding 2 people)".into(),
        metered.finish().await,
    );

    metered.start().await;
    kincode_common::usecases::nucleic::results::results(
        &metered.services.store,
        &guardian,
        &binding.id,
        20,
        None,
        ctx,
    )
    .await
    .unwrap();
    measured.insert("results page".into(), metered.finish().await);

    metered.start().await;
    kincode_common::usecases::access_log::access_log(
        &metered.services.store,
        &guardian,
        &binding.id,
        20,
        None,
        ctx,
    )
    .await
    .unwrap();
    measured.insert("access log page".into(), metered.finish().await);

    // Last of the reads and writes of an active relative: the flag turns the code yellow.
    let row =
        json!({"rows": [{"id_number": id_number, "flag": "fever_clinic", "effective_at": now}]});
    metered.start().await;
    authority::apply_flags(
        &metered.services.store,
        "authority",
        serde_json::from_value(row).unwrap(),
        ctx,
    )
    .await
    .unwrap();
    measured.insert("risk flag row".into(), metered.finish().await);

    let later = ActionContext {
        request_id: "capacity-later",
        at: now + Duration::hours(24),
    };
    metered.start().await;
    bindings::unbind(&metered.services.store, &guardian, &binding.id, later)
        .await
        .unwrap();
    measured.insert("unbind".into(), metered.finish().await);

    // The cleanup, on a table of its own: a walk of one day with nothing due, then a run
    // that releases one never-verified binding (and nothing else), less the days it walked.
    let metered = Metered::new().await;
    let blobs = fresh_bucket(&metered.services).await;
    let pending_guardian = GuardianId::parse("user-capacity-pending").unwrap();
    bindings::bind(
        &metered.services.store,
        &pending_guardian,
        parent_bind_request(&resident_id_aged(70, now, 3)),
        None,
        later,
    )
    .await
    .unwrap();
    let run = |at| {
        let ctx = ActionContext {
            request_id: "capacity-cleanup",
            at,
        };
        cleanup::run(&metered.services.store, &blobs, cleanup_budget(), ctx)
    };
    run(later.at).await.unwrap();
    metered.start().await;
    let walk = run(later.at).await.unwrap();
    assert_eq!(walk.days_walked, 1, "{walk:?}");
    let day = metered.finish().await;
    metered.start().await;
    let release = run(later.at + Duration::hours(73)).await.unwrap();
    assert_eq!(
        (release.pending_bindings_released, release.items_deleted),
        (1, 0),
        "{release:?}"
    );
    let mut item = metered.finish().await;
    item.index_read_units -= f64::from(release.days_walked) * day.index_read_units;
    measured.insert(
        "cleanup: walk of one day, nothing due (and the run's cursor)".into(),
        Consumed {
            calls: vec!["GetItem".into(), format!("Query x {}", day.calls.len() - 1)],
            ..day
        },
    );
    measured.insert(
        "cleanup: one pending binding released (with its run's cursor)".into(),
        Consumed {
            calls: item
                .calls
                .iter()
                .filter(|c| *c != "Query")
                .cloned()
                .collect(),
            ..item
        },
    );

    println!("{}", table(&measured));
    assert!(
        metered.narrowest_margin() >= 16,
        "an item size is {} bytes from a rounding edge: its units would change with a \
         timestamp's digits",
        metered.narrowest_margin()
    );
    let path = repo_root().join(FIGURES);
    let written = serde_json::to_string_pretty(&measured).unwrap() + "\n";
    if std::env::var_os("KINCODE_WRITE_CAPACITY").is_some() {
        std::fs::write(&path, written).unwrap();
        std::fs::write(model_document(), current_model_document()).unwrap();
        return;
    }
    let documented: CapacityTable =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        documented, measured,
        "what an operation consumes changed: regenerate {FIGURES} and docs/capacity.md \
         (KINCODE_WRITE_CAPACITY=1 ... --test capacity, then scripts/capacity) and review the model"
    );
}

fn table(measured: &CapacityTable) -> String {
    let mut out = format!(
        "{:<48} {:>8} {:>8} {:>8} {:>8}\n",
        "operation", "read", "write", "idx read", "idx write"
    );
    for (operation, c) in measured {
        out += &format!(
            "{operation:<48} {:>8} {:>8} {:>8} {:>8}\n",
            c.table_read_units, c.table_write_units, c.index_read_units, c.index_write_units
        );
    }
    out
}

fn model_document() -> std::path::PathBuf {
    repo_root().join("docs/capacity.md")
}

/// `docs/capacity.md` with its model part computed from the documented figures.
fn current_model_document() -> String {
    let inputs = Inputs::load(&repo_root()).expect("the model's inputs");
    let report = capacity_model::report(&inputs, &Scenario::worked());
    let document = std::fs::read_to_string(model_document()).unwrap();
    capacity_model::splice(&document, &report).expect("docs/capacity.md has its markers")
}

#[test]
fn the_capacity_model_in_the_docs_is_computed_from_the_documented_figures() {
    if std::env::var_os("KINCODE_WRITE_CAPACITY").is_some() {
        return; // the measuring test rewrites it, after the figures
    }
    let document = std::fs::read_to_string(model_document()).unwrap();
    assert!(
        current_model_document() == document,
        "docs/capacity.md is behind its inputs (units, bench figures, template, shards): \
         `scripts/capacity --write-docs`"
    );
}
