//! The fault-injection tier: the real function binaries behind `kincode-local`, with the local
//! stack failing chosen calls on demand (`scripts/local_stack.py`, `/_kincode/faults`): a 500,
//! a throttle, a reset before the request is read, a lost answer after the write landed, an
//! answer slower than the attempt timeout. For every route that writes, each fault once is
//! absorbed by the SDK's retry (the route answers as if nothing happened: DynamoDB's
//! `ClientRequestToken` makes the retried transaction a no-op), and each fault on every attempt
//! is a 503 with `Retry-After` (or the documented answer), nothing half-written; a retry then
//! gives the first answer, and afterwards the invariants hold (`invariants::violations`):
//! counters equal items, nothing doubled, nothing pointing at nothing, no orphan image.

use hyper::http::{Method, StatusCode};
use kincode_localdev::client::HttpClient;
use kincode_tests::local_api::*;
use kincode_tests::*;
use serde_json::{json, Value};

/// Every fault the stack injects on a write, but the slow answer (which costs a whole attempt
/// timeout, so only the bind route takes it).
const FAULTS: [&str; 4] = ["internal_error", "throttle", "reset", "lost_answer"];

/// One route's request under one fault: `every_attempt` false fails only the first attempt
/// (the SDK retries), true fails all three.
#[derive(Clone, Copy, Debug)]
struct Case {
    operation: &'static str,
    fault: &'static str,
    every_attempt: bool,
}

impl Case {
    /// The write landed before the fault: a lost or slow answer.
    fn landed(&self) -> bool {
        matches!(self.fault, "lost_answer" | "slow_answer")
    }
}

