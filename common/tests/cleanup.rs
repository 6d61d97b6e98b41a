//! The scheduled cleanup (`common/src/usecases/cleanup.rs`) against the local stack: what is
//! due goes (cards with their images, revocations, revoked anchors, quotas, never-verified
//! bindings with both counters released), nothing else does, a second run finds nothing, and a
//! bounded run resumes where it stopped.

use chrono::{DateTime, Duration, Utc};
use kincode_common::adapters::blobs::BlobStore;
use kincode_common::domain::binding::{Binding, GuardianId};
use kincode_common::store::{ActionContext, CleanupBudget, CleanupReport};
use kincode_common::usecases::cleanup;
use kincode_common::usecases::codes::{publish, show};
use kincode_common::wiring::services::Services;
use kincode_tests::*;

fn budget(max_items: usize) -> CleanupBudget {
    CleanupBudget {
        max_items,
        max_duration: std::time::Duration::from_secs(60),
    }
}

async fn run(
    services: &Services,
    blobs: &BlobStore,
    max_items: usize,
    at: DateTime<Utc>,
) -> CleanupReport {
    let ctx = ActionContext {
        request_id: "cleanup-test",
        at,
    };
    cleanup::run(&services.store, blobs, budget(max_items), ctx)
        .await
        .expect("cleanup runs")
}

async fn card(
    services: &Services,
    blobs: &BlobStore,
    guardian: &str,
    binding: &Binding,
    at: DateTime<Utc>,
) {
    let ctx = ActionContext {
        request_id: "card",
        at,
    };
    let guardian = GuardianId::parse(guardian).unwrap();
    show::issue_offline_card(
        &services.store,
        blobs,
        &test_key_ring(),
        &guardian,
        &binding.id,
        ctx,
    )
    .await
    .expect("offline card");
}

/// Counters must equal the items they count.
async fn assert_counters_match_items(services: &Services) {
    let items = all_items(services).await;
    let text = |i: &std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
                k: &str| {
        i.get(k)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    for counter in items.iter().filter(|i| text(i, "sk") == "COUNT") {
        let pk = text(counter, "pk");
        let (attribute, counted) = if pk.starts_with("G#") {
            let bindings = items
                .iter()
                .filter(|i| text(i, "pk") == pk && text(i, "sk").starts_with("B#"))
                .count();
            ("bound", bindings)
        } else {
            let key = pk.trim_start_matches("R#");
            let bindings = items
                .iter()
                .filter(|i| text(i, "sk").starts_with("B#") && text(i, "relative_key") == key)
                .count();
            ("guardians", bindings)
        };
        let value: usize = counter[attribute].as_n().unwrap().parse().unwrap();
        assert_eq!(value, counted, "{pk} {attribute}");
    }
}

#[tokio::test]
async fn due_items_go_once_and_nothing_else_does() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let t0 = Utc::now();
    let pending = bind_relative(&services, "user-a", &resident_id_aged(70, t0, 1), t0)
        .await
        .unwrap();
    let unbound = active_relative(&services, "user-a", t0).await;
    let kept = active_relative(&services, "user-b", t0).await;
    card(&services, &blobs, "user-a", &unbound, t0).await;
    card(&services, &blobs, "user-b", &kept, t0).await;
    unbind_relative(&services, "user-a", &unbound, t0 + Duration::hours(25)).await;
    let keys = test_key_ring();
    let published = publish::published_keys(&services.store, &keys, t0 + Duration::hours(26))
        .await
        .unwrap();
    assert_eq!(
        published.document["revoked"].as_array().unwrap().len(),
        1,
        "the unbound card is revoked"
    );

    // Nothing is due yet: the first run walks its days and removes nothing.
    let first = run(&services, &blobs, 1000, t0 + Duration::hours(26)).await;
    assert!(first.complete && first.days_walked >= 9, "{first:?}");
    assert_eq!(
        (
            first.pending_bindings_released,
            first.offline_cards_deleted,
            first.items_deleted
        ),
        (0, 0, 0)
    );

    // 73 h: the never-verified binding goes, with both counters.
    let report = run(&services, &blobs, 1000, t0 + Duration::hours(73)).await;
    assert_eq!(report.pending_bindings_released, 1, "{report:?}");
    assert_eq!(report.offline_cards_deleted, 0);
    assert_eq!(counter(&services, "G#user-a", "bound").await, 0);
    assert_eq!(
        counter(
            &services,
            &format!("R#{}", pending.relative_key),
            "guardians"
        )
        .await,
        0
    );
    assert_counters_match_items(&services).await;

    // 8 days: both cards (image and record), the revocation and the revoked anchor.
    let later = t0 + Duration::days(8) + Duration::hours(1);
    let report = run(&services, &blobs, 1000, later).await;
    assert_eq!(report.offline_cards_deleted, 2, "{report:?}");
    assert!(
        report.items_deleted >= 2,
        "revocation and revoked anchor: {report:?}"
    );
    assert!(bucket_objects(&services, &blobs).await.is_empty());
    let published = publish::published_keys(&services.store, &keys, later)
        .await
        .unwrap();
    assert_eq!(published.document["revoked"].as_array().unwrap().len(), 0);

    // A second run finds nothing; the active binding and its anchor are untouched.
    let again = run(&services, &blobs, 1000, later).await;
    assert_eq!(
        (
            again.pending_bindings_released,
            again.offline_cards_deleted,
            again.items_deleted,
            again.skipped
        ),
        (0, 0, 0, 0),
        "{again:?}"
    );
    assert!(services
        .store
        .anchor(&kept.id)
        .await
        .unwrap()
        .is_some_and(|a| a.revoked_at.is_none()));
    let kept_guardian = GuardianId::parse("user-b").unwrap();
    assert!(services
        .store
        .binding(&kept_guardian, &kept.id)
        .await
        .unwrap()
        .is_some());
    assert_counters_match_items(&services).await;
}

