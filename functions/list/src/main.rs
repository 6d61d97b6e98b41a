//! Lambda entry point: configuration and clients once per cold start, then the handler.

mod handler;

use kincode_common::services::Services;
use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    kincode_common::telemetry::init();
    let services = Services::from_env().await?;
    run(service_fn(|req| {
        handler::handle(&services, req, chrono::Utc::now())
    }))
    .await
}
