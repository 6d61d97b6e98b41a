//! The access log (`common/src/usecases/access_log.rs`, `store/access_log.rs`) against the
//! local stack: each action's entry lands with the action, a code shown is one entry per
//! guardian per hour however many phones race, and a log entry never brings back a binding.

use chrono::{Duration, Utc};
use kincode_common::domain::access_log::shown_hour;
use kincode_common::domain::binding::BindingStatus;
use kincode_common::usecases::access_log;
use kincode_common::usecases::codes::show;
use kincode_common::wiring::services::Services;
use kincode_tests::*;

async fn log_kinds(services: &Services) -> Vec<String> {
    let mut entries: Vec<(String, String)> = all_items(services)
        .await
        .into_iter()
        .filter_map(|item| {
            let sk = item.get("sk")?.as_s().ok()?.clone();
            let kind = item.get("kind")?.as_s().ok()?.clone();
            sk.starts_with("AL#").then_some((sk, kind))
        })
        .collect();
    entries.sort();
    entries.into_iter().map(|(_, kind)| kind).collect()
}

#[tokio::test]
async fn simultaneous_first_shows_of_an_hour_write_one_entry_and_the_next_hour_another() {
    let services = fresh_services().await;
    let keys = test_key_ring();
    let t0 = Utc::now() - Duration::hours(3);
    let binding = active_relative(&services, "user-phones", t0).await;
    let hour = shown_hour(t0) + Duration::hours(1);
    // Eight phones (or retries) of one guardian, all the first show of the hour, all having
    // read the binding before any of them wrote.
    let shows = (0..8).map(|i| {
        let (services, keys, binding) = (&services, &keys, &binding);
        async move {
            show::online_code(
                &services.store,
                keys,
                &binding.guardian,
                &binding.id,
                request_at(hour + Duration::milliseconds(i)),
            )
            .await
        }
    });
    for shown in futures_util::future::join_all(shows).await {
        shown.expect("every show answers its code");
    }
    assert_eq!(
        log_kinds(&services).await,
        ["bound", "verified", "code_shown"]
    );

    show::online_code(
        &services.store,
        &keys,
        &binding.guardian,
        &binding.id,
        request_at(hour + Duration::minutes(59)),
    )
    .await
    .unwrap();
    show::online_code(
        &services.store,
        &keys,
        &binding.guardian,
        &binding.id,
        request_at(hour + Duration::minutes(60)),
    )
    .await
    .unwrap();
    assert_eq!(
        log_kinds(&services).await,
        ["bound", "verified", "code_shown", "code_shown"]
    );
}

#[tokio::test]
async fn a_show_read_before_an_unbind_never_brings_the_binding_back() {
    let services = fresh_services().await;
    let t0 = Utc::now() - Duration::hours(30);
    let binding = active_relative(&services, "user-late-show", t0).await;
    let later = t0 + Duration::hours(25);
    unbind_relative(&services, "user-late-show", &binding, later).await;
    // The phone read the binding before the unbind and records its show after it.
    services
        .store
        .record_code_shown(&binding, request_at(later + Duration::seconds(1)))
        .await
        .expect("a show of an ended binding records nothing, quietly");
    assert!(services
        .store
        .binding(&binding.guardian, &binding.id)
        .await
        .unwrap()
        .is_none());
    assert_eq!(log_kinds(&services).await, ["bound", "verified", "unbound"]);
}

#[tokio::test]
async fn each_guardian_reads_from_their_own_binding_on_and_a_pending_one_reads_nothing() {
    let services = fresh_services().await;
    let t0 = Utc::now() - Duration::hours(2);
    let id_number = distinct_resident_id(70, t0);
    let first = active_relative_with(&services, "user-first", &id_number, t0).await;
    let second_at = t0 + Duration::minutes(30);
    let second = bind_relative(&services, "user-second", &id_number, second_at)
        .await
        .unwrap();
    assert_eq!(second.status, BindingStatus::PendingVerification);
    let now = second_at + Duration::minutes(1);
    let read = |binding: &kincode_common::domain::binding::Binding| {
        let (services, guardian, id) = (&services, binding.guardian.clone(), binding.id.clone());
        async move {
            access_log::access_log(&services.store, &guardian, &id, 20, None, request_at(now)).await
        }
    };
    assert!(read(&second).await.is_err(), "pending: nothing to read");
    let second = activate(&services, &second, now).await;
    let by_first = read(&first).await.unwrap();
    let by_second = read(&second).await.unwrap();
    let kinds = |view: &access_log::AccessLogView| {
        view.entries
            .iter()
            .map(|e| (e.kind.as_str(), view.by_caller(e)))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(&by_first),
        [
            ("verified", false),
            ("bound", false),
            ("verified", true),
            ("bound", true)
        ]
    );
    assert_eq!(kinds(&by_second), [("verified", true), ("bound", true)]);
}
