//! Age transitions against the local stack: a child bound with the pledge owes face
//! verification at 7 (codes stop 30 days later until it is done), a child's binding ends at 17
//! as an unbind ends it, the guardian is told of both by the scheduled cleanup, and the races
//! around them: a scan on the day, the cleanup run twice at once, a guardian unbinding while
//! the cleanup ends the binding, and face verification racing the cleanup and the deadline.
//! Times are fixed instants (China midnight is 16:00 UTC the day before): the rules read the
//! clock they are given, never the machine's.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, DurationRound, NaiveDate, Utc};
use kincode_common::adapters::blobs::BlobStore;
use kincode_common::adapters::face::LocalFaceSimulator;
use kincode_common::codes::token::TokenError;
use kincode_common::domain::binding::{Binding, BindingStatus, GuardianId, Verification};
use kincode_common::domain::code::ScanPurpose;
use kincode_common::domain::policy::VerificationMethod;
use kincode_common::error::AppError;
use kincode_common::store::{ActionContext, CleanupBudget, CleanupReport};
use kincode_common::usecases::bindings::{self, BindRequest, CompleteRequest, VerificationStart};
use kincode_common::usecases::cleanup;
use kincode_common::usecases::codes::{scan, show};
use kincode_common::usecases::nucleic::results;
use kincode_common::wiring::services::Services;
use kincode_tests::offline_cards::{ctx, issue, text};
use kincode_tests::*;
use serde_json::json;

fn at(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().expect("an instant")
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a date")
}

fn guardian(name: &str) -> GuardianId {
    GuardianId::parse(name).expect("guardian id")
}

/// Binds a child born on `birth` (pending), through the use case.
async fn bind_child(
    services: &Services,
    guardian_name: &str,
    birth: NaiveDate,
    sequence: u32,
    now: DateTime<Utc>,
) -> Binding {
    let request = BindRequest {
        name: Some("王小明".into()),
        id_number: Some(resident_id_born(birth, sequence)),
        relationship: Some("child".into()),
        consent: Some(true),
    };
    bindings::bind(
        &services.store,
        &guardian(guardian_name),
        request,
        None,
        ctx(now),
    )
    .await
    .expect("bind")
}

/// Starts verification: the face session's id, or `None` for the pledge.
async fn start(services: &Services, binding: &Binding, now: DateTime<Utc>) -> Option<String> {
    let started = bindings::start_verification(
        &services.store,
        &LocalFaceSimulator,
        &binding.guardian,
        &binding.id,
        ctx(now),
    )
    .await
    .expect("start verification");
    match started {
        VerificationStart::Face { certify_id, .. } => Some(certify_id),
        VerificationStart::Pledge { .. } => None,
    }
}

/// Completes a face session that passed.
async fn complete_face(
    services: &Services,
    binding: &Binding,
    certify_id: &str,
    now: DateTime<Utc>,
) -> Result<Binding, AppError> {
    let request = CompleteRequest {
        certify_id: Some(certify_id.into()),
        evidence: json!({ "simulated_outcome": "pass" }),
        pledge_version: None,
        accepted: None,
    };
    bindings::complete_verification(
        &services.store,
        &LocalFaceSimulator,
        &binding.guardian,
        &binding.id,
        request,
        ctx(now),
    )
    .await
}

/// Completes the current pledge.
async fn complete_pledge(
    services: &Services,
    binding: &Binding,
    now: DateTime<Utc>,
) -> Result<Binding, AppError> {
    let request = CompleteRequest {
        certify_id: None,
        evidence: json!(null),
        pledge_version: Some(kincode_common::domain::pledge::PLEDGE_VERSION.into()),
        accepted: Some(true),
    };
    bindings::complete_verification(
        &services.store,
        &LocalFaceSimulator,
        &binding.guardian,
        &binding.id,
        request,
        ctx(now),
    )
    .await
}

async fn online_code(
    services: &Services,
    binding: &Binding,
    now: DateTime<Utc>,
) -> Result<show::SignedCode, AppError> {
    show::online_code(
        &services.store,
        &test_key_ring(),
        &binding.guardian,
        &binding.id,
        request_at(now),
    )
    .await
}

