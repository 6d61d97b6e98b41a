//! Co-guardians and disputes (`common/src/usecases/disputes.rs`) against the local stack: every
//! guardian of a relative sees the others by handle; a guardian reports a co-guardian's binding
//! (at most three a day, one open report per binding, whatever arrives at once); the authority
//! reads the open reports oldest first and resolves each once, an upheld one ending the binding
//! at once and barring its guardian for 180 days, even when it races the guardian's own unbind.
//! After each test the table holds the invariants (`kincode_tests::invariants`).

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use kincode_common::domain::binding::{Binding, BindingStatus, GuardianId};
use kincode_common::domain::code::ScanPurpose;
use kincode_common::domain::dispute::{ban_ends, DisputeId, DisputeStatus};
use kincode_common::error::AppError;
use kincode_common::store::{
    ActionContext, CleanupBudget, Dispute, Member, Resolution, ResolveError,
};
use kincode_common::usecases::bindings::{self, BindRequest};
use kincode_common::usecases::codes::{scan, show};
use kincode_common::usecases::disputes::{self, ReportRequest, ResolveRequest};
use kincode_common::wiring::services::Services;
use kincode_tests::invariants::violations;
use kincode_tests::*;

const OFFICER: &str = "cdc-officer-1";

/// A context of its own request: audit records name their request, and one request records
/// each action once.
fn ctx(at: DateTime<Utc>) -> ActionContext<'static> {
    ActionContext {
        request_id: Box::leak(uuid::Uuid::new_v4().to_string().into_boxed_str()),
        at,
    }
}

fn handle(services: &Services, relative_key: &str, guardian: &str) -> String {
    services
        .store
        .keys()
        .guardian_handle(relative_key, guardian)
}

/// `by` reports the binding of `against` (a guardian id) of the same relative.
async fn report(
    services: &Services,
    by: &Binding,
    against: &str,
    reason: &str,
    details: &str,
    at: DateTime<Utc>,
) -> Result<Dispute, AppError> {
    let request = ReportRequest {
        guardian: Some(handle(services, &by.relative_key, against)),
        reason: Some(reason.into()),
        details: Some(details.into()),
    };
    disputes::report(&services.store, &by.guardian, &by.id, request, ctx(at)).await
}

async fn resolve(
    services: &Services,
    id: &DisputeId,
    decision: &str,
    at: DateTime<Utc>,
) -> Result<Dispute, AppError> {
    let request = ResolveRequest {
        decision: Some(decision.into()),
    };
    disputes::resolve(&services.store, OFFICER, id, request, ctx(at)).await
}

/// A child held by their mother and by a stranger, both verified at `at`.
struct Family {
    person: String,
    mother: Binding,
    stranger: Binding,
}

async fn family(services: &Services, stranger: &str, at: DateTime<Utc>) -> Family {
    family_of(services, "user-mother", stranger, at).await
}

async fn family_of(services: &Services, mother: &str, stranger: &str, at: DateTime<Utc>) -> Family {
    let person = distinct_resident_id(5, at);
    let mother = active_relative_with(services, mother, &person, at).await;
    let stranger = active_relative_with(services, stranger, &person, at).await;
    Family {
        person,
        mother,
        stranger,
    }
}

async fn rebind(
    services: &Services,
    guardian: &str,
    person: &str,
    at: DateTime<Utc>,
) -> Result<Binding, AppError> {
    bind_relative(services, guardian, person, at).await
}

async fn members(services: &Services, relative_key: &str) -> Vec<Member> {
    services.store.guardians_of(relative_key).await.unwrap()
}

async fn assert_consistent(services: &Services) {
    assert_eq!(
        violations(&all_items(services).await, &[]),
        Vec::<String>::new()
    );
}

/// The audit records of `action` anywhere in the table.
async fn audits(services: &Services, action: &str) -> usize {
    all_items(services)
        .await
        .iter()
        .filter(|i| i["sk"].as_s().unwrap().starts_with("A#"))
        .filter(|i| i["action"].as_s().unwrap() == action)
        .count()
}

