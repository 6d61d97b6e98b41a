//! Face verification through the production adapter (`AlipayCertify`) against the local Alipay
//! stand-in, which checks every request's signature as the open platform does: pass; fail
//! (counted, locked out after 5); abandoned sessions (counted too); not finished; an expired
//! session; a tampered response (refused and audited); a busy, refusing, declining, unreachable
//! or slow gateway (503, no session recorded); what `outer_order_no` carries; simultaneous
//! starts and completions (Alipay asked at most the limits' number of times).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hyper::http::{Method, StatusCode};
use kincode_common::adapters::face::alipay::AlipaySettings;
use kincode_common::adapters::face::AlipayCertify;
use kincode_common::domain::binding::{Binding, BindingStatus};
use kincode_common::domain::policy::{FACE_FAILURES_PER_WINDOW, FACE_QUERIES_PER_SESSION};
use kincode_common::error::AppError;
use kincode_common::store::ActionContext;
use kincode_common::usecases::bindings::{self, CompleteRequest, VerificationStart};
use kincode_common::wiring::services::Services;
use kincode_localdev::alipay::{generate_key_pair, AlipayStandIn, Outcome, RunningStandIn};
use kincode_localdev::client::HttpClient;
use kincode_tests::*;
use serde_json::{json, Value};

const APP_ID: &str = "2021000000000001";

fn settings(gateway: &str, app_private_key: &str, alipay_public_key: &str) -> AlipaySettings {
    AlipaySettings {
        gateway: gateway.into(),
        app_id: APP_ID.into(),
        app_private_key: app_private_key.into(),
        alipay_public_key: alipay_public_key.into(),
        return_url: "alipays://platformapi/startapp?appId=2021000000000001&page=pages/verify/done"
            .into(),
    }
}

async fn alipay() -> (AlipayCertify, RunningStandIn) {
    let (app_private, app_public) = generate_key_pair();
    let stand_in = AlipayStandIn::start(APP_ID, &app_public).await.unwrap();
    let face = AlipayCertify::new(&settings(
        &stand_in.gateway(),
        &app_private,
        &stand_in.alipay_public_key,
    ))
    .unwrap()
    .with_attempt_timeout(Duration::from_millis(800));
    (face, stand_in)
}

/// A pending binding of an elder: face recognition applies.
async fn elder(services: &Services) -> Binding {
    let id = distinct_resident_id(70, Utc::now());
    bind_relative(services, EVENT_GUARDIAN, &id, Utc::now())
        .await
        .unwrap()
}

fn ctx() -> ActionContext<'static> {
    ActionContext {
        request_id: "alipay-test",
        at: Utc::now(),
    }
}

async fn start(
    services: &Services,
    face: &AlipayCertify,
    binding: &Binding,
) -> Result<(String, String), AppError> {
    match bindings::start_verification(&services.store, face, &binding.guardian, &binding.id, ctx())
        .await?
    {
        VerificationStart::Face {
            certify_id,
            certify_url,
        } => Ok((certify_id, certify_url.expect("a certify URL"))),
        other => panic!("face expected, got {other:?}"),
    }
}

async fn complete(
    services: &Services,
    face: &AlipayCertify,
    binding: &Binding,
    certify_id: &str,
    evidence: Value,
) -> Result<Binding, AppError> {
    let request = CompleteRequest {
        certify_id: Some(certify_id.into()),
        evidence,
        pledge_version: None,
        accepted: None,
    };
    bindings::complete_verification(
        &services.store,
        face,
        &binding.guardian,
        &binding.id,
        request,
        ctx(),
    )
    .await
}

/// What the person does in the mini-program: opens the certify page and passes the scan.
async fn scan_face(certify_url: &str) {
    let page = HttpClient::default()
        .send(Method::GET, certify_url, &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(
        page.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&page.body)
    );
}

async fn stored(services: &Services, binding: &Binding) -> Binding {
    services
        .store
        .binding(&binding.guardian, &binding.id)
        .await
        .unwrap()
        .unwrap()
}

