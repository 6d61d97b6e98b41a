//! Every file in `events/` runs against its function's real binary under the Lambda Runtime
//! Interface Emulator (what `sam local invoke -e` does in a container) and answers the status
//! `events/README.md` documents. Files run in the documented order on one fresh table; only
//! ids that earlier answers create are filled in.

use std::collections::HashMap;

use kincode_localdev::apigw;
use kincode_localdev::emulator::Emulator;
use kincode_localdev::local::{DevKeys, LocalStack};
use kincode_tests::*;
use serde_json::{json, Value};

/// Event file → documented status, in the order they run.
/// `cleanup.json` is the scheduler's raw input, not an HTTP event: its "status" is 200 when
/// the function answers its counts.
const DOCUMENTED: [(&str, u16); 26] = [
    ("bind.json", 201),
    ("bind-adult.json", 422),
    ("bind-invalid-id.json", 400),
    ("list.json", 200),
    ("verify-start.json", 200),
    ("verify-complete.json", 200),
    ("render.json", 200),
    ("offline-create.json", 201),
    ("offline-get.json", 200),
    ("offline-household-sheet.json", 201),
    ("scan.json", 200),
    ("samples.json", 201),
    ("lab-results.json", 200),
    ("results.json", 200),
    ("access-log.json", 200),
    ("export.json", 200),
    ("co-guardians-list.json", 200),
    ("co-guardians-report.json", 201),
    ("co-guardians-reports.json", 200),
    ("authority-disputes-list.json", 200),
    ("authority-disputes-resolve.json", 200),
    ("keys.json", 200),
    ("risk-flags.json", 200),
    ("cleanup.json", 200),
    ("unbind.json", 409),
    ("unbind-close-account.json", 409),
];

