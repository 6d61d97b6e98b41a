//! Test support shared by every tier: the local AWS stack (moto, started by
//! `scripts/with-local-stack.sh`), a fresh table per test built from `template.yaml`, and the
//! API Gateway events in `events/`.

use std::collections::HashMap;
use std::path::PathBuf;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kincode_common::adapters::blobs::BlobStore;
use kincode_common::codes::keys::KeyRing;
use kincode_common::domain::binding::{Binding, GuardianId};
use kincode_common::wiring::config::Config;
use kincode_common::wiring::services::Services;
pub use kincode_localdev::template::Template;
use lambda_http::{Body, Request, Response};
use serde_json::Value;

pub mod contract;
pub mod invariants;
pub mod local_api;
pub mod offline_cards;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The local stack's endpoint. Tests that need it are run by the README's test command,
/// which starts the stack; run alone they stop here with a pointer.
pub fn local_endpoint() -> String {
    std::env::var("KINCODE_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!("KINCODE_AWS_ENDPOINT is not set: run the tests with `scripts/test` (it starts the local AWS stack)")
    })
}

fn random_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    seed
}

/// A code key ring with one fresh key: two calls give rings that do not know each other.
pub fn test_key_ring() -> KeyRing {
    KeyRing::generate("test-key")
}

fn random_key() -> String {
    let mut bytes = uuid::Uuid::new_v4().as_bytes().to_vec();
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    B64.encode(bytes)
}

/// Local-stage configuration for `table`, with fresh random keys, trusting the local stack's
/// CA when it speaks TLS (with-local-stack.sh, LOCAL_STACK_TLS=1).
pub fn local_config(table: &str, endpoint: &str) -> Config {
    local_config_trusting(table, endpoint, std::env::var("KINCODE_LOCAL_CA_FILE").ok())
}

/// Like `local_config`, trusting exactly `local_ca` (a PEM file) beside the compiled-in roots.
/// Every secret is given (as if fetched), so one configuration serves every use case.
pub fn local_config_trusting(table: &str, endpoint: &str, local_ca: Option<String>) -> Config {
    use kincode_common::wiring::config::{
        DATA_KEYS_SECRET, PUBLIC_KEYS_SECRET, SIGNING_KEYS_SECRET,
    };
    let signing = KeyRing::config_json("test-key", &random_seed());
    let ring = KeyRing::from_json(&signing).expect("a generated ring");
    let secrets = HashMap::from([
        (
            "test/data-keys".to_owned(),
            serde_json::json!({"lookup_secret": random_key(), "data_key": random_key()})
                .to_string(),
        ),
        ("test/signing-keys".to_owned(), signing),
        (
            "test/public-keys".to_owned(),
            ring.verification_keys().to_json(),
        ),
    ]);
    let mut vars = HashMap::from([
        ("KINCODE_STAGE", "local".to_owned()),
        ("KINCODE_TABLE", table.to_owned()),
        ("KINCODE_AWS_ENDPOINT", endpoint.to_owned()),
        (DATA_KEYS_SECRET, "test/data-keys".to_owned()),
        (SIGNING_KEYS_SECRET, "test/signing-keys".to_owned()),
        (PUBLIC_KEYS_SECRET, "test/public-keys".to_owned()),
        ("KINCODE_FACE_VERIFIER", "local-simulator".to_owned()),
        ("KINCODE_OFFLINE_BUCKET", format!("{table}-cards")),
    ]);
    if let Some(ca) = local_ca {
        vars.insert("KINCODE_LOCAL_CA_FILE", ca);
    }
    Config::from_lookup(|k| vars.get(k).cloned(), |name| secrets.get(name).cloned())
        .expect("local config")
}

/// Services on a table of their own, so tests never see each other's data.
pub async fn fresh_services() -> Services {
    let endpoint = local_endpoint();
    let table = format!("kincode-test-{}", uuid::Uuid::new_v4().simple());
    services_with_table(local_config(&table, &endpoint)).await
}

