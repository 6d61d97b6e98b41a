//! Lambda entry point: a cold start with the code signing key and the card bucket, then the handler.

mod handler;

use kincode_common::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = entry::cold_start().await?;
    let keys = entry::signing_keys(services)?;
    let blobs = entry::offline_cards(services).await?;
    entry::serve(|req| handler::handle(services, keys, blobs, req, chrono::Utc::now())).await
}
