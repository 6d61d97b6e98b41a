//! A refused transaction is read by the name of the item that refused, not by its place: every
//! refusal the store tells apart gives the same answer whichever order the items are sent in.
//! Each test provokes its refusals on the local stack, once per `ItemOrder` (as built,
//! reversed, rotated: the last moves every item, reversal all but an odd transaction's
//! middle one), on a table of its own. Read by position instead (the reasons paired with the
//! items as built, not as sent), many of the answers in the other two orders change.

use std::fmt::Debug;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Duration, Utc};
use kincode_common::domain::binding::{Binding, BindingId, GuardianId, Verification};
use kincode_common::domain::china_time::china_date;
use kincode_common::domain::dispute::{DisputeDetails, DisputeId, DisputeReason};
use kincode_common::domain::health::{RiskFlag, RiskSignal};
use kincode_common::domain::name::PersonName;
use kincode_common::domain::nucleic::{Admission, LabResult, TubeId, TubeKind};
use kincode_common::domain::policy::{
    eligibility, MAX_GUARDIANS_PER_RELATIVE, MAX_RELATIVES_PER_GUARDIAN,
};
use kincode_common::domain::relationship::Relationship;
use kincode_common::domain::resident_id::ResidentId;
use kincode_common::store::{
    ActionContext, AuditAction, CreateBindingError, Dispute, FlagWrite, HouseholdSheetRecord,
    ItemOrder, NewBinding, NewDispute, OfflineCardRecord, OpenDisputeError, RegisterError,
    RegisteredSample, Resolution, SampleRegistration, SheetRecorded,
};
use kincode_common::wiring::services::Services;
use kincode_tests::*;

const ORDERS: [ItemOrder; 3] = [ItemOrder::AsBuilt, ItemOrder::Reversed, ItemOrder::Rotated];

/// Services on a fresh table whose store sends every transaction's items in `order`.
async fn services_sending(order: ItemOrder) -> Services {
    let mut services = fresh_services().await;
    services.store = services.store.with_item_order(order);
    services
}

fn ctx(at: DateTime<Utc>) -> ActionContext<'static> {
    ActionContext {
        request_id: "refusal-test",
        at,
    }
}