/// Services of `config`, with its table created on its local stack.
pub async fn services_with_table(config: Config) -> Services {
    let table = config.table.clone();
    let services = Services::from_config(config).await.expect("services");
    let template = Template::load(&repo_root().join("template.yaml")).expect("template.yaml");
    kincode_localdev::provision::create_table(&raw_client(&services).await, &template, &table)
        .await
        .expect("table on the local stack");
    services
}

/// A client of the local stack's DynamoDB, for tests that reach past the functions.
pub async fn local_dynamodb() -> aws_sdk_dynamodb::Client {
    let shared = kincode_localdev::local::aws_config_loader()
        .endpoint_url(local_endpoint())
        .load()
        .await;
    aws_sdk_dynamodb::Client::new(&shared)
}

/// A plain client for inspecting what the functions wrote.
pub async fn raw_client(services: &Services) -> aws_sdk_dynamodb::Client {
    kincode_common::wiring::services::dynamodb_client(&services.config)
        .await
        .expect("DynamoDB client")
}

/// Every item of the services' table (test tables are small).
pub async fn all_items(services: &Services) -> Vec<HashMap<String, AttributeValue>> {
    every_item(&raw_client(services).await, &services.config.table).await
}

/// Every item of `table`, read consistently, page by page.
pub async fn every_item(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(page.items.unwrap_or_default());
        start = page.last_evaluated_key;
        if start.is_none() {
            return items;
        }
    }
}

/// A counter item's value (0 when absent).
pub async fn counter(services: &Services, pk: &str, attribute: &str) -> u64 {
    all_items(services)
        .await
        .iter()
        .find(|i| {
            i["pk"].as_s().ok().map(String::as_str) == Some(pk)
                && i["sk"].as_s().ok().map(String::as_str) == Some("COUNT")
        })
        .and_then(|i| i.get(attribute)?.as_n().ok()?.parse().ok())
        .unwrap_or(0)
}

/// An event file from `events/`, as JSON to adjust before use.
pub fn event(name: &str) -> Value {
    let path = repo_root().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("event is JSON")
}

/// Adjustments tests make to an event file.
pub trait EventExt {
    fn with_caller(self, sub: &str) -> Self;
    fn without_caller(self) -> Self;
    /// Sets the `scope` claim (`None` removes it).
    fn with_scope(self, scope: Option<&str>) -> Self;
    /// Sets a JWT claim (`None` removes it).
    fn with_claim(self, name: &str, value: Option<&str>) -> Self;
    /// Sets a query-string parameter.
    fn with_query(self, name: &str, value: &str) -> Self;
    fn with_path_binding(self, binding_id: &str) -> Self;
    /// Sets path parameter `name` (and the path that carries it).
    fn with_path_parameter(self, name: &str, value: &str) -> Self;
    fn with_body(self, body: Value) -> Self;
    fn with_raw_body(self, body: &str) -> Self;
    fn with_header(self, name: &str, value: &str) -> Self;
    /// `METHOD /path template`, as API Gateway routed it.
    fn route_key(&self) -> String;
    fn into_request(self) -> Request;
}

