//! The local API over HTTP: the gateway (`kincode-local`, as `scripts/run` starts it) in front
//! of the real function binaries under the Lambda Runtime Interface Emulator, on the local AWS
//! stack. Used by the end-to-end and the fault-injection tiers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use aws_sdk_dynamodb::types::AttributeValue;
use hyper::http::{HeaderMap, Method, StatusCode};
use kincode_localdev::client::HttpClient;
use serde_json::{json, Value};

use crate::contract::contract;
use crate::*;

/// The gateway process; stopped (with its emulators) when dropped.
pub struct LocalApi {
    child: Child,
    pub base: String,
    pub token: String,
    pub table: String,
    keys_dir: std::path::PathBuf,
    /// The Alipay stand-in's base URL, when started with one.
    pub stand_in: Option<String>,
    /// Every line the gateway logged (also passed on to the test's stderr).
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
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

/// A plain GET of `url` (a card's short-lived download link, say), outside the API.
pub async fn download(url: &str) -> kincode_localdev::client::Answer {
    HttpClient::default()
        .send(Method::GET, url, &[], Vec::new())
        .await
        .expect("the download link answers")
}

/// What the API answered: status, headers and the JSON body (`Null` when there is none).
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
}

pub fn start_local_api() -> LocalApi {
    start_local_api_with(&bin_dir(), &[])
}

/// The gateway over the functions in `functions_dir` (cargo's or `sam build`'s layout), with
/// more `kincode-local` arguments.
pub fn start_local_api_with(functions_dir: &std::path::Path, more: &[&str]) -> LocalApi {
    let dir = std::env::temp_dir().join(format!("kincode-e2e-{}", fresh_idempotency_key()));
    let table = format!("kincode-e2e-{}", &fresh_idempotency_key()[..8]);
    let mut child = Command::new(binary("kincode-local"))
        .args(["--rie"])
        .arg(rie_path())
        .args(["--endpoint", &local_endpoint(), "--port", "0", "--table"])
        .arg(&table)
        .arg("--bin-dir")
        .arg(functions_dir)
        .args(more)
        .arg("--template")
        .arg(repo_root().join("template.yaml"))
        .arg("--keys-file")
        .arg(dir.join("keys.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kincode-local");
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let (stderr, kept) = (child.stderr.take().unwrap(), log.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            kept.lock().unwrap().push(line);
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut base, mut token, mut stand_in) = (None, None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("face verification: Alipay stand-in at ") {
            let gateway = rest.split_whitespace().next().unwrap();
            stand_in = Some(gateway.trim_end_matches("/gateway.do").to_owned());
        }
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
        table,
        keys_dir: dir,
        stand_in,
        log,
    }
}

impl LocalApi {
    /// One face recognition attempt: a new session, completed with the simulated outcome.
    pub async fn face_attempt(
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

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let answer = self.call_with(method, path, auth, &[], body).await;
        (answer.status, answer.json)
    }

    /// A request with more headers (an `Idempotency-Key`, say); the answer is checked against
    /// openapi.yaml, and its headers are kept.
    pub async fn call_with(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        more_headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = auth {
            headers.push(("authorization", auth));
        }
        headers.extend_from_slice(more_headers);
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let answer = HttpClient::default()
            .send(
                method.clone(),
                &format!("{}{path}", self.base),
                &headers,
                body,
            )
            .await
            .unwrap();
        let route = path.split('?').next().unwrap_or(path);
        if contract().route(method.as_str(), route).is_some() {
            let content_type = answer
                .headers
                .get("content-type")
                .and_then(|value| value.to_str().ok());
            contract().check(
                method.as_str(),
                route,
                answer.status.as_u16(),
                content_type,
                &answer.body,
            );
        } else {
            // No operation: API Gateway's own 404, which is no operation's to document.
            assert_eq!(answer.status, StatusCode::NOT_FOUND, "{method} {route}");
        }
        Answer {
            status: answer.status,
            json: serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
            headers: answer.headers,
        }
    }

    /// Makes an offline card, downloads it through its short link, and reads its QR code
    /// (zbarimg and rqrr).
    pub async fn print_offline_card(&self, id: &str, auth: Option<&str>) -> String {
        let (status, issued) = self
            .call(
                Method::POST,
                &format!("/relatives/{id}/offline-code"),
                auth,
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{issued}");
        let download = download(issued["download_url"].as_str().unwrap()).await;
        assert_eq!(download.status, StatusCode::OK);
        decode_qr_twice(&download.body)
    }

    /// Every item of the gateway's table.
    pub async fn all_items(&self) -> Vec<std::collections::HashMap<String, AttributeValue>> {
        every_item(&local_dynamodb().await, &self.table).await
    }

    /// The keys of every object in the gateway's offline-card bucket.
    pub async fn card_objects(&self) -> Vec<String> {
        let shared = kincode_localdev::local::aws_config_loader()
            .endpoint_url(local_endpoint())
            .load()
            .await;
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(true)
                .build(),
        );
        let bucket =
            kincode_localdev::provision::local_bucket_name(&self.table, "OfflineCodeBucket");
        let (mut keys, mut token) = (Vec::new(), None);
        loop {
            let page = s3
                .list_objects_v2()
                .bucket(&bucket)
                .set_continuation_token(token)
                .send()
                .await
                .expect("list the card bucket");
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            token = page.next_continuation_token().map(str::to_owned);
            if token.is_none() {
                return keys;
            }
        }
    }

    /// What breaks the rules in the table and the bucket (`invariants::violations`).
    pub async fn violations(&self) -> Vec<String> {
        crate::invariants::violations(&self.all_items().await, &self.card_objects().await)
    }

    /// Moves a binding's bind time back, as if `hours` had passed since (the functions read
    /// the real clock).
    pub async fn backdate_binding(&self, guardian: &str, id: &str, hours: i64) {
        let bound_at = chrono::Utc::now() - chrono::Duration::hours(hours);
        local_dynamodb()
            .await
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("G#{guardian}")))
            .key("sk", AttributeValue::S(format!("B#{id}")))
            .update_expression("SET bound_at = :t")
            .expression_attribute_values(":t", AttributeValue::S(bound_at.to_rfc3339()))
            .send()
            .await
            .expect("backdate binding");
    }
}
