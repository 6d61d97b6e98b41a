//! Lambda entry point: a cold start (no data keys: the cleanup touches no personal data) with the card bucket, then one cleanup per scheduled event.

mod handler;

use kincode_common::wiring::entry;
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = entry::cold_start_without_data_keys().await?;
    let blobs = entry::offline_cards(services).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        handler::handle(
            services,
            blobs,
            event.payload,
            event.context.request_id,
            chrono::Utc::now(),
        )
    }))
    .await
}