impl EventExt for Value {
    fn with_caller(mut self, sub: &str) -> Self {
        self["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = sub.into();
        self
    }
    fn without_caller(mut self) -> Self {
        self["requestContext"]
            .as_object_mut()
            .expect("requestContext")
            .remove("authorizer");
        self
    }
    fn with_scope(mut self, scope: Option<&str>) -> Self {
        let claims = &mut self["requestContext"]["authorizer"]["jwt"]["claims"];
        match scope {
            Some(scope) => claims["scope"] = scope.into(),
            None => {
                claims.as_object_mut().expect("claims").remove("scope");
            }
        }
        self
    }
    fn with_claim(mut self, name: &str, value: Option<&str>) -> Self {
        let claims = &mut self["requestContext"]["authorizer"]["jwt"]["claims"];
        match value {
            Some(value) => claims[name] = value.into(),
            None => {
                claims.as_object_mut().expect("claims").remove(name);
            }
        }
        self
    }
    fn with_query(mut self, name: &str, value: &str) -> Self {
        if !self["queryStringParameters"].is_object() {
            self["queryStringParameters"] = serde_json::json!({});
        }
        self["queryStringParameters"][name] = value.into();
        let query: Vec<String> = self["queryStringParameters"]
            .as_object()
            .expect("object")
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        self["rawQueryString"] = query.join("&").into();
        self
    }
    fn with_path_binding(self, binding_id: &str) -> Self {
        self.with_path_parameter("binding_id", binding_id)
    }
    fn with_path_parameter(mut self, name: &str, value: &str) -> Self {
        let old = self["pathParameters"][name]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        self["pathParameters"][name] = value.into();
        let path = self["rawPath"]
            .as_str()
            .unwrap_or_default()
            .replace(&old, value);
        self["rawPath"] = path.clone().into();
        self["requestContext"]["http"]["path"] = path.into();
        self
    }
    fn with_body(self, body: Value) -> Self {
        self.with_raw_body(&body.to_string())
    }
    fn with_raw_body(mut self, body: &str) -> Self {
        self["body"] = body.into();
        self["isBase64Encoded"] = false.into();
        self
    }
    fn with_header(mut self, name: &str, value: &str) -> Self {
        self["headers"][name] = value.into();
        self
    }
    fn route_key(&self) -> String {
        self["routeKey"].as_str().expect("routeKey").to_owned()
    }
    fn into_request(self) -> Request {
        lambda_http::request::from_str(&self.to_string()).expect("event converts to a request")
    }
}

/// Checks a handler's answer against `openapi.yaml`, for the route of the event it answered.
pub fn conforms(route_key: &str, response: &Response<Body>) {
    let (method, path) = route_key
        .split_once(' ')
        .expect("routeKey is `METHOD /path`");
    let body: &[u8] = match response.body() {
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok());
    contract::contract().check(method, path, response.status().as_u16(), content_type, body);
}

/// A response's status and JSON body (`Null` when empty).
pub fn status_and_json(response: &Response<Body>) -> (u16, Value) {
    let body = match response.body() {
        Body::Text(t) => serde_json::from_str(t).expect("JSON body"),
        Body::Binary(b) => serde_json::from_slice(b).expect("JSON body"),
        _ => Value::Null,
    };
    (response.status().as_u16(), body)
}

/// Each row's outcome in a batch's answer: its error code when rejected, else the outcome.
pub fn row_outcomes(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results: {body}"))
        .iter()
        .map(|r| {
            r["error"]["code"]
                .as_str()
                .or(r["outcome"].as_str())
                .expect("an outcome")
                .to_owned()
        })
        .collect()
}

/// A valid resident ID number for someone born on `birth` (Xi'an, Yanta district).
pub fn resident_id_born(birth: chrono::NaiveDate, sequence: u32) -> String {
    let body = format!("610113{}{:03}", birth.format("%Y%m%d"), sequence % 1000);
    let check = kincode_common::domain::resident_id::check_character(body.as_bytes());
    format!("{body}{}", check as char)
}

/// Someone `years` old (and a few days) on `now`'s China date.
pub fn resident_id_aged(years: u32, now: chrono::DateTime<chrono::Utc>, sequence: u32) -> String {
    use chrono::Datelike;
    let today = kincode_common::domain::china_time::china_date(now) - chrono::Duration::days(3);
    let birth = today
        .with_year(today.year() - years as i32)
        .unwrap_or(today - chrono::Duration::days(365 * years as i64));
    resident_id_born(birth, sequence)
}

/// A valid ID number of someone `years` old, different from every other this process made
/// (a random sequence number alone would repeat: a thousand per birth date).
pub fn distinct_resident_id(years: u32, now: chrono::DateTime<chrono::Utc>) -> String {
    use chrono::Datelike;
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: std::sync::OnceLock<AtomicU32> = std::sync::OnceLock::new();
    let n = NEXT
        .get_or_init(|| AtomicU32::new(uuid::Uuid::new_v4().as_u128() as u32 % 300_000))
        .fetch_add(1, Ordering::Relaxed)
        % 300_000;
    // 300 birth dates within the same year of age, a thousand sequence numbers each.
    let today = kincode_common::domain::china_time::china_date(now);
    let birthday = today
        .with_year(today.year() - years as i32)
        .unwrap_or(today - chrono::Duration::days(365 * years as i64));
    let birth = birthday - chrono::Duration::days(3 + i64::from(n / 1000));
    resident_id_born(birth, n % 1000)
}

/// A consenting guardian's request to bind their parent (周建华) by `id_number`.
pub fn parent_bind_request(id_number: &str) -> kincode_common::usecases::bindings::BindRequest {
    kincode_common::usecases::bindings::BindRequest {
        name: Some("周建华".into()),
        id_number: Some(id_number.into()),
        relationship: Some("parent".into()),
        consent: Some(true),
    }
}

/// Binds through the use case (not a handler), for tests that need bindings to exist.
pub async fn bind_relative(
    services: &Services,
    guardian: &str,
    id_number: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<kincode_common::domain::binding::Binding, kincode_common::error::AppError> {
    let guardian =
        kincode_common::domain::binding::GuardianId::parse(guardian).expect("guardian id");
    let request = kincode_common::usecases::bindings::BindRequest {
        name: Some("李秀英".into()),
        id_number: Some(id_number.into()),
        relationship: Some("grandparent".into()),
        consent: Some(true),
    };
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = kincode_common::store::ActionContext {
        request_id: &request_id,
        at: now,
    };
    kincode_common::usecases::bindings::bind(&services.store, &guardian, request, None, ctx).await
}

/// An action at `at` under a request id of its own (as every real request has one: records
/// keyed by it never meet another request's).
pub fn request_at(
    at: chrono::DateTime<chrono::Utc>,
) -> kincode_common::store::ActionContext<'static> {
    kincode_common::store::ActionContext {
        request_id: Box::leak(uuid::Uuid::new_v4().to_string().into_boxed_str()),
        at,
    }
}

/// Services whose DynamoDB endpoint refuses connections: the dependency is down.
pub async fn unreachable_services() -> Services {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    Services::from_config(local_config("kincode-unreachable", &endpoint))
        .await
        .expect("services")
}

/// A new Idempotency-Key value.
pub fn fresh_idempotency_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The Lambda Runtime Interface Emulator (from the aws-sam-cli package), as `scripts/test`
/// exports it.
pub fn rie_path() -> PathBuf {
    std::env::var_os("KINCODE_RIE").map(PathBuf::from).unwrap_or_else(|| {
        panic!("KINCODE_RIE is not set: run the tests with `scripts/test` (it installs the emulator)")
    })
}

/// Where the workspace's binaries are: beside this test executable's `deps/` folder.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_path_buf()
}

