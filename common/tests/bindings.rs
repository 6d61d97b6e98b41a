//! The binding use cases (`common/src/usecases/bindings.rs`) against the local stack: bind, list,
//! verify (the pledge, and face through the local simulator), unbind. The limits hold under
//! concurrent requests, and the counters always equal the bindings (moto behind one request
//! lock, so transactions are atomic as in DynamoDB). Face verification through the Alipay
//! adapter is `tests/tests/alipay.rs`.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use kincode_common::adapters::face::LocalFaceSimulator;
use kincode_common::domain::binding::{
    Binding, BindingStatus, GuardianId, IdempotencyKey, Verification,
};
use kincode_common::domain::china_time::china_date;
use kincode_common::domain::pledge::{PLEDGE_TEXT, PLEDGE_VERSION};
use kincode_common::domain::policy::VerificationMethod;
use kincode_common::domain::resident_id::ResidentId;
use kincode_common::error::AppError;
use kincode_common::store::ActionContext;
use kincode_common::usecases::bindings::{self, BindRequest, CompleteRequest, VerificationStart};
use kincode_tests::*;
use serde_json::{json, Value};

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

fn ctx(request_id: &str, at: DateTime<Utc>) -> ActionContext<'_> {
    ActionContext { request_id, at }
}

/// A bind request for `id_number`, changed by `adjust`.
fn request(id_number: &str, adjust: impl FnOnce(&mut BindRequest)) -> BindRequest {
    let mut request = parent_bind_request(id_number);
    adjust(&mut request);
    request
}

fn guardian(name: &str) -> GuardianId {
    GuardianId::parse(name).expect("guardian id")
}

#[tokio::test]
async fn a_bind_is_pending_verification_by_the_method_of_the_age_and_counted_once() {
    let services = fresh_services().await;
    let now = Utc::now();
    let parent = distinct_resident_id(70, now);
    let child = distinct_resident_id(5, now);
    let caller = guardian("user-binder");
    let elder = bindings::bind(
        &services.store,
        &caller,
        parent_bind_request(&parent),
        None,
        ctx("b1", now),
    )
    .await
    .unwrap();
    let young = bindings::bind(
        &services.store,
        &caller,
        parent_bind_request(&child),
        None,
        ctx("b2", now),
    )
    .await
    .unwrap();
    for binding in [&elder, &young] {
        assert_eq!(binding.status, BindingStatus::PendingVerification);
        assert_eq!(binding.guardian, caller);
        assert_eq!(binding.masked_name, "**华");
        assert!(binding.verified_at.is_none());
    }
    assert_eq!(elder.verification_method, VerificationMethod::Face);
    assert_eq!(young.verification_method, VerificationMethod::Pledge);
    assert_eq!(
        elder.relative_key,
        services
            .store
            .keys()
            .relative_key(&ResidentId::parse(&parent, china_date(now)).unwrap()),
        "the relative is known by a keyed hash of the ID number"
    );
    assert_eq!(counter(&services, "G#user-binder", "bound").await, 2);
    assert_eq!(
        counter(&services, &format!("R#{}", elder.relative_key), "guardians").await,
        1
    );
    assert_no_plaintext(&all_items(&services).await, &parent, "周建华");
}

/// Whether an error is the refusal expected.
type IsRefusal = fn(&AppError) -> bool;

#[tokio::test]
async fn a_bind_refuses_bad_input_and_ineligible_ages_and_writes_nothing() {
    let services = fresh_services().await;
    let now = Utc::now();
    let id = distinct_resident_id(70, now);
    let thirty = distinct_resident_id(30, now);
    let caller = guardian("user-refused");
    let cases: Vec<(BindRequest, IsRefusal)> = vec![
        (request("61011319560314217", |_| {}), |e| {
            matches!(e, AppError::InvalidResidentId(_))
        }),
        (request(&id, |r| r.id_number = None), |e| {
            matches!(e, AppError::InvalidResidentId(_))
        }),
        (request(&id, |r| r.name = Some("".into())), |e| {
            matches!(e, AppError::InvalidName)
        }),
        (
            request(&id, |r| r.relationship = Some("neighbour".into())),
            |e| matches!(e, AppError::InvalidRelationship),
        ),
        (request(&id, |r| r.consent = None), |e| {
            matches!(e, AppError::ConsentRequired)
        }),
        (request(&id, |r| r.consent = Some(false)), |e| {
            matches!(e, AppError::ConsentRequired)
        }),
        (request(&thirty, |_| {}), |e| {
            matches!(e, AppError::AgeNotEligible(30))
        }),
    ];
    for (request, expected) in cases {
        let refused =
            bindings::bind(&services.store, &caller, request, None, ctx("refused", now)).await;
        match refused {
            Err(e) if expected(&e) => {}
            other => panic!("unexpected outcome: {other:?}"),
        }
    }
    assert!(all_items(&services).await.is_empty(), "nothing written");
}

