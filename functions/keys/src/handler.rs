//! `GET /.well-known/kincode-keys` (no authorization): the verification keys as JWKs and the
//! revoked serials, so a testing site can check a printed code with no network. Served from
//! the instance's copy while it is fresh, with an ETag; a matching `If-None-Match` is a 304.

use chrono::{DateTime, Utc};
use kincode_common::codes::keys::VerificationKeys;
use kincode_common::error::AppError;
use kincode_common::http;
use kincode_common::usecases::codes::publish::{PublishedKeysCache, PUBLISHED_KEYS_TTL_SECONDS};
use kincode_common::wiring::services::Services;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Error, Request, Response};

/// Verifiers may cache the document as long as this instance does: a revocation reaches them
/// within two minutes.
fn cache_control() -> HeaderValue {
    HeaderValue::from_str(&format!("public, max-age={PUBLISHED_KEYS_TTL_SECONDS}"))
        .expect("a valid header value")
}

pub async fn handle(
    services: &Services,
    keys: &VerificationKeys,
    cache: &PublishedKeysCache,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(
        publish_keys(services, keys, cache, &req, now).await,
    ))
}

async fn publish_keys(
    services: &Services,
    keys: &VerificationKeys,
    cache: &PublishedKeysCache,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let published = cache.get(&services.store, keys, now).await?;
    let not_modified = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| published.matches(v));
    let mut response = if not_modified {
        let mut response = Response::new(Body::Empty);
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        http::json_response(StatusCode::OK, &published.document)
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, cache_control());
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&published.etag).expect("an ETag is base64url in quotes"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kincode_tests::*;

    async fn call_at(
        services: &Services,
        keys: &VerificationKeys,
        cache: &PublishedKeysCache,
        if_none_match: Option<&str>,
        now: DateTime<Utc>,
    ) -> Response<Body> {
        let mut event = event("keys.json");
        if let Some(tag) = if_none_match {
            event = event.with_header("If-None-Match", tag);
        }
        let route = event.route_key();
        let response = handle(services, keys, cache, event.into_request(), now)
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        response
    }

    #[tokio::test]
    async fn publishes_okp_keys_without_authorization_and_cacheable() {
        let services = fresh_services().await;
        let ring = test_key_ring();
        let response = call_at(&services, &ring, &Default::default(), None, Utc::now()).await;
        assert_eq!(response.headers()["cache-control"], "public, max-age=60");
        assert!(response.headers()["etag"]
            .to_str()
            .unwrap()
            .starts_with('"'));
        let (status, body) = status_and_json(&response);
        assert_eq!(status, 200, "{body}");
        let key = &body["keys"][0];
        assert_eq!(
            (key["kty"].as_str(), key["crv"].as_str()),
            (Some("OKP"), Some("Ed25519"))
        );
        assert_eq!(key["kid"], ring.signer(Utc::now()).kid());
        assert_eq!(body["revoked"].as_array().map(Vec::len), Some(0));
        assert_eq!(body["issuer"], "kincode");
    }

    #[tokio::test]
    async fn requests_within_the_ttl_read_once_and_a_matching_etag_is_304() {
        let (services, calls) = counted_services().await;
        let ring = test_key_ring();
        let cache = PublishedKeysCache::default();
        let t0 = Utc::now();
        calls.take();
        let first = call_at(&services, &ring, &cache, None, t0).await;
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let second = call_at(&services, &ring, &cache, None, t0 + Duration::seconds(59)).await;
        assert_eq!(status_and_json(&second), status_and_json(&first));
        assert_eq!(calls.take(), ["Query"], "one read for both");

        let revalidated = call_at(
            &services,
            &ring,
            &cache,
            Some(&etag),
            t0 + Duration::seconds(30),
        )
        .await;
        assert_eq!(revalidated.status(), 304);
        assert_eq!(revalidated.headers()["etag"], etag.as_str());
        assert_eq!(revalidated.headers()["cache-control"], "public, max-age=60");
        assert!(calls.take().is_empty());

        // Past the TTL the partition is read again; nothing changed, so the tag is the same.
        let later = t0 + Duration::seconds(60);
        let again = call_at(&services, &ring, &cache, Some(&etag), later).await;
        assert_eq!(again.status(), 304);
        assert_eq!(calls.take(), ["Query"]);
        let other = call_at(&services, &ring, &cache, Some("\"other\""), later).await;
        assert_eq!(other.status(), 200);
    }

    #[tokio::test]
    async fn an_unreachable_table_is_503() {
        let services = unreachable_services().await;
        let response = call_at(
            &services,
            &test_key_ring(),
            &Default::default(),
            None,
            Utc::now(),
        )
        .await;
        assert_eq!(response.status(), 503);
    }
}
