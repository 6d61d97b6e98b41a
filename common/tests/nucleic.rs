//! Nucleic-acid testing (`common/src/usecases/nucleic/`) against the local stack: registering
//! samples (`samples.rs`), lab results (`lab.rs`), the results query (`results.rs`). Tubes admit
//! exactly their capacity, and one site's, under concurrent registrations.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use kincode_common::codes::keys::KeyRing;
use kincode_common::domain::binding::{Binding, GuardianId, IdempotencyKey};
use kincode_common::domain::nucleic::{TestStatus, TubeKind};
use kincode_common::error::AppError;
use kincode_common::store::ActionContext;
use kincode_common::usecases::codes::show;
use kincode_common::usecases::nucleic::lab::{self, RowError, RowOutcome};
use kincode_common::usecases::nucleic::results;
use kincode_common::usecases::nucleic::samples::{self, Checkpoint, Registered, SampleRequest};
use kincode_common::usecases::paging;
use kincode_common::wiring::services::Services;
use kincode_tests::*;
use serde_json::{json, Value};

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
            request_at(now),
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
    assert_eq!(
        tube_sites.len(),
        17,
        "the tube, 8 tests and their 8 access-log entries"
    );
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

/// A place in `tube` for `binding`'s relative at `at`, or why not (the kit's registration,
/// optionally with an Idempotency-Key).
async fn register(
    services: &Services,
    keys: &KeyRing,
    binding: &Binding,
    tube: &str,
    kind: Option<&str>,
    key: Option<&IdempotencyKey>,
    at: DateTime<Utc>,
) -> Result<Registered, AppError> {
    let Some(key) = key else {
        return register_sample_at(services, keys, binding, tube, kind, at).await;
    };
    let code = show::online_code(
        &services.store,
        keys,
        &binding.guardian,
        &binding.id,
        request_at(at),
    )
    .await?;
    let site = test_site();
    let checkpoint = Checkpoint {
        actor: "site-test",
        site: &site,
    };
    let request = SampleRequest {
        code: Some(code.token),
        tube_id: Some(tube.into()),
        tube_kind: kind.map(str::to_owned),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = ActionContext {
        request_id: &request_id,
        at,
    };
    samples::register(&services.store, keys, checkpoint, request, Some(key), ctx).await
}

fn refused<T: std::fmt::Debug>(outcome: Result<T, AppError>) -> AppError {
    outcome.expect_err("refused")
}

#[tokio::test]
async fn a_registration_takes_the_next_place_in_its_tube_and_refuses_what_the_tube_does_not_take() {
    let services = fresh_services().await;
    let keys = test_key_ring();
    let now = Utc::now();
    let mut people = Vec::new();
    for _ in 0..3 {
        people.push(active_relative(&services, "user-sampled", now - Duration::hours(25)).await);
    }
    let (a, b, c) = (&people[0], &people[1], &people[2]);

    // A single tube by default: one person.
    let single = fresh_tube();
    let first = register(&services, &keys, a, &single, None, None, now)
        .await
        .unwrap();
    assert_eq!(
        (first.sample.kind, first.sample.position),
        (TubeKind::Single, 1)
    );
    assert_eq!(first.sample.sampled_at, now);
    assert_eq!(first.scanned.holder.binding, a.id);
    let full = refused(register(&services, &keys, b, &single, None, None, now).await);
    assert!(
        matches!(full, AppError::TubeFull { capacity: 1 }),
        "{full:?}"
    );

    // A pooled tube: its kind fixed by the first, taken by those naming none.
    let pooled = fresh_tube();
    register(&services, &keys, a, &pooled, Some("pooled_10"), None, now)
        .await
        .unwrap();
    let mismatch =
        refused(register(&services, &keys, b, &pooled, Some("pooled_20"), None, now).await);
    assert!(
        matches!(
            mismatch,
            AppError::TubeKindMismatch {
                tube_kind: TubeKind::Pooled10
            }
        ),
        "{mismatch:?}"
    );
    let second = register(&services, &keys, b, &pooled, None, None, now)
        .await
        .unwrap();
    assert_eq!(
        (second.sample.kind, second.sample.position),
        (TubeKind::Pooled10, 2)
    );
    let twice = refused(register(&services, &keys, a, &pooled, None, None, now).await);
    assert!(matches!(twice, AppError::AlreadyInTube), "{twice:?}");

    // A retry with the same key answers the first answer, even once the tube is full.
    let key = IdempotencyKey::parse("sample-key-0001").unwrap();
    let keyed = fresh_tube();
    let made = register(&services, &keys, c, &keyed, None, Some(&key), now)
        .await
        .unwrap();
    let again = register(&services, &keys, c, &keyed, None, Some(&key), now)
        .await
        .unwrap();
    assert_eq!(again.sample, made.sample);

    for (tube, kind) in [("", None), ("!bad!", None), ("T-1", None)] {
        let bad = refused(register(&services, &keys, c, tube, kind, None, now).await);
        assert!(matches!(bad, AppError::InvalidTubeId), "{tube}: {bad:?}");
    }
    let bad = refused(
        register(
            &services,
            &keys,
            c,
            &fresh_tube(),
            Some("pooled_7"),
            None,
            now,
        )
        .await,
    );
    assert!(matches!(bad, AppError::InvalidTubeKind), "{bad:?}");

    // A reported tube is closed; a red code goes alone; a revoked code registers nowhere.
    report_result_at(&services, &pooled, "positive", now + Duration::minutes(1)).await;
    let later = now + Duration::minutes(2);
    let closed = refused(register(&services, &keys, c, &pooled, None, None, later).await);
    assert!(matches!(closed, AppError::TubeClosed), "{closed:?}");
    let yellow = refused(
        register(
            &services,
            &keys,
            a,
            &fresh_tube(),
            Some("pooled_20"),
            None,
            later,
        )
        .await,
    );
    assert!(matches!(yellow, AppError::PoolingNotAllowed), "{yellow:?}");
    register(&services, &keys, a, &fresh_tube(), None, None, later)
        .await
        .expect("alone");
    let code = show::online_code(
        &services.store,
        &keys,
        &c.guardian,
        &c.id,
        request_at(later),
    )
    .await
    .unwrap()
    .token;
    unbind_relative(&services, c.guardian.as_str(), c, later).await;
    let revoked = refused(
        register_sample_with_code(&services, &keys, &code, &fresh_tube(), None, later).await,
    );
    assert!(matches!(revoked, AppError::CodeRevoked), "{revoked:?}");
    let garbage = refused(
        register_sample_with_code(&services, &keys, "KC1:garbage", &fresh_tube(), None, later)
            .await,
    );
    assert!(matches!(garbage, AppError::InvalidCode(_)), "{garbage:?}");
}

/// A lab batch at `at`, as the lab `lab-test`.
async fn report(
    services: &Services,
    rows: Value,
    at: DateTime<Utc>,
) -> Result<Vec<RowOutcome>, AppError> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = ActionContext {
        request_id: &request_id,
        at,
    };
    let batch = serde_json::from_value(json!({ "rows": rows })).expect("a batch");
    lab::apply_results(&services.store, "lab-test", batch, ctx).await
}