/// A function's built binary, or a pointer to the command that builds it.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: `scripts/test` builds the binaries first",
        path.display()
    );
    path
}

/// Counts the DynamoDB calls a client makes, by operation (an SDK interceptor: it sees every
/// call the adapter sends, retries excluded).
#[derive(Debug, Clone, Default)]
pub struct CallCounter(
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<String>>>,
);

impl aws_sdk_dynamodb::config::Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_serialization(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if let Some(meta) = cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>() {
            self.0.lock().expect("lock").push(meta.name().to_owned());
        }
        // IAM authorizes a transaction by the actions of its items.
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
        if let Some(input) = _context.input().downcast_ref::<TransactWriteItemsInput>() {
            let mut actions = self.1.lock().expect("lock");
            for item in input.transact_items() {
                let action = if item.put().is_some() {
                    "PutItem"
                } else if item.update().is_some() {
                    "UpdateItem"
                } else if item.delete().is_some() {
                    "DeleteItem"
                } else {
                    "ConditionCheckItem"
                };
                actions.insert(format!("dynamodb:{action}"));
            }
        } else if let Some(meta) =
            cfg.load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
        {
            if meta.name() != "TransactWriteItems" {
                self.1
                    .lock()
                    .expect("lock")
                    .insert(format!("dynamodb:{}", meta.name()));
            }
        }
        Ok(())
    }
}