#[tokio::test]
async fn one_relative_binds_once_per_guardian_and_a_key_serves_one_relative() {
    let services = fresh_services().await;
    let now = Utc::now();
    let (first, second) = (distinct_resident_id(70, now), distinct_resident_id(71, now));
    let caller = guardian("user-keyed");
    let key = IdempotencyKey::parse("bind-key-0001").unwrap();
    let bind = |id_number: &str, key: Option<&IdempotencyKey>| {
        let (services, caller, request) = (&services, &caller, parent_bind_request(id_number));
        let key = key.cloned();
        async move {
            let request_id = uuid::Uuid::new_v4().to_string();
            bindings::bind(
                &services.store,
                caller,
                request,
                key.as_ref(),
                ctx(&request_id, now),
            )
            .await
        }
    };
    let bound = bind(&first, Some(&key)).await.unwrap();
    assert_eq!(
        bind(&first, Some(&key)).await.unwrap(),
        bound,
        "a retry answers the same"
    );
    let refused = bind(&first, None).await;
    assert!(
        matches!(refused, Err(AppError::AlreadyBound)),
        "{refused:?}"
    );
    let refused = bind(&second, Some(&key)).await;
    assert!(
        matches!(refused, Err(AppError::IdempotencyKeyReused)),
        "{refused:?}"
    );
    assert_eq!(counter(&services, "G#user-keyed", "bound").await, 1);
}