/// The binding's version and the table's item count: what a call that changes nothing leaves.
async fn state(services: &Services, binding: &Binding) -> (u64, usize) {
    (
        stored(services, binding).await.version,
        all_items(services).await.len(),
    )
}

async fn audit_actions(services: &Services) -> Vec<String> {
    all_items(services)
        .await
        .iter()
        .filter_map(|i| i.get("action")?.as_s().ok().cloned())
        .collect()
}

#[tokio::test]
async fn a_passed_scan_activates_the_binding() {
    let services = fresh_services().await;
    let (face, _stand_in) = alipay().await;
    let binding = elder(&services).await;
    let (certify_id, certify_url) = start(&services, &face, &binding).await.unwrap();
    assert!(certify_url.contains("method=alipay.user.certify.open.certify"));
    assert!(certify_url.contains("&sign=") || certify_url.contains("?sign="));
    scan_face(&certify_url).await;
    let active = complete(
        &services,
        &face,
        &binding,
        &certify_id,
        json!({"result_status": "9000"}),
    )
    .await
    .unwrap();
    assert_eq!(active.status, BindingStatus::Active);
}

#[tokio::test]
async fn an_unfinished_scan_counts_nothing_and_can_still_pass() {
    let services = fresh_services().await;
    let (face, _stand_in) = alipay().await;
    let binding = elder(&services).await;
    let (certify_id, certify_url) = start(&services, &face, &binding).await.unwrap();
    let early = complete(
        &services,
        &face,
        &binding,
        &certify_id,
        json!({"result_status": "6001"}),
    )
    .await;
    assert!(matches!(early, Err(AppError::FaceNotFinished)), "{early:?}");
    let err = early.unwrap_err();
    assert_eq!(
        (err.status(), err.message()),
        (409, "请先在支付宝中完成人脸识别,再提交认证")
    );
    assert!(stored(&services, &binding).await.face_failures.is_empty());
    scan_face(&certify_url).await;
    let active = complete(&services, &face, &binding, &certify_id, Value::Null)
        .await
        .unwrap();
    assert_eq!(active.status, BindingStatus::Active);
}

#[tokio::test]
async fn failures_are_counted_and_the_sixth_attempt_waits_an_hour() {
    let services = fresh_services().await;
    let (face, stand_in) = alipay().await;
    let binding = elder(&services).await;
    for attempt in 1..=5 {
        let (certify_id, _) = start(&services, &face, &binding).await.unwrap();
        stand_in.stand_in.script(&certify_id, Outcome::Fail);
        let failed = complete(
            &services,
            &face,
            &binding,
            &certify_id,
            json!({"result_status": "4000"}),
        )
        .await;
        let err = failed.unwrap_err();
        assert_eq!(
            (err.code(), err.message()),
            ("face_verification_failed", "人脸识别认证失败,请重新认证"),
            "attempt {attempt}"
        );
    }
    assert_eq!(stored(&services, &binding).await.face_failures.len(), 5);
    let locked = start(&services, &face, &binding).await;
    assert!(
        matches!(locked, Err(AppError::TooManyFaceAttempts { .. })),
        "{locked:?}"
    );
}

#[tokio::test]
async fn abandoned_sessions_count_as_failures_and_the_sixth_start_waits_an_hour() {
    let services = fresh_services().await;
    let (face, stand_in) = alipay().await;
    let binding = elder(&services).await;
    // A client that never reports how a scan ended: each new start abandons the last session.
    let mut last = None;
    for _ in 1..=5 {
        last = Some(start(&services, &face, &binding).await.unwrap());
    }
    assert_eq!(stored(&services, &binding).await.face_failures.len(), 4);
    let before = state(&services, &binding).await;
    let locked = start(&services, &face, &binding).await.unwrap_err();
    assert!(
        matches!(locked, AppError::TooManyFaceAttempts { .. }),
        "{locked:?}"
    );
    assert_eq!(locked.status(), 429);
    assert_eq!(
        stand_in.stand_in.outer_order_nos().len(),
        5,
        "the refused start opened no (billable) session"
    );
    assert_eq!(state(&services, &binding).await, before, "nothing written");
    // The pending session is not spent by the refusal: it can still pass.
    let (certify_id, certify_url) = last.unwrap();
    scan_face(&certify_url).await;
    let active = complete(&services, &face, &binding, &certify_id, Value::Null)
        .await
        .unwrap();
    assert_eq!(active.status, BindingStatus::Active);
}