impl CallCounter {
    /// The operations called since the last `take`, in order.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("lock"))
    }

    /// The IAM actions the calls since the last `take_actions` needed (a transaction needs
    /// its items' actions).
    pub fn take_actions(&self) -> std::collections::BTreeSet<String> {
        std::mem::take(&mut *self.1.lock().expect("lock"))
    }
}

/// Like `fresh_services`, with every DynamoDB call counted.
pub async fn counted_services() -> (Services, CallCounter) {
    let counter = CallCounter::default();
    (intercepted_services(counter.clone()).await, counter)
}

/// Like `fresh_services`, with `interceptor` seeing every DynamoDB call.
pub async fn intercepted_services(
    interceptor: impl aws_sdk_dynamodb::config::Intercept + 'static,
) -> Services {
    intercepted_on_same_table(&fresh_services().await, interceptor).await
}

/// Services on the same table as `services`, with `interceptor` seeing every DynamoDB call:
/// a second caller whose calls a test can hold or fail.
pub async fn intercepted_on_same_table(
    services: &Services,
    interceptor: impl aws_sdk_dynamodb::config::Intercept + 'static,
) -> Services {
    let client = raw_client(services).await;
    let intercepted = aws_sdk_dynamodb::Client::from_conf(
        client
            .config()
            .to_builder()
            .interceptor(interceptor)
            .build(),
    );
    Services::new(services.config.clone(), intercepted).expect("services")
}

/// The caller (`sub` claim) in every file of `events/`.
pub const EVENT_GUARDIAN: &str = "user-7f3a9c2e";

