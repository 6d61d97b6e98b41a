//! **Outbound HTTPS**, the adapter of every call out: the AWS SDK's (DynamoDB, S3) and Alipay's.
//!
//! One rustls client over hyper, HTTP/1.1, trusting Mozilla's root certificates compiled in
//! (`webpki-roots`, kept by the rustls project from Mozilla's CCADB list — the list Amazon
//! Linux's `ca-certificates` is built from too). Why not the SDK's default client: it loads the
//! operating system's trust store on the first request of every new instance (on a Debian
//! laptop the bundle and some 290 more files, about 4.5 ms of a 10 ms cold start), and it links an HTTP/2 stack that
//! DynamoDB and S3 calls never use. Compiled-in roots cost nothing to load, are the same in
//! tests as deployed, and cover every public CA that an AWS partition or Alipay chains to; a
//! root-store change ships as a `cargo update -p webpki-roots` and a deploy (README,
//! "Deploying"). A local stack's own CA may be added, on the local stage only.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::{
    capture_connection, CaptureConnection, HttpConnector as TcpConnector, HttpInfo,
};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("local CA file {path}: {reason}")]
    LocalCa { path: String, reason: String },
}

/// The TLS client configuration every connection uses: Mozilla's roots, plus `extra_roots`
/// (a local stack's CA). aws-lc-rs is named as the provider: ring is in the dependency tree
/// too, and rustls refuses to guess between them.
pub fn tls_config(extra_roots: &[CertificateDer<'static>]) -> ClientConfig {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    roots.add_parsable_certificates(extra_roots.iter().cloned());
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("aws-lc-rs supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// The certificates of a PEM file (a local stack's CA).
pub fn pem_certificates(path: &str) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let failed = |reason: String| TrustError::LocalCa {
        path: path.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| failed(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed(e.to_string()))?;
    if certs.is_empty() {
        return Err(failed("no certificate in it".into()));
    }
    Ok(certs)
}

/// A connector for `https://` (verified against `tls`) and plain `http://` (a local stack).
pub fn connector(
    tls: ClientConfig,
    connect_timeout: Option<Duration>,
) -> HttpsConnector<TcpConnector> {
    let mut tcp = TcpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(connect_timeout);
    hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp)
}

/// The AWS SDK's HTTP client: one pooled connector per distinct timeout setting (the SDK asks
/// for a connector on every request and leaves caching to the client).
#[derive(Debug, Clone)]
struct SdkHttpClient {
    tls: Arc<ClientConfig>,
    connectors: Arc<Mutex<HashMap<TimeoutKey, SharedHttpConnector>>>,
}

type TimeoutKey = (Option<Duration>, Option<Duration>);

/// The client every AWS SDK client of the project is given.
pub fn sdk_http_client(extra_roots: &[CertificateDer<'static>]) -> SharedHttpClient {
    SharedHttpClient::new(SdkHttpClient {
        tls: Arc::new(tls_config(extra_roots)),
        connectors: Arc::default(),
    })
}

impl HttpClient for SdkHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().unwrap_or_else(|e| e.into_inner());
        connectors
            .entry(key)
            .or_insert_with(|| SharedHttpConnector::new(SdkConnector::new(&self.tls, key.0, key.1)))
            .clone()
    }
}

#[derive(Debug)]
struct SdkConnector {
    client: Client<HttpsConnector<TcpConnector>, SdkBody>,
    /// How long to wait for the answer's head once the request is sent.
    read_timeout: Option<Duration>,
}

impl SdkConnector {
    fn new(
        tls: &ClientConfig,
        connect_timeout: Option<Duration>,
        read_timeout: Option<Duration>,
    ) -> Self {
        let client = Client::builder(TokioExecutor::new())
            // The pool's idle timeout only runs with a timer.
            .pool_timer(TokioTimer::new())
            .build(connector(tls.clone(), connect_timeout));
        Self {
            client,
            read_timeout,
        }
    }
}

impl HttpConnector for SdkConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        // The SDK's connection-poisoning interceptor puts a `CaptureSmithyConnection` in each
        // request and, on a transient error, poisons the connection it retrieves through it,
        // so the pool drops that connection and the retry opens a new one.
        let connection = capture_connection(&mut request);
        if let Some(capture) = request.extensions().get::<CaptureSmithyConnection>() {
            capture.set_connection_retriever(move || smithy_connection(&connection));
        }
        let answer = self.client.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let answer = match read_timeout {
                Some(limit) => tokio::time::timeout(limit, answer)
                    .await
                    .map_err(|elapsed| ConnectorError::timeout(elapsed.into()))?,
                None => answer.await,
            };
            let response = answer.map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// The connection a request went out on, as the SDK sees it: its addresses, and a hook that
/// poisons it in hyper's pool (the same as the SDK's own hyper client,
/// aws-smithy-http-client's `extract_smithy_connection`). `None` before one was chosen.
fn smithy_connection(capture: &CaptureConnection) -> Option<ConnectionMetadata> {
    let captured = capture.connection_metadata();
    let connected = captured.as_ref()?;
    let mut extras = hyper::http::Extensions::new();
    connected.get_extras(&mut extras);
    let info = extras.get::<HttpInfo>();
    let poisoned = capture.clone();
    let mut builder = ConnectionMetadata::builder()
        .proxied(connected.is_proxied())
        .poison_fn(move || {
            if let Some(connected) = poisoned.connection_metadata().as_ref() {
                connected.poison();
            }
        });
    builder
        .set_remote_addr(info.map(HttpInfo::remote_addr))
        .set_local_addr(info.map(HttpInfo::local_addr));
    Some(builder.build())
}

/// What the SDK's retry rules need to know of a failed exchange: a timeout or a broken
/// connection is retried, our own mistake is not. The same reading as the SDK's own client
/// (aws-smithy-http-client's `downcast_error`), without its HTTP/2 cases.
fn classify(error: hyper_util::client::legacy::Error) -> ConnectorError {
    let kind = if error.is_connect() {
        Failure::Io
    } else {
        match source_of::<hyper::Error>(&error) {
            Some(e) if e.is_timeout() => Failure::Timeout,
            Some(e) if e.is_user() => Failure::User,
            Some(e) if e.is_closed() || e.is_canceled() => Failure::Io,
            _ if source_of::<std::io::Error>(&error).is_some() => Failure::Io,
            Some(e) if e.is_incomplete_message() => Failure::Transient,
            _ => Failure::Unknown,
        }
    };
    let error = error.into();
    match kind {
        Failure::Io => ConnectorError::io(error),
        Failure::Timeout => ConnectorError::timeout(error),
        Failure::User => ConnectorError::user(error),
        Failure::Transient => ConnectorError::other(error, Some(ErrorKind::TransientError)),
        Failure::Unknown => ConnectorError::other(error, None),
    }
}

enum Failure {
    Io,
    Timeout,
    User,
    Transient,
    Unknown,
}

fn source_of<'a, E: StdError + 'static>(error: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    std::iter::successors(Some(error), |&e| e.source()).find_map(|e| e.downcast_ref::<E>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// One exchange with a local server that does `serve` with the connection.
    async fn exchange<F, Fut>(serve: F) -> Result<HttpResponse, ConnectorError>
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            serve(stream).await;
        });
        call(port).await
    }

    async fn call(port: u16) -> Result<HttpResponse, ConnectorError> {
        let connector = SdkConnector::new(
            &tls_config(&[]),
            Some(Duration::from_secs(1)),
            Some(Duration::from_millis(200)),
        );
        let request = hyper::Request::post(format!("http://127.0.0.1:{port}/"))
            .body(SdkBody::from("{}"))
            .unwrap();
        connector
            .call(HttpRequest::try_from(request).unwrap())
            .await
    }

    async fn read_request(stream: &mut tokio::net::TcpStream) {
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await;
    }

    #[tokio::test]
    async fn an_answer_comes_back_whole() {
        let response = exchange(|mut stream| async move {
            read_request(&mut stream).await;
            let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-amzn-requestid: r1\r\n\r\nok";
            stream.write_all(answer).await.unwrap();
            stream.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        })
        .await
        .expect("answered");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers().get("x-amzn-requestid"), Some("r1"));
        let body = http_body_util::BodyExt::collect(response.into_body()).await;
        assert_eq!(body.unwrap().to_bytes(), &b"ok"[..]);
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_failure_the_sdk_retries() {
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            listener.local_addr().unwrap().port()
        };
        let error = call(port).await.expect_err("nobody listens");
        assert!(error.is_io(), "{error:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_a_timeout() {
        let error = exchange(|mut stream| async move {
            read_request(&mut stream).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        })
        .await
        .expect_err("no answer within the read timeout");
        assert!(error.is_timeout(), "{error:?}");
    }

    #[tokio::test]
    async fn a_connection_closed_before_the_answer_is_retryable() {
        let error = exchange(|mut stream| async move {
            read_request(&mut stream).await;
            drop(stream);
        })
        .await
        .expect_err("closed without an answer");
        assert!(
            error.is_io() || error.as_other() == Some(ErrorKind::TransientError),
            "{error:?}"
        );
    }

    /// What the test's tracing subscriber writes.
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

    /// A DynamoDB stand-in whose first answer is a 500 (kept alive, as DynamoDB's are) and
    /// every later one a success; counts the connections it accepted.
    async fn fails_once() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let accepted = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                accepted.fetch_add(1, Ordering::SeqCst);
                let requests = requests.clone();
                let service = hyper::service::service_fn(move |_request| {
                    let first = requests.fetch_add(1, Ordering::SeqCst) == 0;
                    let (status, body) = if first {
                        (
                            500,
                            r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"once"}"#,
                        )
                    } else {
                        (200, r#"{"TableNames":[]}"#)
                    };
                    let response = hyper::Response::builder()
                        .status(status)
                        .header("content-type", "application/x-amz-json-1.0")
                        .body(http_body_util::Full::new(bytes::Bytes::from_static(
                            body.as_bytes(),
                        )))
                        .unwrap();
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        (endpoint, connections)
    }

    #[tokio::test]
    async fn a_retried_transient_error_poisons_its_connection_and_logs_no_error() {
        use aws_sdk_dynamodb::config::retry::RetryConfig;
        use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
        let (endpoint, connections) = fails_once().await;
        let log = Captured::default();
        let writer = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_max_level(tracing::Level::ERROR)
            .with_ansi(false)
            .finish();
        // The test runs on one thread: the SDK's events reach this subscriber.
        let _logging = tracing::subscriber::set_default(subscriber);
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url(endpoint)
            .http_client(sdk_http_client(&[]))
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(2)
                    .with_initial_backoff(Duration::from_millis(1)),
            )
            .build();
        let client = aws_sdk_dynamodb::Client::from_conf(config);
        client
            .list_tables()
            .send()
            .await
            .expect("the retry succeeds");
        assert_eq!(
            connections.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "the connection that answered the 500 was poisoned: the retry opened another"
        );
        let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
        assert!(
            !logged.contains("unable to mark the connection for closure"),
            "{logged}"
        );
        assert!(!logged.contains("ERROR"), "no error logged: {logged}");
    }

    #[test]
    fn the_compiled_in_roots_include_the_root_aws_endpoints_chain_to() {
        // Amazon Root CA 1: DynamoDB's and S3's certificates in the aws partition chain to it.
        let amazon_root_ca_1 = b"Amazon Root CA 1";
        assert!(webpki_roots::TLS_SERVER_ROOTS.iter().any(|anchor| anchor
            .subject
            .windows(amazon_root_ca_1.len())
            .any(|w| w == amazon_root_ca_1)));
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
    }

    #[test]
    fn a_local_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("kincode-ca-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        for path in [empty, dir.join("missing.pem")] {
            assert!(matches!(
                pem_certificates(path.to_str().unwrap()),
                Err(TrustError::LocalCa { .. })
            ));
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