#[tokio::test]
async fn every_event_file_answers_its_documented_status_through_the_emulator() {
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let mut local = LocalStack {
        endpoint: local_endpoint(),
        keys: DevKeys::random(),
        resources: HashMap::from([
            ("Table".to_owned(), services.config.table.clone()),
            ("OfflineCodeBucket".to_owned(), blobs.bucket().to_owned()),
        ]),
    };
    local
        .provision_secrets(&template, &services.config.table)
        .await
        .unwrap();

    let mut files: Vec<String> = std::fs::read_dir(repo_root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    let mut documented: Vec<String> = DOCUMENTED.iter().map(|(f, _)| f.to_string()).collect();
    documented.sort();
    assert_eq!(
        files, documented,
        "every event file has a documented status"
    );
    let readme = std::fs::read_to_string(repo_root().join("events/README.md")).unwrap();
    for (file, status) in DOCUMENTED {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{file}` |")));
        assert!(
            row.is_some_and(|r| r.trim_end().ends_with(&format!("| {status} |"))),
            "events/README.md documents {file} → {status}"
        );
    }

    let mut emulators: HashMap<String, Emulator> = HashMap::new();
    for (function, binary_name) in template.functions() {
        let env = local.function_env(&template, &function, &json!({}));
        let emulator = Emulator::spawn(&function, &rie_path(), &binary(&binary_name), &env, false)
            .await
            .unwrap();
        emulators.insert(binary_name, emulator);
    }

    let (mut binding_id, mut certify_id, mut code) = (String::new(), String::new(), String::new());
    let (mut co_guardian, mut dispute_id) = (String::new(), String::new());
    for (file, expected) in DOCUMENTED {
        // The function whose binary name the file is named after (the longest that fits).
        let binary_name = emulators
            .keys()
            .filter(|b| file.starts_with(b.as_str()))
            .max_by_key(|b| b.len())
            .unwrap_or_else(|| panic!("{file}: no function named like it"))
            .clone();
        let mut event = event(file);
        if file == "cleanup.json" {
            let invocation = emulators[&binary_name].invoke(&event).await.unwrap();
            let answer: Value = serde_json::from_slice(&invocation.payload).unwrap();
            assert_eq!(answer["complete"], true, "{file}: {answer}");
            continue;
        }
        if event["pathParameters"]["binding_id"].is_string() {
            event = event.with_path_binding(&binding_id);
        }
        if file == "verify-complete.json" {
            let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            body["certify_id"] = certify_id.clone().into();
            event = event.with_body(body);
        }
        if file == "scan.json" {
            event = event.with_body(json!({ "code": code, "purpose": "nucleic_acid_test" }));
        }
        if file == "lab-results.json" {
            // The file's report time is a fixed day; a report is never before its sample.
            let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            for row in body["rows"].as_array_mut().unwrap() {
                row["reported_at"] = chrono::Utc::now().to_rfc3339().into();
            }
            event = event.with_body(body);
        }
        if file == "co-guardians-list.json" {
            // A second guardian of the same child, to list and then report.
            let bind = kincode_tests::event("bind.json").with_caller("user-co-guardian");
            let invocation = emulators["bind"].invoke(&bind).await.unwrap();
            let answer = apigw::response(&invocation.payload).unwrap();
            assert_eq!(answer.status.as_u16(), 201, "the second guardian binds");
        }
        if file == "co-guardians-report.json" {
            let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            body["guardian"] = co_guardian.clone().into();
            event = event.with_body(body);
        }
        if file == "authority-disputes-resolve.json" {
            event = event.with_path_parameter("dispute_id", &dispute_id);
        }
        if file == "samples.json" {
            let mut body: Value = serde_json::from_str(event["body"].as_str().unwrap()).unwrap();
            body["code"] = code.clone().into();
            event = event.with_body(body);
        }
        let invocation = emulators[&binary_name].invoke(&event).await.unwrap();
        let answer = apigw::response(&invocation.payload).unwrap_or_else(|e| panic!("{file}: {e}"));
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        assert_eq!(answer.status.as_u16(), expected, "{file}: {body}");
        match file {
            "bind.json" => binding_id = body["id"].as_str().unwrap().to_owned(),
            "verify-start.json" => certify_id = body["certify_id"].as_str().unwrap().to_owned(),
            "render.json" => code = body["code"].as_str().unwrap().to_owned(),
            "lab-results.json" => {
                assert_eq!(
                    row_outcomes(&body),
                    ["stored", "unknown_tube", "invalid_result"]
                );
            }
            "results.json" => {
                assert_eq!(body["results"][0]["status"], "negative", "{body}");
                assert_eq!(body["results"][0]["sampling"], "pooled", "{body}");
            }
            "export.json" => {
                assert_eq!(body["relative"]["name"], "王小明", "{body}");
                assert_eq!(body["tests"][0]["status"], "negative", "{body}");
                assert_eq!(body["access_log"][0]["kind"], "data_exported", "{body}");
            }
            "access-log.json" => {
                let kinds: Vec<&str> = body["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["kind"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    kinds,
                    [
                        "results_read",
                        "result_reported",
                        "sample_registered",
                        "code_scanned",
                        // the household sheet's card, after the single card's download
                        "offline_card_issued",
                        "offline_card_downloaded",
                        "offline_card_issued",
                        "code_shown",
                        "verified",
                        "bound",
                    ],
                    "{body}"
                );
            }
            "co-guardians-list.json" => {
                let guardians = body["guardians"].as_array().unwrap();
                assert_eq!(guardians.len(), 2, "{body}");
                let other = guardians.iter().find(|g| g["is_caller"] == false).unwrap();
                co_guardian = other["handle"].as_str().unwrap().to_owned();
            }
            "co-guardians-report.json" => dispute_id = body["id"].as_str().unwrap().to_owned(),
            "co-guardians-reports.json" | "authority-disputes-list.json" => {
                assert_eq!(body["disputes"][0]["id"], dispute_id.as_str(), "{body}");
            }
            "authority-disputes-resolve.json" => {
                assert_eq!(body["status"], "upheld", "{body}");
                assert_eq!(body["binding_ended"], true, "{body}");
            }
            _ => {}
        }
    }
    for emulator in emulators.values() {
        emulator.stop().await;
    }
}
