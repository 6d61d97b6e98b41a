//! End to end over HTTP: the local gateway (`kincode-local`, as `scripts/run` starts it) in
//! front of the real function binaries under the Lambda Runtime Interface Emulator, on the
//! local AWS stack. bind → verify → list → unbind, and what API Gateway itself answers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use hyper::http::{Method, StatusCode};
use kincode_localdev::client::HttpClient;
use kincode_tests::*;
use serde_json::{json, Value};

/// The gateway process; stopped (with its emulators) when dropped.
struct LocalApi {
    child: Child,
    base: String,
    token: String,
    keys_dir: std::path::PathBuf,
}

impl Drop for LocalApi {
    fn drop(&mut self) {
        // SIGTERM lets the gateway stop its emulators before it exits.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.keys_dir);
    }
}

fn start_local_api() -> LocalApi {
    let dir = std::env::temp_dir().join(format!("kincode-e2e-{}", fresh_idempotency_key()));
    let mut child = Command::new(binary("kincode-local"))
        .args(["--rie"])
        .arg(rie_path())
        .args(["--endpoint", &local_endpoint(), "--port", "0", "--table"])
        .arg(format!("kincode-e2e-{}", &fresh_idempotency_key()[..8]))
        .arg("--bin-dir")
        .arg(bin_dir())
        .arg("--template")
        .arg(repo_root().join("template.yaml"))
        .arg("--keys-file")
        .arg(dir.join("keys.json"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("start kincode-local");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut token) = (None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(t) = line.strip_prefix("dev token (sub dev-guardian, 30 days): ") {
            token = Some(t.to_owned());
        }
        if let Some(url) = line.strip_prefix("READY ") {
            base = Some(url.to_owned());
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    LocalApi {
        child,
        base: base.expect("READY line"),
        token: token.expect("dev token line"),
        keys_dir: dir,
    }
}

impl LocalApi {
    /// One face recognition attempt: a new session, completed with the simulated outcome.
    async fn face_attempt(
        &self,
        id: &str,
        auth: Option<&str>,
        outcome: &str,
    ) -> (StatusCode, Value) {
        let (status, started) = self
            .call(
                Method::POST,
                &format!("/relatives/{id}/verification"),
                auth,
                None,
            )
            .await;
        assert_eq!(
            (status, started["method"].as_str()),
            (StatusCode::OK, Some("face")),
            "{started}"
        );
        let evidence = json!({"certify_id": started["certify_id"], "evidence": {"simulated_outcome": outcome}});
        self.call(
            Method::POST,
            &format!("/relatives/{id}/verification/complete"),
            auth,
            Some(evidence),
        )
        .await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = auth {
            headers.push(("authorization", auth));
        }
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let answer = HttpClient::default()
            .send(method, &format!("{}{path}", self.base), &headers, body)
            .await
            .unwrap();
        (
            answer.status,
            serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
        )
    }
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
}
