//! Erasure (`common/src/usecases/erasure.rs`) against the local stack: 30 days after the last
//! binding of a person ends, the scheduled cleanup erases them, and afterwards every item and
//! object is read to show that nothing about the person remains but what the README lists; a
//! person held again is kept; a bind meets an erasure under way cleanly.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use kincode_common::adapters::blobs::BlobStore;
use kincode_common::domain::binding::Binding;
use kincode_common::error::AppError;
use kincode_common::store::{CleanupBudget, CleanupReport, ErasureStart};
use kincode_common::usecases::codes::{scan, show};
use kincode_common::usecases::{authority, cleanup, export};
use kincode_common::wiring::services::Services;
use kincode_tests::*;
use serde_json::json;

/// The scheduled cleanup at `at`, run again until it has walked every due day (a bounded run
/// resumes where it stopped, as the hourly schedule does): how many people it erased.
async fn run_cleanup(services: &Services, blobs: &BlobStore, at: DateTime<Utc>) -> u32 {
    let budget = CleanupBudget {
        max_items: 100_000,
        max_duration: std::time::Duration::from_secs(120),
    };
    let mut erased = 0;
    for _ in 0..10 {
        let report: CleanupReport = cleanup::run(&services.store, blobs, budget, request_at(at))
            .await
            .expect("cleanup runs");
        erased += report.people_erased;
        if report.complete {
            return erased;
        }
    }
    panic!("the cleanup did not finish in 10 runs")
}