fn cases(operations: &[&'static str]) -> Vec<Case> {
    let mut all = Vec::new();
    for &operation in operations {
        for fault in FAULTS {
            for every_attempt in [false, true] {
                all.push(Case {
                    operation,
                    fault,
                    every_attempt,
                });
            }
        }
    }
    all
}

/// The local stack's fault switch, for the calls of one gateway's table and bucket.
struct FaultSwitch {
    url: String,
    scope: String,
}

impl FaultSwitch {
    fn of(api: &LocalApi) -> Self {
        FaultSwitch {
            url: format!("{}/_kincode/faults", local_endpoint()),
            scope: api.table.clone(),
        }
    }

    async fn set(&self, case: Case, delay_ms: u64) {
        let rule = json!({
            "operation": case.operation,
            "scope": self.scope,
            "fault": case.fault,
            "times": if case.every_attempt { -1 } else { 1 },
            "delay_ms": delay_ms,
        });
        let answer = HttpClient::default()
            .send(
                Method::POST,
                &self.url,
                &[("content-type", "application/json")],
                rule.to_string().into_bytes(),
            )
            .await
            .expect("the fault switch");
        assert_eq!(answer.status, StatusCode::CREATED, "{case:?}");
    }

    /// How often the rules of this scope fired.
    async fn fired(&self) -> u64 {
        let answer = HttpClient::default()
            .send(Method::GET, &self.url, &[], Vec::new())
            .await
            .expect("the fault switch");
        let rules: Value = serde_json::from_slice(&answer.body).expect("rules");
        rules
            .as_array()
            .expect("a list of rules")
            .iter()
            .filter(|rule| rule["scope"] == self.scope.as_str())
            .map(|rule| rule["fired"].as_u64().unwrap_or(0))
            .sum()
    }

    async fn clear(&self) {
        let answer = HttpClient::default()
            .send(
                Method::DELETE,
                &format!("{}?scope={}", self.url, self.scope),
                &[],
                Vec::new(),
            )
            .await
            .expect("the fault switch");
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
    }

    /// `send` once with `case`'s fault switched on.
    async fn under(&self, case: Case, send: impl AsyncFn() -> Answer) -> Answer {
        self.set(case, 0).await;
        let answer = send().await;
        self.clear_after(case).await;
        answer
    }

    /// Switches `case`'s fault off, once it has fired as asked: on the first attempt only, or
    /// on each of the SDK's attempts.
    async fn clear_after(&self, case: Case) {
        let fired = self.fired().await;
        match (case.every_attempt, case.fault) {
            (false, _) => assert_eq!(fired, 1, "{case:?} fired"),
            // A slow answer on each attempt: on a loaded machine the first slow attempt may
            // use up the call's whole time budget, so the SDK makes no second one. The answer
            // (a 503) is what the case checks.
            (true, "slow_answer") => assert!(fired >= 1, "{case:?} fired {fired} times"),
            (true, _) => assert!(fired >= 2, "{case:?} fired {fired} times"),
        }
        self.clear().await;
    }
}

fn assert_unavailable(answer: &Answer, case: Case) {
    assert_eq!(
        (answer.status, answer.json["error"]["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("service_unavailable")),
        "{case:?}: {}",
        answer.json
    );
    assert_eq!(
        answer.headers.get("retry-after").map(|v| v.as_bytes()),
        Some(&b"2"[..]),
        "{case:?}: a 503 says when to come back"
    );
}

/// The answer to a request under `case`: once, the route's own (`ok`); on every attempt a 503,
/// unless the route documents reading back a write that landed (`read_back`).
fn assert_answer(answer: &Answer, case: Case, ok: StatusCode, read_back: bool) {
    if case.every_attempt && !(read_back && case.landed()) {
        assert_unavailable(answer, case);
    } else {
        assert_eq!(answer.status, ok, "{case:?}: {}", answer.json);
    }
}

async fn assert_invariants(api: &LocalApi) {
    assert_eq!(api.violations().await, Vec::<String>::new());
}

fn guardian() -> String {
    format!("Dev faults-{}", &fresh_idempotency_key()[..12])
}

/// A relative bound by `auth`: a child of 5 (verified by the pledge, so `verify`), or an
/// elder of 72 left pending (face recognition).
async fn bound(api: &LocalApi, auth: &str, child: bool) -> String {
    let now = chrono::Utc::now();
    let (years, relationship) = if child { (5, "child") } else { (72, "parent") };
    let (status, bound) = api
        .call(
            Method::POST,
            "/relatives",
            Some(auth),
            Some(json!({"name": "赵子涵", "id_number": distinct_resident_id(years, now), "relationship": relationship, "consent": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bound}");
    bound["id"].as_str().unwrap().to_owned()
}

async fn active_child(api: &LocalApi, auth: &str) -> String {
    let id = bound(api, auth, true).await;
    let (status, started) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification"),
            Some(auth),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let pledge = json!({"pledge_version": started["pledge"]["version"], "accepted": true});
    let (status, verified) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification/complete"),
            Some(auth),
            Some(pledge),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    id
}

#[tokio::test]
async fn bind_under_faults() {
    let api = start_local_api();
    let faults = FaultSwitch::of(&api);
    let now = chrono::Utc::now();
    let slow = [false, true].map(|every_attempt| Case {
        operation: "TransactWriteItems",
        fault: "slow_answer",
        every_attempt,
    });
    for case in cases(&["TransactWriteItems"]).into_iter().chain(slow) {
        let (me, key) = (guardian(), fresh_idempotency_key());
        let request = json!({"name": "刘桂兰", "id_number": distinct_resident_id(72, now), "relationship": "grandparent", "consent": true});
        let send = async || {
            api.call_with(
                Method::POST,
                "/relatives",
                Some(&me),
                &[("idempotency-key", &key)],
                Some(request.clone()),
            )
            .await
        };
        let first = if case.fault == "slow_answer" {
            // Past the local stage's 8 s attempt timeout.
            faults.set(case, 8_500).await;
            let answer = send().await;
            faults.clear_after(case).await;
            answer
        } else {
            faults.under(case, send).await
        };
        assert_answer(&first, case, StatusCode::CREATED, false);
        let again = send().await;
        assert_eq!(
            again.status,
            StatusCode::CREATED,
            "{case:?}: {}",
            again.json
        );
        if !case.every_attempt {
            assert_eq!(again.json, first.json, "{case:?}: the first answer again");
        }
        let (_, listed) = api.call(Method::GET, "/relatives", Some(&me), None).await;
        assert_eq!(
            listed["relatives"].as_array().map(Vec::len),
            Some(1),
            "{case:?}"
        );
    }
    assert_invariants(&api).await;
}

#[tokio::test]
async fn verification_under_faults() {
    let api = start_local_api();
    let faults = FaultSwitch::of(&api);
    // A start reserves its attempt (a transaction), then records the session (an update); a
    // completion counts its query (an update), then records the outcome (a transaction).
    for case in cases(&["TransactWriteItems", "UpdateItem"]) {
        let me = guardian();
        let id = bound(&api, &me, false).await;
        let start = async || {
            api.call_with(
                Method::POST,
                &format!("/relatives/{id}/verification"),
                Some(&me),
                &[],
                None,
            )
            .await
        };
        let started = faults.under(case, start).await;
        assert_answer(&started, case, StatusCode::OK, false);
        let started = match started.status {
            StatusCode::OK => started,
            _ => start().await,
        };
        assert_eq!(started.status, StatusCode::OK, "{case:?}: {}", started.json);
        let evidence = json!({"certify_id": started.json["certify_id"], "evidence": {"simulated_outcome": "pass"}});
        let complete = async || {
            api.call_with(
                Method::POST,
                &format!("/relatives/{id}/verification/complete"),
                Some(&me),
                &[],
                Some(evidence.clone()),
            )
            .await
        };
        let completed = faults.under(case, complete).await;
        assert_answer(&completed, case, StatusCode::OK, false);
        // Sent again, a completion answers the active binding, whether the first one landed
        // before its answer was lost or never did.
        let again = complete().await;
        assert_eq!(
            (again.status, again.json["status"].as_str()),
            (StatusCode::OK, Some("active")),
            "{case:?}: {}",
            again.json
        );
        let (_, listed) = api.call(Method::GET, "/relatives", Some(&me), None).await;
        assert_eq!(listed["relatives"][0]["status"], "active", "{case:?}");
    }
    assert_invariants(&api).await;
}

#[tokio::test]
async fn offline_cards_under_faults() {
    let api = start_local_api();
    let faults = FaultSwitch::of(&api);
    for case in cases(&["PutItem", "PutObject", "TransactWriteItems"]) {
        let me = guardian();
        let id = active_child(&api, &me).await;
        let issue = async || {
            api.call_with(
                Method::POST,
                &format!("/relatives/{id}/offline-code"),
                Some(&me),
                &[],
                Some(json!({})),
            )
            .await
        };
        // A card whose write landed is read back: 201 whatever happened to the answer.
        let first = faults.under(case, issue).await;
        let read_back = case.operation == "TransactWriteItems";
        assert_answer(&first, case, StatusCode::CREATED, read_back);
        let again = issue().await;
        assert_eq!(
            again.status,
            StatusCode::CREATED,
            "{case:?}: {}",
            again.json
        );
        let (status, latest) = api
            .call(
                Method::GET,
                &format!("/relatives/{id}/offline-code"),
                Some(&me),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{case:?}: {latest}");
        let image = download(latest["download_url"].as_str().unwrap()).await;
        assert_eq!(image.status, StatusCode::OK, "{case:?}: the card's image");
    }
    assert_invariants(&api).await;
}

#[tokio::test]
async fn unbind_under_faults() {
    let api = start_local_api();
    let faults = FaultSwitch::of(&api);
    for case in cases(&["TransactWriteItems"]) {
        let me = guardian();
        let id = active_child(&api, &me).await;
        let guardian_id = me.trim_start_matches("Dev ");
        api.backdate_binding(guardian_id, &id, 25).await;
        let unbind = async || {
            api.call_with(
                Method::DELETE,
                &format!("/relatives/{id}"),
                Some(&me),
                &[],
                None,
            )
            .await
        };
        let first = faults.under(case, unbind).await;
        assert_answer(&first, case, StatusCode::NO_CONTENT, false);
        let again = unbind().await;
        assert_eq!(
            again.status,
            StatusCode::NO_CONTENT,
            "{case:?}: {}",
            again.json
        );
        let (_, listed) = api.call(Method::GET, "/relatives", Some(&me), None).await;
        assert_eq!(listed["relatives"], json!([]), "{case:?}");
    }
    assert_invariants(&api).await;
}

const CHECKPOINT: &str = "Dev site-faults kincode/checkpoint site_id=XA-FAULTS-01";
const LAB: &str = "Dev lab-faults kincode/lab";

/// A verified child's online code, as the checkpoint scans it.
async fn scannable_code(api: &LocalApi) -> String {
    let me = guardian();
    let id = active_child(api, &me).await;
    let (status, shown) = api
        .call(
            Method::GET,
            &format!("/relatives/{id}/code"),
            Some(&me),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    shown["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn sample_registration_under_faults() {
    let api = start_local_api();
    let faults = FaultSwitch::of(&api);
    for case in cases(&["TransactWriteItems"]) {
        let code = scannable_code(&api).await;
        let (key, tube) = (fresh_idempotency_key(), fresh_tube());
        let sample = json!({"code": code, "tube_id": tube, "tube_kind": "pooled_10"});
        let register = async || {
            api.call_with(
                Method::POST,
                "/checkpoints/samples",
                Some(CHECKPOINT),
                &[("idempotency-key", &key)],
                Some(sample.clone()),
            )
            .await
        };
        let first = faults.under(case, register).await;
        assert_answer(&first, case, StatusCode::CREATED, false);
        let again = register().await;
        assert_eq!(
            again.status,
            StatusCode::CREATED,
            "{case:?}: {}",
            again.json
        );
        assert_eq!(again.json["filled"], 1, "{case:?}: one person, once");
        if first.status == StatusCode::CREATED {
            assert_eq!(again.json, first.json, "{case:?}: the first answer again");
        }
    }
    assert_invariants(&api).await;
}

/// A row's outcome in a batch answer.
fn outcome(answer: &Answer) -> Option<&str> {
    answer.json["results"][0]["outcome"].as_str()
}

#[tokio::test]
async fn lab_results_under_faults() {
    let api = start_local_api();
    let faults = FaultSwitch::of(&api);
    for case in cases(&["TransactWriteItems"]) {
        let code = scannable_code(&api).await;
        let tube = fresh_tube();
        let (status, registered) = api
            .call(
                Method::POST,
                "/checkpoints/samples",
                Some(CHECKPOINT),
                Some(json!({"code": code, "tube_id": tube, "tube_kind": "pooled_10"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{registered}");
        // The lab reports at the second the registration showed.
        let rows = json!({"rows": [{"tube_id": tube, "result": "negative", "reported_at": registered["sampled_at"]}]});
        let report = async || {
            api.call_with(
                Method::POST,
                "/lab/results",
                Some(LAB),
                &[],
                Some(rows.clone()),
            )
            .await
        };
        let first = faults.under(case, report).await;
        assert_answer(&first, case, StatusCode::OK, false);
        let again = report().await;
        assert_eq!(again.status, StatusCode::OK, "{case:?}: {}", again.json);
        // Stored now, or stored by the first and recognised as the same report.
        let expected: &[&str] = if first.status == StatusCode::OK || case.landed() {
            &["unchanged"]
        } else {
            &["stored"]
        };
        assert!(
            expected.contains(&outcome(&again).unwrap_or_default()),
            "{case:?}: {}",
            again.json
        );
    }
    assert_invariants(&api).await;
}

#[tokio::test]
async fn risk_flags_under_faults() {
    let api = start_local_api();
    let faults = FaultSwitch::of(&api);
    let now = chrono::Utc::now();
    for case in cases(&["TransactWriteItems"]) {
        let rows = json!({"rows": [{"id_number": distinct_resident_id(40, now), "flag": "secondary_contact", "effective_at": now - chrono::Duration::minutes(1)}]});
        let submit = async || {
            api.call_with(
                Method::POST,
                "/authority/risk-flags",
                Some("Dev authority-faults kincode/authority"),
                &[],
                Some(rows.clone()),
            )
            .await
        };
        let first = faults.under(case, submit).await;
        assert_answer(&first, case, StatusCode::OK, false);
        let again = submit().await;
        assert_eq!(again.status, StatusCode::OK, "{case:?}: {}", again.json);
        let expected = if first.status == StatusCode::OK || case.landed() {
            "unchanged"
        } else {
            "stored"
        };
        assert_eq!(outcome(&again), Some(expected), "{case:?}: {}", again.json);
    }
    assert_invariants(&api).await;
}

#[tokio::test]
async fn results_page_under_faults() {
    let api = start_local_api();
    let faults = FaultSwitch::of(&api);
    let me = guardian();
    let id = active_child(&api, &me).await;
    // The read's record: its audit record and access-log entry, one transaction.
    for case in cases(&["TransactWriteItems"]) {
        let read = async || {
            api.call_with(
                Method::GET,
                &format!("/relatives/{id}/results"),
                Some(&me),
                &[],
                None,
            )
            .await
        };
        let first = faults.under(case, read).await;
        assert_answer(&first, case, StatusCode::OK, false);
        let again: Value = read().await.json;
        assert!(again["results"].is_array(), "{case:?}: {again}");
    }
    assert_invariants(&api).await;
}

/// A code shown: its first show of the hour writes the hour mark and the access-log entry in
/// one transaction before the code is answered. A fresh binding for each case, so each show
/// is the first of its hour.
#[tokio::test]
async fn code_shown_under_faults() {
    let api = start_local_api();
    let faults = FaultSwitch::of(&api);
    let me = guardian();
    for case in cases(&["TransactWriteItems"]) {
        let id = active_child(&api, &me).await;
        let show = async || {
            api.call_with(
                Method::GET,
                &format!("/relatives/{id}/code"),
                Some(&me),
                &[],
                None,
            )
            .await
        };
        let first = faults.under(case, show).await;
        assert_answer(&first, case, StatusCode::OK, false);
        let again = show().await;
        assert_eq!(again.status, StatusCode::OK, "{case:?}: {}", again.json);
        let (status, log) = api
            .call(
                Method::GET,
                &format!("/relatives/{id}/access-log"),
                Some(&me),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{log}");
        let shown = log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "code_shown")
            .count();
        assert_eq!(
            shown, 1,
            "{case:?}: one entry for the hour, however it went: {log}"
        );
    }
    assert_invariants(&api).await;
}

/// A scan writes its access-log entry before it answers; an export records itself before it
/// opens anything.
#[tokio::test]
async fn scan_and_export_under_faults() {
    let api = start_local_api();
    let faults = FaultSwitch::of(&api);
    let me = guardian();
    let id = active_child(&api, &me).await;
    let (status, shown) = api
        .call(
            Method::GET,
            &format!("/relatives/{id}/code"),
            Some(&me),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let code = shown["code"].as_str().unwrap().to_owned();
    for case in cases(&["PutItem"]) {
        let scan = async || {
            api.call_with(
                Method::POST,
                "/checkpoints/scan",
                Some(CHECKPOINT),
                &[],
                Some(json!({"code": code, "purpose": "venue_entry"})),
            )
            .await
        };
        let first = faults.under(case, scan).await;
        assert_answer(&first, case, StatusCode::OK, false);
    }
    for case in cases(&["TransactWriteItems"]) {
        let export = async || {
            api.call_with(
                Method::GET,
                &format!("/relatives/{id}/export"),
                Some(&me),
                &[],
                None,
            )
            .await
        };
        let first = faults.under(case, export).await;
        assert_answer(&first, case, StatusCode::OK, false);
        if first.status != StatusCode::OK {
            assert!(
                first.json.get("relative").is_none(),
                "{case:?}: nothing opened without its record"
            );
        }
    }
    assert_invariants(&api).await;
}

/// A verified child's binding by `auth` of `id_number`.
async fn active_child_of(api: &LocalApi, auth: &str, id_number: &str) -> String {
    let (status, bound) = api
        .call(
            Method::POST,
            "/relatives",
            Some(auth),
            Some(json!({"name": "赵子涵", "id_number": id_number, "relationship": "child", "consent": true})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bound}");
    let id = bound["id"].as_str().unwrap().to_owned();
    let (_, started) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification"),
            Some(auth),
            None,
        )
        .await;
    let pledge = json!({"pledge_version": started["pledge"]["version"], "accepted": true});
    let (status, verified) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification/complete"),
            Some(auth),
            Some(pledge),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    id
}

const AUTHORITY: &str = "Dev cdc-faults kincode/authority";

#[tokio::test]
async fn reports_and_resolutions_under_faults() {
    let api = start_local_api();
    let faults = FaultSwitch::of(&api);
    for case in cases(&["TransactWriteItems"]) {
        let (mother, stranger) = (guardian(), guardian());
        let child = distinct_resident_id(5, chrono::Utc::now());
        let id = active_child_of(&api, &mother, &child).await;
        active_child_of(&api, &stranger, &child).await;
        let (_, listed) = api
            .call(
                Method::GET,
                &format!("/relatives/{id}/guardians"),
                Some(&mother),
                None,
            )
            .await;
        let handle = listed["guardians"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["is_caller"] == false)
            .unwrap()["handle"]
            .clone();
        let report = async || {
            api.call_with(
                Method::POST,
                &format!("/relatives/{id}/disputes"),
                Some(&mother),
                &[],
                Some(json!({"guardian": handle, "reason": "not_family"})),
            )
            .await
        };
        // A report that landed is found open by a second one (and listed); one that did not
        // is opened by it.
        let first = faults.under(case, report).await;
        assert_answer(&first, case, StatusCode::CREATED, false);
        let landed = first.status == StatusCode::CREATED || case.landed();
        let again = report().await;
        let expected = match landed {
            true => (StatusCode::CONFLICT, Some("dispute_already_open")),
            false => (StatusCode::CREATED, None),
        };
        assert_eq!(
            (again.status, again.json["error"]["code"].as_str()),
            expected,
            "{case:?}: {}",
            again.json
        );
        let (_, mine) = api
            .call(Method::GET, "/disputes", Some(&mother), None)
            .await;
        let reports = mine["disputes"].as_array().unwrap();
        assert_eq!(reports.len(), 1, "{case:?}: one report, {mine}");
        let dispute = reports[0]["id"].as_str().unwrap().to_owned();

        // A resolution likewise: once landed, a second is refused and names the outcome.
        let resolve = async || {
            api.call_with(
                Method::POST,
                &format!("/authority/disputes/{dispute}/resolution"),
                Some(AUTHORITY),
                &[],
                Some(json!({"decision": "uphold"})),
            )
            .await
        };
        let first = faults.under(case, resolve).await;
        assert_answer(&first, case, StatusCode::OK, false);
        let landed = first.status == StatusCode::OK || case.landed();
        let again = resolve().await;
        match landed {
            true => assert_eq!(
                (again.status, again.json["error"]["outcome"].as_str()),
                (StatusCode::CONFLICT, Some("upheld")),
                "{case:?}: {}",
                again.json
            ),
            false => assert_eq!(again.status, StatusCode::OK, "{case:?}: {}", again.json),
        }
        let (_, listed) = api
            .call(
                Method::GET,
                &format!("/relatives/{id}/guardians"),
                Some(&mother),
                None,
            )
            .await;
        assert_eq!(listed["guardians"].as_array().unwrap().len(), 1, "{case:?}");
    }
    assert_invariants(&api).await;
}
