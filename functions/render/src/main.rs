//! Lambda entry point: a cold start with the code signing key, then the handler.

mod handler;

use kincode_common::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = entry::cold_start().await?;
    let keys = entry::signing_keys(services)?;
    entry::serve(|req| handler::handle(services, keys, req, chrono::Utc::now())).await
}
