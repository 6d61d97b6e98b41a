//! Lambda entry point: a cold start with the code signing key and the card bucket, then the handler.

mod handler;

use kincode_common::wiring::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = entry::cold_start().await?;
    let keys = entry::signing_keys(services)?;
    let blobs = entry::offline_cards(services).await?;
    entry::serve(|req| async move {
        let now = chrono::Utc::now();
        handler::handle(services, &*keys.current(now).await, blobs, req, now).await
    })
    .await
}
