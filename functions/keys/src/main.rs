//! Lambda entry point: a cold start with the public verification keys (no data keys: the
//! route touches no personal data), the instance's copy of the document, then the handler.

mod handler;

use kincode_common::usecases::codes::publish::PublishedKeysCache;
use kincode_common::wiring::entry;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let services = entry::cold_start_without_data_keys().await?;
    let keys = entry::public_keys(services)?;
    let cache = &PublishedKeysCache::default();
    entry::serve(|req| async move {
        let now = chrono::Utc::now();
        handler::handle(services, &*keys.current(now).await, cache, req, now).await
    })
    .await
}