#[tokio::test]
async fn an_expired_session_must_be_started_again() {
    let services = fresh_services().await;
    let (face, stand_in) = alipay().await;
    let binding = elder(&services).await;
    let (certify_id, _) = start(&services, &face, &binding).await.unwrap();
    stand_in.stand_in.script(&certify_id, Outcome::Expired);
    let expired = complete(&services, &face, &binding, &certify_id, Value::Null).await;
    assert!(
        matches!(expired, Err(AppError::FaceSessionExpired)),
        "{expired:?}"
    );
    assert!(stored(&services, &binding).await.face_failures.is_empty());
}

#[tokio::test]
async fn a_tampered_answer_is_refused_and_audited_never_a_pass() {
    let services = fresh_services().await;
    let (face, stand_in) = alipay().await;
    let binding = elder(&services).await;
    let (certify_id, certify_url) = start(&services, &face, &binding).await.unwrap();
    scan_face(&certify_url).await;
    stand_in.stand_in.script(&certify_id, Outcome::BadSignature);
    let refused = complete(&services, &face, &binding, &certify_id, Value::Null).await;
    assert!(
        matches!(refused, Err(AppError::FaceProviderUntrusted)),
        "{refused:?}"
    );
    assert_eq!(refused.unwrap_err().status(), 503);
    let now = stored(&services, &binding).await;
    assert_eq!(now.status, BindingStatus::PendingVerification);
    assert!(now.face_failures.is_empty());
    assert!(audit_actions(&services)
        .await
        .contains(&"face_response_rejected".to_owned()));

    // A tampered answer to initialize is refused (and audited) too.
    stand_in
        .stand_in
        .script_next_initialize(Outcome::BadSignature);
    let refused = start(&services, &face, &binding).await;
    assert!(
        matches!(refused, Err(AppError::FaceProviderUntrusted)),
        "{refused:?}"
    );
    let rejected = audit_actions(&services)
        .await
        .iter()
        .filter(|a| *a == "face_response_rejected")
        .count();
    assert_eq!(rejected, 2);
}

#[tokio::test]
async fn a_busy_unreachable_or_slow_gateway_is_503_and_changes_nothing_but_the_counts() {
    let services = fresh_services().await;
    let (face, stand_in) = alipay().await;
    let binding = elder(&services).await;
    let (certify_id, _) = start(&services, &face, &binding).await.unwrap();
    let before = state(&services, &binding).await;

    // Nobody listening at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gateway = format!("http://{}/gateway.do", closed.local_addr().unwrap());
    drop(closed);
    let (app_private, _) = generate_key_pair();
    let unreachable = AlipayCertify::new(&settings(
        &gateway,
        &app_private,
        &stand_in.alipay_public_key,
    ))
    .unwrap();

    for outcome in [Outcome::Error, Outcome::Slow] {
        stand_in.stand_in.script(&certify_id, outcome);
        let answer = complete(&services, &face, &binding, &certify_id, Value::Null).await;
        let err = answer.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (503, "service_unavailable"),
            "{outcome:?}"
        );
    }
    let completed = complete(&services, &unreachable, &binding, &certify_id, Value::Null)
        .await
        .unwrap_err();
    assert_eq!(
        (completed.status(), completed.code()),
        (503, "service_unavailable")
    );
    // The session stands, uncounted as a failure; only its queries were counted.
    assert_eq!(state(&services, &binding).await, before, "nothing written");
    let now = stored(&services, &binding).await;
    assert_eq!(now.pending_certify_id.as_deref(), Some(certify_id.as_str()));
    assert!(now.face_failures.is_empty());
    assert_eq!(now.face_queries, 3);

    // A start whose call fails records no session. Its attempt stays reserved, since a
    // slow answer may have opened a (billable) session, and the next start counts it.
    stand_in.stand_in.script_next_initialize(Outcome::Error);
    assert_eq!(
        start(&services, &face, &binding)
            .await
            .unwrap_err()
            .status(),
        503
    );
    stand_in.stand_in.script_next_initialize(Outcome::Slow);
    assert_eq!(
        start(&services, &face, &binding)
            .await
            .unwrap_err()
            .status(),
        503
    );
    let started = start(&services, &unreachable, &binding).await.unwrap_err();
    assert_eq!(
        (started.status(), started.code()),
        (503, "service_unavailable")
    );
    let now = stored(&services, &binding).await;
    assert_eq!(now.status, BindingStatus::PendingVerification);
    assert_eq!(now.pending_certify_id, None, "no session recorded");
    assert_eq!(
        now.face_failures.len(),
        3,
        "the session and two attempts abandoned"
    );
}

