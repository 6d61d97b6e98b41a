//! `GET /relatives/{binding_id}/access-log?limit=&cursor=`: who showed, printed, scanned or
//! tested the relative's code, and what happened to the bindings; newest first, the same log
//! for every guardian of the relative, for the caller's active binding only (else 404).

use chrono::{DateTime, Utc};
use kincode_common::answers::AccessEntryAnswer;
use kincode_common::domain::access_log::ACCESS_LOG_RETENTION_DAYS;
use kincode_common::error::AppError;
use kincode_common::http::{self, Call};
use kincode_common::usecases::access_log;
use kincode_common::usecases::paging;
use kincode_common::wiring::services::Services;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

pub async fn handle(
    services: &Services,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    Ok(http::respond(read(services, &req, now).await))
}

async fn read(
    services: &Services,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let id = http::binding_id(req)?;
    let limit = paging::page_size(http::query_param(req, "limit"))?;
    let cursor = http::query_param(req, "cursor");
    let view = access_log::access_log(
        &services.store,
        &call.guardian,
        &id,
        limit,
        cursor,
        call.at(now),
    )
    .await?;
    let answer = AccessLogAnswer {
        binding_id: view.binding.id.as_str(),
        name: &view.binding.masked_name,
        retention_days: ACCESS_LOG_RETENTION_DAYS,
        entries: view
            .entries
            .iter()
            .map(|entry| AccessEntryAnswer::new(entry, &view.own_handle))
            .collect(),
        next_cursor: view.next_cursor.as_deref(),
    };
    Ok(http::json_response(StatusCode::OK, &answer))
}

