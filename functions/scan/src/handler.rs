//! `POST /checkpoints/scan` (testing-site staff, scope `kincode/checkpoint`): checks a kin
//! code — signature, expiry, revocation, the binding still active — and answers the person's
//! colour now. Kin codes are refused for the "一场两站" arrival declaration.

use chrono::{DateTime, Utc};
use kincode_common::answers::{Labelled, Rfc3339, KIN_CODE, KIN_CODE_LABEL};
use kincode_common::codes::keys::VerificationKeys;
use kincode_common::domain::code::{CodeKind, ScanPurpose};
use kincode_common::domain::colour::HealthColour;
use kincode_common::domain::relationship::Relationship;
use kincode_common::error::AppError;
use kincode_common::http::{self, StaffCall, CHECKPOINT_SCOPE};
use kincode_common::usecases::codes::scan;
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct ScanRequest {
    code: Option<String>,
    purpose: Option<String>,
}

pub async fn handle(
    services: &Services,
    keys: &VerificationKeys,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(scan_code(services, keys, &req, now).await))
}

async fn scan_code(
    services: &Services,
    keys: &VerificationKeys,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = StaffCall::from_request(req, CHECKPOINT_SCOPE)?;
    let request: ScanRequest = http::json_body(req)?;
    let purpose = request
        .purpose
        .as_deref()
        .and_then(ScanPurpose::parse)
        .ok_or(AppError::InvalidPurpose)?;
    let code = request.code.unwrap_or_default();
    // The site, where the token names one; a scan needs none (a sample does).
    let site = http::site(req).ok();
    let scanned = scan::scan_at_checkpoint(
        &services.store,
        keys,
        code.trim(),
        purpose,
        site.as_ref(),
        call.at(now),
    )
    .await?;
    tracing::info!(
        checkpoint = call.actor,
        request_id = call.request_id,
        purpose = purpose.as_str(),
        code_kind = scanned.claims.kind.as_str(),
        serial = scanned.claims.serial.to_hex(),
        "scanned"
    );
    let answer = ScanAnswer {
        kind: KIN_CODE,
        label: KIN_CODE_LABEL,
        code_kind: scanned.claims.kind,
        name: &scanned.holder.masked_name,
        relationship: Labelled(scanned.holder.relationship),
        colour: Labelled(scanned.colour),
        colour_at_issue: scanned.claims.colour,
        issued_at: Rfc3339(scanned.claims.issued_at),
        valid_until: Rfc3339(scanned.claims.expires_at),
    };
    Ok(http::json_response(StatusCode::OK, &answer))
}

