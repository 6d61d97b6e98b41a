//! The local API gateway: routes from the template, the JWT authorizer's stand-in, one
//! emulator per function, and the local-only schedule endpoint (see `scheduler`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use chrono::Utc;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as IncomingBody;
use hyper::http::{Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::apigw::{self, Incoming, Outgoing};
use crate::auth::{grants_any_scope, DevAuth};
use crate::emulator::Instances;
use crate::scheduler;
use crate::template::{Route, RouteAuth, Schedule};

/// API Gateway's payload limit.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// Lambda's limit on a synchronous invocation's event: a bigger request never reaches the
/// function (the emulator would cut it and the function answer 502).
pub const MAX_EVENT_BYTES: usize = 6 * 1024 * 1024;

pub struct Gateway {
    pub routes: Vec<Route>,
    /// At most one per function: the schedule endpoint names a function.
    pub schedules: Vec<Schedule>,
    /// Each function's instances (one unless `kincode-local --instances N`).
    pub emulators: HashMap<String, Instances>,
    pub auth: DevAuth,
}

fn to_response(out: Outgoing) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(out.body)));
    *response.status_mut() = out.status;
    *response.headers_mut() = out.headers;
    response
}

impl Gateway {
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let gateway = self.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let gateway = gateway.clone();
                    async move { Ok::<_, Infallible>(gateway.handle(req, peer).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }

    async fn handle(&self, req: Request<IncomingBody>, peer: SocketAddr) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let (method, path) = (
            parts.method.as_str().to_owned(),
            parts.uri.path().to_owned(),
        );
        let mut log = format!("{method} {path}");
        let outcome = async {
            if let Some(function) = scheduler::function_in_path(&path) {
                return self.run_schedule(&method, function, &mut log).await;
            }
            let Some((route, params)) = self
                .routes
                .iter()
                .find_map(|r| r.matches(&method, &path).map(|p| (r, p)))
            else {
                return Outgoing::gateway(StatusCode::NOT_FOUND, "Not Found");
            };
            log = format!(
                "{log} route=\"{}\" function={}",
                route.key(),
                route.function
            );
            let authorization = parts
                .headers
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let claims = match &route.auth {
                RouteAuth::Public => None,
                RouteAuth::Jwt { scopes } => {
                    let Some(claims) = self.auth.claims(authorization) else {
                        return Outgoing::gateway(StatusCode::UNAUTHORIZED, "Unauthorized");
                    };
                    if !scopes.is_empty() && !grants_any_scope(&claims, scopes) {
                        return Outgoing::gateway(StatusCode::FORBIDDEN, "Forbidden");
                    }
                    Some(claims)
                }
            };
            let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(_) => {
                    return Outgoing::gateway(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "Request Entity Too Large",
                    )
                }
            };
            let incoming = Incoming {
                method: &method,
                path: &path,
                query: parts.uri.query(),
                headers: &parts.headers,
                body: &body,
                source_ip: &peer.ip().to_string(),
            };
            let request_id = uuid::Uuid::new_v4().to_string();
            let event = apigw::event(
                &incoming,
                route,
                &params,
                claims.as_ref(),
                &request_id,
                Utc::now(),
            );
            if event.to_string().len() > MAX_EVENT_BYTES {
                return Outgoing::gateway(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request Entity Too Large",
                );
            }
            let payload = match self.invoke(&route.function, &event, &mut log).await {
                Ok(payload) => payload,
                Err(failure) => return failure,
            };
            apigw::response(&payload).unwrap_or_else(|cause| {
                log = format!("{log} error=\"{cause}\"");
                Outgoing::gateway(StatusCode::BAD_GATEWAY, "Internal Server Error")
            })
        }
        .await;
        eprintln!(
            "{log} status={} duration_ms={:.1}",
            outcome.status.as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        to_response(outcome)
    }

    /// `POST /_local/schedules/{function}`: the function's schedule `Input` as the raw event,
    /// as EventBridge Scheduler sends it; no authorizer, as the schedule has none.
    async fn run_schedule(&self, method: &str, function: &str, log: &mut String) -> Outgoing {
        let schedule = self.schedules.iter().find(|s| s.function == function);
        let Some(schedule) = schedule.filter(|_| method == "POST") else {
            return Outgoing::gateway(StatusCode::NOT_FOUND, "Not Found");
        };
        *log = format!("{log} schedule={} function={function}", schedule.name);
        match self.invoke(function, &schedule.input, log).await {
            Ok(payload) => {
                let (answer, cause) = scheduler::answer(&payload);
                if let Some(cause) = cause {
                    *log = format!("{log} error=\"{cause}\"");
                }
                answer
            }
            Err(failure) => failure,
        }
    }

