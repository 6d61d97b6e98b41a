//! What every function's `main` does: a cold start, then serve events.

use std::future::Future;

use lambda_http::{service_fn, Body, Error, Request, Response};

use crate::blobs::BlobStore;
use crate::codes::keys::KeyRing;
use crate::services::Services;

/// Logging, config and clients, once per execution environment. Leaked on purpose: they live
/// exactly as long as the process, and handlers borrow them without reference counting.
pub async fn cold_start() -> Result<&'static Services, Error> {
    crate::telemetry::init();
    Ok(Box::leak(Box::new(Services::from_env().await?)))
}

/// The code signing and verification keys, for the functions that make or check codes.
pub fn code_keys(services: &Services) -> Result<&'static KeyRing, Error> {
    Ok(Box::leak(Box::new(services.config.signing_keys()?)))
}

/// The offline-card bucket, for the functions that store or remove cards.
pub async fn offline_cards(services: &Services) -> Result<&'static BlobStore, Error> {
    Ok(Box::leak(Box::new(services.blobs().await?)))
}

/// Serves API Gateway events until the runtime stops the process.
pub async fn serve<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, Error>> + Send,
{
    lambda_http::run(service_fn(handler)).await
}