/// Scans `token` with the keys that signed it (the test key ring's seed differs per call, so
/// codes are signed and checked with one ring held by the caller).
async fn scan_with(
    services: &Services,
    keys: &kincode_common::codes::keys::KeyRing,
    token: &str,
    now: DateTime<Utc>,
) -> Result<scan::ScanResult, AppError> {
    scan::scan(
        &services.store,
        keys.verification_keys(),
        token,
        ScanPurpose::NucleicAcidTest,
        now,
    )
    .await
}

async fn code_with(
    services: &Services,
    keys: &kincode_common::codes::keys::KeyRing,
    binding: &Binding,
    now: DateTime<Utc>,
) -> show::SignedCode {
    show::online_code(
        &services.store,
        keys,
        &binding.guardian,
        &binding.id,
        request_at(now),
    )
    .await
    .expect("a code")
}

async fn run_cleanup(services: &Services, blobs: &BlobStore, now: DateTime<Utc>) -> CleanupReport {
    let budget = CleanupBudget {
        max_items: 1000,
        max_duration: std::time::Duration::from_secs(120),
    };
    cleanup::run(&services.store, blobs, budget, ctx(now))
        .await
        .expect("cleanup runs")
}

/// The guardian's audit records of `action` (`G#<guardian>`/`A#…`).
fn audits<'a>(
    items: &'a [HashMap<String, AttributeValue>],
    guardian: &str,
    action: &str,
) -> Vec<&'a HashMap<String, AttributeValue>> {
    items
        .iter()
        .filter(|i| {
            text(i, "pk") == format!("G#{guardian}")
                && text(i, "sk").starts_with("A#")
                && text(i, "action") == action
        })
        .collect()
}

/// The age transitions still to come of `binding` (`face_due`, `ending_notice`, `end`).
fn transitions_left(items: &[HashMap<String, AttributeValue>], binding: &Binding) -> Vec<String> {
    let mut left: Vec<String> = items
        .iter()
        .filter(|i| text(i, "sk").starts_with(&format!("AGE#{}#", binding.id.as_str())))
        .map(|i| text(i, "transition"))
        .collect();
    left.sort();
    left
}

/// Every counter equals what it counts, nothing is audited twice, no transition outlives its
/// binding, cards and images agree (`kincode_tests::invariants`).
async fn assert_invariants(services: &Services, blobs: &BlobStore) {
    let objects: Vec<String> = bucket_objects(services, blobs)
        .await
        .into_iter()
        .map(|o| o.key)
        .collect();
    let found = kincode_tests::invariants::violations(&all_items(services).await, &objects);
    assert_eq!(found, Vec::<String>::new());
}

fn is_expired(outcome: &Result<scan::ScanResult, AppError>) -> bool {
    matches!(outcome, Err(AppError::InvalidCode(TokenError::Expired)))
}