/// Binds `id_number` as a child (王小明) and verifies the binding, through the use cases.
/// Aged under 7 (a pledge) or any eligible age (the local face simulator) both work.
pub async fn active_relative_with(
    services: &Services,
    guardian: &str,
    id_number: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Binding {
    use kincode_common::usecases::bindings::{self, BindRequest};
    let guardian = GuardianId::parse(guardian).expect("guardian id");
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = kincode_common::store::ActionContext {
        request_id: &request_id,
        at: now,
    };
    let request = BindRequest {
        name: Some("王小明".into()),
        id_number: Some(id_number.into()),
        relationship: Some("child".into()),
        consent: Some(true),
    };
    let binding = bindings::bind(&services.store, &guardian, request, None, ctx)
        .await
        .expect("bind");
    activate(services, &binding, now).await
}

/// Verifies a pending binding (face through the simulator, or the pledge), as its guardian.
pub async fn activate(
    services: &Services,
    binding: &Binding,
    now: chrono::DateTime<chrono::Utc>,
) -> Binding {
    use kincode_common::adapters::face::LocalFaceSimulator;
    use kincode_common::usecases::bindings::{self, CompleteRequest, VerificationStart};
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = kincode_common::store::ActionContext {
        request_id: &request_id,
        at: now,
    };
    let guardian = &binding.guardian;
    let face = LocalFaceSimulator;
    let started = bindings::start_verification(&services.store, &face, guardian, &binding.id, ctx)
        .await
        .expect("start verification");
    let complete = match started {
        VerificationStart::Face { certify_id, .. } => CompleteRequest {
            certify_id: Some(certify_id),
            evidence: serde_json::json!({ "simulated_outcome": "pass" }),
            pledge_version: None,
            accepted: None,
        },
        VerificationStart::Pledge { version, .. } => CompleteRequest {
            certify_id: None,
            evidence: Value::Null,
            pledge_version: Some(version.into()),
            accepted: Some(true),
        },
    };
    bindings::complete_verification(&services.store, &face, guardian, &binding.id, complete, ctx)
        .await
        .expect("complete verification")
}

/// An active binding of a new five-year-old (a pledge binding).
pub async fn active_relative(
    services: &Services,
    guardian: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Binding {
    active_relative_with(services, guardian, &distinct_resident_id(5, now), now).await
}

/// Unbinds through the use case (`now` at least 24 h after binding).
pub async fn unbind_relative(
    services: &Services,
    guardian: &str,
    binding: &Binding,
    now: chrono::DateTime<chrono::Utc>,
) {
    let guardian = GuardianId::parse(guardian).expect("guardian id");
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = kincode_common::store::ActionContext {
        request_id: &request_id,
        at: now,
    };
    kincode_common::usecases::bindings::unbind(&services.store, &guardian, &binding.id, ctx)
        .await
        .expect("unbind");
}

async fn s3_client(config: &kincode_common::wiring::config::Config) -> aws_sdk_s3::Client {
    kincode_common::wiring::services::s3_client(config)
        .await
        .expect("S3 client")
}

/// The services' offline-card bucket, created on the local stack.
pub async fn fresh_bucket(services: &Services) -> BlobStore {
    let client = s3_client(&services.config).await;
    let bucket = services.config.offline_bucket().expect("bucket configured");
    client
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("bucket on the local stack");
    BlobStore::new(client, bucket)
}

/// A bucket whose endpoint refuses connections: S3 is down.
pub async fn unreachable_bucket(services: &Services) -> BlobStore {
    let unreachable = unreachable_services().await;
    let client = s3_client(&unreachable.config).await;
    BlobStore::new(client, services.config.offline_bucket().expect("bucket"))
}

/// An object as S3 holds it.
#[derive(Debug)]
pub struct StoredObject {
    pub key: String,
    pub server_side_encryption: Option<String>,
    pub metadata: HashMap<String, String>,
    pub body: Vec<u8>,
}

/// Every object of the bucket, with its encryption, metadata and bytes.
pub async fn bucket_objects(services: &Services, blobs: &BlobStore) -> Vec<StoredObject> {
    let client = s3_client(&services.config).await;
    let listed = client
        .list_objects_v2()
        .bucket(blobs.bucket())
        .send()
        .await
        .expect("list objects");
    let mut objects = Vec::new();
    for key in listed.contents().iter().filter_map(|o| o.key()) {
        let object = client
            .get_object()
            .bucket(blobs.bucket())
            .key(key)
            .send()
            .await
            .expect("get object");
        objects.push(StoredObject {
            key: key.to_owned(),
            server_side_encryption: object
                .server_side_encryption()
                .map(|e| e.as_str().to_owned()),
            metadata: object.metadata().cloned().unwrap_or_default(),
            body: object.body.collect().await.expect("body").to_vec(),
        });
    }
    objects
}

/// The text of the (one) QR code in a PNG, read with `rqrr` (not our encoder's code).
pub fn decode_qr_png(png_bytes: &[u8]) -> String {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().expect("PNG header");
    let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
    let frame = reader.next_frame(&mut buffer).expect("PNG frame");
    let (width, height) = (frame.width as usize, frame.height as usize);
    let channels = frame.color_type.samples();
    let luma = |x: usize, y: usize| -> u8 {
        let i = (y * width + x) * channels;
        let px = &buffer[i..i + channels.min(3)];
        (px.iter().map(|&v| v as u32).sum::<u32>() / px.len() as u32) as u8
    };
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, luma);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("QR decodes").1
}

/// The text of the (one) QR code in a PNG, read by `zbarimg` (Debian's zbar-tools, installed
/// by `scripts/test`): fails, never skips, when it is missing.
pub fn zbar_decode_png(png_bytes: &[u8]) -> String {
    let file = std::env::temp_dir().join(format!("kincode-zbar-{}.png", uuid::Uuid::new_v4()));
    std::fs::write(&file, png_bytes).expect("write PNG");
    let output = std::process::Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run zbarimg ({e}): run scripts/ensure-apt.sh zbar-tools")
        });
    let _ = std::fs::remove_file(&file);
    assert!(output.status.success(), "zbarimg found no code");
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim_end_matches('\n')
        .to_owned()
}

