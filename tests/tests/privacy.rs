//! No ID number, name or birth date appears in plaintext in any stored item or log line, on
//! success paths and error paths alike, even with logging at TRACE — including the face
//! provider's HTTP traffic (the Alipay adapter, against the local stand-in), whose requests
//! carry the name and ID number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use kincode_common::adapters::face::alipay::AlipaySettings;
use kincode_common::adapters::face::AlipayCertify;
use kincode_common::answers::BindingAnswer;
use kincode_common::domain::binding::GuardianId;
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::store::ActionContext;
use kincode_common::usecases::bindings::{self, BindRequest, CompleteRequest};
use kincode_common::usecases::codes::show;
use kincode_common::usecases::nucleic::lab::{RowError, RowOutcome};
use kincode_common::usecases::nucleic::results;
use kincode_common::wiring::services::Services;
use kincode_common::wiring::telemetry;
use kincode_localdev::alipay::{generate_key_pair, AlipayStandIn};
use kincode_tests::*;
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn strings(value: &AttributeValue, out: &mut Vec<String>) {
    match value {
        AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.clone()),
        AttributeValue::L(list) => list.iter().for_each(|v| strings(v, out)),
        AttributeValue::M(map) => map.iter().for_each(|(k, v)| {
            out.push(k.clone());
            strings(v, out)
        }),
        AttributeValue::Ss(list) | AttributeValue::Ns(list) => out.extend(list.iter().cloned()),
        _ => {}
    }
}

fn item_strings(items: &[HashMap<String, AttributeValue>]) -> Vec<String> {
    let mut out = Vec::new();
    for item in items {
        for (k, v) in item {
            out.push(k.clone());
            strings(v, &mut out);
        }
    }
    out
}

/// The TRACE capture of every log line of this process: one global subscriber, installed by
/// whichever test comes first and shared by all (each looks for its own secrets and lines).
fn trace_logs() -> Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Captured::default();
        let writer = logs.clone();
        lambda_http::tracing::subscriber::util::SubscriberInitExt::init(telemetry::subscriber(
            move || writer.clone(),
            Some("trace"),
            telemetry::LogFormat::Json,
        ));
        logs
    })
    .clone()
}

/// What must never appear in plaintext: each ID number, its birth date, each name.
fn secrets(ids: &[&str], names: &[&str]) -> Vec<String> {
    ids.iter()
        .flat_map(|id| [id.to_string(), id[6..14].to_string()])
        .chain(names.iter().map(|n| n.to_string()))
        .collect()
}

/// Fails if any stored item or captured log line holds a secret; the logs, for the caller to
/// check that the capture saw its paths.
async fn assert_kept_out_of_items_and_logs(
    services: &Services,
    secrets: &[String],
    logs: &Captured,
) -> String {
    let stored = item_strings(&all_items(services).await);
    assert!(stored.len() > 20, "the scan saw the items");
    for secret in secrets {
        if let Some(hit) = stored.iter().find(|s| s.contains(secret.as_str())) {
            panic!("stored item contains {secret}: {hit}");
        }
    }
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    for secret in secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a log line contains {secret}"
        );
    }
    logs
}

/// Fails if `answer` (what a route would send back, or its refusal) holds a secret.
fn assert_not_answered(answer: &impl std::fmt::Debug, secrets: &[String]) {
    let text = format!("{answer:?}");
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "response leaks {secret}: {text}"
        );
    }
}

