//! The limits hold under concurrent requests, and the counters always equal the bindings.
//! Runs against the local stack (moto behind one request lock, so transactions are atomic
//! as in DynamoDB).

use std::sync::Arc;

use chrono::Utc;
use kincode_common::error::AppError;
use kincode_tests::*;

async fn binding_items(services: &kincode_common::services::Services) -> Vec<(String, String)> {
    all_items(services)
        .await
        .iter()
        .filter(|i| i["sk"].as_s().unwrap().starts_with("B#"))
        .map(|i| {
            (
                i["guardian"].as_s().unwrap().clone(),
                i["relative_key"].as_s().unwrap().clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_simultaneous_binds_by_one_guardian_let_exactly_eight_through() {
    let services = Arc::new(fresh_services().await);
    let now = Utc::now();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let services = services.clone();
            let id = resident_id_aged(if i % 2 == 0 { 8 } else { 72 }, now, i);
            tokio::spawn(async move { bind_relative(&services, "user-busy", &id, now).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(AppError::GuardianLimitReached) => {}
            Err(other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!(ok, 8);
    assert_eq!(counter(&services, "G#user-busy", "bound").await, 8);
    let bindings = binding_items(&services).await;
    assert_eq!(bindings.len(), 8);
    for (_, relative) in &bindings {
        assert_eq!(
            counter(&services, &format!("R#{relative}"), "guardians").await,
            1
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_guardians_binding_one_relative_at_once_let_exactly_three_through() {
    let services = Arc::new(fresh_services().await);
    let now = Utc::now();
    let id = resident_id_aged(4, now, 7);
    let tasks: Vec<_> = (0..6)
        .map(|g| {
            let (services, id) = (services.clone(), id.clone());
            tokio::spawn(
                async move { bind_relative(&services, &format!("parent-{g}"), &id, now).await },
            )
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(AppError::RelativeLimitReached) => {}
            Err(other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert_eq!(ok, 3);
    let bindings = binding_items(&services).await;
    assert_eq!(bindings.len(), 3);
    let relative = &bindings[0].1;
    assert!(
        bindings.iter().all(|(_, r)| r == relative),
        "one relative, one key"
    );
    assert_eq!(
        counter(&services, &format!("R#{relative}"), "guardians").await,
        3
    );
    for (guardian, _) in &bindings {
        assert_eq!(
            counter(&services, &format!("G#{guardian}"), "bound").await,
            1
        );
    }
}

#[tokio::test]
async fn a_refused_bind_leaves_nothing_half_written() {
    let services = fresh_services().await;
    let now = Utc::now();
    let id = resident_id_aged(65, now, 9);
    for g in 0..3 {
        bind_relative(&services, &format!("carer-{g}"), &id, now)
            .await
            .unwrap();
    }
    let before = all_items(&services).await.len();
    let refused = bind_relative(&services, "carer-late", &id, now).await;
    assert!(matches!(refused, Err(AppError::RelativeLimitReached)));
    assert_eq!(
        all_items(&services).await.len(),
        before,
        "no binding, guard, counter or audit item"
    );
    assert_eq!(counter(&services, "G#carer-late", "bound").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_retries_of_one_request_bind_once() {
    let services = Arc::new(fresh_services().await);
    let now = Utc::now();
    let id = resident_id_aged(9, now, 3);
    let guardian = kincode_common::domain::binding::GuardianId::parse("user-retry").unwrap();
    let key = kincode_common::domain::binding::IdempotencyKey::parse("retry-key-0001").unwrap();
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let (services, id, guardian, key) =
                (services.clone(), id.clone(), guardian.clone(), key.clone());
            tokio::spawn(async move {
                let request = kincode_common::bindings::BindRequest {
                    name: Some("张小红".into()),
                    id_number: Some(id),
                    relationship: Some("child".into()),
                    consent: Some(true),
                };
                let ctx = kincode_common::store::ActionContext {
                    request_id: "retry",
                    at: now,
                };
                kincode_common::bindings::bind(&services.store, &guardian, request, Some(&key), ctx)
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().expect("every retry succeeds").id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(counter(&services, "G#user-retry", "bound").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_simultaneous_registrations_into_one_ten_person_tube_let_exactly_ten_in() {
    use kincode_common::domain::testing::TubeId;
    let services = Arc::new(fresh_services().await);
    let keys = Arc::new(test_key_ring());
    let now = Utc::now();
    let mut people = Vec::new();
    for i in 0..30 {
        people.push(active_relative(&services, &format!("user-queue-{}", i / 8), now).await);
    }
    let tube = fresh_tube();
    let tasks: Vec<_> = people
        .into_iter()
        .map(|person| {
            let (services, keys, tube) = (services.clone(), keys.clone(), tube.clone());
            tokio::spawn(async move {
                register_sample_at(&services, &keys, &person, &tube, Some("pooled_10"), now).await
            })
        })
        .collect();
    let (mut admitted, mut positions) = (0, Vec::new());
    for task in tasks {
        match task.await.unwrap() {
            Ok(registered) => {
                admitted += 1;
                positions.push(registered.sample.position);
            }
            Err(AppError::TubeFull { capacity: 10 }) => {}
            Err(other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    positions.sort();
    assert_eq!(admitted, 10);
    assert_eq!(
        positions,
        (1..=10).collect::<Vec<u32>>(),
        "each place given once"
    );
    let record = services
        .store
        .tube(&TubeId::parse(&tube).unwrap(), now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.filled, 10);
    let members = all_items(&services)
        .await
        .iter()
        .filter(|i| i["pk"].as_s().unwrap() == &format!("T#{tube}"))
        .filter(|i| i["sk"].as_s().unwrap().starts_with("M#"))
        .count();
    let tests = all_items(&services)
        .await
        .iter()
        .filter(|i| {
            let sk = i["sk"].as_s().unwrap();
            sk.starts_with("H#T#") && sk.ends_with(&format!("#{tube}"))
        })
        .count();
    assert_eq!(
        (members, tests),
        (10, 10),
        "a test for each person in the tube, no more"
    );
}
