//! No ID number, name or birth date appears in plaintext in any stored item or log line, on
//! success paths and error paths alike, even with logging at TRACE — including the face
//! provider's HTTP traffic (the Alipay adapter, against the local stand-in), whose requests
//! carry the name and ID number.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, Utc};
use kincode_common::bindings::{self, BindRequest, CompleteRequest};
use kincode_common::domain::binding::GuardianId;
use kincode_common::face::alipay::AlipaySettings;
use kincode_common::face::AlipayCertify;
use kincode_common::http::{self, Call};
use kincode_common::store::ActionContext;
use kincode_common::telemetry;
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

#[tokio::test]
async fn personal_data_never_reaches_items_or_logs_in_plaintext() {
    let logs = Captured::default();
    let writer = logs.clone();
    lambda_http::tracing::subscriber::util::SubscriberInitExt::init(telemetry::subscriber(
        move || writer.clone(),
        Some("trace"),
        true,
    ));

    let services = fresh_services().await;
    let now = Utc::now();
    let elder = resident_id_aged(68, now, 41);
    let child = resident_id_aged(2, now, 42);
    let adult = resident_id_aged(35, now, 43);
    let names = ["欧阳秀英", "王小宝", "赵建国"];
    let secrets: Vec<String> = [&elder, &child, &adult]
        .iter()
        .flat_map(|id| [id.to_string(), id[6..14].to_string()])
        .chain(names.iter().map(|n| n.to_string()))
        .collect();

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
                .map(|b| http::binding_json(&b)),
            Err(e) => Err(e),
        };
        let response = http::respond(
            outcome.map(|v| http::json_response(lambda_http::http::StatusCode::CREATED, &v)),
        );
        let text = format!("{:?}", response.body());
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "response leaks {secret}: {text}"
            );
        }
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

    let list = bindings::list(&services.store, &guardian).await.unwrap();
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
    let later = ActionContext {
        request_id: "privacy-unbind",
        at: now + Duration::hours(25),
    };
    bindings::unbind(&services.store, &guardian, &list[0].id, later)
        .await
        .unwrap();

    let stored = item_strings(&all_items(&services).await);
    assert!(stored.len() > 20, "the scan saw the items");
    for secret in &secrets {
        if let Some(hit) = stored.iter().find(|s| s.contains(secret.as_str())) {
            panic!("stored item contains {secret}: {hit}");
        }
    }
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("request refused")
            && logs.contains("recorded")
            && logs.contains("alipay answered"),
        "the log capture works, the face provider's calls included"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a log line contains {secret}"
        );
    }
}
