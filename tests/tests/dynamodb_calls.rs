//! How many DynamoDB calls each operation makes, on the real data path (local stack). Each
//! call is a round trip on a testing day's hot path: a change here should be deliberate.

use chrono::{Duration, Utc};
use kincode_common::adapters::face::LocalFaceSimulator;
use kincode_common::domain::binding::{GuardianId, IdempotencyKey};
use kincode_common::domain::code::ScanPurpose;
use kincode_common::store::ActionContext;
use kincode_common::usecases::authority;
use kincode_common::usecases::bindings::{self, CompleteRequest, VerificationStart};
use kincode_common::usecases::codes::{publish, scan, sheet, show};
use kincode_tests::*;
use serde_json::json;

#[tokio::test]
async fn each_operation_makes_the_documented_number_of_calls() {
    let (services, calls) = counted_services().await;
    let store = &services.store;
    let guardian = GuardianId::parse("user-calls").unwrap();
    let key = IdempotencyKey::parse("calls-key-0001").unwrap();
    let now = Utc::now();
    let ctx = ActionContext {
        request_id: "calls",
        at: now,
    };
    let id_number = resident_id_aged(66, now, 71);

    let binding = bindings::bind(
        store,
        &guardian,
        parent_bind_request(&id_number),
        Some(&key),
        ctx,
    )
    .await
    .unwrap();
    assert_eq!(calls.take(), ["TransactWriteItems"], "bind");
    bindings::bind(
        store,
        &guardian,
        parent_bind_request(&id_number),
        Some(&key),
        ctx,
    )
    .await
    .unwrap();
    assert_eq!(
        calls.take(),
        ["TransactWriteItems", "GetItem"],
        "retried bind"
    );

    bindings::list(store, &guardian, now).await.unwrap();
    assert_eq!(calls.take(), ["Query"], "list");

    let face = LocalFaceSimulator;
    let VerificationStart::Face { certify_id, .. } =
        bindings::start_verification(store, &face, &guardian, &binding.id, ctx)
            .await
            .unwrap()
    else {
        panic!("a 66-year-old verifies by face");
    };
    assert_eq!(
        calls.take(),
        ["GetItem", "TransactWriteItems", "GetItem", "UpdateItem"],
        "start face verification: the attempt reserved before the provider is called, the \
         name and ID number read for it, then its session recorded"
    );
    let complete = CompleteRequest {
        certify_id: Some(certify_id),
        evidence: json!({"simulated_outcome": "pass"}),
        pledge_version: None,
        accepted: None,
    };
    bindings::complete_verification(store, &face, &guardian, &binding.id, complete, ctx)
        .await
        .unwrap();
    assert_eq!(
        calls.take(),
        ["GetItem", "UpdateItem", "TransactWriteItems"],
        "complete verification (the provider's query counted before it is made)"
    );

    assert!(bindings::unbind(store, &guardian, &binding.id, ctx)
        .await
        .is_err());
    assert_eq!(calls.take(), ["GetItem"], "unbind too early");

    // Codes: render, offline card (issue and fetch), scan, the published keys, a flag row.
    let keys = test_key_ring();
    let blobs = fresh_bucket(&services).await;
    calls.take();
    let code = show::online_code(store, &keys, &guardian, &binding.id, ctx)
        .await
        .unwrap();
    assert_eq!(
        calls.take(),
        ["GetItem", "Query", "TransactWriteItems"],
        "render, the first time this hour: the access log"
    );
    show::online_code(store, &keys, &guardian, &binding.id, ctx)
        .await
        .unwrap();
    assert_eq!(
        calls.take(),
        ["GetItem", "Query"],
        "render again within the hour"
    );
    show::issue_offline_card(store, &blobs, &keys, &guardian, &binding.id, ctx)
        .await
        .unwrap();
    assert_eq!(
        calls.take(),
        ["GetItem", "Query", "PutItem", "TransactWriteItems"],
        "offline card"
    );
    show::latest_offline_card(store, &blobs, &guardian, &binding.id, ctx)
        .await
        .unwrap();
    assert_eq!(
        calls.take(),
        ["GetItem", "Query", "PutItem"],
        "fetch offline card"
    );
    let sheet_key = IdempotencyKey::parse("calls-sheet-0001").unwrap();
    for _ in 0..2 {
        sheet::issue_household_sheet(store, &blobs, &keys, &guardian, Some(&sheet_key), ctx)
            .await
            .unwrap();
    }
    assert_eq!(
        calls.take(),
        [
            // the caller's bindings, the sheet looked up (the key), one relative's card
            "Query",
            "GetItem",
            "Query",
            "PutItem",
            "TransactWriteItems",
            // the PDF's and the preview's marks, the sheet recorded
            "PutItem",
            "PutItem",
            "TransactWriteItems",
            // the retry: answered from the sheet's record
            "Query",
            "GetItem",
        ],
        "household sheet of one relative, then its retry"
    );
    scan::scan_at_checkpoint(
        store,
        &keys,
        &code.token,
        ScanPurpose::VenueEntry,
        Some(&test_site()),
        ctx,
    )
    .await
    .unwrap();
    assert_eq!(calls.take(), ["GetItem", "Query", "PutItem"], "scan");
    publish::published_keys(store, &keys, now).await.unwrap();
    assert_eq!(calls.take(), ["Query"], "published keys");
    let row =
        json!({"rows": [{"id_number": id_number, "flag": "fever_clinic", "effective_at": now}]});
    authority::apply_flags(
        store,
        "authority",
        serde_json::from_value(row).unwrap(),
        ctx,
    )
    .await
    .unwrap();
    assert_eq!(calls.take(), ["TransactWriteItems"], "one flag row");

    // Testing: a registration, a lab row (and its replay), a page of results.
    let tube = fresh_tube();
    calls.take();
    register_sample_at(&services, &keys, &binding, &tube, None, now)
        .await
        .unwrap();
    assert_eq!(
        calls.take(),
        [
            "GetItem",
            "Query",
            "GetItem",
            "Query",
            "GetItem",
            "TransactWriteItems"
        ],
        "render (the test's code), then registration: anchor, health signals, tube, write"
    );
    report_result_at(&services, &tube, "negative", now).await;
    assert_eq!(calls.take(), ["Query", "TransactWriteItems"], "a lab row");
    report_result_at(&services, &tube, "negative", now).await;
    assert_eq!(calls.take(), ["Query"], "a replayed lab row");
    kincode_common::usecases::nucleic::results::results(
        store,
        &guardian,
        &binding.id,
        20,
        None,
        ctx,
    )
    .await
    .unwrap();
    assert_eq!(
        calls.take(),
        ["GetItem", "Query", "TransactWriteItems"],
        "a page of results (the audit record and the access log, together)"
    );

    // Co-guardians and disputes: the list, a report, the reporter's reports, the queue, a
    // dismissal and an uphold.
    use kincode_common::usecases::disputes::{self, ReportRequest, ResolveRequest};
    let mut opened = Vec::new();
    for other in ["user-calls-a", "user-calls-b"] {
        active_relative_with(&services, other, &id_number, now).await;
        calls.take();
        disputes::co_guardians(store, &guardian, &binding.id)
            .await
            .unwrap();
        assert_eq!(calls.take(), ["GetItem", "Query"], "co-guardians");
        let request = ReportRequest {
            guardian: Some(store.keys().guardian_handle(&binding.relative_key, other)),
            reason: Some("not_family".into()),
            details: None,
        };
        opened.push(
            disputes::report(store, &guardian, &binding.id, request, ctx)
                .await
                .unwrap(),
        );
        assert_eq!(
            calls.take(),
            ["GetItem", "Query", "TransactWriteItems"],
            "a report"
        );
    }
    disputes::my_disputes(store, &guardian, 20, None)
        .await
        .unwrap();
    assert_eq!(calls.take(), ["Query"], "the reporter's reports");
    disputes::open_disputes(store, 20, None).await.unwrap();
    assert_eq!(calls.take(), ["Query"], "the authority's queue");
    for (dispute, decision, expected) in [
        (
            &opened[0],
            "dismiss",
            &["GetItem", "GetItem", "TransactWriteItems"][..],
        ),
        (
            &opened[1],
            "uphold",
            &[
                "GetItem",
                "GetItem",
                "GetItem",
                "Query",
                "TransactWriteItems",
            ][..],
        ),
    ] {
        let request = ResolveRequest {
            decision: Some(decision.into()),
        };
        disputes::resolve(store, "authority", &dispute.id, request, ctx)
            .await
            .unwrap();
        assert_eq!(calls.take(), expected, "{decision}");
    }

    let later = ActionContext {
        request_id: "calls-later",
        at: now + Duration::hours(24),
    };
    bindings::unbind(store, &guardian, &binding.id, later)
        .await
        .unwrap();
    assert_eq!(
        calls.take(),
        ["GetItem", "Query", "TransactWriteItems"],
        "unbind of an active binding (its offline cards are revoked with it)"
    );
    bindings::unbind(store, &guardian, &binding.id, later)
        .await
        .unwrap();
    assert_eq!(calls.take(), ["GetItem", "Query"], "repeated unbind");
}