/// A refusal of `outcome` answered to initialize and to query: 503 `service_unavailable`
/// naming Alipay's codes (for the log), no session recorded (the start's attempt stays
/// reserved), nothing written by the query, nothing audited as tampering.
async fn refusal_is_503_and_records_no_session(outcome: Outcome, sub_code: &str) {
    let services = fresh_services().await;
    let (face, stand_in) = alipay().await;
    let binding = elder(&services).await;
    let unavailable = |err: AppError| {
        assert_eq!(
            (err.status(), err.code()),
            (503, "service_unavailable"),
            "{err:?}"
        );
        assert!(err.to_string().contains(sub_code), "{err}");
    };

    stand_in.stand_in.script_next_initialize(outcome);
    unavailable(start(&services, &face, &binding).await.unwrap_err());
    assert_eq!(stored(&services, &binding).await.pending_certify_id, None);

    let (certify_id, _) = start(&services, &face, &binding).await.unwrap();
    let before = state(&services, &binding).await;
    stand_in.stand_in.script(&certify_id, outcome);
    let evidence = json!({"result_status": "9000"});
    unavailable(
        complete(&services, &face, &binding, &certify_id, evidence)
            .await
            .unwrap_err(),
    );
    assert_eq!(state(&services, &binding).await, before, "nothing written");
    assert!(!audit_actions(&services)
        .await
        .contains(&"face_response_rejected".to_owned()));
}

#[tokio::test]
async fn the_gateways_error_response_is_503_and_records_no_session_not_a_tampering() {
    refusal_is_503_and_records_no_session(Outcome::Refused, "isv.invalid-signature").await;
}

#[tokio::test]
async fn a_business_refusal_is_503_and_records_no_session() {
    refusal_is_503_and_records_no_session(Outcome::Declined, "isv.insufficient-isv-permissions")
        .await;
}

#[tokio::test]
async fn each_attempt_sends_its_own_outer_order_no_traceable_to_the_binding_alone() {
    let services = fresh_services().await;
    let (face, stand_in) = alipay().await;
    let id_number = distinct_resident_id(70, Utc::now());
    let binding = bind_relative(&services, EVENT_GUARDIAN, &id_number, Utc::now())
        .await
        .unwrap();
    start(&services, &face, &binding).await.unwrap();
    start(&services, &face, &binding).await.unwrap();
    let sent = stand_in.stand_in.outer_order_nos();
    assert_eq!(sent.len(), 2);
    assert_ne!(sent[0], sent[1], "unique per attempt");
    let binding_hex = binding.id.as_str().replace('-', "");
    for outer_order_no in &sent {
        assert_eq!(outer_order_no.len(), 32, "{outer_order_no}");
        assert_eq!(&outer_order_no[..16], &binding_hex[..16], "traceable");
        // Hex digits only, so no character of the name; and no run of the ID number.
        assert!(
            outer_order_no.bytes().all(|b| b.is_ascii_hexdigit()),
            "{outer_order_no}"
        );
        for run in id_number.as_bytes().windows(8) {
            let run = std::str::from_utf8(run).unwrap();
            assert!(!outer_order_no.contains(run), "{outer_order_no} has {run}");
        }
    }
}