#[tokio::test]
async fn a_pledge_child_owes_face_verification_at_seven_and_its_codes_stop_thirty_days_later() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let keys = test_key_ring();
    // Born 14 March 2020: 7 at midnight China time on 14 March 2027.
    let bound_at = at("2027-03-01T02:00:00Z");
    let due = at("2027-03-13T16:00:00Z");
    let deadline = at("2027-04-12T16:00:00Z");
    let pending = bind_child(&services, "user-seven", day(2020, 3, 14), 1, bound_at).await;
    assert_eq!(pending.verification_method, VerificationMethod::Pledge);
    assert_eq!(
        start(&services, &pending, bound_at).await,
        None,
        "the pledge"
    );
    let binding = complete_pledge(&services, &pending, bound_at)
        .await
        .unwrap();
    assert_eq!(binding.transitions.face_due_at, Some(due));
    assert_eq!(binding.transitions.face_deadline(), Some(deadline));
    assert_eq!(
        binding.transitions.ends_at,
        Some(at("2037-03-13T16:00:00Z"))
    );
    assert_eq!(
        transitions_left(&all_items(&services).await, &binding),
        ["end", "ending_notice", "face_due"]
    );

    // Before 7 there is nothing to verify again.
    let early = bindings::start_verification(
        &services.store,
        &LocalFaceSimulator,
        &binding.guardian,
        &binding.id,
        ctx(due - Duration::seconds(1)),
    )
    .await;
    assert!(matches!(early, Err(AppError::AlreadyVerified)), "{early:?}");

    // In the grace the codes work, but none is valid past the deadline: a card printed four
    // days before it is valid until it, not for 7 days.
    let card = issue(&services, &blobs, &binding, deadline - Duration::days(4))
        .await
        .unwrap();
    assert_eq!(card.card.valid_until, deadline);
    let code = code_with(&services, &keys, &binding, deadline - Duration::minutes(2)).await;
    assert_eq!(code.claims.expires_at, deadline);
    assert!(scan_with(
        &services,
        &keys,
        &code.token,
        deadline - Duration::seconds(1)
    )
    .await
    .is_ok());

    // From the deadline: no code is shown or printed, the ones out there have expired, the
    // binding is listed with its deadline, and the results stay readable.
    assert!(is_expired(
        &scan_with(&services, &keys, &code.token, deadline).await
    ));
    let shown = online_code(&services, &binding, deadline).await;
    assert!(
        matches!(shown, Err(AppError::VerificationRequired)),
        "{shown:?}"
    );
    let printed = issue(&services, &blobs, &binding, deadline).await;
    assert!(
        matches!(printed, Err(AppError::VerificationRequired)),
        "{printed:?}"
    );
    let listed = bindings::list(&services.store, &binding.guardian, deadline)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, BindingStatus::Active);
    assert_eq!(listed[0].transitions.face_due_at, Some(due));
    let ctx_read = ActionContext {
        request_id: "results",
        at: deadline,
    };
    results::results(
        &services.store,
        &binding.guardian,
        &binding.id,
        20,
        None,
        ctx_read,
    )
    .await
    .expect("results stay readable");

    // Face verification a day later: the same binding, active from its first verification,
    // now verified by face, with nothing more due before 17; its codes work again.
    let later = deadline + Duration::days(1);
    let certify_id = start(&services, &binding, later).await.expect("face");
    let verified = complete_face(&services, &binding, &certify_id, later)
        .await
        .unwrap();
    assert_eq!(verified.status, BindingStatus::Active);
    assert_eq!(verified.verified_at, Some(bound_at));
    assert_eq!(verified.verification_method, VerificationMethod::Face);
    assert!(matches!(
        verified.verification,
        Some(Verification::Face { .. })
    ));
    assert_eq!(verified.transitions.face_due_at, None);
    let stored = services
        .store
        .binding(&binding.guardian, &binding.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, verified);
    let code = code_with(&services, &keys, &binding, later).await;
    assert_eq!(code.claims.expires_at, later + Duration::minutes(5));
    assert!(scan_with(&services, &keys, &code.token, later)
        .await
        .is_ok());
    let items = all_items(&services).await;
    assert_eq!(
        transitions_left(&items, &binding),
        ["end", "ending_notice"],
        "the face verification due is gone with it"
    );
    assert_eq!(audits(&items, "user-seven", "reverified").len(), 1);
    assert_eq!(audits(&items, "user-seven", "verified").len(), 1);
    // A retried completion answers the same, and a new start is refused.
    let again = complete_face(&services, &binding, &certify_id, later)
        .await
        .unwrap();
    // (The hour of the last code shown moved meanwhile: not part of the verification.)
    assert_eq!(
        Binding {
            code_shown_hour: verified.code_shown_hour,
            ..again
        },
        verified
    );
    assert!(matches!(
        bindings::start_verification(
            &services.store,
            &LocalFaceSimulator,
            &binding.guardian,
            &binding.id,
            ctx(later)
        )
        .await,
        Err(AppError::AlreadyVerified)
    ));
}