/// The relative's tests as their guardian reads them at `at`: (tube, status), newest first.
async fn tests_of(
    services: &Services,
    binding: &Binding,
    at: DateTime<Utc>,
) -> Vec<(String, TestStatus)> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = ActionContext {
        request_id: &request_id,
        at,
    };
    results::results(
        &services.store,
        &binding.guardian,
        &binding.id,
        paging::MAX_PAGE_SIZE,
        None,
        ctx,
    )
    .await
    .expect("results")
    .tests
    .into_iter()
    .map(|t| (t.tube_id, t.status))
    .collect()
}

#[tokio::test]
async fn lab_rows_are_judged_one_by_one_and_a_result_reaches_everyone_in_the_tube() {
    let services = fresh_services().await;
    let keys = test_key_ring();
    let t0 = Utc::now() - Duration::hours(2);
    let (a, b) = (
        active_relative(&services, "user-lab", t0).await,
        active_relative(&services, "user-lab", t0).await,
    );
    let (pooled, single) = (fresh_tube(), fresh_tube());
    for person in [&a, &b] {
        register_sample_at(&services, &keys, person, &pooled, Some("pooled_10"), t0)
            .await
            .unwrap();
    }
    register_sample_at(&services, &keys, &a, &single, None, t0)
        .await
        .unwrap();

    let now = t0 + Duration::hours(1);
    let negative = json!({ "tube_id": pooled, "result": "negative", "reported_at": now });
    let row = |result: &str, reported_at: Value| json!({ "tube_id": single, "result": result, "reported_at": reported_at });
    let rows = json!([
        negative,
        "not an object",
        { "tube_id": "!", "result": "negative", "reported_at": now },
        row("maybe", json!(now)),
        row("negative", json!("yesterday")),
        row("negative", json!(now + Duration::minutes(6))),
        row("negative", json!(t0 - Duration::seconds(1))),
        { "tube_id": fresh_tube(), "result": "negative", "reported_at": now },
    ]);
    use RowError::*;
    let mut expected = vec![RowOutcome::Stored {
        kind: TubeKind::Pooled10,
        people: 2,
    }];
    expected.extend(
        [
            MalformedRow,
            InvalidTubeId,
            InvalidResult,
            InvalidReportedAt,
            InvalidReportedAt,
            InvalidReportedAt,
            UnknownTube,
        ]
        .map(RowOutcome::Rejected),
    );
    assert_eq!(report(&services, rows, now).await.unwrap(), expected);
    for person in [&a, &b] {
        let tests = tests_of(&services, person, now).await;
        assert!(
            tests.contains(&(pooled.clone(), TestStatus::Negative)),
            "{tests:?}"
        );
    }
    let at = |minutes| now + Duration::minutes(minutes);
    assert_eq!(
        report(&services, json!([negative]), at(1)).await.unwrap(),
        [RowOutcome::Unchanged],
        "a replay"
    );
    let positive = json!({ "tube_id": pooled, "result": "positive", "reported_at": at(1) });
    assert_eq!(
        report(&services, json!([positive]), at(1)).await.unwrap(),
        [RowOutcome::Rejected(ConflictingResult)]
    );
    // An invalid run (reported within the clock skew) is no answer: a re-run's result replaces it.
    let stored = RowOutcome::Stored {
        kind: TubeKind::Single,
        people: 1,
    };
    let outcomes = report(&services, json!([row("invalid", json!(at(6)))]), at(2)).await;
    assert_eq!(outcomes.unwrap(), [stored]);
    assert!(tests_of(&services, &a, at(6))
        .await
        .contains(&(single.clone(), TestStatus::Invalid)));
    let outcomes = report(&services, json!([row("negative", json!(at(7)))]), at(7)).await;
    assert_eq!(outcomes.unwrap(), [stored]);
    let outcomes = report(&services, json!([row("positive", json!(at(8)))]), at(8)).await;
    assert_eq!(outcomes.unwrap(), [RowOutcome::Rejected(ConflictingResult)]);
    assert!(tests_of(&services, &a, at(8))
        .await
        .contains(&(single.clone(), TestStatus::Negative)));

    // A batch is refused whole only for its shape or size.
    let request_id = "lab-batch";
    let ctx = ActionContext {
        request_id,
        at: now,
    };
    let no_rows = serde_json::from_value(json!({})).unwrap();
    let refused = lab::apply_results(&services.store, "lab-test", no_rows, ctx).await;
    assert!(
        matches!(refused, Err(AppError::MalformedRequest(_))),
        "{refused:?}"
    );
    let over = Value::Array(vec![json!("x"); lab::MAX_RESULT_ROWS + 1]);
    let refused = report(&services, over, now).await;
    assert!(
        matches!(
            refused,
            Err(AppError::BatchTooLarge {
                max_rows: lab::MAX_RESULT_ROWS
            })
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn results_are_read_newest_first_a_page_at_a_time_and_every_read_is_audited() {
    let services = fresh_services().await;
    let keys = test_key_ring();
    let t0 = Utc::now() - Duration::hours(5);
    let binding = active_relative(&services, "user-reader", t0).await;
    let other = active_relative(&services, "user-reader", t0).await;
    let mut tubes = Vec::new();
    for hour in 1..=3 {
        let tube = fresh_tube();
        register_sample_at(
            &services,
            &keys,
            &binding,
            &tube,
            None,
            t0 + Duration::hours(hour),
        )
        .await
        .unwrap();
        tubes.push(tube);
    }
    report_result_at(&services, &tubes[0], "negative", t0 + Duration::hours(4)).await;
    let now = t0 + Duration::hours(5);
    let read = |binding: &Binding, guardian: &str, cursor: Option<&str>| {
        let services = &services;
        let (id, guardian, cursor) = (
            binding.id.clone(),
            GuardianId::parse(guardian).unwrap(),
            cursor.map(str::to_owned),
        );
        async move {
            let request_id = uuid::Uuid::new_v4().to_string();
            let ctx = ActionContext {
                request_id: &request_id,
                at: now,
            };
            results::results(&services.store, &guardian, &id, 2, cursor.as_deref(), ctx).await
        }
    };
    let first = read(&binding, "user-reader", None).await.unwrap();
    let tube_ids = |page: &results::ResultsPage| {
        page.tests
            .iter()
            .map(|t| t.tube_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(tube_ids(&first), [tubes[2].clone(), tubes[1].clone()]);
    assert_eq!(first.binding.id, binding.id);
    let cursor = first.next_cursor.clone().expect("a next page");
    let last = read(&binding, "user-reader", Some(&cursor)).await.unwrap();
    assert_eq!(tube_ids(&last), [tubes[0].clone()]);
    assert_eq!(last.tests[0].status, TestStatus::Negative);
    assert_eq!(
        last.tests[0].reported_at.map(|at| at.timestamp()),
        Some((t0 + Duration::hours(4)).timestamp()),
        "in whole seconds"
    );
    assert!(last.next_cursor.is_none());

    // A cursor is sealed to its binding; strangers and pending bindings are not found.
    for bad in [tampered(&cursor), "H#T#2026".into()] {
        let refused = read(&binding, "user-reader", Some(&bad)).await;
        assert!(
            matches!(refused, Err(AppError::InvalidCursor)),
            "{bad}: {refused:?}"
        );
    }
    let refused = read(&other, "user-reader", Some(&cursor)).await;
    assert!(
        matches!(refused, Err(AppError::InvalidCursor)),
        "{refused:?}"
    );
    let refused = read(&binding, "user-stranger", None).await;
    assert!(
        matches!(refused, Err(AppError::BindingNotFound)),
        "{refused:?}"
    );
    let pending = bind_relative(
        &services,
        "user-reader",
        &distinct_resident_id(70, now),
        now,
    )
    .await
    .unwrap();
    let refused = read(&pending, "user-reader", None).await;
    assert!(
        matches!(refused, Err(AppError::BindingNotFound)),
        "{refused:?}"
    );

    let trail = audit_trail(&services, &binding.relative_key, "results_viewed").await;
    assert_eq!(trail.len(), 2, "the two pages read, nothing refused");

    assert_eq!(paging::page_size(None).unwrap(), paging::DEFAULT_PAGE_SIZE);
    assert_eq!(paging::page_size(Some("50")).unwrap(), 50);
    for bad in ["0", "51", "ten", ""] {
        let refused = paging::page_size(Some(bad));
        assert!(
            matches!(refused, Err(AppError::MalformedRequest(_))),
            "{bad}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn a_guardian_reads_only_what_was_sampled_since_their_binding_was_verified() {
    let services = fresh_services().await;
    let keys = test_key_ring();
    let t0 = Utc::now() - Duration::hours(5);
    let person = distinct_resident_id(70, t0);
    let first = active_relative_with(&services, "user-early", &person, t0).await;
    let before = fresh_tube();
    register_sample_at(
        &services,
        &keys,
        &first,
        &before,
        None,
        t0 + Duration::hours(1),
    )
    .await
    .unwrap();
    let second =
        active_relative_with(&services, "user-late", &person, t0 + Duration::hours(2)).await;
    let after = fresh_tube();
    register_sample_at(
        &services,
        &keys,
        &second,
        &after,
        None,
        t0 + Duration::hours(3),
    )
    .await
    .unwrap();
    let now = t0 + Duration::hours(4);
    let pending = (after.clone(), TestStatus::Pending);
    assert_eq!(
        tests_of(&services, &first, now).await,
        [pending.clone(), (before, TestStatus::Pending)]
    );
    assert_eq!(tests_of(&services, &second, now).await, [pending]);
}
