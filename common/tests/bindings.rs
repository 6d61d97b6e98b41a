//! The binding use cases (`common/src/usecases/bindings.rs`) against the local stack: bind, list,
//! verify (the pledge, and face through the local simulator), unbind. The limits hold under
//! concurrent requests, and the counters always equal the bindings (moto behind one request
//! lock, so transactions are atomic as in DynamoDB). Face verification through the Alipay
//! adapter is `tests/tests/alipay.rs`.

use std::sync::Arc;

use chrono::Utc;
use kincode_common::error::AppError;
use kincode_tests::*;

async fn binding_items(
    services: &kincode_common::wiring::services::Services,
) -> Vec<(String, String)> {
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
                let request = kincode_common::usecases::bindings::BindRequest {
                    name: Some("张小红".into()),
                    id_number: Some(id),
                    relationship: Some("child".into()),
                    consent: Some(true),
                };
                let ctx = kincode_common::store::ActionContext {
                    request_id: "retry",
                    at: now,
                };
                kincode_common::usecases::bindings::bind(
                    &services.store,
                    &guardian,
                    request,
                    Some(&key),
                    ctx,
                )
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