/// What a call answered, as compared across orders: `Ok`, or the error.
fn outcome<T, E: Debug>(result: Result<T, E>) -> String {
    match result {
        Ok(_) => "Ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

/// Runs `cases` once per order and checks each order's answers against `expected`.
async fn same_answers_in_every_order<F, Fut>(expected: &[(&str, &str)], cases: F)
where
    F: Fn(Services) -> Fut,
    Fut: std::future::Future<Output = Vec<(&'static str, String)>>,
{
    let mut wrong = Vec::new();
    for order in ORDERS {
        let answers = cases(services_sending(order).await).await;
        let cases: Vec<&str> = answers.iter().map(|(case, _)| *case).collect();
        let wanted: Vec<&str> = expected.iter().map(|(case, _)| *case).collect();
        assert_eq!(cases, wanted, "the cases run");
        for ((case, answer), (_, want)) in answers.iter().zip(expected) {
            if answer != want {
                // An unexpected error's detail is the whole response: its head says enough.
                let head: String = answer.chars().take(160).collect();
                wrong.push(format!("{order:?}, {case}: {head} (expected {want})"));
            }
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

/// A person of `years` to bind, through the store.
struct Person {
    id_number: ResidentId,
    relative_key: String,
}

fn person(services: &Services, years: u32, now: DateTime<Utc>) -> Person {
    let id_number =
        ResidentId::parse(&distinct_resident_id(years, now), china_date(now)).expect("ID number");
    let relative_key = services.store.keys().relative_key(&id_number);
    Person {
        id_number,
        relative_key,
    }
}

/// The store's bind transaction, for binding `id` of `guardian` to `person`.
async fn create(
    services: &Services,
    id: &BindingId,
    guardian: &str,
    person: &Person,
    now: DateTime<Utc>,
) -> Result<Binding, CreateBindingError> {
    let guardian = GuardianId::parse(guardian).expect("guardian");
    let name = PersonName::parse("王小明").expect("name");
    let today = china_date(now);
    let new = NewBinding {
        id,
        guardian: &guardian,
        relative_key: &person.relative_key,
        name: &name,
        id_number: &person.id_number,
        relationship: Relationship::Child,
        eligibility: eligibility(person.id_number.birth_date(), today).expect("eligible"),
    };
    services.store.create_binding(new, ctx(now)).await
}

/// A counter item set to `value`, as if that many bindings held it.
async fn put_counter(services: &Services, pk: String, attribute: &str, value: u32) {
    raw_client(services)
        .await
        .put_item()
        .table_name(&services.config.table)
        .item("pk", AttributeValue::S(pk))
        .item("sk", AttributeValue::S("COUNT".into()))
        .item(attribute, AttributeValue::N(value.to_string()))
        .send()
        .await
        .expect("counter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_refusals_read_the_same_in_every_order() {
    let expected = [
        ("id taken", "IdTaken"),
        ("id taken, same person (two refuse)", "IdTaken"),
        ("already bound", "AlreadyBound"),
        ("guardian full", "GuardianFull"),
        ("relative full", "RelativeFull"),
        ("id retired", "IdRetired"),
        ("face start on a stale binding", "Conflict"),
        ("activation of a stale binding", "Conflict"),
        ("unbind of a stale pending binding", "Conflict"),
        ("unbind of a stale active binding", "Conflict"),
    ];
    same_answers_in_every_order(&expected, |services| async move {
        let now = Utc::now();
        let mut answers = Vec::new();
        let (first, second) = (person(&services, 5, now), person(&services, 5, now));

        let id = BindingId::random();
        let pending = create(&services, &id, "user-taken", &first, now)
            .await
            .expect("first binding");
        let retry = create(&services, &id, "user-taken", &second, now).await;
        answers.push(("id taken", outcome(retry)));
        let retry = create(&services, &id, "user-taken", &first, now).await;
        answers.push(("id taken, same person (two refuse)", outcome(retry)));
        let again = create(&services, &BindingId::random(), "user-taken", &first, now).await;
        answers.push(("already bound", outcome(again)));

        put_counter(
            &services,
            "G#user-full".into(),
            "bound",
            MAX_RELATIVES_PER_GUARDIAN,
        )
        .await;
        let ninth = create(&services, &BindingId::random(), "user-full", &second, now).await;
        answers.push(("guardian full", outcome(ninth)));

        let popular = person(&services, 5, now);
        put_counter(
            &services,
            format!("R#{}", popular.relative_key),
            "guardians",
            MAX_GUARDIANS_PER_RELATIVE,
        )
        .await;
        let fourth = create(&services, &BindingId::random(), "user-late", &popular, now).await;
        answers.push(("relative full", outcome(fourth)));

        // Bound, verified, unbound a day later: the id's codes may still be shown.
        let active = active_relative(&services, "user-retired", now).await;
        let later = now + Duration::hours(25);
        unbind_relative(&services, "user-retired", &active, later).await;
        let reused = create(
            &services,
            &active.id,
            "user-retired",
            &person(&services, 5, now),
            later,
        )
        .await;
        answers.push(("id retired", outcome(reused)));

        // The first start moves the version on: `pending` is stale.
        services
            .store
            .reserve_face_attempt(&pending, "attempt-1", &[], ctx(now))
            .await
            .expect("first start");
        let raced = services
            .store
            .reserve_face_attempt(&pending, "attempt-2", &[], ctx(now))
            .await;
        answers.push(("face start on a stale binding", outcome(raced)));
        let pledge = Verification::Pledge {
            version: "test".into(),
        };
        let raced = services
            .store
            .activate(pending.clone(), pledge, ctx(now))
            .await;
        answers.push(("activation of a stale binding", outcome(raced)));
        let raced = services.store.delete_binding(&pending, &[], ctx(now)).await;
        answers.push(("unbind of a stale pending binding", outcome(raced)));

        let active = active_relative(&services, "user-active", now).await;
        let card = card_of(&active, "00aa", now);
        services
            .store
            .record_offline_card(&active, &card, ctx(now))
            .await
            .expect("card");
        // The card moved the binding's version on: `active` is stale.
        let raced = services
            .store
            .delete_binding(&active, &[card], ctx(later))
            .await;
        answers.push(("unbind of a stale active binding", outcome(raced)));
        answers
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_transition_refusals_read_the_same_in_every_order() {
    let expected = [
        ("notice told", "Ok(true)"),
        ("notice told twice", "Ok(false)"),
        ("notice due after face verification", "Ok(false)"),
        ("face verification of a stale binding", "Conflict"),
        ("end of a stale binding", "Conflict"),
    ];
    same_answers_in_every_order(&expected, |services| async move {
        let now = Utc::now();
        let mut answers = Vec::new();
        // A five-year-old bound with the pledge: face due at 7, the end at 17.
        let child = active_relative(&services, "user-ages", now).await;
        let due = |transition: &str| {
            let (store, sk) = (
                &services.store,
                format!("AGE#{}#{transition}", child.id.as_str()),
            );
            async move {
                store
                    .due_age_transition("G#user-ages", &sk)
                    .await
                    .expect("read")
                    .expect("still to come")
            }
        };
        let (notice, face_due) = (due("ending_notice").await, due("face_due").await);
        let tell = |due, action| {
            let store = &services.store;
            async move {
                format!(
                    "{:?}",
                    store.record_age_notice(&due, action, ctx(now)).await
                )
            }
        };
        answers.push((
            "notice told",
            tell(notice.clone(), AuditAction::EndingNotice).await,
        ));
        answers.push((
            "notice told twice",
            tell(notice, AuditAction::EndingNotice).await,
        ));
        let at_seven = child
            .transitions
            .face_due_at
            .expect("bound with the pledge");
        let face = Verification::Face {
            certify_id: "certify-1".into(),
        };
        services
            .store
            .activate(child.clone(), face.clone(), ctx(at_seven))
            .await
            .expect("verified again");
        answers.push((
            "notice due after face verification",
            tell(face_due, AuditAction::FaceVerificationDue).await,
        ));
        // Verified again: `child` is stale.
        let raced = services
            .store
            .activate(child.clone(), face, ctx(at_seven))
            .await;
        answers.push(("face verification of a stale binding", outcome(raced)));
        let ends = child.transitions.ends_at.expect("a child");
        let raced = services.store.age_out_binding(&child, &[], ctx(ends)).await;
        answers.push(("end of a stale binding", outcome(raced)));
        answers
    })
    .await;
}

fn card_of(binding: &Binding, serial: &str, at: DateTime<Utc>) -> OfflineCardRecord {
    OfflineCardRecord {
        binding_id: binding.id.as_str().into(),
        serial: serial.into(),
        object_key: format!("cards/{}/{serial}.png", binding.id.as_str()),
        generated_at: at,
        valid_until: at + Duration::days(7),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_card_refusals_read_the_same_in_every_order() {
    let expected = [
        ("first card", "Ok"),
        (
            "card already recorded",
            r#"Unknown(DependencyUnavailable("offline card: already recorded"))"#,
        ),
        ("second card", "Ok"),
        ("third card", "Ok"),
        ("day's quota used", "Refused(OfflineCodeLimitReached)"),
        ("binding not active", "Refused(BindingNotFound)"),
    ];
    same_answers_in_every_order(&expected, |services| async move {
        let now = Utc::now();
        let store = &services.store;
        let mut answers = Vec::new();
        let active = active_relative(&services, "user-cards", now).await;
        let first = card_of(&active, "01", now);
        let recorded = store.record_offline_card(&active, &first, ctx(now)).await;
        answers.push(("first card", outcome(recorded)));
        let again = store.record_offline_card(&active, &first, ctx(now)).await;
        answers.push(("card already recorded", outcome(again)));
        for (case, serial) in [("second card", "02"), ("third card", "03")] {
            let card = card_of(&active, serial, now);
            let recorded = store.record_offline_card(&active, &card, ctx(now)).await;
            answers.push((case, outcome(recorded)));
        }
        let fourth = card_of(&active, "04", now);
        let refused = store.record_offline_card(&active, &fourth, ctx(now)).await;
        answers.push(("day's quota used", outcome(refused)));

        let pending = bind_relative(&services, "user-cards", &distinct_resident_id(72, now), now)
            .await
            .expect("pending binding");
        let card = card_of(&pending, "05", now);
        let refused = store.record_offline_card(&pending, &card, ctx(now)).await;
        answers.push(("binding not active", outcome(refused)));
        answers
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn household_sheet_refusals_read_the_same_in_every_order() {
    let expected = [
        ("first sheet", "Ours"),
        ("the same sheet again (a landed attempt)", "Ours"),
        ("another request's sheet under the id", "Theirs"),
    ];
    same_answers_in_every_order(&expected, |services| async move {
        let now = Utc::now();
        let store = &services.store;
        let sheet = |pdf: &str| HouseholdSheetRecord {
            sheet_id: "0123456789abcdef0123456789abcdef".into(),
            guardian: "user-sheets".into(),
            pdf_key: format!("household/{pdf}.pdf"),
            preview_key: format!("household/{pdf}.png"),
            pages: 1,
            generated_at: now,
            valid_until: now + Duration::days(7),
            cards: Vec::new(),
            left_out: Vec::new(),
        };
        let recorded = |result: Result<SheetRecorded, _>| match result {
            Ok(SheetRecorded::Ours) => "Ours".to_owned(),
            Ok(SheetRecorded::Theirs(_)) => "Theirs".to_owned(),
            Err(e) => format!("{e:?}"),
        };
        let mut answers = Vec::new();
        let first = store.record_household_sheet(&sheet("a")).await;
        answers.push(("first sheet", recorded(first)));
        let again = store.record_household_sheet(&sheet("a")).await;
        answers.push(("the same sheet again (a landed attempt)", recorded(again)));
        let other = store.record_household_sheet(&sheet("b")).await;
        answers.push(("another request's sheet under the id", recorded(other)));
        answers
    })
    .await;
}

/// The store's registration of `binding`'s relative at `position` in `tube` (pooled, at the
/// test site), as if the tube had been read so.
async fn register(
    services: &Services,
    binding: &Binding,
    tube: &TubeId,
    position: u32,
    idempotency_key: Option<&str>,
    at: DateTime<Utc>,
) -> Result<RegisteredSample, RegisterError> {
    let registration = SampleRegistration {
        tube,
        relative_key: &binding.relative_key,
        binding: &binding.id,
        site: &test_site(),
        admission: Admission {
            kind: TubeKind::Pooled10,
            position,
        },
        actor: "site-test",
        idempotency_key,
    };
    services.store.register_sample(registration, ctx(at)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_and_result_refusals_read_the_same_in_every_order() {
    let expected = [
        ("first in the tube", "Ok"),
        ("already in the tube", "AlreadyInTube"),
        ("tube changed since read", "TubeChanged"),
        ("tube opened meanwhile", "TubeChanged"),
        ("code revoked", "CodeRevoked"),
        ("with a key", "Ok"),
        ("key sent again", "Ok"),
        ("key reused for another person", "KeyReused"),
        ("result on a tube changed since read", "Ok(false)"),
        ("result", "Ok(true)"),
    ];
    same_answers_in_every_order(&expected, |services| async move {
        let now = Utc::now();
        let store = &services.store;
        let mut answers = Vec::new();
        let register = |binding, tube, position, key, at| {
            register(&services, binding, tube, position, key, at)
        };
        let (first, second) = (
            active_relative(&services, "user-a", now).await,
            active_relative(&services, "user-b", now).await,
        );
        let tube = TubeId::parse(&fresh_tube()).expect("tube");
        let later = now + Duration::seconds(1);
        answers.push((
            "first in the tube",
            outcome(register(&first, &tube, 1, None, now).await),
        ));
        answers.push((
            "already in the tube",
            outcome(register(&first, &tube, 2, None, later).await),
        ));
        answers.push((
            "tube changed since read",
            outcome(register(&second, &tube, 3, None, later).await),
        ));
        answers.push((
            "tube opened meanwhile",
            outcome(register(&second, &tube, 1, None, later).await),
        ));
        let pending = bind_relative(&services, "user-c", &distinct_resident_id(72, now), now)
            .await
            .expect("pending binding");
        let other_tube = TubeId::parse(&fresh_tube()).expect("tube");
        answers.push((
            "code revoked",
            outcome(register(&pending, &other_tube, 1, None, now).await),
        ));

        let key = fresh_idempotency_key();
        let keyed_tube = TubeId::parse(&fresh_tube()).expect("tube");
        let registered = register(&second, &keyed_tube, 1, Some(&key), now).await;
        answers.push(("with a key", outcome(registered.as_ref())));
        let replayed = register(&second, &keyed_tube, 1, Some(&key), now).await;
        answers.push((
            "key sent again",
            match (&registered, replayed) {
                (Ok(first), Ok(again)) if *first == again => "Ok".into(),
                (_, again) => format!("{again:?}"),
            },
        ));
        let elsewhere = TubeId::parse(&fresh_tube()).expect("tube");
        answers.push((
            "key reused for another person",
            outcome(register(&first, &elsewhere, 1, Some(&key), later).await),
        ));

        let record = store.tube(&tube, now).await.unwrap().expect("the tube");
        let mut changed = record.clone();
        changed.filled += 1;
        let reported = store
            .record_result(
                &tube,
                &changed,
                LabResult::Negative,
                now,
                "lab-test",
                ctx(now),
            )
            .await;
        answers.push((
            "result on a tube changed since read",
            format!("{reported:?}"),
        ));
        let reported = store
            .record_result(
                &tube,
                &record,
                LabResult::Negative,
                now,
                "lab-test",
                ctx(now),
            )
            .await;
        answers.push(("result", format!("{reported:?}")));
        answers
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flag_refusals_read_the_same_in_every_order() {
    let expected = [
        ("set", "Ok(Stored)"),
        ("set again", "Ok(Unchanged)"),
        ("cleared", "Ok(Cleared)"),
        ("cleared again", "Ok(Unchanged)"),
    ];
    same_answers_in_every_order(&expected, |services| async move {
        let now = Utc::now();
        let signal = RiskSignal {
            flag: RiskFlag::CloseContact,
            effective_at: now,
            until: None,
        };
        let set = FlagWrite::Set {
            relative_key: "relative-flagged",
            signal,
        };
        let clear = FlagWrite::Clear {
            relative_key: "relative-flagged",
            flag: RiskFlag::CloseContact,
        };
        let mut answers = Vec::new();
        for (case, write) in [
            ("set", set),
            ("set again", set),
            ("cleared", clear),
            ("cleared again", clear),
        ] {
            let written = services
                .store
                .write_flag(write, "authority", ctx(now))
                .await;
            answers.push((case, format!("{written:?}")));
        }
        answers
    })
    .await;
}

/// A report of `against`'s binding of `binding`'s relative, through the store.
async fn open_dispute(
    services: &Services,
    binding: &Binding,
    against: &str,
    at: DateTime<Utc>,
) -> Result<Dispute, OpenDisputeError> {
    let store = &services.store;
    let members = store
        .guardians_of(&binding.relative_key)
        .await
        .expect("members");
    let disputed = members
        .iter()
        .find(|m| m.guardian.as_str() == against)
        .expect("a co-guardian");
    let handle = |g: &str| store.keys().guardian_handle(&binding.relative_key, g);
    let new = NewDispute {
        id: &DisputeId::opened_at(at),
        reporter: binding,
        reporter_handle: &handle(binding.guardian.as_str()),
        disputed,
        disputed_handle: &handle(against),
        reason: DisputeReason::NotFamily,
        details: &DisputeDetails::parse("", DisputeReason::NotFamily).expect("no words"),
    };
    store.open_dispute(new, ctx(at)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispute_refusals_read_the_same_in_every_order() {
    let expected = [
        ("first report", "Ok"),
        ("the same binding again", "AlreadyOpen"),
        ("second report", "Ok"),
        ("third report", "Ok"),
        ("the day's fourth", "TooMany"),
        ("the reported binding ended", "DisputedGone"),
        ("dismissed", "Ok"),
        ("resolved again", "AlreadyResolved"),
        ("upheld with a stale binding", "BindingChanged"),
        ("upheld, the binding gone", "Ok"),
        ("banned guardian binds", "Banned"),
    ];
    same_answers_in_every_order(&expected, |services| async move {
        let now = Utc::now();
        let store = &services.store;
        let mut answers = Vec::new();
        let mut opened = Vec::new();
        // The reporter holds two children, each held by two others.
        let (mut children, mut persons) = (Vec::new(), Vec::new());
        for child in 0..2 {
            let person = distinct_resident_id(5, now);
            persons.push(person.clone());
            let mine = active_relative_with(&services, "user-reporter", &person, now).await;
            for other in ["a", "b"] {
                let guardian = format!("user-{child}{other}");
                active_relative_with(&services, &guardian, &person, now).await;
            }
            children.push(mine);
        }
        let first = open_dispute(&services, &children[0], "user-0a", now).await;
        answers.push(("first report", outcome(first.as_ref())));
        opened.push(first.expect("opened"));
        let again = open_dispute(&services, &children[0], "user-0a", now).await;
        answers.push(("the same binding again", outcome(again)));
        for (case, child, against) in [
            ("second report", 0, "user-0b"),
            ("third report", 1, "user-1a"),
        ] {
            let report = open_dispute(&services, &children[child], against, now).await;
            answers.push((case, outcome(report.as_ref())));
            opened.push(report.expect("opened"));
        }
        let fourth = open_dispute(&services, &children[1], "user-1b", now).await;
        answers.push(("the day's fourth", outcome(fourth)));

        // Another reporter, whose reported guardian unbinds between the read and the write.
        let person = distinct_resident_id(5, now);
        let bound_at = now - Duration::hours(25);
        let mother = active_relative_with(&services, "user-mother", &person, bound_at).await;
        let leaving = active_relative_with(&services, "user-leaving", &person, bound_at).await;
        let members = store.guardians_of(&mother.relative_key).await.unwrap();
        let disputed = members
            .iter()
            .find(|m| m.guardian == leaving.guardian)
            .unwrap()
            .clone();
        unbind_relative(&services, "user-leaving", &leaving, now).await;
        let handle = |g: &str| store.keys().guardian_handle(&mother.relative_key, g);
        let gone = store
            .open_dispute(
                NewDispute {
                    id: &DisputeId::opened_at(now),
                    reporter: &mother,
                    reporter_handle: &handle("user-mother"),
                    disputed: &disputed,
                    disputed_handle: &handle("user-leaving"),
                    reason: DisputeReason::Impersonation,
                    details: &DisputeDetails::parse("", DisputeReason::Impersonation).unwrap(),
                },
                ctx(now),
            )
            .await;
        answers.push(("the reported binding ended", outcome(gone)));

        let dismissed = store
            .resolve_dispute(&opened[0], Resolution::Dismiss, "authority", ctx(now))
            .await;
        answers.push(("dismissed", outcome(dismissed)));
        let again = store
            .resolve_dispute(&opened[0], Resolution::Dismiss, "authority", ctx(now))
            .await;
        answers.push(("resolved again", outcome(again)));

        // The reported binding as read, then changed by an offline card's version move.
        let target = &opened[1];
        let read = store
            .binding(&target.disputed_guardian, &target.disputed_binding)
            .await
            .unwrap()
            .unwrap();
        let card = card_of(&read, "0d15", now);
        store
            .record_offline_card(&read, &card, ctx(now))
            .await
            .expect("card");
        let uphold = |binding| Resolution::Uphold {
            binding,
            offline_cards: &[],
            banned_until: now + Duration::days(180),
        };
        let stale = store
            .resolve_dispute(target, uphold(Some(&read)), "authority", ctx(now))
            .await;
        answers.push(("upheld with a stale binding", outcome(stale)));
        // Its guardian unbinds it (a day later); the uphold then records the outcome anyway.
        let current = store
            .binding(&target.disputed_guardian, &target.disputed_binding)
            .await
            .unwrap()
            .unwrap();
        store
            .delete_binding(&current, &[card], ctx(now + Duration::hours(25)))
            .await
            .expect("unbound");
        let upheld = store
            .resolve_dispute(target, uphold(None), "authority", ctx(now))
            .await;
        answers.push(("upheld, the binding gone", outcome(upheld)));

        // The upheld report was of child 0's binding by `user-0b`.
        let banned_person = Person {
            id_number: ResidentId::parse(&persons[0], china_date(now)).unwrap(),
            relative_key: read.relative_key.clone(),
        };
        let rebind = create(
            &services,
            &BindingId::random(),
            read.guardian.as_str(),
            &banned_person,
            now,
        )
        .await;
        answers.push(("banned guardian binds", outcome(rebind)));
        answers
    })
    .await;
}