/// A page of the relative's log, newest first.
#[derive(Serialize)]
struct AccessLogAnswer<'a> {
    binding_id: &'a str,
    name: &'a str,
    /// How long entries are kept.
    retention_days: i64,
    entries: Vec<AccessEntryAnswer<'a>>,
    /// `null` on the last page.
    next_cursor: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kincode_common::codes::keys::KeyRing;
    use kincode_common::domain::binding::Binding;
    use kincode_common::domain::code::ScanPurpose;
    use kincode_common::usecases::codes::{scan, show};
    use kincode_tests::*;
    use serde_json::Value;

    async fn call(services: &Services, event: Value, now: DateTime<Utc>) -> (u16, Value) {
        let route = event.route_key();
        let response = handle(services, event.into_request(), now)
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        status_and_json(&response)
    }

    fn read(binding: &Binding) -> Value {
        event("access-log.json")
            .with_path_binding(binding.id.as_str())
            .with_caller(binding.guardian.as_str())
    }

    fn kinds(body: &Value) -> Vec<&str> {
        body["entries"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect()
    }

    async fn show_code(
        services: &Services,
        keys: &KeyRing,
        binding: &Binding,
        at: DateTime<Utc>,
    ) -> String {
        show::online_code(
            &services.store,
            keys,
            &binding.guardian,
            &binding.id,
            request_at(at),
        )
        .await
        .expect("code")
        .token
    }

    #[tokio::test]
    async fn both_guardians_read_the_same_log_with_staff_by_site_and_guardians_by_handle() {
        let services = fresh_services().await;
        let keys = test_key_ring();
        let t0 = Utc::now() - Duration::hours(5);
        let id_number = distinct_resident_id(5, t0);
        let mother = active_relative_with(&services, "user-mother", &id_number, t0).await;
        let later = t0 + Duration::minutes(10);
        let father = active_relative_with(&services, "user-father", &id_number, later).await;

        // The father shows the code three times in one hour, once in the next.
        let shown = t0 + Duration::hours(2);
        let hour = kincode_common::domain::access_log::shown_hour(shown);
        for minutes in [1, 20, 59] {
            show_code(&services, &keys, &father, hour + Duration::minutes(minutes)).await;
        }
        let code = show_code(&services, &keys, &father, hour + Duration::minutes(61)).await;
        let site = test_site();
        let scanned_at = hour + Duration::minutes(62);
        scan::scan_at_checkpoint(
            &services.store,
            &keys,
            &code,
            ScanPurpose::VenueEntry,
            Some(&site),
            request_at(scanned_at),
        )
        .await
        .expect("scan");
        let now = scanned_at + Duration::minutes(1);

        let (status, by_mother) = call(&services, read(&mother), now).await;
        assert_eq!(status, 200, "{by_mother}");
        assert_eq!(
            kinds(&by_mother),
            [
                "code_scanned",
                "code_shown",
                "code_shown",
                "verified",
                "bound",
                "verified",
                "bound"
            ],
            "one code_shown an hour, newest first: {by_mother}"
        );
        let (_, by_father) = call(&services, read(&father), now).await;
        // The father's binding was made ten minutes later: his log starts there.
        assert_eq!(kinds(&by_father), kinds(&by_mother)[..5]);

        let scan_entry = &by_mother["entries"][0];
        assert_eq!(scan_entry["purpose"], "venue_entry");
        assert_eq!(scan_entry["purpose_label"], "场所通行");
        assert_eq!(scan_entry["actor"]["type"], "site");
        assert_eq!(scan_entry["actor"]["site_id"], "XA-YT-0412");
        // Shown by the father: another guardian to the mother, "you" to him.
        let shown_to_mother = &by_mother["entries"][1]["actor"];
        let shown_to_father = &by_father["entries"][1]["actor"];
        assert_eq!(shown_to_mother["handle"], shown_to_father["handle"]);
        assert_eq!(
            (
                shown_to_mother["you"].as_bool(),
                shown_to_father["you"].as_bool()
            ),
            (Some(false), Some(true))
        );
        assert_eq!(shown_to_mother["label"], "其他监护人");
        let mothers_own = &by_mother["entries"][6]["actor"];
        assert_eq!(mothers_own["you"], true);
        assert_ne!(mothers_own["handle"], shown_to_mother["handle"]);
        let text = by_mother.to_string();
        for secret in ["user-mother", "user-father", &id_number, "王小明"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(by_mother["retention_days"], 180);
    }

    #[tokio::test]
    async fn strangers_and_pending_bindings_read_nothing() {
        let services = fresh_services().await;
        let now = Utc::now();
        let binding = active_relative(&services, EVENT_GUARDIAN, now).await;
        let stranger = read(&binding).with_caller("user-stranger");
        let (status, body) = call(&services, stranger, now).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("binding_not_found"))
        );

        let pending = bind_relative(
            &services,
            "user-pending",
            &distinct_resident_id(70, now),
            now,
        )
        .await
        .unwrap();
        let (status, _) = call(&services, read(&pending), now).await;
        assert_eq!(status, 404);
    }

    #[tokio::test]
    async fn pages_follow_a_sealed_cursor_and_old_entries_are_gone() {
        let services = fresh_services().await;
        let t0 = Utc::now() - Duration::days(200);
        let keys = test_key_ring();
        let binding = active_relative(&services, EVENT_GUARDIAN, t0).await;
        // One code shown an hour, for five hours.
        for hour in 1..=5 {
            show_code(&services, &keys, &binding, t0 + Duration::hours(hour)).await;
        }
        // Read as of 180 days after the second show: the bind, the verification and the
        // first show have passed retention.
        let now = t0 + Duration::hours(2) + Duration::days(180) - Duration::seconds(1);
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut event = read(&binding).with_query("limit", "2");
            if let Some(c) = &cursor {
                event = event.with_query("cursor", c);
            }
            let (status, body) = call(&services, event, now).await;
            assert_eq!(status, 200, "{body}");
            seen.extend(
                body["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["at"].as_str().unwrap().to_owned()),
            );
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let expected: Vec<String> = (2..=5)
            .rev()
            .map(|h| kincode_common::error::rfc3339(t0 + Duration::hours(h)))
            .collect();
        assert_eq!(seen, expected);

        let (_, first) = call(&services, read(&binding).with_query("limit", "2"), now).await;
        let cursor = first["next_cursor"].as_str().unwrap();
        assert!(!cursor.contains("AL#"), "opaque: {cursor}");
        let (status, body) = call(
            &services,
            read(&binding).with_query("cursor", &tampered(cursor)),
            now,
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("invalid_cursor"))
        );
    }
}