#[tokio::test]
async fn every_guardian_sees_all_guardians_by_handle_and_never_a_platform_id() {
    let services = fresh_services().await;
    let t0 = Utc::now() - Duration::hours(30);
    let person = distinct_resident_id(5, t0);
    let mother = active_relative_with(&services, "user-mother", &person, t0).await;
    let father =
        active_relative_with(&services, "user-father", &person, t0 + Duration::hours(1)).await;
    let grandma = rebind(&services, "user-grandma", &person, t0 + Duration::hours(2))
        .await
        .unwrap();
    let rk = &mother.relative_key;
    let expected_handles = ["user-mother", "user-father", "user-grandma"]
        .map(|guardian| handle(&services, rk, guardian));

    for (viewer, me) in [(&mother, 0), (&father, 1)] {
        let view = disputes::co_guardians(&services.store, &viewer.guardian, &viewer.id)
            .await
            .unwrap();
        let handles: Vec<&str> = view.guardians.iter().map(|g| g.handle.as_str()).collect();
        assert_eq!(handles, expected_handles, "longest-standing first");
        let callers: Vec<bool> = view.guardians.iter().map(|g| g.is_caller).collect();
        assert_eq!(callers, (0..3).map(|i| i == me).collect::<Vec<_>>());
        assert_eq!(view.guardians[1].bound_at, t0 + Duration::hours(1));
        assert_eq!(view.guardians[1].verified_at, Some(t0 + Duration::hours(1)));
        assert_eq!(view.guardians[2].verified_at, None, "still pending");
        let shown = format!("{:?}", view.guardians);
        assert!(!shown.contains("user-"), "no platform id: {shown}");
        assert!(
            !shown.contains(grandma.id.as_str()),
            "no binding id: {shown}"
        );
    }

    // The handle is the relative's: the same mother holding another child is another handle.
    let other = active_relative(&services, "user-mother", t0).await;
    let there = disputes::co_guardians(&services.store, &mother.guardian, &other.id)
        .await
        .unwrap();
    assert_eq!(there.guardians.len(), 1);
    assert_ne!(there.guardians[0].handle, expected_handles[0]);

    let pending = disputes::co_guardians(&services.store, &grandma.guardian, &grandma.id).await;
    assert!(
        matches!(pending, Err(AppError::VerificationRequired)),
        "{pending:?}"
    );
    let stranger = GuardianId::parse("user-stranger").unwrap();
    let refused = disputes::co_guardians(&services.store, &stranger, &mother.id).await;
    assert!(
        matches!(refused, Err(AppError::BindingNotFound)),
        "{refused:?}"
    );

    // The father unbinds: the others see him gone.
    unbind_relative(&services, "user-father", &father, t0 + Duration::hours(26)).await;
    let view = disputes::co_guardians(&services.store, &mother.guardian, &mother.id)
        .await
        .unwrap();
    let handles: Vec<&str> = view.guardians.iter().map(|g| g.handle.as_str()).collect();
    assert_eq!(handles, [&expected_handles[0], &expected_handles[2]]);
    assert_consistent(&services).await;
}

#[tokio::test]
async fn the_membership_follows_the_binding_through_verification_unbinding_and_expiry() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let t0 = Utc::now() - Duration::days(4);
    let pending = rebind(&services, "user-a", &distinct_resident_id(70, t0), t0)
        .await
        .unwrap();
    let rk = pending.relative_key.clone();
    let listed = members(&services, &rk).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].binding_id.clone(),
            listed[0].status,
            listed[0].verified_at
        ),
        (pending.id.clone(), BindingStatus::PendingVerification, None)
    );
    let active = activate(&services, &pending, t0 + Duration::minutes(5)).await;
    let listed = members(&services, &rk).await;
    assert_eq!(
        (listed[0].status, listed[0].verified_at, listed[0].bound_at),
        (
            BindingStatus::Active,
            Some(t0 + Duration::minutes(5)),
            pending.bound_at
        )
    );
    assert_consistent(&services).await;
    unbind_relative(&services, "user-a", &active, t0 + Duration::hours(25)).await;
    assert!(members(&services, &rk).await.is_empty());

    // A binding never verified goes with the cleanup, its membership with it.
    let stale = rebind(&services, "user-b", &distinct_resident_id(70, t0), t0)
        .await
        .unwrap();
    let budget = CleanupBudget {
        max_items: 1000,
        max_duration: std::time::Duration::from_secs(60),
    };
    let report = kincode_common::usecases::cleanup::run(
        &services.store,
        &blobs,
        budget,
        ctx(t0 + Duration::hours(73)),
    )
    .await
    .unwrap();
    assert_eq!(report.pending_bindings_released, 1, "{report:?}");
    assert!(members(&services, &stale.relative_key).await.is_empty());
    assert_consistent(&services).await;
}