#[tokio::test]
async fn personal_data_never_reaches_items_or_logs_in_plaintext() {
    let logs = trace_logs();
    let services = fresh_services().await;
    let now = Utc::now();
    let elder = resident_id_aged(68, now, 41);
    let child = resident_id_aged(2, now, 42);
    let adult = resident_id_aged(35, now, 43);
    let names = ["欧阳秀英", "王小宝", "赵建国"];
    let secrets = secrets(&[&elder, &child, &adult], &names);

    // Every route's request, through the same glue the handlers use.
    let guardian = GuardianId::parse("user-privacy").unwrap();
    let ctx = ActionContext {
        request_id: "privacy",
        at: now,
    };
    let run = |raw_body: serde_json::Value| {
        event("bind.json")
            .with_caller("user-privacy")
            .with_body(raw_body)
            .into_request()
    };
    for (name, id) in [(names[0], &elder), (names[1], &child), (names[2], &adult)] {
        let req =
            run(json!({"name": name, "id_number": id, "relationship": "parent", "consent": true}));
        let call = Call::from_request(&req).unwrap();
        let outcome = match http::json_body::<BindRequest>(&req) {
            Ok(body) => bindings::bind(&services.store, &call.guardian, body, None, call.at(now))
                .await
                .map(|b| {
                    http::json_response(
                        lambda_http::http::StatusCode::CREATED,
                        &BindingAnswer::from(&b),
                    )
                }),
            Err(e) => Err(e),
        };
        let response = http::respond(outcome);
        assert_not_answered(response.body(), &secrets);
    }
    // Malformed JSON that quotes an ID number: the parse error must not echo it.
    let req = event("bind.json")
        .with_raw_body(&format!("{{\"id_number\": {elder}x}}"))
        .into_request();
    let _ = http::respond(http::json_body::<BindRequest>(&req).map(|_| http::no_content()));
    let req = event("bind.json")
        .with_raw_body(&format!(
            "{{\"id_number\": \"{elder}\", \"consent\": \"yes\"}}"
        ))
        .into_request();
    let _ = http::respond(http::json_body::<BindRequest>(&req).map(|_| http::no_content()));

    let list = bindings::list(&services.store, &guardian, now)
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    let (app_private, app_public) = generate_key_pair();
    let stand_in = AlipayStandIn::start("2021000000000001", &app_public)
        .await
        .unwrap();
    let face = AlipayCertify::new(&AlipaySettings {
        gateway: stand_in.gateway(),
        app_id: "2021000000000001".into(),
        app_private_key: app_private,
        alipay_public_key: stand_in.alipay_public_key.clone(),
        return_url: "alipays://platformapi/startapp?appId=2021000000000001".into(),
    })
    .unwrap();
    for b in &list {
        let start = bindings::start_verification(&services.store, &face, &guardian, &b.id, ctx)
            .await
            .unwrap();
        let request = match start {
            bindings::VerificationStart::Face {
                certify_id,
                certify_url,
            } => {
                let page = kincode_localdev::client::HttpClient::default()
                    .send(
                        hyper::http::Method::GET,
                        &certify_url.unwrap(),
                        &[],
                        Vec::new(),
                    )
                    .await
                    .unwrap();
                assert_eq!(page.status, 200);
                CompleteRequest {
                    certify_id: Some(certify_id),
                    evidence: json!({"result_status": "9000"}),
                    pledge_version: None,
                    accepted: None,
                }
            }
            bindings::VerificationStart::Pledge { version, .. } => CompleteRequest {
                certify_id: None,
                evidence: json!(null),
                pledge_version: Some(version.into()),
                accepted: Some(true),
            },
        };
        bindings::complete_verification(&services.store, &face, &guardian, &b.id, request, ctx)
            .await
            .unwrap();
    }
    // Their household sheet: the record names cards by binding and serial, the answer masks.
    let blobs = fresh_bucket(&services).await;
    let sheet = kincode_common::usecases::codes::sheet::issue_household_sheet(
        &services.store,
        &blobs,
        &test_key_ring(),
        &guardian,
        None,
        ctx,
    )
    .await
    .unwrap();
    assert_eq!(sheet.cards.len(), 2);
    assert_not_answered(&sheet, &secrets);
    for object in bucket_objects(&services, &blobs).await {
        assert_not_answered(&object.key, &secrets);
    }

    let later = ActionContext {
        request_id: "privacy-unbind",
        at: now + Duration::hours(25),
    };
    bindings::unbind(&services.store, &guardian, &list[0].id, later)
        .await
        .unwrap();

    let logs = assert_kept_out_of_items_and_logs(&services, &secrets, &logs).await;
    assert!(
        logs.contains("request refused")
            && logs.contains("recorded")
            && logs.contains("alipay answered"),
        "the log capture works, the face provider's calls included"
    );
}

