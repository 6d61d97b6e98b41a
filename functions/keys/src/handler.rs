//! `GET /.well-known/kincode-keys` (no authorization): the verification keys as JWKs and the
//! revoked serials, so a testing site can check a printed code with no network.

use chrono::{DateTime, Utc};
use kincode_common::codes::keys::KeyRing;
use kincode_common::codes::publish;
use kincode_common::error::AppError;
use kincode_common::http;
use kincode_common::services::Services;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Error, Request, Response};

/// Verifiers may cache the document this long: a revocation reaches them within minutes.
const MAX_AGE: &str = "public, max-age=300";

pub async fn handle(
    services: &Services,
    keys: &KeyRing,
    _req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(publish_keys(services, keys, now).await))
}

async fn publish_keys(
    services: &Services,
    keys: &KeyRing,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let document = publish::published_keys(&services.store, keys, now).await?;
    let mut response = http::json_response(StatusCode::OK, &document);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static(MAX_AGE));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kincode_tests::*;

    async fn call(services: &Services) -> Response<Body> {
        let event = event("keys.json");
        let route = event.route_key();
        let response = handle(services, &test_key_ring(), event.into_request(), Utc::now())
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        response
    }

    #[tokio::test]
    async fn publishes_okp_keys_without_authorization_and_cacheable() {
        let services = fresh_services().await;
        let response = call(&services).await;
        assert_eq!(response.headers()["cache-control"], MAX_AGE);
        let (status, body) = status_and_json(&response);
        assert_eq!(status, 200, "{body}");
        let key = &body["keys"][0];
        assert_eq!(
            (key["kty"].as_str(), key["crv"].as_str()),
            (Some("OKP"), Some("Ed25519"))
        );
        assert_eq!(key["kid"], test_key_ring().signer().kid());
        assert_eq!(body["revoked"].as_array().map(Vec::len), Some(0));
        assert_eq!(body["issuer"], "kincode");
    }

    #[tokio::test]
    async fn an_unreachable_table_is_503() {
        let services = unreachable_services().await;
        assert_eq!(call(&services).await.status(), 503);
    }
}
