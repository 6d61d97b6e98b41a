//! Offline cards touch two stores (the image in S3, the record in DynamoDB) and race unbinds:
//! whatever the network loses and whoever comes second, no card escapes revocation, no record
//! points to a missing image, and no image is left that nothing points to. The card's own
//! tests (a lost answer, a refusal) are `common/tests/codes.rs`; these are its races with
//! unbinding and its recovery by the cleanup.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use kincode_common::domain::binding::{Binding, GuardianId};
use kincode_common::error::AppError;
use kincode_common::store::CleanupBudget;
use kincode_common::usecases::cleanup;
use kincode_common::wiring::services::Services;
use kincode_tests::offline_cards::*;
use kincode_tests::*;

async fn unbind(services: &Services, binding: &Binding, at: DateTime<Utc>) -> Result<(), AppError> {
    let guardian = GuardianId::parse(binding.guardian.as_str()).expect("guardian");
    kincode_common::usecases::bindings::unbind(&services.store, &guardian, &binding.id, ctx(at))
        .await
}

/// Every recorded card of a binding that is gone, whose serial is not on the published
/// revocation list while it is still valid: what an offline verifier would wrongly accept.
async fn unrevoked_cards_of_unbound_bindings(
    services: &Services,
    now: DateTime<Utc>,
) -> Vec<String> {
    let items = all_items(services).await;
    let bound: Vec<String> = items
        .iter()
        .filter(|i| text(i, "sk").starts_with("B#"))
        .map(|i| text(i, "binding_id"))
        .collect();
    let revoked: Vec<String> = services
        .store
        .revocations(now)
        .await
        .expect("revocations")
        .into_iter()
        .map(|(serial, _)| serial.to_hex())
        .collect();
    items
        .iter()
        .filter(|i| text(i, "pk").starts_with("K#") && text(i, "sk").starts_with("O#"))
        .filter(|card| !bound.contains(&text(card, "binding_id")))
        .map(|card| text(card, "serial"))
        .filter(|serial| !revoked.contains(serial))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_card_recorded_between_an_unbinds_reads_and_its_write_is_revoked_by_it() {
    let now = Utc::now();
    let Scene {
        services,
        blobs,
        binding,
    } = &scene("parent-race", now - Duration::hours(25)).await;
    issue(services, blobs, binding, now - Duration::hours(1))
        .await
        .expect("an earlier card");

    let (hold, mut held) = HoldFirstTransaction::new();
    let unbinder = intercepted_on_same_table(services, hold).await;
    let unbinding = {
        let binding = binding.clone();
        tokio::spawn(async move { unbind(&unbinder, &binding, now).await })
    };
    // The unbind has read the binding and its one card; a second card lands now.
    held.reached().await;
    let late = issue(services, blobs, binding, now)
        .await
        .expect("the binding is still active");
    held.release();
    unbinding
        .await
        .unwrap()
        .expect("the unbind reads again and succeeds");

    let revoked: Vec<String> = services
        .store
        .revocations(now)
        .await
        .unwrap()
        .into_iter()
        .map(|(serial, _)| serial.to_hex())
        .collect();
    assert!(revoked.contains(&late.card.serial), "{revoked:?}");
    assert_eq!(revoked.len(), 2, "both cards, each once");
    assert!(unrevoked_cards_of_unbound_bindings(services, now)
        .await
        .is_empty());
    // And no card commits after the unbind.
    let after = issue(services, blobs, binding, now).await;
    assert!(matches!(after, Err(AppError::BindingNotFound)), "{after:?}");
    assert_cards_and_images_agree(services, blobs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cards_racing_unbinds_leave_no_unrevoked_card() {
    const PAIRS: u32 = 16;
    let services = Arc::new(fresh_services().await);
    let blobs = Arc::new(fresh_bucket(&services).await);
    let now = Utc::now();
    // How long a card takes here, so the unbinds can be spread over its last stretch: the
    // window between an unbind's reads and its write must meet a card's transaction.
    let timed = active_relative(&services, "parent-timed", now).await;
    let started = std::time::Instant::now();
    issue(&services, &blobs, &timed, now).await.expect("card");
    let card_time = started.elapsed();
    let mut tasks = Vec::new();
    for pair in 0..PAIRS {
        let binding = active_relative(
            &services,
            &format!("parent-{pair}"),
            now - Duration::hours(25),
        )
        .await;
        let stagger = card_time * (4 + pair) / (4 + PAIRS);
        let (s, b, bd) = (services.clone(), blobs.clone(), binding.clone());
        tasks.push(tokio::spawn(async move {
            issue(&s, &b, &bd, now).await.map(|_| ())
        }));
        let (s, bd) = (services.clone(), binding);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(stagger).await;
            unbind(&s, &bd, now).await
        }));
    }
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) | Err(AppError::BindingNotFound) => {}
            Err(other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    let bound: Vec<String> = all_items(&services)
        .await
        .iter()
        .filter(|i| text(i, "sk").starts_with("B#"))
        .map(|i| text(i, "guardian"))
        .collect();
    assert_eq!(
        bound,
        vec!["parent-timed".to_owned()],
        "every raced binding is unbound"
    );
    assert_eq!(
        unrevoked_cards_of_unbound_bindings(&services, now).await,
        Vec::<String>::new()
    );
    assert_cards_and_images_agree(&services, &blobs).await;
}

#[tokio::test]
async fn a_card_that_never_landed_is_503_and_the_cleanup_removes_its_image() {
    let now = Utc::now();
    let scene = scene("parent-down", now).await;
    let Scene {
        services,
        blobs,
        binding,
    } = &scene;
    let down = failing_transactions(&scene, false).await;
    let failed = issue(&down, blobs, binding, now).await;
    assert!(
        matches!(failed, Err(AppError::DependencyUnavailable(_))),
        "{failed:?}"
    );
    let items = all_items(services).await;
    assert!(items.iter().all(|i| !text(i, "sk").starts_with("O#")));
    assert!(items.iter().all(|i| !text(i, "sk").starts_with("OQ#")));
    // The outcome was unknown to the function: the image stays until the mark falls due.
    assert_eq!(bucket_objects(services, blobs).await.len(), 1);
    assert_eq!(images_in_flight(&items), 1);

    let budget = CleanupBudget {
        max_items: 1000,
        max_duration: std::time::Duration::from_secs(60),
    };
    let early = cleanup::run(
        &services.store,
        blobs,
        budget,
        ctx(now + Duration::minutes(10)),
    )
    .await
    .unwrap();
    assert_eq!(early.orphan_images_deleted, 0, "not due within the hour");
    let report = cleanup::run(
        &services.store,
        blobs,
        budget,
        ctx(now + Duration::hours(2)),
    )
    .await
    .unwrap();
    assert_eq!(report.orphan_images_deleted, 1);
    assert!(bucket_objects(services, blobs).await.is_empty());
    assert_eq!(images_in_flight(&all_items(services).await), 0);

    // The guardian's retry makes the card, and the day's quota counts only that one.
    issue(services, blobs, binding, now + Duration::hours(2))
        .await
        .expect("retry");
    assert_cards_and_images_agree(services, blobs).await;
}