/// The testing routes, through the use cases their functions call: registration (a pooled and a
/// single tube, the same person twice, a revoked code), lab results (stored, conflicting,
/// unknown tube) and the results query (two pages, a tampered cursor, a stranger).
#[tokio::test]
async fn the_testing_routes_keep_personal_data_out_of_items_and_logs() {
    let logs = trace_logs();
    let services = fresh_services().await;
    let keys = test_key_ring();
    let now = Utc::now();
    let elder = resident_id_aged(71, now, 44);
    let child = resident_id_aged(3, now, 45);
    // The test kit's relatives are all named 王小明.
    let secrets = secrets(&[&elder, &child], &["王小明"]);
    let guardian = "user-privacy-testing";
    let elder_binding = active_relative_with(&services, guardian, &elder, now).await;
    let child_binding = active_relative_with(&services, guardian, &child, now).await;
    // A refusal is answered and logged by the same glue every handler uses.
    let refused = |err: AppError| assert_not_answered(&http::respond(Err(err)), &secrets);

    let (pooled, single) = (fresh_tube(), fresh_tube());
    for binding in [&elder_binding, &child_binding] {
        let registered =
            register_sample_at(&services, &keys, binding, &pooled, Some("pooled_10"), now)
                .await
                .unwrap();
        assert_not_answered(&registered, &secrets);
    }
    refused(
        register_sample_at(&services, &keys, &child_binding, &pooled, None, now)
            .await
            .unwrap_err(),
    );
    register_sample_at(&services, &keys, &elder_binding, &single, None, now)
        .await
        .unwrap();

    let at = now + Duration::hours(3);
    let mut outcomes = Vec::new();
    for (tube, result) in [
        (&pooled, "positive"),
        (&single, "negative"),
        (&single, "positive"),
        (&fresh_tube(), "negative"),
    ] {
        outcomes.push(report_result_at(&services, tube, result, at).await);
    }
    assert!(
        matches!(
            outcomes[..],
            [
                RowOutcome::Stored { .. },
                RowOutcome::Stored { .. },
                RowOutcome::Rejected(RowError::ConflictingResult),
                RowOutcome::Rejected(RowError::UnknownTube),
            ]
        ),
        "{outcomes:?}"
    );

    let query = |guardian: &str, cursor: Option<String>| {
        let services = &services;
        let guardian = GuardianId::parse(guardian).unwrap();
        let id = elder_binding.id.clone();
        async move {
            let ctx = ActionContext {
                request_id: "privacy-results",
                at,
            };
            results::results(&services.store, &guardian, &id, 1, cursor.as_deref(), ctx).await
        }
    };
    let first = query(guardian, None).await.unwrap();
    assert_not_answered(&first, &secrets);
    let cursor = first.next_cursor.clone().expect("a second page");
    assert_not_answered(&query(guardian, Some(cursor)).await.unwrap(), &secrets);
    refused(query(guardian, Some("v1.AAAA".into())).await.unwrap_err());
    refused(query("user-stranger", None).await.unwrap_err());

    // A code shown before its binding was unbound is refused at registration.
    let later = now + Duration::hours(25);
    let code = show::online_code(
        &services.store,
        &keys,
        &child_binding.guardian,
        &child_binding.id,
        request_at(later),
    )
    .await
    .unwrap();
    unbind_relative(&services, guardian, &child_binding, later).await;
    refused(
        register_sample_with_code(&services, &keys, &code.token, &fresh_tube(), None, later)
            .await
            .unwrap_err(),
    );

    let logs = assert_kept_out_of_items_and_logs(&services, &secrets, &logs).await;
    // The routes' own lines (the SDK's TRACE lines quote the items, so name the message).
    let logged = |message: &str, field: &str, value: &str| {
        logs.lines().any(|line| {
            line.contains(&format!("\"message\":\"{message}\""))
                && line.contains(&format!("\"{field}\":\"{value}\""))
        })
    };
    for action in ["sample_registered", "result_reported", "results_viewed"] {
        assert!(
            logged("recorded", "action", action),
            "the capture saw {action}"
        );
    }
    for code in [
        "already_in_tube",
        "invalid_cursor",
        "binding_not_found",
        "code_revoked",
    ] {
        assert!(
            logged("request refused", "code", code),
            "the capture saw {code}"
        );
    }
}