/// Whose code it is and their colour now (the colour it was issued with beside it).
#[derive(Serialize)]
struct ScanAnswer<'a> {
    kind: &'static str,
    label: &'static str,
    code_kind: CodeKind,
    name: &'a str,
    #[serde(flatten)]
    relationship: Labelled<Relationship>,
    #[serde(flatten)]
    colour: Labelled<HealthColour>,
    colour_at_issue: HealthColour,
    issued_at: Rfc3339,
    valid_until: Rfc3339,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kincode_common::codes::keys::KeyRing;
    use kincode_common::domain::binding::GuardianId;
    use kincode_common::usecases::codes::show;
    use kincode_tests::*;
    use serde_json::json;
    use serde_json::Value;

    async fn call(
        services: &Services,
        keys: &KeyRing,
        event: Value,
        now: DateTime<Utc>,
    ) -> (u16, Value) {
        let route = event.route_key();
        let response = handle(services, keys, event.into_request(), now)
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        status_and_json(&response)
    }

    fn scan_event(code: &str, purpose: &str) -> Value {
        event("scan.json").with_body(json!({ "code": code, "purpose": purpose }))
    }

    async fn online_token(
        services: &Services,
        keys: &KeyRing,
        now: DateTime<Utc>,
    ) -> (String, kincode_common::domain::binding::Binding) {
        let binding = active_relative(services, EVENT_GUARDIAN, now).await;
        let guardian = GuardianId::parse(EVENT_GUARDIAN).unwrap();
        let code = show::online_code(
            &services.store,
            keys,
            &guardian,
            &binding.id,
            request_at(now),
        )
        .await
        .unwrap();
        (code.token, binding)
    }

    #[tokio::test]
    async fn a_fresh_online_code_scans_green_with_the_masked_name() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let now = Utc::now();
        let (token, _) = online_token(&services, &keys, now).await;
        let (status, body) = call(
            &services,
            &keys,
            scan_event(&token, "nucleic_acid_test"),
            now,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["code_kind"], "kin_online");
        assert_eq!(body["colour"], "green");
        assert_eq!(body["name"], "**明");
        assert_eq!(body["label"], "亲属码");
    }

    #[tokio::test]
    async fn expired_tampered_foreign_garbage_and_arrival_are_refused_with_4xx() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let now = Utc::now();
        let (token, _) = online_token(&services, &keys, now).await;

        let later = now + Duration::minutes(6);
        let (status, body) = call(&services, &keys, scan_event(&token, "venue_entry"), later).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("code_expired"))
        );

        let mut tampered = token.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let tampered = String::from_utf8(tampered).unwrap();
        let (status, _) = call(&services, &keys, scan_event(&tampered, "venue_entry"), now).await;
        assert_eq!(status, 422);

        // Same key id, another key: a forgery. Another key id: a key the site does not know.
        let (status, body) = call(
            &services,
            &test_key_ring(),
            scan_event(&token, "venue_entry"),
            now,
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("code_bad_signature"))
        );
        let stranger_ring = KeyRing::generate("other-key");
        let (status, body) = call(
            &services,
            &stranger_ring,
            scan_event(&token, "venue_entry"),
            now,
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("code_unknown_key"))
        );

        let (status, _) = call(&services, &keys, scan_event("hello", "venue_entry"), now).await;
        assert_eq!(status, 422);

        let (status, body) = call(&services, &keys, scan_event(&token, "arrival"), now).await;
        assert_eq!(status, 422);
        assert_eq!(body["error"]["code"], "kin_code_not_for_arrival");
        assert_eq!(body["error"]["message"], "亲属码现阶段不适用于“一场两站”");

        let (status, body) = call(&services, &keys, scan_event(&token, "shopping"), now).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_purpose"))
        );
    }

    #[tokio::test]
    async fn only_checkpoint_staff_may_scan() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let now = Utc::now();
        let (token, _) = online_token(&services, &keys, now).await;
        let guardian_only = scan_event(&token, "venue_entry").with_scope(None);
        let (status, body) = call(&services, &keys, guardian_only, now).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("forbidden"))
        );
        let lab = scan_event(&token, "venue_entry").with_scope(Some("kincode/lab"));
        assert_eq!(call(&services, &keys, lab, now).await.0, 403);
        let anonymous = scan_event(&token, "venue_entry").without_caller();
        assert_eq!(call(&services, &keys, anonymous, now).await.0, 401);
    }

    #[tokio::test]
    async fn unbinding_revokes_the_code() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let bound_at = Utc::now() - Duration::hours(25);
        let (token, binding) = online_token(&services, &keys, bound_at).await;
        unbind_relative(&services, EVENT_GUARDIAN, &binding, Utc::now()).await;
        let late_but_valid = bound_at + Duration::minutes(1);
        let (status, body) = call(
            &services,
            &keys,
            scan_event(&token, "venue_entry"),
            late_but_valid,
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("code_revoked"))
        );
        assert_eq!(body["error"]["message"], "该亲属码已失效");
    }

    #[tokio::test]
    async fn an_unreachable_table_is_503() {
        let keys = test_key_ring();
        let token = {
            let services = fresh_services().await;
            online_token(&services, &keys, Utc::now()).await.0
        };
        let services = unreachable_services().await;
        let (status, _) = call(
            &services,
            &keys,
            scan_event(&token, "venue_entry"),
            Utc::now(),
        )
        .await;
        assert_eq!(status, 503);
    }
}
