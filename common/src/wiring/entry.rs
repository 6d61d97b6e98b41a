//! What every function's `main` does: a cold start, then serve events.

use std::future::Future;

use chrono::Utc;
use lambda_http::{service_fn, Body, Error, Request, Response};

use crate::adapters::blobs::BlobStore;
use crate::codes::keys::{KeyRing, VerificationKeys};
use crate::wiring::config::ConfigError;
use crate::wiring::secrets::LiveKeys;
use crate::wiring::services::Services;

/// Logging, config (with the secrets the environment names) and clients, once per execution
/// environment; the data keys are required. Leaked on purpose: they live exactly as long as
/// the process, and handlers borrow them without reference counting.
pub async fn cold_start() -> Result<&'static Services, Error> {
    let services = cold_start_without_data_keys().await?;
    services.config.keys()?;
    Ok(services)
}

/// A cold start for the functions that touch no personal data (the keys route, the cleanup):
/// their role cannot read the data keys, and they are not asked for.
pub async fn cold_start_without_data_keys() -> Result<&'static Services, Error> {
    crate::wiring::telemetry::init();
    Ok(Box::leak(Box::new(Services::from_env().await?)))
}

/// The code signing keys, for the functions that make codes (render, offline); re-read while
/// warm, so a rotation needs no recycling.
pub fn signing_keys(services: &Services) -> Result<&'static LiveKeys<KeyRing>, ConfigError> {
    Ok(Box::leak(Box::new(services.signing_keys(Utc::now())?)))
}

/// The public verification keys, for the functions that check or publish codes (scan,
/// samples, the keys route): they hold no key that signs. Re-read while warm.
pub fn public_keys(
    services: &Services,
) -> Result<&'static LiveKeys<VerificationKeys>, ConfigError> {
    Ok(Box::leak(Box::new(services.public_keys(Utc::now())?)))
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