#[tokio::test]
async fn the_list_is_the_callers_bindings_newest_first_and_nobody_elses() {
    let services = fresh_services().await;
    let now = Utc::now();
    let older = bind_relative(
        &services,
        "user-lister",
        &distinct_resident_id(70, now),
        now,
    )
    .await
    .unwrap();
    let newer = active_relative(&services, "user-lister", now + Duration::minutes(1)).await;
    let other = bind_relative(&services, "user-other", &distinct_resident_id(70, now), now)
        .await
        .unwrap();
    let listed = bindings::list(&services.store, &guardian("user-lister"), now)
        .await
        .unwrap();
    assert_eq!(listed, [newer, older]);
    assert_eq!(
        bindings::list(&services.store, &guardian("user-other"), now)
            .await
            .unwrap(),
        [other]
    );
    assert!(bindings::list(&services.store, &guardian("user-new"), now)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_child_is_verified_by_accepting_the_current_pledge() {
    let services = fresh_services().await;
    let now = Utc::now();
    let face = LocalFaceSimulator;
    let caller = guardian("user-pledge");
    let binding = bind_relative(&services, "user-pledge", &distinct_resident_id(5, now), now)
        .await
        .unwrap();
    let started =
        bindings::start_verification(&services.store, &face, &caller, &binding.id, ctx("s", now))
            .await
            .unwrap();
    assert_eq!(
        started,
        VerificationStart::Pledge {
            version: PLEDGE_VERSION,
            text: PLEDGE_TEXT
        }
    );
    let complete = |version: Option<&str>, accepted: Option<bool>, at: DateTime<Utc>| {
        let (services, caller, id) = (&services, &caller, &binding.id);
        let request = CompleteRequest {
            certify_id: None,
            evidence: Value::Null,
            pledge_version: version.map(str::to_owned),
            accepted,
        };
        async move {
            bindings::complete_verification(
                &services.store,
                &face,
                caller,
                id,
                request,
                ctx("c", at),
            )
            .await
        }
    };
    let refused = complete(Some(PLEDGE_VERSION), None, now).await;
    assert!(
        matches!(refused, Err(AppError::ConsentRequired)),
        "{refused:?}"
    );
    let refused = complete(Some("2019-01"), Some(true), now).await;
    assert!(
        matches!(refused, Err(AppError::PledgeOutdated)),
        "{refused:?}"
    );

    let at = now + Duration::minutes(1);
    let active = complete(Some(PLEDGE_VERSION), Some(true), at)
        .await
        .unwrap();
    assert_eq!(active.status, BindingStatus::Active);
    assert_eq!(active.verified_at, Some(at));
    assert_eq!(
        active.verification,
        Some(Verification::Pledge {
            version: PLEDGE_VERSION.into()
        })
    );
    assert_eq!(
        complete(Some(PLEDGE_VERSION), Some(true), at + Duration::minutes(1))
            .await
            .unwrap(),
        active,
        "a retried completion answers as the first"
    );
    let again =
        bindings::start_verification(&services.store, &face, &caller, &binding.id, ctx("s2", at))
            .await;
    assert!(matches!(again, Err(AppError::AlreadyVerified)), "{again:?}");
    let stranger = bindings::start_verification(
        &services.store,
        &face,
        &guardian("user-x"),
        &binding.id,
        ctx("s3", at),
    )
    .await;
    assert!(
        matches!(stranger, Err(AppError::BindingNotFound)),
        "{stranger:?}"
    );
}

#[tokio::test]
async fn face_verification_needs_its_own_session_and_five_failures_lock_it_for_an_hour() {
    let services = fresh_services().await;
    let t0 = Utc::now();
    let face = LocalFaceSimulator;
    let caller = guardian("user-face");
    let binding = bind_relative(&services, "user-face", &distinct_resident_id(70, t0), t0)
        .await
        .unwrap();
    let start = |at: DateTime<Utc>| {
        let (services, caller, id) = (&services, &caller, &binding.id);
        async move {
            let request_id = uuid::Uuid::new_v4().to_string();
            bindings::start_verification(&services.store, &face, caller, id, ctx(&request_id, at))
                .await
        }
    };
    let complete = |certify_id: &str, outcome: &str, at: DateTime<Utc>| {
        let (services, caller, id) = (&services, &caller, &binding.id);
        let request = CompleteRequest {
            certify_id: Some(certify_id.to_owned()),
            evidence: json!({ "simulated_outcome": outcome }),
            pledge_version: None,
            accepted: None,
        };
        async move {
            let request_id = uuid::Uuid::new_v4().to_string();
            bindings::complete_verification(
                &services.store,
                &face,
                caller,
                id,
                request,
                ctx(&request_id, at),
            )
            .await
        }
    };
    let session = |started: VerificationStart| match started {
        VerificationStart::Face { certify_id, .. } => certify_id,
        other => panic!("a 70-year-old verifies by face: {other:?}"),
    };
    let refused = complete("local-sim-never-started", "pass", t0).await;
    assert!(
        matches!(refused, Err(AppError::VerificationNotStarted)),
        "{refused:?}"
    );
    let certify_id = session(start(t0).await.unwrap());
    let refused = complete("local-sim-another", "pass", t0).await;
    assert!(
        matches!(refused, Err(AppError::VerificationNotStarted)),
        "{refused:?}"
    );
    let unfinished = complete(&certify_id, "not_finished", t0).await;
    assert!(
        matches!(unfinished, Err(AppError::FaceNotFinished)),
        "{unfinished:?}"
    );

    // Five failures within the hour; the sixth start waits until the first is an hour old.
    let mut certify_id = certify_id;
    for minute in 0..5 {
        if minute > 0 {
            certify_id = session(start(t0 + Duration::minutes(minute)).await.unwrap());
        }
        let failed = complete(&certify_id, "fail", t0 + Duration::minutes(minute)).await;
        assert!(
            matches!(failed, Err(AppError::FaceVerificationFailed)),
            "{failed:?}"
        );
    }
    let stored = services
        .store
        .binding(&caller, &binding.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.face_failures.len(), 5);
    assert_eq!(stored.status, BindingStatus::PendingVerification);
    let locked = start(t0 + Duration::minutes(10)).await;
    match locked {
        Err(AppError::TooManyFaceAttempts { retry_at }) => {
            assert_eq!(retry_at, t0 + Duration::hours(1))
        }
        other => panic!("unexpected outcome: {other:?}"),
    }

    let later = t0 + Duration::hours(1);
    let certify_id = session(start(later).await.unwrap());
    let active = complete(&certify_id, "pass", later).await.unwrap();
    assert_eq!(active.status, BindingStatus::Active);
    assert_eq!(active.verification, Some(Verification::Face { certify_id }));
}

#[tokio::test]
async fn unbinding_opens_24_hours_after_binding_releases_both_counters_and_twice_is_success() {
    let services = fresh_services().await;
    let t0 = Utc::now();
    let caller = guardian("user-unbinder");
    let active = active_relative(&services, "user-unbinder", t0).await;
    let pending = bind_relative(
        &services,
        "user-unbinder",
        &distinct_resident_id(70, t0),
        t0,
    )
    .await
    .unwrap();
    let unbind = |guardian: &GuardianId, binding: &Binding, at: DateTime<Utc>| {
        let (services, guardian, id) = (&services, guardian.clone(), binding.id.clone());
        async move {
            let request_id = uuid::Uuid::new_v4().to_string();
            bindings::unbind(&services.store, &guardian, &id, ctx(&request_id, at)).await
        }
    };
    let early = unbind(&caller, &active, t0 + Duration::hours(23)).await;
    match early {
        Err(AppError::UnbindTooEarly { available_at }) => {
            assert_eq!(available_at, t0 + Duration::hours(24))
        }
        other => panic!("unexpected outcome: {other:?}"),
    }
    let at = t0 + Duration::hours(24);
    let stranger = unbind(&guardian("user-stranger"), &active, at).await;
    assert!(
        matches!(stranger, Err(AppError::BindingNotFound)),
        "{stranger:?}"
    );

    for binding in [&active, &pending] {
        unbind(&caller, binding, at).await.unwrap();
        assert_eq!(
            counter(
                &services,
                &format!("R#{}", binding.relative_key),
                "guardians"
            )
            .await,
            0
        );
        unbind(&caller, binding, at + Duration::minutes(1))
            .await
            .expect("unbinding twice is success");
    }
    assert_eq!(counter(&services, "G#user-unbinder", "bound").await, 0);
    assert!(bindings::list(&services.store, &caller, at)
        .await
        .unwrap()
        .is_empty());
    assert!(
        services
            .store
            .anchor(&active.id)
            .await
            .unwrap()
            .is_some_and(|a| a.revoked_at.is_some()),
        "its codes revoked"
    );
}