/// Every symbol `zbarimg` finds in the image file, one per line. Fails, never skips, without it.
pub fn zbarimg(file: &std::path::Path) -> Vec<String> {
    let output = std::process::Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(file)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run zbarimg ({e}); install it with: scripts/ensure-apt.sh zbar-tools")
        });
    assert!(
        output.status.success(),
        "zbarimg found no code in {} (exit {}): {}",
        file.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("zbarimg output is UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The pages of the PDF file as PNGs at `dpi` beside it (`<stem>-page-<n>.png`), rendered by
/// poppler's `pdftoppm` as a printer driver would. Fails, never skips, without it.
pub fn pdftoppm(pdf: &std::path::Path, dpi: u32) -> Vec<PathBuf> {
    let stem = pdf
        .file_stem()
        .expect("a file")
        .to_string_lossy()
        .into_owned();
    let root = pdf.with_file_name(format!("{stem}-page"));
    let output = std::process::Command::new("pdftoppm")
        .args(["-r", &dpi.to_string(), "-png"])
        .arg(pdf)
        .arg(&root)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run pdftoppm ({e}); install it with: scripts/ensure-apt.sh poppler-utils"
            )
        });
    assert!(
        output.status.success(),
        "pdftoppm failed on {}: {}",
        pdf.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let prefix = format!("{stem}-page-");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(pdf.parent().expect("a directory"))
        .expect("readable directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".png")
        })
        .collect();
    pages.sort();
    pages
}