#[tokio::test]
async fn the_stand_in_refuses_requests_not_signed_by_the_app() {
    let services = fresh_services().await;
    let (_, stand_in) = alipay().await;
    // Another app key than the one the stand-in knows: Alipay's gateway answers
    // isv.invalid-signature in `error_response`, a failed dependency (503), not a session.
    let (other_private, _) = generate_key_pair();
    let impostor = AlipayCertify::new(&settings(
        &stand_in.gateway(),
        &other_private,
        &stand_in.alipay_public_key,
    ))
    .unwrap();
    let binding = elder(&services).await;
    let refused = start(&services, &impostor, &binding).await.unwrap_err();
    assert_eq!(
        (refused.status(), refused.code()),
        (503, "service_unavailable"),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("isv.invalid-signature"),
        "{refused}"
    );
    assert_eq!(stored(&services, &binding).await.pending_certify_id, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_starts_open_at_most_the_limit_of_sessions_each_counted() {
    let services = Arc::new(fresh_services().await);
    let (face, stand_in) = alipay().await;
    let face = Arc::new(face);
    let binding = Arc::new(elder(&services).await);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (services, face, binding) = (services.clone(), face.clone(), binding.clone());
            tokio::spawn(async move { start(&services, &face, &binding).await })
        })
        .collect();
    let mut started = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => started += 1,
            // Another start won the reservation, or the attempts are spent.
            Err(AppError::Conflict | AppError::TooManyFaceAttempts { .. }) => {}
            Err(other) => panic!("unexpected outcome: {other:?}"),
        }
    }
    let sessions = stand_in.stand_in.outer_order_nos().len();
    assert!(started >= 1, "one start at least gets its session");
    assert!(
        sessions <= FACE_FAILURES_PER_WINDOW,
        "{sessions} billable sessions opened by 20 simultaneous starts"
    );
    assert_eq!(
        stored(&services, &binding).await.face_failures.len() + 1,
        sessions,
        "every session opened but the pending one is counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completions_ask_alipay_at_most_the_limit_of_times_a_session_even_at_once() {
    let services = Arc::new(fresh_services().await);
    let (face, stand_in) = alipay().await;
    let face = Arc::new(face);
    let binding = Arc::new(elder(&services).await);
    let (certify_id, _) = start(&services, &face, &binding).await.unwrap();
    let unfinished = json!({"result_status": "6001"});
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (services, face, binding) = (services.clone(), face.clone(), binding.clone());
            let (certify_id, evidence) = (certify_id.clone(), unfinished.clone());
            tokio::spawn(async move {
                complete(&services, &face, &binding, &certify_id, evidence).await
            })
        })
        .collect();
    for task in tasks {
        match task.await.unwrap() {
            Err(AppError::FaceNotFinished | AppError::TooManyFaceQueries | AppError::Conflict) => {}
            other => panic!("unexpected outcome: {other:?}"),
        }
    }
    let limit = usize::try_from(FACE_QUERIES_PER_SESSION).unwrap();
    assert!(
        stand_in.stand_in.queries() <= limit,
        "{}",
        stand_in.stand_in.queries()
    );
    // Asked one by one, it answers until the limit, then refuses without asking Alipay.
    let refused = loop {
        match complete(&services, &face, &binding, &certify_id, unfinished.clone()).await {
            Err(AppError::FaceNotFinished) => assert!(stand_in.stand_in.queries() <= limit),
            other => break other.unwrap_err(),
        }
    };
    assert_eq!(stand_in.stand_in.queries(), limit);
    assert_eq!(
        (refused.status(), refused.code(), refused.message()),
        (
            429,
            "too_many_face_queries",
            "人脸识别结果查询次数过多,请重新开始认证"
        )
    );
    assert!(stored(&services, &binding).await.face_failures.is_empty());
    // A new start counts the given-up session as a failure and opens one that can pass.
    let (certify_id, certify_url) = start(&services, &face, &binding).await.unwrap();
    assert_eq!(stored(&services, &binding).await.face_failures.len(), 1);
    scan_face(&certify_url).await;
    let active = complete(&services, &face, &binding, &certify_id, Value::Null)
        .await
        .unwrap();
    assert_eq!(active.status, BindingStatus::Active);
}
