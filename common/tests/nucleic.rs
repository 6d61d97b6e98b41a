//! Nucleic-acid testing (`common/src/usecases/nucleic/`) against the local stack: registering
//! samples (`samples.rs`), lab results (`lab.rs`), the results query (`results.rs`). Tubes admit
//! exactly their capacity, and one site's, under concurrent registrations.

use std::sync::Arc;

use chrono::Utc;
use kincode_common::error::AppError;
use kincode_tests::*;

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