#[tokio::test]
async fn a_report_names_a_co_guardian_by_handle_with_a_reason_and_sealed_words() {
    let services = fresh_services().await;
    let now = Utc::now();
    let Family {
        person,
        mother,
        stranger,
    } = family(&services, "user-stranger", now).await;
    let words = "我不认识此人,孩子一直由我抚养";
    let opened = report(
        &services,
        &mother,
        "user-stranger",
        "not_family",
        words,
        now,
    )
    .await
    .unwrap();
    assert_eq!(opened.status, DisputeStatus::Open);
    assert_eq!(opened.details, words);
    assert_eq!(opened.disputed_binding, stranger.id);
    assert_eq!(
        opened.disputed_handle,
        handle(&services, &mother.relative_key, "user-stranger")
    );
    assert_eq!(
        opened.reporter_handle,
        handle(&services, &mother.relative_key, "user-mother")
    );
    let items = all_items(&services).await;
    let text = format!("{items:?}");
    assert!(!text.contains("孩子一直由我抚养"), "the words are sealed");
    let trail = audit_trail(&services, &mother.relative_key, "dispute_opened").await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0]["actor"].as_s().unwrap(), "user-mother");
    assert_eq!(trail[0]["target"].as_s().unwrap(), opened.id.as_str());
    let mine = disputes::my_disputes(&services.store, &mother.guardian, 20, None)
        .await
        .unwrap();
    assert_eq!(mine.disputes, std::slice::from_ref(&opened));

    // Refused, and nothing written.
    let other_child = active_relative(&services, "user-stranger", now).await;
    let before = all_items(&services).await.len();
    let cases: Vec<(&str, ReportRequest, &str)> = vec![
        (
            "own handle",
            ReportRequest {
                guardian: Some(handle(&services, &mother.relative_key, "user-mother")),
                reason: Some("not_family".into()),
                details: None,
            },
            "dispute_own_binding",
        ),
        (
            "unknown handle",
            ReportRequest {
                guardian: Some("g-AAAAAAAAAAAA".into()),
                reason: Some("not_family".into()),
                details: None,
            },
            "guardian_not_found",
        ),
        (
            "the stranger's handle of another relative",
            ReportRequest {
                guardian: Some(handle(
                    &services,
                    &other_child.relative_key,
                    "user-stranger",
                )),
                reason: Some("not_family".into()),
                details: None,
            },
            "guardian_not_found",
        ),
        (
            "no handle",
            ReportRequest {
                guardian: None,
                reason: Some("not_family".into()),
                details: None,
            },
            "guardian_not_found",
        ),
        (
            "unknown reason",
            ReportRequest {
                guardian: Some(opened.disputed_handle.clone()),
                reason: Some("dislike".into()),
                details: None,
            },
            "invalid_dispute_reason",
        ),
        (
            "201 characters",
            ReportRequest {
                guardian: Some(opened.disputed_handle.clone()),
                reason: Some("impersonation".into()),
                details: Some("冒".repeat(201)),
            },
            "invalid_dispute_details",
        ),
        (
            "other, unexplained",
            ReportRequest {
                guardian: Some(opened.disputed_handle.clone()),
                reason: Some("other".into()),
                details: Some(" ".into()),
            },
            "invalid_dispute_details",
        ),
        (
            "the same binding again",
            ReportRequest {
                guardian: Some(opened.disputed_handle.clone()),
                reason: Some("no_authorisation".into()),
                details: None,
            },
            "dispute_already_open",
        ),
    ];
    for (case, request, expected) in cases {
        let refused = disputes::report(
            &services.store,
            &mother.guardian,
            &mother.id,
            request,
            ctx(now),
        )
        .await;
        assert_eq!(refused.err().map(|e| e.code()), Some(expected), "{case}");
    }
    assert_eq!(all_items(&services).await.len(), before);
    // A pending guardian reports nothing yet; another's binding is not found.
    let aunt = rebind(&services, "user-aunt", &person, now).await.unwrap();
    let refused = report(&services, &aunt, "user-stranger", "not_family", "", now).await;
    assert!(
        matches!(refused, Err(AppError::VerificationRequired)),
        "{refused:?}"
    );
    let as_stranger = Binding {
        guardian: GuardianId::parse("user-nobody").unwrap(),
        ..mother.clone()
    };
    let refused = report(
        &services,
        &as_stranger,
        "user-stranger",
        "not_family",
        "",
        now,
    )
    .await;
    assert!(
        matches!(refused, Err(AppError::BindingNotFound)),
        "{refused:?}"
    );
    assert_consistent(&services).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guardian_opens_at_most_three_reports_a_day_even_all_at_once() {
    let services = Arc::new(fresh_services().await);
    let now = Utc::now();
    // The reporter holds three children, each held by two others: six bindings to report.
    let mut targets = Vec::new();
    for child in 0..3 {
        let person = distinct_resident_id(5, now);
        let mine = active_relative_with(&services, "user-reporter", &person, now).await;
        for other in ["a", "b"] {
            let guardian = format!("user-{child}{other}");
            let theirs = active_relative_with(&services, &guardian, &person, now).await;
            targets.push((mine.clone(), guardian, theirs.id));
        }
    }
    let tasks: Vec<_> = targets
        .iter()
        .cloned()
        .map(|(mine, against, _)| {
            let services = services.clone();
            tokio::spawn(
                async move { report(&services, &mine, &against, "not_family", "", now).await },
            )
        })
        .collect();
    let (mut opened, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => opened += 1,
            Err(AppError::TooManyDisputes) => refused += 1,
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!((opened, refused), (3, 3));
    let reporter = GuardianId::parse("user-reporter").unwrap();
    let mine = disputes::my_disputes(&services.store, &reporter, 50, None)
        .await
        .unwrap();
    assert_eq!(mine.disputes.len(), 3);
    assert_eq!(audits(&services, "dispute_opened").await, 3);
    // The next China day opens again.
    let reported: Vec<_> = mine.disputes.iter().map(|d| &d.disputed_binding).collect();
    let (mine, against, _) = targets
        .iter()
        .find(|(_, _, theirs)| !reported.contains(&theirs))
        .unwrap();
    let tomorrow = now + Duration::days(1);
    let refused_today = report(&services, mine, against, "not_family", "", now).await;
    assert!(matches!(refused_today, Err(AppError::TooManyDisputes)));
    report(&services, mine, against, "not_family", "", tomorrow)
        .await
        .unwrap();
    assert_consistent(&services).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_reports_of_one_binding_open_one_and_a_dismissal_reopens_it() {
    let services = Arc::new(fresh_services().await);
    let now = Utc::now();
    let Family { mother, .. } = family(&services, "user-stranger", now).await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (services, mother) = (services.clone(), mother.clone());
            tokio::spawn(async move {
                report(
                    &services,
                    &mother,
                    "user-stranger",
                    "impersonation",
                    "",
                    now,
                )
                .await
            })
        })
        .collect();
    let mut opened = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(dispute) => opened.push(dispute),
            Err(AppError::DisputeAlreadyOpen) => {}
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    assert_eq!(opened.len(), 1);
    assert_consistent(&services).await;
    resolve(&services, &opened[0].id, "dismiss", now)
        .await
        .unwrap();
    report(
        &services,
        &mother,
        "user-stranger",
        "impersonation",
        "",
        now,
    )
    .await
    .expect("resolved: a new report may be opened");
    assert_consistent(&services).await;
}