    /// The function's answer to `event`, or the gateway's answer when it could not run.
    async fn invoke(
        &self,
        function: &str,
        event: &Value,
        log: &mut String,
    ) -> Result<Vec<u8>, Outgoing> {
        let Some(emulator) = self.emulators.get(function) else {
            return Err(Outgoing::gateway(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal Server Error",
            ));
        };
        match emulator.invoke(event).await {
            Ok((instance, invocation)) => {
                if emulator.len() > 1 {
                    *log = format!("{log} instance={instance}");
                }
                if let Some(init) = invocation.init_ms {
                    *log = format!("{log} init_ms={init:.1}");
                }
                Ok(invocation.payload)
            }
            Err(cause) => {
                *log = format!("{log} error=\"{cause}\"");
                Err(Outgoing::gateway(
                    StatusCode::BAD_GATEWAY,
                    "Internal Server Error",
                ))
            }
        }
    }

    pub async fn stop(&self) {
        for instances in self.emulators.values() {
            instances.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use hyper::http::Method;
    use serde_json::json;

    use super::*;
    use crate::client::HttpClient;
    use crate::template::Template;

    /// The project's routes and schedules with no emulators: a request the gateway lets through
    /// ends in its 500 for a function that is not running.
    async fn gateway_without_functions() -> String {
        let template =
            Template::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"))
                .unwrap();
        let gateway = Arc::new(Gateway {
            routes: template.routes(),
            schedules: template.schedules().unwrap(),
            emulators: HashMap::new(),
            auth: DevAuth::new(vec![5; 32]),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(gateway.serve(listener));
        base
    }

    async fn call(base: &str, method: Method, path: &str, auth: Option<&str>) -> (u16, Value) {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let answer = HttpClient::default()
            .send(method, &format!("{base}{path}"), &headers, Vec::new())
            .await
            .unwrap();
        let body = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        (answer.status.as_u16(), body)
    }

    const LET_THROUGH: (u16, &str) = (500, "Internal Server Error");

    #[tokio::test]
    async fn routes_are_public_guarded_or_scoped_as_the_template_says() {
        let base = gateway_without_functions().await;
        let answer = |(status, message): (u16, &str)| (status, json!({ "message": message }));
        let scan = "/checkpoints/scan";

        let cases = [
            (Method::GET, "/relatives", None, (401, "Unauthorized")),
            (Method::GET, "/relatives", Some("Dev user-1"), LET_THROUGH),
            (Method::POST, scan, None, (401, "Unauthorized")),
            (Method::POST, scan, Some("Dev site-1"), (403, "Forbidden")),
            (
                Method::POST,
                scan,
                Some("Dev site-1 kincode/authority"),
                (403, "Forbidden"),
            ),
            (
                Method::POST,
                scan,
                Some("Dev site-1 kincode/checkpoint"),
                LET_THROUGH,
            ),
            (
                Method::POST,
                "/authority/risk-flags",
                Some("Dev a kincode/authority"),
                LET_THROUGH,
            ),
            (Method::GET, "/.well-known/kincode-keys", None, LET_THROUGH),
            (
                Method::GET,
                "/nowhere",
                Some("Dev user-1"),
                (404, "Not Found"),
            ),
        ];
        for (method, path, auth, expected) in cases {
            let got = call(&base, method.clone(), path, auth).await;
            assert_eq!(got, answer(expected), "{method} {path} with {auth:?}");
        }
    }

    #[tokio::test]
    async fn schedules_run_by_function_name_without_auth() {
        let base = gateway_without_functions().await;
        let answer = |(status, message): (u16, &str)| (status, json!({ "message": message }));
        let cleanup = "/_local/schedules/CleanupFunction";
        assert_eq!(
            call(&base, Method::POST, cleanup, None).await,
            answer(LET_THROUGH)
        );
        assert_eq!(
            call(&base, Method::GET, cleanup, None).await,
            answer((404, "Not Found"))
        );
        assert_eq!(
            call(&base, Method::POST, "/_local/schedules/BindFunction", None).await,
            answer((404, "Not Found"))
        );
    }
}