#[tokio::test]
async fn a_child_bound_at_six_years_and_364_days_is_verified_by_face_from_the_next_midnight() {
    let services = fresh_services().await;
    // Born 28 November 2019; bound at 10:00 on 27 November 2026, China time: still 6.
    let bound_at = at("2026-11-27T02:00:00Z");
    let midnight = at("2026-11-27T16:00:00Z");
    let late = bind_child(&services, "user-eve", day(2019, 11, 28), 2, bound_at).await;
    assert_eq!(
        start(&services, &late, bound_at).await,
        None,
        "still the pledge"
    );
    // After midnight the pledge no longer verifies: face does.
    let pledged = complete_pledge(&services, &late, midnight).await;
    assert!(
        matches!(pledged, Err(AppError::VerificationNotStarted)),
        "{pledged:?}"
    );
    let certify_id = start(&services, &late, midnight).await.expect("face");
    let verified = complete_face(&services, &late, &certify_id, midnight)
        .await
        .unwrap();
    assert_eq!(
        (
            verified.verification_method,
            verified.transitions.face_due_at
        ),
        (VerificationMethod::Face, None)
    );
    assert_eq!(verified.verified_at, Some(midnight));

    // The same child bound by another guardian who signs the pledge a second before midnight:
    // active, and face verification is due one second later.
    let other = bind_child(&services, "user-eve-2", day(2019, 11, 28), 2, bound_at).await;
    let pledged = complete_pledge(&services, &other, midnight - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(pledged.verification_method, VerificationMethod::Pledge);
    assert_eq!(
        pledged.verification_due(midnight - Duration::seconds(1)),
        None
    );
    assert_eq!(
        pledged.verification_due(midnight),
        Some(VerificationMethod::Face)
    );
    assert_eq!(
        pledged.transitions.face_deadline(),
        Some(at("2026-12-27T16:00:00Z"))
    );

    let items = all_items(&services).await;
    assert_eq!(
        transitions_left(&items, &verified),
        ["end", "ending_notice"]
    );
    assert_eq!(
        transitions_left(&items, &pledged),
        ["end", "ending_notice", "face_due"]
    );
    assert_eq!(audits(&items, "user-eve", "verified").len(), 1);
}

#[tokio::test]
async fn the_cleanup_tells_the_guardian_and_ends_a_binding_at_seventeen_as_an_unbind_would() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let keys = test_key_ring();
    // Born 1 December 2009, bound days before 17: the end is at midnight on 1 December.
    let bound_at = at("2026-11-27T02:00:00Z");
    let ends = at("2026-11-30T16:00:00Z");
    let child = bind_child(&services, "user-teen", day(2009, 12, 1), 3, bound_at).await;
    let certify_id = start(&services, &child, bound_at)
        .await
        .expect("face at 16");
    let child = complete_face(&services, &child, &certify_id, bound_at)
        .await
        .unwrap();
    assert_eq!(child.transitions.ends_at, Some(ends));
    let elder = active_relative_with(
        &services,
        "user-teen",
        &resident_id_aged(70, bound_at, 4),
        bound_at,
    )
    .await;
    assert_eq!(elder.transitions, Default::default(), "an elder never ends");

    // Bound within 30 days of the end: the guardian is told at the next run, once.
    let told = run_cleanup(&services, &blobs, bound_at + Duration::hours(1)).await;
    assert_eq!(
        (told.age_notices_recorded, told.bindings_aged_out),
        (1, 0),
        "{told:?}"
    );
    let again = run_cleanup(&services, &blobs, bound_at + Duration::hours(2)).await;
    assert_eq!(again.age_notices_recorded, 0, "{again:?}");
    let items = all_items(&services).await;
    let notices = audits(&items, "user-teen", "ending_notice");
    assert_eq!(notices.len(), 1);
    assert_eq!(text(notices[0], "actor"), "cleanup");
    assert_eq!(text(notices[0], "binding_id"), child.id.as_str());

    // No code outlives the end: a card printed the day before is valid until it.
    let card = issue(&services, &blobs, &child, ends - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(card.card.valid_until, ends);
    let code = code_with(&services, &keys, &child, ends - Duration::minutes(1)).await;
    assert!(
        scan_with(&services, &keys, &code.token, ends - Duration::seconds(1))
            .await
            .is_ok()
    );

    // From the birthday, before the cleanup has run, the binding is over for every read.
    assert!(is_expired(
        &scan_with(&services, &keys, &code.token, ends).await
    ));
    assert_eq!(
        bindings::list(&services.store, &child.guardian, ends)
            .await
            .unwrap(),
        std::slice::from_ref(&elder)
    );
    let shown = online_code(&services, &child, ends).await;
    assert!(matches!(shown, Err(AppError::BindingNotFound)), "{shown:?}");
    assert_eq!(counter(&services, "G#user-teen", "bound").await, 2);

    // The cleanup ends it: counters released, the anchor revoked, nothing of it left.
    let report = run_cleanup(&services, &blobs, ends + Duration::minutes(7)).await;
    assert_eq!(report.bindings_aged_out, 1, "{report:?}");
    assert_eq!(counter(&services, "G#user-teen", "bound").await, 1);
    assert_eq!(
        counter(&services, &format!("R#{}", child.relative_key), "guardians").await,
        0
    );
    let anchor = services.store.anchor(&child.id).await.unwrap().unwrap();
    assert_eq!(anchor.revoked_at, Some(ends + Duration::minutes(7)));
    let items = all_items(&services).await;
    let ended = audits(&items, "user-teen", "aged_out");
    assert_eq!(ended.len(), 1);
    assert_eq!(text(ended[0], "actor"), "cleanup");
    assert!(transitions_left(&items, &child).is_empty());
    assert!(!items
        .iter()
        .any(|i| text(i, "sk") == format!("B#{}", child.id.as_str())
            || text(i, "sk") == format!("L#{}", child.relative_key)));
    // The card expired with the binding: nothing is left to publish as revoked.
    assert!(services.store.revocations(ends).await.unwrap().is_empty());

    // Nothing more to do; the guardian unbinding it afterwards is told it is gone (success).
    let last = run_cleanup(&services, &blobs, ends + Duration::hours(1)).await;
    assert_eq!((last.bindings_aged_out, last.skipped), (0, 0), "{last:?}");
    bindings::unbind(
        &services.store,
        &child.guardian,
        &child.id,
        ctx(ends + Duration::hours(1)),
    )
    .await
    .expect("an ended binding unbinds as an unbound one does");
    assert!(services
        .store
        .binding(&elder.guardian, &elder.id)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn a_binding_taken_away_takes_its_age_transitions_with_it() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let bound_at = at("2026-11-01T02:00:00Z");
    let unbound = bind_child(&services, "user-gone", day(2021, 5, 1), 5, bound_at).await;
    let unbound = activate(&services, &unbound, bound_at).await;
    let never_verified = bind_child(&services, "user-gone", day(2021, 6, 1), 6, bound_at).await;
    let items = all_items(&services).await;
    assert_eq!(transitions_left(&items, &unbound).len(), 3);
    assert_eq!(transitions_left(&items, &never_verified).len(), 3);

    unbind_relative(
        &services,
        "user-gone",
        &unbound,
        bound_at + Duration::hours(25),
    )
    .await;
    let report = run_cleanup(&services, &blobs, bound_at + Duration::hours(73)).await;
    assert_eq!(report.pending_bindings_released, 1, "{report:?}");
    let items = all_items(&services).await;
    assert!(transitions_left(&items, &unbound).is_empty());
    assert!(transitions_left(&items, &never_verified).is_empty());
}

#[tokio::test]
async fn a_bounded_run_ends_some_bindings_and_the_next_resumes_with_the_rest() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let bound_at = at("2026-11-27T02:00:00Z");
    let ends = at("2026-11-30T16:00:00Z");
    for sequence in 0..3 {
        let child = bind_child(
            &services,
            &format!("user-{sequence}"),
            day(2009, 12, 1),
            10 + sequence,
            bound_at,
        )
        .await;
        activate(&services, &child, bound_at).await;
    }
    // Start the walk on the day of the end (the notices were told on earlier days).
    services
        .store
        .set_cleanup_cursor(at("2026-11-30T00:00:00Z"))
        .await
        .unwrap();
    let budget = CleanupBudget {
        max_items: 1,
        max_duration: std::time::Duration::from_secs(60),
    };
    let (mut ended, mut runs) = (0, 0);
    loop {
        let report = cleanup::run(
            &services.store,
            &blobs,
            budget,
            ctx(ends + Duration::minutes(7)),
        )
        .await
        .unwrap();
        ended += report.bindings_aged_out;
        runs += 1;
        assert!(runs < 10, "resumes to completion");
        if report.complete {
            break;
        }
    }
    assert_eq!(ended, 3);
    assert!(runs >= 3, "one binding per run");
    for sequence in 0..3 {
        assert_eq!(
            counter(&services, &format!("G#user-{sequence}"), "bound").await,
            0
        );
    }
}

/// A child born on 1 December 2009, bound and verified by face at `bound_at`: the binding ends
/// at midnight on 1 December 2026, China time.
async fn teen(
    services: &Services,
    guardian_name: &str,
    sequence: u32,
    bound_at: DateTime<Utc>,
) -> Binding {
    let child = bind_child(
        services,
        guardian_name,
        day(2009, 12, 1),
        sequence,
        bound_at,
    )
    .await;
    activate(services, &child, bound_at).await
}

const TEEN_ENDS: &str = "2026-11-30T16:00:00Z";

/// A cleanup run on its own task, by a client whose first transaction is held.
fn held_cleanup(
    services: Services,
    blobs: std::sync::Arc<BlobStore>,
    now: DateTime<Utc>,
) -> tokio::task::JoinHandle<CleanupReport> {
    tokio::spawn(async move { run_cleanup(&services, &blobs, now).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scan_on_the_seventeenth_birthday_sees_the_binding_before_or_after_its_end_never_between()
{
    let services = fresh_services().await;
    let blobs = std::sync::Arc::new(fresh_bucket(&services).await);
    let keys = test_key_ring();
    let bound_at = at("2026-11-27T02:00:00Z");
    let ends = at(TEEN_ENDS);
    let child = teen(&services, "user-scan", 7, bound_at).await;
    // The notice goes out on its own day; the run below starts on the day of the end.
    run_cleanup(&services, &blobs, ends - Duration::hours(1)).await;
    let code = code_with(&services, &keys, &child, ends - Duration::minutes(2)).await;
    assert!(
        scan_with(&services, &keys, &code.token, ends - Duration::seconds(1))
            .await
            .is_ok()
    );

    // Every read a checkpoint or the guardian makes on the birthday, while the cleanup holds
    // the end's transaction (the binding still stored) and after it committed: the same answers.
    let reads_on_the_day = || async {
        let now = ends + Duration::minutes(1);
        let scanned = scan_with(&services, &keys, &code.token, now).await;
        assert!(is_expired(&scanned), "{scanned:?}");
        let sampled =
            register_sample_with_code(&services, &keys, &code.token, &fresh_tube(), None, now)
                .await;
        assert!(
            matches!(sampled, Err(AppError::InvalidCode(TokenError::Expired))),
            "{sampled:?}"
        );
        assert!(bindings::list(&services.store, &child.guardian, now)
            .await
            .unwrap()
            .is_empty());
        let shown = online_code(&services, &child, now).await;
        assert!(matches!(shown, Err(AppError::BindingNotFound)), "{shown:?}");
    };
    let (hold, mut held) = HoldFirstTransaction::new();
    let ender = intercepted_on_same_table(&services, hold).await;
    let ending = held_cleanup(ender, blobs.clone(), ends + Duration::minutes(7));
    held.reached().await;
    assert_eq!(counter(&services, "G#user-scan", "bound").await, 1, "held");
    reads_on_the_day().await;
    held.release();
    assert_eq!(ending.await.unwrap().bindings_aged_out, 1);
    assert_eq!(counter(&services, "G#user-scan", "bound").await, 0);
    reads_on_the_day().await;
    assert_invariants(&services, &blobs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_cleanups_at_once_tell_the_guardian_once_and_end_the_binding_once() {
    let services = fresh_services().await;
    let blobs = std::sync::Arc::new(fresh_bucket(&services).await);
    let bound_at = at("2026-11-27T02:00:00Z");
    let ends = at(TEEN_ENDS);
    let child = teen(&services, "user-twice", 8, bound_at).await;
    let elder = active_relative_with(
        &services,
        "user-twice",
        &resident_id_aged(72, bound_at, 9),
        bound_at,
    )
    .await;

    // The notice, then the end: one run holds its write while the other does the work.
    for (now, what) in [
        (bound_at + Duration::hours(1), "ending_notice"),
        (ends + Duration::minutes(7), "aged_out"),
    ] {
        // Both runs walk the one day (a long walk by the free run would outlast the held
        // run's call timeout).
        let today = now.duration_trunc(Duration::days(1)).unwrap();
        services.store.set_cleanup_cursor(today).await.unwrap();
        let (hold, mut held) = HoldFirstTransaction::new();
        let first = held_cleanup(
            intercepted_on_same_table(&services, hold).await,
            blobs.clone(),
            now,
        );
        held.reached().await;
        let second = run_cleanup(&services, &blobs, now).await;
        held.release();
        let first = first.await.unwrap();
        let done = |r: &CleanupReport| r.age_notices_recorded + r.bindings_aged_out;
        assert_eq!(
            done(&first) + done(&second),
            1,
            "{what}: {first:?} {second:?}"
        );
        assert_eq!(
            first.skipped, 1,
            "{what}: the held run found it done: {first:?}"
        );
        let items = all_items(&services).await;
        assert_eq!(audits(&items, "user-twice", what).len(), 1, "{what}");
    }
    assert_eq!(counter(&services, "G#user-twice", "bound").await, 1);
    assert_eq!(
        counter(&services, &format!("R#{}", child.relative_key), "guardians").await,
        0
    );
    assert!(services
        .store
        .binding(&elder.guardian, &elder.id)
        .await
        .unwrap()
        .is_some());
    assert_invariants(&services, &blobs).await;
}

/// A guardian with a child ending at `TEEN_ENDS` and an elder (so the guardian's counter has
/// company), the notice already told: the next run's first write is the end.
async fn ending_child(guardian_name: &str) -> (Services, std::sync::Arc<BlobStore>, Binding) {
    let services = fresh_services().await;
    let blobs = std::sync::Arc::new(fresh_bucket(&services).await);
    let bound_at = at("2026-11-27T02:00:00Z");
    let child = teen(&services, guardian_name, 11, bound_at).await;
    let elder_id = resident_id_aged(75, bound_at, 12);
    active_relative_with(&services, guardian_name, &elder_id, bound_at).await;
    run_cleanup(&services, &blobs, at(TEEN_ENDS) - Duration::hours(1)).await;
    (services, blobs, child)
}

/// Released once: the guardian keeps the elder, the child has no guardian left, and the one
/// end is audited once, as `action`.
async fn assert_released_once(
    services: &Services,
    blobs: &BlobStore,
    child: &Binding,
    action: &str,
) {
    let guardian = child.guardian.as_str();
    assert_eq!(
        counter(services, &format!("G#{guardian}"), "bound").await,
        1
    );
    assert_eq!(
        counter(services, &format!("R#{}", child.relative_key), "guardians").await,
        0
    );
    let items = all_items(services).await;
    let ends: Vec<_> = ["unbound", "aged_out"]
        .into_iter()
        .flat_map(|a| audits(&items, guardian, a))
        .map(|i| text(i, "action"))
        .collect();
    assert_eq!(ends, [action]);
    assert!(transitions_left(&items, child).is_empty());
    assert_invariants(services, blobs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guardian_unbinding_while_the_cleanup_ends_the_binding_releases_it_once() {
    let (services, blobs, child) = ending_child("user-unbinds").await;
    let now = at(TEEN_ENDS) + Duration::minutes(7);
    // The cleanup has read the binding and holds its write; the guardian unbinds meanwhile.
    let (hold, mut held) = HoldFirstTransaction::new();
    let ending = held_cleanup(
        intercepted_on_same_table(&services, hold).await,
        blobs.clone(),
        now,
    );
    held.reached().await;
    bindings::unbind(&services.store, &child.guardian, &child.id, ctx(now))
        .await
        .expect("the guardian unbinds");
    held.release();
    let report = ending.await.unwrap();
    assert_eq!(
        (report.bindings_aged_out, report.skipped),
        (0, 1),
        "{report:?}"
    );
    assert_released_once(&services, &blobs, &child, "unbound").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cleanup_ending_a_binding_while_its_guardian_unbinds_it_releases_it_once() {
    let (services, blobs, child) = ending_child("user-ended").await;
    let now = at(TEEN_ENDS) + Duration::minutes(7);
    // The unbind has read the binding and holds its write; the cleanup ends it meanwhile. The
    // unbind reads again, finds it ended, and succeeds.
    let (hold, mut held) = HoldFirstTransaction::new();
    let unbinder = intercepted_on_same_table(&services, hold).await;
    let unbinding = {
        let child = child.clone();
        tokio::spawn(async move {
            bindings::unbind(&unbinder.store, &child.guardian, &child.id, ctx(now)).await
        })
    };
    held.reached().await;
    let report = run_cleanup(&services, &blobs, now).await;
    held.release();
    unbinding
        .await
        .unwrap()
        .expect("an unbind that meets the end succeeds");
    assert_eq!(report.bindings_aged_out, 1, "{report:?}");
    assert_released_once(&services, &blobs, &child, "aged_out").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn face_verification_done_while_the_cleanup_tells_the_guardian_it_is_due_is_not_told_after() {
    let services = fresh_services().await;
    let blobs = std::sync::Arc::new(fresh_bucket(&services).await);
    // Born 14 March 2020: 7 at 2027-03-13T16:00Z.
    let bound_at = at("2027-03-10T02:00:00Z");
    let due = at("2027-03-13T16:00:00Z");
    let child = bind_child(&services, "user-told", day(2020, 3, 14), 15, bound_at).await;
    let child = complete_pledge(&services, &child, bound_at).await.unwrap();
    run_cleanup(&services, &blobs, due - Duration::hours(1)).await;

    let now = due + Duration::hours(2);
    let certify_id = start(&services, &child, now).await.expect("face");
    let (hold, mut held) = HoldFirstTransaction::new();
    let telling = held_cleanup(
        intercepted_on_same_table(&services, hold).await,
        blobs.clone(),
        now,
    );
    held.reached().await;
    complete_face(&services, &child, &certify_id, now)
        .await
        .expect("verified by face");
    held.release();
    let report = telling.await.unwrap();
    assert_eq!(
        (report.age_notices_recorded, report.skipped),
        (0, 1),
        "{report:?}"
    );
    let items = all_items(&services).await;
    assert_eq!(audits(&items, "user-told", "reverified").len(), 1);
    assert!(audits(&items, "user-told", "face_verification_due").is_empty());
    assert_eq!(transitions_left(&items, &child), ["end", "ending_notice"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn face_verification_started_before_the_deadline_and_done_after_it_brings_the_codes_back() {
    let services = fresh_services().await;
    let keys = test_key_ring();
    let bound_at = at("2027-03-10T02:00:00Z");
    let deadline = at("2027-04-12T16:00:00Z");
    let child = bind_child(&services, "user-late", day(2020, 3, 14), 16, bound_at).await;
    let child = complete_pledge(&services, &child, bound_at).await.unwrap();
    let certify_id = start(&services, &child, deadline - Duration::minutes(10))
        .await
        .expect("face");

    // The face session ends after the deadline; the write that verifies is held: until it
    // commits no code is shown, from then on codes are.
    let after = deadline + Duration::minutes(10);
    let (hold, mut held) = HoldFirstTransaction::new();
    let verifier = intercepted_on_same_table(&services, hold).await;
    let verifying = {
        let (child, certify_id) = (child.clone(), certify_id.clone());
        tokio::spawn(async move { complete_face(&verifier, &child, &certify_id, after).await })
    };
    held.reached().await;
    let shown = online_code(&services, &child, after).await;
    assert!(
        matches!(shown, Err(AppError::VerificationRequired)),
        "{shown:?}"
    );
    held.release();
    let verified = verifying
        .await
        .unwrap()
        .expect("verified after the deadline");
    assert_eq!(verified.transitions.face_due_at, None);
    let code = code_with(&services, &keys, &child, after).await;
    assert!(scan_with(&services, &keys, &code.token, after)
        .await
        .is_ok());
}
