//! `GET /relatives/{binding_id}/code`: the relative's kin code to show at a testing site —
//! JSON with the bare QR as base64 PNG (the app's page says the rest), or for `Accept:
//! image/png` the kin code drawn whole (mark, colour, whose, when) as one picture.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use kincode_common::answers::{Labelled, Rfc3339, KIN_CODE, KIN_CODE_LABEL};
use kincode_common::codes::keys::KeyRing;
use kincode_common::domain::code::online_refresh_interval;
use kincode_common::domain::colour::HealthColour;
use kincode_common::domain::relationship::Relationship;
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::imaging::kin_code::{kin_code_png, KinCodeImage};
use kincode_common::imaging::qr::qr_png;
use kincode_common::usecases::codes::show;
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

pub async fn handle(
    services: &Services,
    keys: &KeyRing,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(render(services, keys, &req, now).await))
}

/// The code to show, with what the page around it says.
#[derive(Serialize)]
struct CodeAnswer<'a> {
    binding_id: &'a str,
    kind: &'static str,
    label: &'static str,
    title: String,
    name: &'a str,
    #[serde(flatten)]
    relationship: Labelled<Relationship>,
    #[serde(flatten)]
    colour: Labelled<HealthColour>,
    generated_at: Rfc3339,
    expires_at: Rfc3339,
    /// Seconds until the phone should fetch a fresh code.
    refresh_in: i64,
    code: &'a str,
    qr_png_base64: String,
}

async fn render(
    services: &Services,
    keys: &KeyRing,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let id = http::binding_id(req)?;
    let code = show::online_code(&services.store, keys, &call.guardian, &id, call.at(now)).await?;
    let binding = &code.binding;
    if http::wants_png(req) {
        // The picture on its own (a screenshot, a phone shown at a site): drawn as a kin code.
        let png = kin_code_png(&KinCodeImage {
            colour: code.claims.colour,
            token: &code.token,
            masked_name: &binding.masked_name,
            relationship_label: binding.relationship.label(),
            drawn_at: code.claims.issued_at,
        })
        .map_err(|e| AppError::Internal(format!("draw kin code: {e}")))?;
        return Ok(http::png_response(png));
    }
    // In JSON the page around it says what it is: the bare QR, and no font to load.
    let png = qr_png(&code.token, code.claims.colour)
        .map_err(|e| AppError::Internal(format!("draw QR: {e}")))?;
    let body = CodeAnswer {
        binding_id: binding.id.as_str(),
        kind: KIN_CODE,
        label: KIN_CODE_LABEL,
        title: format!(
            "{KIN_CODE_LABEL}·{}·{}",
            binding.relationship.label(),
            binding.masked_name
        ),
        name: &binding.masked_name,
        relationship: Labelled(binding.relationship),
        colour: Labelled(code.claims.colour),
        generated_at: Rfc3339(code.claims.issued_at),
        expires_at: Rfc3339(code.claims.expires_at),
        refresh_in: online_refresh_interval().num_seconds(),
        code: &code.token,
        qr_png_base64: B64.encode(png),
    };
    let mut response = http::json_response(StatusCode::OK, &body);
    response.headers_mut().insert(
        lambda_http::http::header::CACHE_CONTROL,
        lambda_http::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kincode_tests::*;
    use serde_json::Value;

    async fn call(services: &Services, keys: &KeyRing, event: Value) -> Response<Body> {
        let route = event.route_key();
        let response = handle(services, keys, event.into_request(), Utc::now())
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        response
    }

    #[tokio::test]
    async fn an_active_binding_shows_a_green_kin_code_that_decodes() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let binding = active_relative(&services, EVENT_GUARDIAN, Utc::now()).await;
        let event = event("render.json").with_path_binding(binding.id.as_str());
        let (status, body) = status_and_json(&call(&services, &keys, event).await);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["kind"], "kin_code");
        assert_eq!(body["colour"], "green");
        assert_eq!(body["colour_label"], "绿码");
        assert_eq!(body["title"], "亲属码·子女·**明");
        assert_eq!(body["refresh_in"], 60);
        let token = body["code"].as_str().unwrap();
        assert!(token.starts_with("KC1:"));
        let png = B64.decode(body["qr_png_base64"].as_str().unwrap()).unwrap();
        assert_eq!(decode_qr_png(&png), token);
    }

    #[tokio::test]
    async fn accept_image_png_answers_the_image() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let binding = active_relative(&services, EVENT_GUARDIAN, Utc::now()).await;
        let event = event("render.json")
            .with_path_binding(binding.id.as_str())
            .with_header("accept", "image/png");
        let response = call(&services, &keys, event).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/png");
        let Body::Binary(png) = response.body() else {
            panic!("binary body")
        };
        assert!(decode_qr_png(png).starts_with("KC1:"));
        // The kin code drawn whole, not the bare QR the JSON carries (61 modules of 8 px).
        let header = png::Decoder::new(std::io::Cursor::new(&png[..]))
            .read_info()
            .unwrap();
        let (width, height) = header.info().size();
        assert!(width > 488 && height > width, "{width} × {height}");
    }

    #[tokio::test]
    async fn pending_is_409_strangers_404_no_caller_401() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let now = Utc::now();
        let pending = bind_relative(
            &services,
            EVENT_GUARDIAN,
            &resident_id_aged(70, now, 5),
            now,
        )
        .await
        .unwrap();
        let event_for = |id: &str| event("render.json").with_path_binding(id);
        let (status, body) =
            status_and_json(&call(&services, &keys, event_for(pending.id.as_str())).await);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("verification_required"))
        );
        assert_eq!(body["error"]["message"], "请先完成亲属认证");

        let active = active_relative(&services, EVENT_GUARDIAN, now).await;
        let stranger = event_for(active.id.as_str()).with_caller("user-stranger");
        assert_eq!(
            status_and_json(&call(&services, &keys, stranger).await).0,
            404
        );
        let anonymous = event_for(active.id.as_str()).without_caller();
        assert_eq!(
            status_and_json(&call(&services, &keys, anonymous).await).0,
            401
        );
        let nonsense = event_for("not-a-binding");
        assert_eq!(
            status_and_json(&call(&services, &keys, nonsense).await).0,
            404
        );
    }

    #[tokio::test]
    async fn an_unreachable_table_is_503() {
        let services = unreachable_services().await;
        let event = event("render.json");
        let (status, _) = status_and_json(&call(&services, &test_key_ring(), event).await);
        assert_eq!(status, 503);
    }
}
