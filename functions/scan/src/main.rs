//! Lambda entry point: a cold start with the public verification keys, then the handler.

mod handler;

use kincode_common::wiring::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = entry::cold_start().await?;
    let keys = entry::public_keys(services)?;
    entry::serve(|req| async move {
        let now = chrono::Utc::now();
        handler::handle(services, &*keys.current(now).await, req, now).await
    })
    .await
}