#[tokio::test]
async fn a_bounded_run_stops_and_the_next_resumes() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let t0 = Utc::now();
    for sequence in 0..3 {
        let guardian = format!("user-{sequence}");
        bind_relative(
            &services,
            &guardian,
            &resident_id_aged(70, t0, sequence),
            t0,
        )
        .await
        .unwrap();
    }
    let at = t0 + Duration::hours(73);
    let mut released = 0;
    let mut runs = 0;
    loop {
        let report = run(&services, &blobs, 1, at).await;
        released += report.pending_bindings_released;
        runs += 1;
        assert!(runs < 10, "resumes to completion");
        if report.complete {
            break;
        }
    }
    assert_eq!(released, 3);
    assert!(runs >= 3, "one item per run");
    assert_counters_match_items(&services).await;
}

#[tokio::test]
async fn a_binding_verified_before_its_deadline_is_never_touched() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let t0 = Utc::now();
    let binding = active_relative(&services, "user-v", t0 + Duration::hours(71)).await;
    let report = run(&services, &blobs, 1000, t0 + Duration::hours(80)).await;
    assert_eq!(report.pending_bindings_released, 0, "{report:?}");
    let guardian = GuardianId::parse("user-v").unwrap();
    assert!(services
        .store
        .binding(&guardian, &binding.id)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn tests_expire_after_retention_in_reads_at_once_and_from_the_table_by_the_cleanup() {
    use kincode_common::domain::colour::HealthColour;
    use kincode_common::usecases::codes::current_colour;
    use kincode_common::usecases::nucleic::lab::{RowError, RowOutcome};
    use kincode_common::usecases::nucleic::results;

    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let keys = test_key_ring();
    let t0 = Utc::now();
    let binding = active_relative(&services, "user-retention", t0).await;
    let tube = fresh_tube();
    register_sample_at(&services, &keys, &binding, &tube, None, t0)
        .await
        .unwrap();
    report_result_at(&services, &tube, "positive", t0 + Duration::hours(2)).await;
    let retention = services.store.result_retention();
    let page = |at: DateTime<Utc>| {
        let services = &services;
        let binding = &binding;
        async move {
            let ctx = ActionContext {
                request_id: "read",
                at,
            };
            results::results(
                &services.store,
                &binding.guardian,
                &binding.id,
                20,
                None,
                ctx,
            )
            .await
            .unwrap()
            .tests
            .len()
        }
    };
    let last_day = t0 + retention - Duration::minutes(1);
    assert_eq!(page(last_day).await, 1);
    assert_eq!(
        current_colour(&services.store, &binding.relative_key, last_day)
            .await
            .unwrap(),
        HealthColour::Red
    );

    // Past retention: no longer read, no longer colouring, no longer reportable or joinable.
    let past = t0 + retention + Duration::minutes(1);
    assert_eq!(page(past).await, 0);
    assert_eq!(
        current_colour(&services.store, &binding.relative_key, past)
            .await
            .unwrap(),
        HealthColour::Green
    );
    assert_eq!(
        report_result_at(&services, &tube, "positive", past).await,
        RowOutcome::Rejected(RowError::UnknownTube)
    );
    let testing_items =
        |items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>]| {
            items
                .iter()
                .filter(|i| {
                    let (pk, sk) = (i["pk"].as_s().unwrap(), i["sk"].as_s().unwrap());
                    pk.starts_with("T#") || sk.starts_with("H#T#")
                })
                .cloned()
                .collect::<Vec<_>>()
        };
    let stored = testing_items(&all_items(&services).await);
    assert_eq!(stored.len(), 3, "tube, member, test");

    // The backstop: each carries the table's TTL attribute a day past the documented
    // retention (the template's default), so DynamoDB drops what a stalled cleanup leaves.
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    let documented: i64 = template
        .parameter_default("ResultRetentionDays")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retention, Duration::days(documented));
    let ttl = raw_client(&services)
        .await
        .describe_time_to_live()
        .table_name(&services.config.table)
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .and_then(|d| d.attribute_name)
        .expect("the table has a TTL attribute");
    let backstop = (t0 + retention + Duration::days(1)).timestamp().to_string();
    for item in &stored {
        assert_eq!(item[&ttl].as_n().unwrap(), &backstop, "{item:?}");
        assert_eq!(
            item["due_at"].as_n().unwrap(),
            &(t0 + retention).timestamp().to_string(),
            "the cleanup's due time: {item:?}"
        );
    }

    // The cleanup removes them (audit records stay for their own retention).
    run(&services, &blobs, 1000, past + Duration::hours(2)).await;
    let items = all_items(&services).await;
    assert!(testing_items(&items).is_empty());
    let audit = items
        .iter()
        .filter(|i| {
            i.get("action")
                .is_some_and(|a| a.as_s().unwrap().starts_with("sample_registered"))
        })
        .count();
    assert_eq!(audit, 1);
    // The barcode is free again.
    register_sample_at(
        &services,
        &keys,
        &binding,
        &tube,
        None,
        past + Duration::hours(3),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_cleanup_finds_due_items_in_every_write_shard_and_in_the_unsharded_buckets() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    use kincode_common::domain::{expiry_bucket, EXPIRY_SHARDS};

    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let t0 = Utc::now();

    // What the store writes is sharded: a pending binding's bucket is its due day and a shard.
    let pending = bind_relative(&services, "user-s", &resident_id_aged(70, t0, 9), t0)
        .await
        .unwrap();
    let binding = all_items(&services)
        .await
        .into_iter()
        .find(|i| i["sk"] == S(format!("B#{}", pending.id.as_str())))
        .expect("the binding item");
    let bucket = binding["expiry_bucket"].as_s().unwrap();
    let due = (t0 + Duration::hours(72)).format("%Y-%m-%d#").to_string();
    assert!(
        bucket.starts_with(&due) && bucket[due.len()..].parse::<u32>().unwrap() < EXPIRY_SHARDS,
        "{bucket}"
    );

    // An item due in every shard of one day, and two in the unsharded hour form of before.
    let due_at = t0 + Duration::hours(30);
    let mut buckets: Vec<String> = (0..EXPIRY_SHARDS)
        .map(|shard| expiry_bucket(due_at, shard))
        .collect();
    buckets.push(due_at.format("%Y-%m-%dT%H").to_string());
    buckets.push(due_at.format("%Y-%m-%dT00").to_string());
    let client = raw_client(&services).await;
    for (n, bucket) in buckets.iter().enumerate() {
        client
            .put_item()
            .table_name(&services.config.table)
            .item("pk", S(format!("SHARDED#{n}")))
            .item("sk", S("ITEM".into()))
            .item("expiry_bucket", S(bucket.clone()))
            .item("due_at", N(due_at.timestamp().to_string()))
            .send()
            .await
            .expect("put a due item");
    }
    let sharded =
        |items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>]| {
            items
                .iter()
                .filter(|i| i["pk"].as_s().unwrap().starts_with("SHARDED#"))
                .count()
        };

    // Not due yet: all stay. Due: every one goes, in one run, and nothing else does.
    let early = run(&services, &blobs, 1000, due_at - Duration::minutes(1)).await;
    assert_eq!(early.items_deleted, 0, "{early:?}");
    assert_eq!(sharded(&all_items(&services).await), buckets.len());
    let report = run(&services, &blobs, 1000, due_at + Duration::minutes(1)).await;
    assert!(report.complete, "{report:?}");
    assert_eq!(report.items_deleted as usize, buckets.len(), "{report:?}");
    let left = all_items(&services).await;
    assert_eq!(sharded(&left), 0);
    assert!(
        left.iter()
            .any(|i| i["sk"] == S(format!("B#{}", pending.id.as_str()))),
        "the binding is not due until 72 h"
    );
}