/// The QR codes on each page of a PDF printed at 300 dpi, as `zbarimg` reads them.
pub fn qr_codes_in_pdf(pdf: &[u8]) -> Vec<Vec<String>> {
    let dir = std::env::temp_dir().join(format!("kincode-pdf-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    let file = dir.join("sheet.pdf");
    std::fs::write(&file, pdf).expect("write PDF");
    let pages = pdftoppm(&file, 300).iter().map(|p| zbarimg(p)).collect();
    let _ = std::fs::remove_dir_all(&dir);
    pages
}

/// A QR PNG read by two independent decoders, which must agree.
pub fn decode_qr_twice(png_bytes: &[u8]) -> String {
    let text = decode_qr_png(png_bytes);
    assert_eq!(zbar_decode_png(png_bytes), text, "zbarimg and rqrr agree");
    text
}

/// The site every test registration is made at.
pub fn test_site() -> kincode_common::domain::nucleic::Site {
    kincode_common::domain::nucleic::Site::parse("XA-YT-0412", Some("雁塔区小寨街道核酸采样点"))
        .expect("site")
}

/// Registers `binding`'s relative into `tube` at `at`, with an online code shown at `at`,
/// through the use case (as the checkpoint `site-test`).
pub async fn register_sample_at(
    services: &Services,
    keys: &KeyRing,
    binding: &Binding,
    tube: &str,
    kind: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<kincode_common::usecases::nucleic::samples::Registered, kincode_common::error::AppError>
{
    let code = kincode_common::usecases::codes::show::online_code(
        &services.store,
        keys,
        &binding.guardian,
        &binding.id,
        request_at(at),
    )
    .await?;
    register_sample_with_code(services, keys, &code.token, tube, kind, at).await
}

/// Registers the holder of `code` (online or offline) into `tube` at `at`, at the test site.
pub async fn register_sample_with_code(
    services: &Services,
    keys: &KeyRing,
    code: &str,
    tube: &str,
    kind: Option<&str>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<kincode_common::usecases::nucleic::samples::Registered, kincode_common::error::AppError>
{
    register_sample_at_site(services, keys, code, tube, kind, &test_site(), at).await
}

/// Registers the holder of `code` into `tube` at `at`, as a checkpoint of `site`.
pub async fn register_sample_at_site(
    services: &Services,
    keys: &KeyRing,
    code: &str,
    tube: &str,
    kind: Option<&str>,
    site: &kincode_common::domain::nucleic::Site,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<kincode_common::usecases::nucleic::samples::Registered, kincode_common::error::AppError>
{
    use kincode_common::usecases::nucleic::samples::{self, Checkpoint, SampleRequest};
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = kincode_common::store::ActionContext {
        request_id: &request_id,
        at,
    };
    let request = SampleRequest {
        code: Some(code.into()),
        tube_id: Some(tube.into()),
        tube_kind: kind.map(str::to_owned),
    };
    let checkpoint = Checkpoint {
        actor: "site-test",
        site,
    };
    samples::register(&services.store, keys, checkpoint, request, None, ctx).await
}

/// Reports one tube's result at `at` through the use case (as the lab `lab-test`); the
/// row's outcome.
pub async fn report_result_at(
    services: &Services,
    tube: &str,
    result: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> kincode_common::usecases::nucleic::lab::RowOutcome {
    let request_id = uuid::Uuid::new_v4().to_string();
    let ctx = kincode_common::store::ActionContext {
        request_id: &request_id,
        at,
    };
    let batch = serde_json::from_value(serde_json::json!({
        "rows": [{ "tube_id": tube, "result": result, "reported_at": at }]
    }))
    .expect("batch");
    kincode_common::usecases::nucleic::lab::apply_results(&services.store, "lab-test", batch, ctx)
        .await
        .expect("results applied")[0]
}

/// `text` with its middle character changed (a tampered code or cursor).
pub fn tampered(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("an ASCII text")
}

/// A new tube barcode.
pub fn fresh_tube() -> String {
    format!("T-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// The relative's audit records of `action` (`R#<relative key>`/`A#…`), oldest first.
pub async fn audit_trail(
    services: &Services,
    relative_key: &str,
    action: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    let pk = format!("R#{relative_key}");
    let text = |item: &HashMap<String, AttributeValue>, name: &str| {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default()
    };
    let mut trail: Vec<_> = all_items(services)
        .await
        .into_iter()
        .filter(|i| {
            text(i, "pk") == pk && text(i, "sk").starts_with("A#") && text(i, "action") == action
        })
        .collect();
    trail.sort_by_key(|i| text(i, "sk"));
    trail
}

/// Fails if `records` hold `id_number`, its birth date or `name` in plaintext.
pub fn assert_no_plaintext(records: &impl std::fmt::Debug, id_number: &str, name: &str) {
    let text = format!("{records:?}");
    for secret in [id_number, &id_number[6..14], name] {
        assert!(!text.contains(secret), "plaintext {secret} in {text}");
    }
}

/// A record's time attribute (RFC 3339), parsed.
pub fn time_attribute(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> chrono::DateTime<chrono::Utc> {
    let text = item[name].as_s().expect("a string attribute");
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{name} {text}: {e}"))
        .into()
}

/// Holds the first transaction its client sends until the test lets it go: the moment between
/// a writer's reads and its write, made to last, so another writer can act inside it.
#[derive(Debug)]
pub struct HoldFirstTransaction {
    reached: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    release: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

/// The test's side of a [`HoldFirstTransaction`]: wait until the transaction is held, then let
/// it go.
pub struct Held {
    reached: tokio::sync::oneshot::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

impl HoldFirstTransaction {
    pub fn new() -> (Self, Held) {
        let (reached, at_write) = tokio::sync::oneshot::channel();
        let (release, held) = std::sync::mpsc::channel();
        let hold = Self {
            reached: std::sync::Mutex::new(Some(reached)),
            release: std::sync::Mutex::new(held),
        };
        (
            hold,
            Held {
                reached: at_write,
                release,
            },
        )
    }
}

impl Held {
    /// Waits until the client's first transaction is held (its writer has done its reads).
    pub async fn reached(&mut self) {
        (&mut self.reached)
            .await
            .expect("the held client reaches its transaction");
    }

    /// Lets the held transaction go.
    pub fn release(&self) {
        self.release.send(()).expect("release the held transaction");
    }
}

impl aws_sdk_dynamodb::config::Intercept for HoldFirstTransaction {
    fn name(&self) -> &'static str {
        "HoldFirstTransaction"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        if offline_cards::is_transaction(cfg) {
            if let Some(reached) = self.reached.lock().expect("lock").take() {
                let _ = reached.send(());
                // The worker's other tasks move to another thread while this one waits (a
                // plain blocking wait could starve a task parked in this worker's slot): the
                // tests that hold run on a multi-threaded runtime.
                tokio::task::block_in_place(|| self.release.lock().expect("lock").recv().ok());
            }
        }
        Ok(())
    }
}
