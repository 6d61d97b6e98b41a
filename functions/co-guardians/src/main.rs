//! Lambda entry point: a cold start, then the handler with the current time.

mod handler;

use kincode_common::wiring::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = entry::cold_start().await?;
    entry::serve(|req| handler::handle(services, req, chrono::Utc::now())).await
}