#[tokio::test]
async fn the_authority_reads_open_reports_oldest_first_a_page_at_a_time() {
    let services = fresh_services().await;
    let t0 = Utc::now();
    let mut opened = Vec::new();
    for i in 0..3 {
        let at = t0 + Duration::seconds(i);
        let family = family(&services, &format!("user-stranger-{i}"), at).await;
        let against = family.stranger.guardian.as_str().to_owned();
        opened.push(
            report(&services, &family.mother, &against, "not_family", "", at)
                .await
                .unwrap(),
        );
    }
    let first = disputes::open_disputes(&services.store, 2, None)
        .await
        .unwrap();
    assert_eq!(first.disputes, opened[..2]);
    let cursor = first.next_after.expect("a next page");
    let second = disputes::open_disputes(&services.store, 2, Some(cursor.as_str()))
        .await
        .unwrap();
    assert_eq!(second.disputes, opened[2..]);
    assert!(second.next_after.is_none());
    // The reporter reads theirs newest first.
    let mother = GuardianId::parse("user-mother").unwrap();
    let mine = disputes::my_disputes(&services.store, &mother, 20, None)
        .await
        .unwrap();
    let newest_first: Vec<_> = opened.iter().rev().cloned().collect();
    assert_eq!(mine.disputes, newest_first);

    // Resolved, it leaves the queue and the reporter reads the outcome.
    let resolved = resolve(&services, &opened[0].id, "dismiss", t0 + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        (resolved.status, resolved.resolved_at),
        (DisputeStatus::Dismissed, Some(t0 + Duration::hours(1)))
    );
    let queue = disputes::open_disputes(&services.store, 20, None)
        .await
        .unwrap();
    assert_eq!(queue.disputes, opened[1..]);
    let mine = disputes::my_disputes(&services.store, &mother, 20, None)
        .await
        .unwrap();
    assert_eq!(mine.disputes[2], resolved);
    for bad in [
        "",
        "not-an-id",
        "D#0190",
        &opened[0].id.as_str().to_uppercase(),
    ] {
        let refused = disputes::open_disputes(&services.store, 2, Some(bad)).await;
        assert!(matches!(refused, Err(AppError::InvalidCursor)), "{bad}");
    }
    assert_consistent(&services).await;
}

