//! The limits hold under concurrent requests, and the counters always equal the bindings.
//! Runs against the local stack (moto behind one request lock, so transactions are atomic
//! as in DynamoDB).

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_simultaneous_registrations_into_one_ten_person_tube_let_exactly_ten_in() {
    use kincode_common::domain::nucleic::TubeId;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_sites_registering_into_one_tube_at_once_never_share_it() {
    use kincode_common::domain::nucleic::Site;
    let services = Arc::new(fresh_services().await);
    let keys = Arc::new(test_key_ring());
    let now = Utc::now();
    let sites = Arc::new([
        Site::parse("XA-YT-0412", None).unwrap(),
        Site::parse("XA-BL-0001", None).unwrap(),
    ]);
    let mut codes = Vec::new();
    for i in 0..16 {
        let person = active_relative(&services, &format!("user-sites-{}", i / 8), now).await;
        let code = kincode_common::usecases::codes::show::online_code(
            &services.store,
            &keys,
            &person.guardian,
            &person.id,
            now,
        )
        .await
        .unwrap();
        codes.push((i % 2, code.token));
    }
    let tube = fresh_tube();
    let tasks: Vec<_> = codes
        .into_iter()
        .map(|(site, code)| {
            let (services, keys, sites, tube) =
                (services.clone(), keys.clone(), sites.clone(), tube.clone());
            tokio::spawn(async move {
                let outcome = register_sample_at_site(
                    &services,
                    &keys,
                    &code,
                    &tube,
                    Some("pooled_20"),
                    &sites[site],
                    now,
                )
                .await;
                (site, outcome)
            })
        })
        .collect();
    let (mut admitted, mut refused) = (Vec::new(), 0);
    for task in tasks {
        match task.await.unwrap() {
            (site, Ok(_)) => admitted.push(site),
            (_, Err(AppError::TubeAtAnotherSite)) => refused += 1,
            (_, Err(other)) => panic!("unexpected outcome: {other:?}"),
        }
    }
    admitted.dedup();
    assert_eq!(admitted.len(), 1, "one site's people only: {admitted:?}");
    assert_eq!(refused, 8, "every registration of the other site refused");
    let opener = sites[admitted[0]].id();
    let items = all_items(&services).await;
    let tube_sites: Vec<_> = items
        .iter()
        .filter(|i| i.get("tube_id").is_some_and(|t| t.as_s().unwrap() == &tube))
        .map(|i| i["site_id"].as_s().unwrap().as_str())
        .collect();
    assert_eq!(tube_sites.len(), 9, "the tube and 8 tests");
    assert!(tube_sites.iter().all(|s| *s == opener), "{tube_sites:?}");
}

/// The tube's site is a condition of the write itself, not only of the read before it: a
/// registration judged on a read that let it in (a stale or forged one) still cannot land.
#[tokio::test]
async fn a_registration_from_another_site_is_refused_by_the_write_itself() {
    use kincode_common::domain::nucleic::{Admission, Site, TubeId, TubeKind};
    use kincode_common::store::{ActionContext, RegisterError, SampleRegistration};
    let services = fresh_services().await;
    let keys = test_key_ring();
    let now = Utc::now();
    let opener = active_relative(&services, "user-site-a", now).await;
    let tube = fresh_tube();
    register_sample_at(&services, &keys, &opener, &tube, Some("pooled_10"), now)
        .await
        .unwrap();
    let other = active_relative(&services, "user-site-b", now).await;
    let before = all_items(&services).await.len();
    let tube = TubeId::parse(&tube).unwrap();
    let elsewhere = Site::parse("XA-BL-0001", None).unwrap();
    let registration = SampleRegistration {
        tube: &tube,
        relative_key: &other.relative_key,
        binding: &other.id,
        site: &elsewhere,
        // As if the read had found the tube open to this site, with one person in it.
        admission: Admission {
            kind: TubeKind::Pooled10,
            position: 2,
        },
        actor: "site-b",
        idempotency_key: None,
    };
    let ctx = ActionContext {
        request_id: "site-b",
        at: now,
    };
    let outcome = services.store.register_sample(registration, ctx).await;
    assert!(
        matches!(outcome, Err(RegisterError::TubeChanged)),
        "{outcome:?}"
    );
    assert_eq!(all_items(&services).await.len(), before, "nothing written");
}