/// Every string an item holds, its keys included.
fn strings(item: &HashMap<String, AttributeValue>) -> Vec<String> {
    fn walk(value: &AttributeValue, out: &mut Vec<String>) {
        match value {
            AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.clone()),
            AttributeValue::Ss(set) => out.extend(set.iter().cloned()),
            AttributeValue::L(list) => list.iter().for_each(|v| walk(v, out)),
            AttributeValue::M(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (name, value) in item {
        out.push(name.clone());
        walk(value, &mut out);
    }
    out
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> &'a str {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or("")
}

/// A person's whole life in kincode: bound and verified, code shown, a card printed and
/// scanned, a sample and its result, results read, the data exported, a risk flag.
async fn a_life(
    services: &Services,
    blobs: &BlobStore,
    guardian: &str,
    id_number: &str,
    t0: DateTime<Utc>,
) -> Binding {
    let keys = test_key_ring();
    let binding = active_relative_with(services, guardian, id_number, t0).await;
    show::issue_offline_card(
        &services.store,
        blobs,
        &keys,
        &binding.guardian,
        &binding.id,
        request_at(t0),
    )
    .await
    .expect("card");
    let code = show::online_code(
        &services.store,
        &keys,
        &binding.guardian,
        &binding.id,
        request_at(t0),
    )
    .await
    .unwrap();
    scan::scan_at_checkpoint(
        &services.store,
        &keys,
        &code.token,
        kincode_common::domain::code::ScanPurpose::VenueEntry,
        Some(&test_site()),
        request_at(t0),
    )
    .await
    .unwrap();
    let tube = fresh_tube();
    register_sample_with_code(services, &keys, &code.token, &tube, Some("pooled_10"), t0)
        .await
        .unwrap();
    report_result_at(services, &tube, "negative", t0 + Duration::hours(1)).await;
    kincode_common::usecases::nucleic::results::results(
        &services.store,
        &binding.guardian,
        &binding.id,
        20,
        None,
        request_at(t0 + Duration::hours(2)),
    )
    .await
    .unwrap();
    export::export(
        &services.store,
        &binding.guardian,
        &binding.id,
        request_at(t0 + Duration::hours(2)),
    )
    .await
    .unwrap();
    let rows = json!({ "rows": [
        { "id_number": id_number, "flag": "close_contact", "effective_at": t0, "until": t0 + Duration::days(14) },
    ]});
    authority::apply_flags(
        &services.store,
        "cdc-1",
        serde_json::from_value(rows).unwrap(),
        request_at(t0),
    )
    .await
    .unwrap();
    binding
}

#[tokio::test]
async fn thirty_days_after_the_last_unbind_nothing_about_the_person_remains_but_what_the_readme_lists(
) {
    // Results kept 60 days here, so the erasure (not their retention) is what removes them.
    let mut config = local_config(
        &format!("kincode-test-{}", uuid::Uuid::new_v4().simple()),
        &local_endpoint(),
    );
    config.result_retention_days = 60;
    let services = services_with_table(config).await;
    let blobs = fresh_bucket(&services).await;
    let t0 = Utc::now() - Duration::days(40);
    let person = distinct_resident_id(70, t0);
    let binding = a_life(&services, &blobs, "user-erase", &person, t0).await;
    let key = binding.relative_key.clone();
    let unbound_at = t0 + Duration::hours(25);
    unbind_relative(&services, "user-erase", &binding, unbound_at).await;

    // The day before the window ends nothing of the person is erased; then it is.
    let mut erased = 0;
    for day in [8, 20, 29] {
        erased += run_cleanup(&services, &blobs, unbound_at + Duration::days(day)).await;
    }
    assert_eq!(erased, 0, "not before 30 days");
    let before: Vec<_> = all_items(&services)
        .await
        .iter()
        .filter(|i| strings(i).iter().any(|s| s.contains(&key)))
        .map(|i| text(i, "sk").split('#').next().unwrap_or("").to_owned())
        .collect();
    for kind in ["AL", "H", "A", "M", "COUNT", "ERASE"] {
        assert!(
            before.iter().any(|k| k == kind),
            "{kind} before: {before:?}"
        );
    }
    let erased = run_cleanup(&services, &blobs, unbound_at + Duration::days(31)).await;
    assert_eq!(erased, 1);

    let items = all_items(&services).await;
    let mut remaining_with_key = Vec::new();
    for item in &items {
        let all = strings(item);
        assert!(
            !all.iter()
                .any(|s| s.contains(&person) || s.contains("王小明") || s.contains("**明")),
            "the person in clear: {item:?}"
        );
        if all.iter().any(|s| s.contains(&key)) {
            remaining_with_key.push(format!("{} {}", text(item, "pk"), text(item, "sk")));
        }
    }
    // What the README says remains under the person's key: the health authority's flag,
    // until its own window ends.
    assert_eq!(
        remaining_with_key,
        [format!("R#{key} H#F#close_contact")],
        "only the authority's flag: {remaining_with_key:?}"
    );
    assert!(
        bucket_objects(&services, &blobs).await.is_empty(),
        "no card image"
    );
    // Who did what stays, without the person: the guardian's audit of the binding, the
    // person's audit records moved under the erasure's own id, and the erasure itself.
    let erasure: Vec<_> = items
        .iter()
        .filter(|i| text(i, "pk").starts_with("E#"))
        .map(|i| text(i, "action"))
        .collect();
    for action in [
        "sample_registered",
        "result_reported",
        "results_viewed",
        "risk_flag_set",
        "person_erased",
    ] {
        assert!(erasure.contains(&action), "{action} in {erasure:?}");
    }
    let guardian_audit: Vec<_> = items
        .iter()
        .filter(|i| text(i, "pk") == "G#user-erase" && text(i, "sk").starts_with("A#"))
        .map(|i| text(i, "action"))
        .collect();
    for action in ["bound", "verified", "unbound", "data_exported"] {
        assert!(
            guardian_audit.contains(&action),
            "{action} in {guardian_audit:?}"
        );
    }
    assert_eq!(counter(&services, "G#user-erase", "bound").await, 0);

    // Erased once: a later run finds nothing to do.
    let erased = run_cleanup(&services, &blobs, unbound_at + Duration::days(32)).await;
    assert_eq!(erased, 0);
}

#[tokio::test]
async fn a_person_held_again_within_the_window_is_kept_and_erased_after_the_last_binding() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let t0 = Utc::now() - Duration::days(100);
    let person = distinct_resident_id(70, t0);
    let first = active_relative_with(&services, "user-first", &person, t0).await;
    let key = first.relative_key.clone();
    unbind_relative(&services, "user-first", &first, t0 + Duration::hours(25)).await;
    let second_at = t0 + Duration::days(10);
    let second = active_relative_with(&services, "user-second", &person, second_at).await;

    let erased = run_cleanup(&services, &blobs, t0 + Duration::days(32)).await;
    assert_eq!(erased, 0, "held again");
    let held = all_items(&services).await;
    assert!(held
        .iter()
        .any(|i| text(i, "pk") == format!("R#{key}") && text(i, "sk").starts_with("AL#")));

    let last_unbind = second_at + Duration::hours(25);
    unbind_relative(&services, "user-second", &second, last_unbind).await;
    let erased = run_cleanup(&services, &blobs, last_unbind + Duration::days(31)).await;
    assert_eq!(erased, 1);
    // Both guardians' audit records lost the person, the first one's too.
    let items = all_items(&services).await;
    for item in &items {
        assert!(!strings(item).iter().any(|s| s.contains(&key)), "{item:?}");
    }
}

#[tokio::test]
async fn a_bind_during_an_erasure_is_refused_until_it_is_done_and_counts_right_after() {
    let services = fresh_services().await;
    let t0 = Utc::now() - Duration::days(40);
    let person = distinct_resident_id(70, t0);
    let first = active_relative_with(&services, "user-gone", &person, t0).await;
    let key = first.relative_key.clone();
    unbind_relative(&services, "user-gone", &first, t0 + Duration::hours(25)).await;
    let due = t0 + Duration::hours(25) + Duration::days(30);

    let ErasureStart::Erase { erasure_id, .. } =
        services.store.begin_erasure(&key, due).await.unwrap()
    else {
        panic!("nobody holds the person: the erasure begins");
    };
    let refused = bind_relative(&services, "user-new", &person, due).await;
    assert!(matches!(refused, Err(AppError::Conflict)), "{refused:?}");

    // The run that began it stops here; the next one resumes and finishes.
    let blobs = fresh_bucket(&services).await;
    let erased = run_cleanup(&services, &blobs, due + Duration::minutes(1)).await;
    assert_eq!(erased, 1);
    assert!(!all_items(&services)
        .await
        .iter()
        .any(|i| text(i, "pk") == format!("E#{erasure_id}") && text(i, "action").is_empty()));

    let rebound = bind_relative(&services, "user-new", &person, due + Duration::minutes(2))
        .await
        .expect("after the erasure the person can be bound again");
    assert_eq!(
        counter(&services, &format!("R#{key}"), "guardians").await,
        1
    );
    assert_eq!(rebound.relative_key, key);
}

#[tokio::test]
async fn a_results_query_that_read_its_binding_before_the_erasure_records_nothing_after_it() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let t0 = Utc::now() - Duration::days(40);
    let person = distinct_resident_id(70, t0);
    let binding = active_relative_with(&services, "user-slow", &person, t0).await;
    let key = binding.relative_key.clone();
    // The query read the binding; then the binding ended and the person was erased.
    unbind_relative(&services, "user-slow", &binding, t0 + Duration::hours(25)).await;
    let erased_at = t0 + Duration::hours(25) + Duration::days(31);
    let erased = run_cleanup(&services, &blobs, erased_at).await;
    assert_eq!(erased, 1);
    // Its record of the read arrives late: refused, and nothing of the person comes back.
    let late = services
        .store
        .record_results_viewed(&binding, request_at(erased_at))
        .await;
    assert!(matches!(late, Err(AppError::BindingNotFound)), "{late:?}");
    let late = services
        .store
        .record_export(&binding, request_at(erased_at))
        .await;
    assert!(matches!(late, Err(AppError::BindingNotFound)), "{late:?}");
    for item in all_items(&services).await {
        assert!(!strings(&item).iter().any(|s| s.contains(&key)), "{item:?}");
    }
}