#[tokio::test]
async fn upholding_ends_the_binding_at_once_revokes_its_codes_and_bars_its_guardian() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let keys = test_key_ring();
    let now = Utc::now();
    let Family {
        person,
        mother,
        stranger,
    } = family(&services, "user-stranger", now).await;
    let online = show::online_code(
        &services.store,
        &keys,
        &stranger.guardian,
        &stranger.id,
        request_at(now),
    )
    .await
    .unwrap();
    let card = show::issue_offline_card(
        &services.store,
        &blobs,
        &keys,
        &stranger.guardian,
        &stranger.id,
        ctx(now),
    )
    .await
    .unwrap()
    .card;
    let opened = report(&services, &mother, "user-stranger", "not_family", "", now)
        .await
        .unwrap();

    // An hour after binding: the 24 h rule is the guardian's, not the authority's.
    let at = now + Duration::hours(1);
    let upheld = resolve(&services, &opened.id, "uphold", at).await.unwrap();
    let until = ban_ends(at);
    assert_eq!(
        (upheld.status, upheld.binding_ended, upheld.banned_until),
        (DisputeStatus::Upheld, Some(true), Some(until))
    );
    assert!(services
        .store
        .binding(&stranger.guardian, &stranger.id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(counter(&services, "G#user-stranger", "bound").await, 0);
    let relative_pk = format!("R#{}", mother.relative_key);
    assert_eq!(counter(&services, &relative_pk, "guardians").await, 1);
    let scanned = scan::scan(
        &services.store,
        &keys,
        &online.token,
        ScanPurpose::VenueEntry,
        now,
    )
    .await;
    assert!(matches!(scanned, Err(AppError::CodeRevoked)), "{scanned:?}");
    let revoked = services.store.revocations(at).await.unwrap();
    assert!(
        revoked
            .iter()
            .any(|(serial, _)| serial.to_hex() == card.serial),
        "{revoked:?}"
    );
    let view = disputes::co_guardians(&services.store, &mother.guardian, &mother.id)
        .await
        .unwrap();
    assert_eq!(view.guardians.len(), 1);
    let trail = audit_trail(&services, &mother.relative_key, "dispute_upheld").await;
    assert_eq!(trail.len(), 1);
    assert_eq!(trail[0]["actor"].as_s().unwrap(), OFFICER);
    assert_eq!(audits(&services, "unbound_by_dispute").await, 1);
    let mine = disputes::my_disputes(&services.store, &mother.guardian, 20, None)
        .await
        .unwrap();
    assert_eq!(mine.disputes, std::slice::from_ref(&upheld));

    // Resolved once: a second decision is refused and names the first.
    let again = resolve(&services, &opened.id, "dismiss", at).await;
    assert!(
        matches!(
            again,
            Err(AppError::DisputeAlreadyResolved {
                outcome: DisputeStatus::Upheld
            })
        ),
        "{again:?}"
    );

    // The stranger may not bind the child again until the ban ends; others, and other
    // people, are not barred.
    for when in [at, until - Duration::seconds(1)] {
        let refused = rebind(&services, "user-stranger", &person, when).await;
        assert!(
            matches!(refused, Err(AppError::BindingBanned { until: u }) if u == until),
            "{when}: {refused:?}"
        );
    }
    rebind(&services, "user-stranger", &distinct_resident_id(5, at), at)
        .await
        .expect("another person");
    rebind(&services, "user-father", &person, at)
        .await
        .expect("another guardian");
    rebind(&services, "user-stranger", &person, until)
        .await
        .expect("the ban is over");
    let objects: Vec<String> = bucket_objects(&services, &blobs)
        .await
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(
        violations(&all_items(&services).await, &objects),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn dismissing_leaves_the_binding_and_unknown_ids_and_decisions_are_refused() {
    let services = fresh_services().await;
    let now = Utc::now();
    let Family {
        person,
        mother,
        stranger,
    } = family(&services, "user-stranger", now).await;
    let opened = report(
        &services,
        &mother,
        "user-stranger",
        "other",
        "她说是孩子的姑姑",
        now,
    )
    .await
    .unwrap();
    for bad in [None, Some("approve"), Some("Uphold")] {
        let request = ResolveRequest {
            decision: bad.map(str::to_owned),
        };
        let refused =
            disputes::resolve(&services.store, OFFICER, &opened.id, request, ctx(now)).await;
        assert!(matches!(refused, Err(AppError::InvalidDecision)), "{bad:?}");
    }
    let unknown = DisputeId::opened_at(now);
    let refused = resolve(&services, &unknown, "dismiss", now).await;
    assert!(
        matches!(refused, Err(AppError::DisputeNotFound)),
        "{refused:?}"
    );

    let dismissed = resolve(&services, &opened.id, "dismiss", now)
        .await
        .unwrap();
    assert_eq!(
        (
            dismissed.status,
            dismissed.binding_ended,
            dismissed.banned_until
        ),
        (DisputeStatus::Dismissed, None, None)
    );
    assert!(services
        .store
        .binding(&stranger.guardian, &stranger.id)
        .await
        .unwrap()
        .is_some());
    assert_eq!(audits(&services, "dispute_dismissed").await, 1);
    let again = resolve(&services, &opened.id, "uphold", now).await;
    assert!(
        matches!(
            again,
            Err(AppError::DisputeAlreadyResolved {
                outcome: DisputeStatus::Dismissed
            })
        ),
        "{again:?}"
    );
    // No ban: the stranger unbinds and binds again.
    let later = now + Duration::hours(25);
    unbind_relative(&services, "user-stranger", &stranger, later).await;
    rebind(&services, "user-stranger", &person, later)
        .await
        .expect("not barred");
    assert_consistent(&services).await;
}

#[tokio::test]
async fn an_upheld_report_of_a_binding_already_unbound_still_records_the_outcome_and_the_ban() {
    let services = fresh_services().await;
    let t0 = Utc::now() - Duration::hours(30);
    let Family {
        person,
        mother,
        stranger,
    } = family(&services, "user-stranger", t0).await;
    let opened = report(&services, &mother, "user-stranger", "not_family", "", t0)
        .await
        .unwrap();
    let unbound_at = t0 + Duration::hours(25);
    unbind_relative(&services, "user-stranger", &stranger, unbound_at).await;
    let at = unbound_at + Duration::hours(1);
    let upheld = resolve(&services, &opened.id, "uphold", at).await.unwrap();
    assert_eq!(
        (upheld.status, upheld.binding_ended),
        (DisputeStatus::Upheld, Some(false))
    );
    assert_eq!(audits(&services, "unbound_by_dispute").await, 0);
    assert_eq!(audits(&services, "dispute_upheld").await, 1);
    let refused = rebind(&services, "user-stranger", &person, at).await;
    assert!(
        matches!(refused, Err(AppError::BindingBanned { .. })),
        "{refused:?}"
    );
    assert_consistent(&services).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dispute_upheld_while_its_guardian_unbinds_ends_the_binding_exactly_once() {
    let services = Arc::new(fresh_services().await);
    let now = Utc::now();
    let bound_at = now - Duration::hours(25);
    let mut winners = Vec::new();
    for round in 0..6 {
        let stranger = format!("user-stranger-{round}");
        let Family {
            mother,
            stranger: theirs,
            ..
        } = family_of(
            &services,
            &format!("user-mother-{round}"),
            &stranger,
            bound_at,
        )
        .await;
        let opened = report(&services, &mother, &stranger, "not_family", "", bound_at)
            .await
            .unwrap();
        let unbind = {
            let (services, theirs) = (services.clone(), theirs.clone());
            async move {
                bindings::unbind(&services.store, &theirs.guardian, &theirs.id, ctx(now)).await
            }
        };
        let uphold = {
            let services = services.clone();
            async move { resolve(&services, &opened.id, "uphold", now).await }
        };
        // The uphold reads more before it writes (the dispute, its locator): it starts first,
        // the unbind a little later each round, so each wins some rounds.
        let uphold = tokio::spawn(uphold);
        tokio::time::sleep(std::time::Duration::from_millis(4 * round)).await;
        let unbound = tokio::spawn(unbind).await.unwrap();
        let upheld = uphold.await.unwrap();
        let upheld = upheld.unwrap();
        // Exactly one of them ended the binding; the other saw it gone.
        let winner = match (&unbound, upheld.binding_ended) {
            (Ok(()), Some(false)) => "unbind",
            (Err(AppError::BindingNotFound), Some(true)) => "uphold",
            other => panic!("round {round}: {other:?}"),
        };
        winners.push(winner);
        assert_eq!(
            counter(&services, &format!("G#{stranger}"), "bound").await,
            0
        );
        let relative_pk = format!("R#{}", mother.relative_key);
        assert_eq!(counter(&services, &relative_pk, "guardians").await, 1);
        assert_eq!(
            services
                .store
                .ban_until(&theirs.guardian, &theirs.relative_key)
                .await
                .unwrap(),
            Some(ban_ends(now))
        );
    }
    let ended = audits(&services, "unbound").await + audits(&services, "unbound_by_dispute").await;
    assert_eq!(ended, 6, "each binding ended once: {winners:?}");
    assert_eq!(
        audits(&services, "unbound_by_dispute").await,
        winners.iter().filter(|w| **w == "uphold").count()
    );
    assert_consistent(&services).await;
}

/// The interleavings the race above may or may not hit, made to happen: each side read the
/// binding before the other wrote. The late write is refused, not applied twice; the use case
/// then reads again and settles.
#[tokio::test]
async fn an_uphold_or_an_unbind_that_read_the_binding_before_the_other_ended_it_is_refused() {
    let services = fresh_services().await;
    let now = Utc::now();
    let bound_at = now - Duration::hours(25);
    let store = &services.store;

    // The uphold read the binding; the guardian unbound it; the uphold's write is refused.
    let Family {
        mother, stranger, ..
    } = family_of(&services, "user-mother-1", "user-stranger-1", bound_at).await;
    let opened = report(
        &services,
        &mother,
        "user-stranger-1",
        "not_family",
        "",
        bound_at,
    )
    .await
    .unwrap();
    let dispute = store.dispute(&opened.id).await.unwrap().unwrap();
    let read = store
        .binding(&stranger.guardian, &stranger.id)
        .await
        .unwrap();
    unbind_relative(&services, "user-stranger-1", &stranger, now).await;
    let stale = Resolution::Uphold {
        binding: read.as_ref(),
        offline_cards: &[],
        banned_until: ban_ends(now),
    };
    let refused = store
        .resolve_dispute(&dispute, stale, OFFICER, ctx(now))
        .await;
    assert!(
        matches!(refused, Err(ResolveError::BindingChanged)),
        "{refused:?}"
    );
    assert_consistent(&services).await;
    let upheld = resolve(&services, &opened.id, "uphold", now).await.unwrap();
    assert_eq!(upheld.binding_ended, Some(false));

    // The unbind read the binding; the uphold ended it; the unbind's write is refused.
    let Family {
        mother, stranger, ..
    } = family_of(&services, "user-mother-2", "user-stranger-2", bound_at).await;
    let opened = report(
        &services,
        &mother,
        "user-stranger-2",
        "not_family",
        "",
        bound_at,
    )
    .await
    .unwrap();
    let read = store
        .binding(&stranger.guardian, &stranger.id)
        .await
        .unwrap()
        .unwrap();
    let upheld = resolve(&services, &opened.id, "uphold", now).await.unwrap();
    assert_eq!(upheld.binding_ended, Some(true));
    let refused = store.delete_binding(&read, &[], ctx(now)).await;
    assert!(matches!(refused, Err(AppError::Conflict)), "{refused:?}");
    let unbound = bindings::unbind(store, &stranger.guardian, &stranger.id, ctx(now)).await;
    assert!(
        matches!(unbound, Err(AppError::BindingNotFound)),
        "{unbound:?}"
    );
    assert_eq!(audits(&services, "unbound").await, 1);
    assert_eq!(audits(&services, "unbound_by_dispute").await, 1);
    assert_consistent(&services).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_authority_callers_resolving_one_report_resolve_it_once() {
    let services = Arc::new(fresh_services().await);
    let now = Utc::now();
    for round in 0..4 {
        let stranger = format!("user-stranger-{round}");
        let Family { mother, .. } =
            family_of(&services, &format!("user-mother-{round}"), &stranger, now).await;
        let opened = report(&services, &mother, &stranger, "not_family", "", now)
            .await
            .unwrap();
        let tasks: Vec<_> = ["uphold", "dismiss", "uphold", "dismiss"]
            .into_iter()
            .map(|decision| {
                let (services, id) = (services.clone(), opened.id.clone());
                tokio::spawn(async move { resolve(&services, &id, decision, now).await })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        let won: Vec<&Dispute> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "round {round}: {outcomes:?}");
        for lost in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            assert!(
                matches!(lost, AppError::DisputeAlreadyResolved { outcome } if *outcome == won[0].status),
                "round {round}: {lost:?}"
            );
        }
        let stored = services.store.dispute(&opened.id).await.unwrap().unwrap();
        assert_eq!(stored.status, won[0].status);
    }
    let resolutions =
        audits(&services, "dispute_upheld").await + audits(&services, "dispute_dismissed").await;
    assert_eq!(resolutions, 4);
    assert_eq!(
        audits(&services, "unbound_by_dispute").await,
        audits(&services, "dispute_upheld").await
    );
    assert_consistent(&services).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_guardians_binds_racing_the_uphold_of_their_binding_never_get_through() {
    let services = Arc::new(fresh_services().await);
    let now = Utc::now();
    let Family { person, mother, .. } = family(&services, "user-stranger", now).await;
    let opened = report(&services, &mother, "user-stranger", "not_family", "", now)
        .await
        .unwrap();
    let binds: Vec<_> = (0..5)
        .map(|_| {
            let (services, person) = (services.clone(), person.clone());
            tokio::spawn(async move { rebind(&services, "user-stranger", &person, now).await })
        })
        .collect();
    resolve(&services, &opened.id, "uphold", now).await.unwrap();
    for bind in binds {
        let refused = bind.await.unwrap();
        assert!(
            matches!(
                refused,
                Err(AppError::AlreadyBound | AppError::BindingBanned { .. })
            ),
            "{refused:?}"
        );
    }
    let request = BindRequest {
        name: Some("王小明".into()),
        id_number: Some(person.clone()),
        relationship: Some("child".into()),
        consent: Some(true),
    };
    let stranger = GuardianId::parse("user-stranger").unwrap();
    let refused = bindings::bind(&services.store, &stranger, request, None, ctx(now)).await;
    assert!(
        matches!(refused, Err(AppError::BindingBanned { .. })),
        "{refused:?}"
    );
    assert_consistent(&services).await;
}
