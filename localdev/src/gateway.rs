//! The local API gateway: routes from the template, the JWT authorizer's stand-in, and one
//! emulator per function.

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
use tokio::net::TcpListener;

use crate::apigw::{self, Incoming, Outgoing};
use crate::auth::DevAuth;
use crate::emulator::Emulator;
use crate::template::Route;

/// API Gateway's payload limit.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

pub struct Gateway {
    pub routes: Vec<Route>,
    pub emulators: HashMap<String, Arc<Emulator>>,
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
            let Some(claims) = self.auth.claims(authorization) else {
                return Outgoing::gateway(StatusCode::UNAUTHORIZED, "Unauthorized");
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
            let event = apigw::event(&incoming, route, &params, &claims, &request_id, Utc::now());
            let Some(emulator) = self.emulators.get(&route.function) else {
                return Outgoing::gateway(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal Server Error",
                );
            };
            match emulator.invoke(&event).await {
                Ok(invocation) => {
                    if let Some(init) = invocation.init_ms {
                        log = format!("{log} init_ms={init:.1}");
                    }
                    apigw::response(&invocation.payload).unwrap_or_else(|cause| {
                        log = format!("{log} error=\"{cause}\"");
                        Outgoing::gateway(StatusCode::BAD_GATEWAY, "Internal Server Error")
                    })
                }
                Err(cause) => {
                    log = format!("{log} error=\"{cause}\"");
                    Outgoing::gateway(StatusCode::BAD_GATEWAY, "Internal Server Error")
                }
            }
        }
        .await;
        eprintln!(
            "{log} status={} duration_ms={:.1}",
            outcome.status.as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        to_response(outcome)
    }

    pub async fn stop(&self) {
        for emulator in self.emulators.values() {
            emulator.stop().await;
        }
    }
}
