//! End to end over HTTP: the local gateway (`kincode-local`, as `scripts/run` starts it) in
//! front of the real function binaries under the Lambda Runtime Interface Emulator, on the
//! local AWS stack. bind → verify → list → unbind; the kin code's whole life (render, the
//! authority's flag, the offline card, a checkpoint's scan, revocation by unbinding); a
//! nucleic-acid test from sample to result; a stranger reported by a co-guardian and the
//! report upheld by the authority; and what API Gateway itself answers.

use std::process::Command;

use hyper::http::{Method, StatusCode};
use kincode_common::usecases::codes::publish;
use kincode_common::wiring::services::Services;
use kincode_localdev::client::HttpClient;
use kincode_tests::local_api::*;
use kincode_tests::*;
use serde_json::{json, Value};

/// Checks a token's signature with the independent Python verifier against the keys the
/// public route serves; returns the claims it read.
fn python_verified_claims(jwks: &Value, token: &str) -> Value {
    let file = std::env::temp_dir().join(format!("kincode-jwks-{}.json", fresh_idempotency_key()));
    std::fs::write(&file, jwks.to_string()).unwrap();
    let output = Command::new("python3")
        .arg(repo_root().join("tests/python/verify_kc1.py"))
        .arg("--jwks")
        .arg(&file)
        .arg(token)
        .output()
        .expect("python3 runs");
    let _ = std::fs::remove_file(&file);
    assert!(
        output.status.success(),
        "python verifier: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("claims JSON")
}

#[tokio::test]
async fn a_kin_code_from_render_to_revocation_over_http() {
    let api = start_local_api();
    let guardian = "user-e2e-codes";
    let me_header = format!("Dev {guardian}");
    let me = Some(me_header.as_str());
    let authority = Some("Dev authority-e2e kincode/authority");
    let checkpoint = Some("Dev site-e2e kincode/checkpoint");
    let now = chrono::Utc::now();

    let elder = resident_id_aged(68, now, 71);
    let (status, bound) = api
        .call(Method::POST, "/relatives", me, Some(json!({"name": "张建国", "id_number": elder, "relationship": "parent", "consent": true})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bound}");
    let id = bound["id"].as_str().unwrap().to_owned();
    let (status, _) = api
        .call(Method::GET, &format!("/relatives/{id}/code"), me, None)
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "pending bindings have no code"
    );
    assert_eq!(api.face_attempt(&id, me, "pass").await.0, StatusCode::OK);

    // Render: green, marked as a kin code, the QR decodes to a token the keys route verifies.
    let (status, shown) = api
        .call(Method::GET, &format!("/relatives/{id}/code"), me, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(
        (shown["colour"].as_str(), shown["label"].as_str()),
        (Some("green"), Some("亲属码"))
    );
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        shown["qr_png_base64"].as_str().unwrap(),
    )
    .unwrap();
    let online = decode_qr_twice(&png);
    assert_eq!(online, shown["code"].as_str().unwrap());
    let (status, published) = api
        .call(Method::GET, "/.well-known/kincode-keys", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "public, no token");
    let claims = python_verified_claims(&published, &online);
    assert_eq!(
        (claims["kind"].as_str(), claims["colour"].as_str()),
        (Some("kin_online"), Some("green"))
    );

    // The authority flags the person: the next render is yellow.
    let flags = json!({"rows": [{"id_number": elder, "flag": "secondary_contact", "effective_at": now - chrono::Duration::minutes(1)}]});
    let (status, answer) = api
        .call(
            Method::POST,
            "/authority/risk-flags",
            authority,
            Some(flags.clone()),
        )
        .await;
    assert_eq!(
        (status, answer["results"][0]["outcome"].as_str()),
        (StatusCode::OK, Some("stored")),
        "{answer}"
    );
    let (status, _) = api
        .call(Method::POST, "/authority/risk-flags", me, Some(flags))
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a guardian is not the authority"
    );
    let (_, shown) = api
        .call(Method::GET, &format!("/relatives/{id}/code"), me, None)
        .await;
    assert_eq!(shown["colour"], "yellow");

    // The offline card: stored, downloadable through its short link, scannable.
    let offline = api.print_offline_card(&id, me).await;
    let claims = python_verified_claims(&published, &offline);
    assert_eq!(
        (claims["kind"].as_str(), claims["colour"].as_str()),
        (Some("kin_offline"), Some("yellow"))
    );

    let scan = json!({"code": offline, "purpose": "nucleic_acid_test"});
    let (status, scanned) = api
        .call(
            Method::POST,
            "/checkpoints/scan",
            checkpoint,
            Some(scan.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{scanned}");
    assert_eq!(
        (
            scanned["code_kind"].as_str(),
            scanned["colour"].as_str(),
            scanned["name"].as_str()
        ),
        (Some("kin_offline"), Some("yellow"), Some("**国"))
    );
    let (status, body) = api
        .call(Method::POST, "/checkpoints/scan", me, Some(scan.clone()))
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({"message": "Forbidden"}))
    );

    // Confirmed: red at once, on the next render, the next card, and the old card's scan.
    let confirmed = json!({"rows": [{"id_number": elder, "flag": "confirmed", "effective_at": now - chrono::Duration::minutes(1)}]});
    let (status, _) = api
        .call(
            Method::POST,
            "/authority/risk-flags",
            authority,
            Some(confirmed),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, shown) = api
        .call(Method::GET, &format!("/relatives/{id}/code"), me, None)
        .await;
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        shown["qr_png_base64"].as_str().unwrap(),
    )
    .unwrap();
    let red_online = python_verified_claims(&published, &decode_qr_twice(&png));
    assert_eq!(
        (shown["colour"].as_str(), red_online["colour"].as_str()),
        (Some("red"), Some("red"))
    );
    let red_offline = python_verified_claims(&published, &api.print_offline_card(&id, me).await);
    assert_eq!(red_offline["colour"], "red");
    let (_, rescanned) = api
        .call(
            Method::POST,
            "/checkpoints/scan",
            checkpoint,
            Some(scan.clone()),
        )
        .await;
    assert_eq!(
        (
            rescanned["colour"].as_str(),
            rescanned["colour_at_issue"].as_str()
        ),
        (Some("red"), Some("yellow")),
        "a scan answers the colour now"
    );

    let arrival = json!({"code": offline, "purpose": "arrival"});
    let (status, refused) = api
        .call(Method::POST, "/checkpoints/scan", checkpoint, Some(arrival))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused["error"]["message"],
        "亲属码现阶段不适用于“一场两站”"
    );

    // 24 hours on, the guardian unbinds: the card is revoked, at the scan and in the list.
    api.backdate_binding(guardian, &id, 25).await;
    let (status, _) = api
        .call(Method::DELETE, &format!("/relatives/{id}"), me, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, refused) = api
        .call(Method::POST, "/checkpoints/scan", checkpoint, Some(scan))
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("code_revoked"))
    );
    // The keys route serves the copy it read for up to 60 s (README): the same document now,
    // and the revocations it publishes on its next read are the table's.
    let (_, served) = api
        .call(Method::GET, "/.well-known/kincode-keys", None, None)
        .await;
    assert_eq!(served, published, "served from the instance's copy");
    let table = Services::from_config(local_config(&api.table, &local_endpoint()))
        .await
        .unwrap();
    let next_read = publish::published_keys(&table.store, &test_key_ring(), chrono::Utc::now())
        .await
        .unwrap()
        .document;
    let revoked: Vec<&str> = next_read["revoked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cti"].as_str().unwrap())
        .collect();
    assert!(
        revoked.contains(&claims["cti"].as_str().unwrap()),
        "{next_read}"
    );
    assert!(
        revoked.contains(&red_offline["cti"].as_str().unwrap()),
        "both cards are revoked"
    );
}