/// Co-guardians and disputes, through their use cases: a report's own words (they may name
/// people) are kept sealed and out of the logs, like the relative's name and ID number; the
/// list of co-guardians names nobody by platform id.
#[tokio::test]
async fn a_reports_words_stay_sealed_and_co_guardians_stay_handles() {
    use kincode_common::usecases::disputes::{self, ReportRequest, ResolveRequest};
    let logs = trace_logs();
    let services = fresh_services().await;
    let now = Utc::now();
    let child = resident_id_aged(4, now, 46);
    let words = "冒充孩子舅舅的是邻居刘德明";
    let secrets: Vec<String> = secrets(&[&child], &["王小明"])
        .into_iter()
        .chain([words.to_owned(), "刘德明".to_owned()])
        .collect();
    let mother = active_relative_with(&services, "user-privacy-mother", &child, now).await;
    active_relative_with(&services, "user-privacy-stranger", &child, now).await;
    let ctx = ActionContext {
        request_id: "privacy-dispute",
        at: now,
    };
    let listed = disputes::co_guardians(&services.store, &mother.guardian, &mother.id)
        .await
        .unwrap();
    assert_not_answered(&listed.guardians, &["user-privacy-stranger".to_owned()]);
    let request = ReportRequest {
        guardian: Some(
            listed
                .guardians
                .iter()
                .find(|g| !g.is_caller)
                .unwrap()
                .handle
                .clone(),
        ),
        reason: Some("impersonation".into()),
        details: Some(words.into()),
    };
    let opened = disputes::report(&services.store, &mother.guardian, &mother.id, request, ctx)
        .await
        .unwrap();
    assert_eq!(opened.details, words, "the reporter reads their words back");
    let decision = ResolveRequest {
        decision: Some("uphold".into()),
    };
    disputes::resolve(&services.store, "authority", &opened.id, decision, ctx)
        .await
        .unwrap();
    let logs = assert_kept_out_of_items_and_logs(&services, &secrets, &logs).await;
    assert!(
        logs.contains("dispute_upheld"),
        "the capture saw the dispute"
    );
}

/// What of a child's birth date is stored in clear, exactly as the README's *Age transitions*
/// says: the moments of the binding's age transitions (its `face_due_at` and `ends_at`, each
/// transition item's `expiry_bucket` day and `due_at`), never the date itself.
#[tokio::test]
async fn a_childs_birth_date_shows_only_in_the_moments_of_its_age_transitions() {
    use chrono::Datelike;
    let services = fresh_services().await;
    let now = Utc::now();
    let today = kincode_common::domain::china_time::china_date(now);
    let birth = today
        .with_year(today.year() - 3)
        .unwrap_or(today - Duration::days(3 * 365))
        - Duration::days(40);
    let binding = active_relative_with(
        &services,
        "user-privacy-ages",
        &resident_id_born(birth, 47),
        now,
    )
    .await;
    let t = binding.transitions;
    let (seven, seventeen) = (t.face_due_at.unwrap(), t.ends_at.unwrap());
    let notice = seventeen - kincode_common::domain::policy::binding_end_notice();
    // Every form the birth date takes in a stored value: the date itself, and each transition's
    // moment as text (its UTC and China days) and as epoch seconds.
    let mut forms = vec![
        birth.format("%Y%m%d").to_string(),
        birth.format("%Y-%m-%d").to_string(),
    ];
    for moment in [seven, seventeen, notice] {
        forms.push(moment.format("%Y-%m-%d").to_string());
        forms.push(kincode_common::domain::china_time::china_date(moment).to_string());
        forms.push(moment.timestamp().to_string());
    }
    let mut found = std::collections::BTreeSet::new();
    for item in all_items(&services).await {
        let sk = item["sk"].as_s().unwrap().clone();
        let kind = sk.split('#').next().unwrap().to_owned();
        for (attribute, value) in &item {
            let mut values = Vec::new();
            strings(value, &mut values);
            if values
                .iter()
                .any(|v| forms.iter().any(|f| v.contains(f.as_str())))
            {
                found.insert((kind.clone(), attribute.clone()));
            }
        }
    }
    let documented: std::collections::BTreeSet<(String, String)> = [
        ("B", "face_due_at"),
        ("B", "ends_at"),
        ("AGE", "expiry_bucket"),
        ("AGE", "due_at"),
    ]
    .into_iter()
    .map(|(kind, attribute)| (kind.to_owned(), attribute.to_owned()))
    .collect();
    assert_eq!(found, documented);
}