#[tokio::test]
async fn a_nucleic_acid_test_from_sample_to_result_over_http() {
    let api = start_local_api();
    let guardian = "user-e2e-tests";
    let me_header = format!("Dev {guardian}");
    let me = Some(me_header.as_str());
    // site_name=小寨采样点, percent-encoded: a header value is ASCII.
    let checkpoint = Some("Dev site-e2e kincode/checkpoint site_id=XA-E2E-01 site_name=%E5%B0%8F%E5%AF%A8%E9%87%87%E6%A0%B7%E7%82%B9");
    let lab = Some("Dev lab-e2e kincode/lab");
    let now = chrono::Utc::now();

    // bind → verify (a child under 7: the pledge) → render
    let child = resident_id_aged(5, now, 93);
    let (status, bound) = api
        .call(Method::POST, "/relatives", me, Some(json!({"name": "赵子涵", "id_number": child, "relationship": "child", "consent": true})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bound}");
    let id = bound["id"].as_str().unwrap().to_owned();
    let (status, started) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification"),
            me,
            None,
        )
        .await;
    assert_eq!(
        (status, started["method"].as_str()),
        (StatusCode::OK, Some("pledge")),
        "{started}"
    );
    let pledge = json!({"pledge_version": started["pledge"]["version"], "accepted": true});
    let (status, verified) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification/complete"),
            me,
            Some(pledge),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{verified}");
    let (status, shown) = api
        .call(Method::GET, &format!("/relatives/{id}/code"), me, None)
        .await;
    assert_eq!(
        (status, shown["colour"].as_str()),
        (StatusCode::OK, Some("green"))
    );
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        shown["qr_png_base64"].as_str().unwrap(),
    )
    .unwrap();
    let online = decode_qr_twice(&png);

    // The checkpoint scans the phone into a 10-in-1 tube.
    let pooled = format!("XA-E2E-{}", &fresh_idempotency_key()[..8]);
    let sample = json!({"code": online, "tube_id": pooled, "tube_kind": "pooled_10"});
    let (status, registered) = api
        .call(
            Method::POST,
            "/checkpoints/samples",
            checkpoint,
            Some(sample.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(
        (
            registered["name"].as_str(),
            registered["filled"].as_u64(),
            registered["capacity"].as_u64()
        ),
        (Some("**涵"), Some(1), Some(10))
    );
    let (status, _) = api
        .call(
            Method::POST,
            "/checkpoints/samples",
            me,
            Some(sample.clone()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a guardian registers no samples"
    );
    let (status, refused) = api
        .call(
            Method::POST,
            "/checkpoints/samples",
            Some("Dev site-x kincode/checkpoint"),
            Some(sample),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("site_not_assigned"))
    );

    // The lab reports it negative; the guardian reads it.
    let report = |tube: &str, result: &str| json!({"rows": [{"tube_id": tube, "result": result, "reported_at": chrono::Utc::now()}]});
    let (status, answer) = api
        .call(
            Method::POST,
            "/lab/results",
            lab,
            Some(report(&pooled, "negative")),
        )
        .await;
    assert_eq!(
        (status, answer["results"][0]["outcome"].as_str()),
        (StatusCode::OK, Some("stored")),
        "{answer}"
    );
    let (status, _) = api
        .call(
            Method::POST,
            "/lab/results",
            checkpoint,
            Some(report(&pooled, "negative")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a checkpoint is not a lab");
    let (status, results) = api
        .call(Method::GET, &format!("/relatives/{id}/results"), me, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{results}");
    assert_eq!(results["results"][0]["status"], "negative");
    assert_eq!(results["results"][0]["sampling"], "pooled");
    assert_eq!(results["results"][0]["site"]["name"], "小寨采样点");
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/relatives/{id}/results"),
            Some("Dev user-stranger"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The printed card registers a second sample, alone in its tube; it comes back positive.
    let offline = api.print_offline_card(&id, me).await;
    let single = format!("XA-E2E-{}", &fresh_idempotency_key()[..8]);
    let (status, registered) = api
        .call(
            Method::POST,
            "/checkpoints/samples",
            checkpoint,
            Some(json!({"code": offline, "tube_id": single})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(
        (
            registered["code_kind"].as_str(),
            registered["tube_kind"].as_str()
        ),
        (Some("kin_offline"), Some("single"))
    );
    let (status, _) = api
        .call(
            Method::POST,
            "/lab/results",
            lab,
            Some(report(&single, "positive")),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, shown) = api
        .call(Method::GET, &format!("/relatives/{id}/code"), me, None)
        .await;
    assert_eq!(
        shown["colour"], "red",
        "a single-tube positive is red at once"
    );
    let (_, results) = api
        .call(
            Method::GET,
            &format!("/relatives/{id}/results?limit=1"),
            me,
            None,
        )
        .await;
    assert_eq!(results["results"][0]["status"], "positive");
    let cursor = results["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (status, second) = api
        .call(
            Method::GET,
            &format!("/relatives/{id}/results?limit=1&cursor={cursor}"),
            me,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["results"][0]["status"], "negative");

    // 24 hours on, the guardian unbinds: the card registers nothing any more.
    api.backdate_binding(guardian, &id, 25).await;
    let (status, _) = api
        .call(Method::DELETE, &format!("/relatives/{id}"), me, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let third = format!("XA-E2E-{}", &fresh_idempotency_key()[..8]);
    let (status, refused) = api
        .call(
            Method::POST,
            "/checkpoints/samples",
            checkpoint,
            Some(json!({"code": offline, "tube_id": third})),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("code_revoked"))
    );
    let (status, _) = api
        .call(Method::GET, &format!("/relatives/{id}/results"), me, None)
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an unbound relative's results are gone"
    );
}

/// `sam build`'s release bootstraps (`scripts/test` builds them before the tests run).
fn release_bootstraps() -> std::path::PathBuf {
    let dir = repo_root().join("target/sam-build");
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    for (function, _) in template.functions() {
        assert!(
            dir.join(&function).join("bootstrap").is_file(),
            "{} has no release bootstrap of {function}: `scripts/test` runs `sam build` first",
            dir.display()
        );
    }
    dir
}

#[tokio::test]
async fn face_verification_through_alipay_with_the_release_bootstrap_over_http() {
    let api = start_local_api_with(&release_bootstraps(), &["--face", "alipay-stand-in"]);
    let stand_in = api.stand_in.clone().expect("the stand-in's line");
    let me = Some("Dev user-e2e-alipay");
    let now = chrono::Utc::now();

    let mut bound = Vec::new();
    for (i, name) in ["孙淑珍", "周福来"].iter().enumerate() {
        let elder = resident_id_aged(74, now, 300 + i as u32);
        let (status, binding) = api
            .call(Method::POST, "/relatives", me, Some(json!({"name": name, "id_number": elder, "relationship": "grandparent", "consent": true})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{binding}");
        bound.push(binding["id"].as_str().unwrap().to_owned());
    }

    // Start: the function asks Alipay (the stand-in checks its signature) for a session.
    let id = &bound[0];
    let (status, started) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification"),
            me,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let certify_id = started["certify_id"].as_str().unwrap().to_owned();
    let certify_url = started["certify_url"].as_str().unwrap().to_owned();
    assert!(certify_url.starts_with(&stand_in), "{certify_url}");
    let complete = |evidence: Value| json!({"certify_id": certify_id, "evidence": evidence});

    // Not scanned yet: 409, nothing counted.
    let (status, early) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification/complete"),
            me,
            Some(complete(json!({"result_status": "6001"}))),
        )
        .await;
    assert_eq!(
        (status, early["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("face_not_finished")),
        "{early}"
    );
    // The person scans their face in the mini-program (the stand-in's page), then completes.
    let page = download(&certify_url).await;
    assert_eq!(page.status, StatusCode::OK);
    let (status, verified) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification/complete"),
            me,
            Some(complete(json!({"result_status": "9000"}))),
        )
        .await;
    assert_eq!(
        (status, verified["status"].as_str()),
        (StatusCode::OK, Some("active")),
        "{verified}"
    );

    // A tampered answer from "Alipay" is refused: 503, the binding still pending.
    let id = &bound[1];
    let (_, started) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification"),
            me,
            None,
        )
        .await;
    let certify_id = started["certify_id"].as_str().unwrap();
    let script = json!({"certify_id": certify_id, "outcome": "bad_signature"}).to_string();
    let scripted = HttpClient::default()
        .send(
            Method::POST,
            &format!("{stand_in}/_stand-in/script"),
            &[],
            script.into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(scripted.status, StatusCode::NO_CONTENT);
    let (status, refused) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification/complete"),
            me,
            Some(json!({"certify_id": certify_id, "evidence": {}})),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("face_provider_untrusted")
        ),
        "{refused}"
    );
    let (_, listed) = api.call(Method::GET, "/relatives", me, None).await;
    let second = listed["relatives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap();
    assert_eq!(second["status"], "pending_verification");
}

#[tokio::test]
async fn bind_verify_list_unbind_over_http() {
    let api = start_local_api();
    let bearer = format!("Bearer {}", api.token);
    let me = Some(bearer.as_str());
    let now = chrono::Utc::now();

    let elder = resident_id_aged(72, now, 61);
    let (status, bound) = api
        .call(Method::POST, "/relatives", me, Some(json!({"name": "刘桂兰", "id_number": elder, "relationship": "grandparent", "consent": true})))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{bound}");
    assert_eq!(bound["status"], "pending_verification");
    let id = bound["id"].as_str().unwrap();

    let (status, failed) = api.face_attempt(id, me, "fail").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(failed["error"]["message"], "人脸识别认证失败,请重新认证");
    let (status, verified) = api.face_attempt(id, me, "pass").await;
    assert_eq!(
        (status, verified["status"].as_str()),
        (StatusCode::OK, Some("active")),
        "{verified}"
    );

    let (status, listed) = api.call(Method::GET, "/relatives", me, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["relatives"][0]["id"].as_str(), Some(id));
    assert_eq!(listed["relatives"][0]["name"], "**兰");

    let (status, early) = api
        .call(Method::DELETE, &format!("/relatives/{id}"), me, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        early["error"]["message"],
        "绑定亲属码成员24小时后,才能进行解绑操作"
    );
    assert!(early["error"]["unbind_available_at"].is_string());

    // Another guardian sees nothing of it, on every route.
    let stranger = Some("Dev user-stranger");
    for (method, path) in [
        (Method::POST, format!("/relatives/{id}/verification")),
        (
            Method::POST,
            format!("/relatives/{id}/verification/complete"),
        ),
        (Method::DELETE, format!("/relatives/{id}")),
    ] {
        let (status, body) = api.call(method, &path, stranger, Some(json!({}))).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (_, theirs) = api.call(Method::GET, "/relatives", stranger, None).await;
    assert_eq!(theirs["relatives"], json!([]));
}

#[tokio::test]
async fn the_gateway_answers_like_api_gateway() {
    let api = start_local_api();
    let (status, body) = api.call(Method::GET, "/relatives", None, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, json!({"message": "Unauthorized"}))
    );
    let (status, _) = api
        .call(Method::GET, "/relatives", Some("Bearer not-a-token"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = api
        .call(Method::GET, "/nowhere", Some("Dev user-1"), None)
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"message": "Not Found"}))
    );
    let (status, body) = api
        .call(Method::POST, "/relatives", Some("Dev user-1"), None)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("malformed_request"))
    );
    // 7 MB: past what Lambda takes in one event, so it never reaches a function.
    let big = json!({ "name": "x".repeat(7 * 1024 * 1024) });
    let (status, body) = api
        .call(Method::POST, "/relatives", Some("Dev user-1"), Some(big))
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"message": "Request Entity Too Large"})
        )
    );
}

#[tokio::test]
async fn with_instances_concurrent_requests_run_in_several_function_processes() {
    let api = start_local_api_with(&bin_dir(), &["--instances", "3"]);
    let me = Some("Dev user-instances");
    let calls = (0..6).map(|_| api.call(Method::GET, "/relatives", me, None));
    for (status, body) in futures_util::future::join_all(calls).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let instances: std::collections::BTreeSet<String> = api
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.starts_with("GET /relatives "))
        .filter_map(|line| line.split(" instance=").nth(1))
        .filter_map(|rest| rest.split_whitespace().next().map(str::to_owned))
        .collect();
    assert!(
        instances.len() > 1,
        "six requests at once all ran in one instance: {instances:?}"
    );
}

/// A verified child binding of `id_number` by `auth`, over HTTP.
async fn verified_child(api: &LocalApi, auth: &str, id_number: &str) -> String {
    let bind =
        json!({"name": "王小明", "id_number": id_number, "relationship": "child", "consent": true});
    let (status, bound) = api
        .call(Method::POST, "/relatives", Some(auth), Some(bind))
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
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/relatives/{id}/verification/complete"),
            Some(auth),
            Some(pledge),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    id
}

#[tokio::test]
async fn a_stranger_reported_by_the_mother_and_upheld_loses_the_child_over_http() {
    let api = start_local_api();
    let (mother, stranger) = ("Dev user-e2e-mother", "Dev user-e2e-stranger");
    let authority = "Dev cdc-e2e kincode/authority";
    let checkpoint = "Dev site-e2e kincode/checkpoint";
    let child = distinct_resident_id(5, chrono::Utc::now());
    let mine = verified_child(&api, mother, &child).await;
    let theirs = verified_child(&api, stranger, &child).await;
    let (_, shown) = api
        .call(
            Method::GET,
            &format!("/relatives/{theirs}/code"),
            Some(stranger),
            None,
        )
        .await;
    let code = shown["code"].as_str().unwrap().to_owned();

    let (status, listed) = api
        .call(
            Method::GET,
            &format!("/relatives/{mine}/guardians"),
            Some(mother),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let other = listed["guardians"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["is_caller"] == false)
        .unwrap()
        .clone();
    assert!(!listed.to_string().contains("user-e2e-stranger"));
    let report =
        json!({"guardian": other["handle"], "reason": "not_family", "details": "不认识此人"});
    let (status, opened) = api
        .call(
            Method::POST,
            &format!("/relatives/{mine}/disputes"),
            Some(mother),
            Some(report),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let dispute = opened["id"].as_str().unwrap();

    // Only the authority reads and resolves the queue.
    let (status, body) = api
        .call(Method::GET, "/authority/disputes", Some(mother), None)
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::FORBIDDEN, json!({"message": "Forbidden"}))
    );
    let (status, queue) = api
        .call(Method::GET, "/authority/disputes", Some(authority), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{queue}");
    assert_eq!(queue["disputes"][0]["id"], dispute);
    assert_eq!(queue["disputes"][0]["disputed"]["handle"], other["handle"]);
    let (status, resolved) = api
        .call(
            Method::POST,
            &format!("/authority/disputes/{dispute}/resolution"),
            Some(authority),
            Some(json!({"decision": "uphold"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resolved}");

    // The stranger's code no longer scans, the child is gone from their list, and binding the
    // child again is refused until the ban ends.
    let (status, refused) = api
        .call(
            Method::POST,
            "/checkpoints/scan",
            Some(checkpoint),
            Some(json!({"code": code, "purpose": "venue_entry"})),
        )
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("code_revoked"))
    );
    let (_, theirs_now) = api
        .call(Method::GET, "/relatives", Some(stranger), None)
        .await;
    assert_eq!(theirs_now["relatives"], json!([]));
    let bind =
        json!({"name": "王小明", "id_number": child, "relationship": "child", "consent": true});
    let (status, banned) = api
        .call(Method::POST, "/relatives", Some(stranger), Some(bind))
        .await;
    assert_eq!(
        (status, banned["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("binding_banned"))
    );
    assert_eq!(banned["error"]["banned_until"], resolved["banned_until"]);
    let (_, mine_now) = api.call(Method::GET, "/disputes", Some(mother), None).await;
    assert_eq!(mine_now["disputes"][0]["status"], "upheld");
    assert_eq!(api.violations().await, Vec::<String>::new());
}
