//! `POST /relatives/{binding_id}/offline-code` makes the printable 7-day card;
//! `GET /relatives/{binding_id}/offline-code` links the newest card still valid;
//! `POST /household-sheet` makes the card of every active relative of the caller at once, on
//! A4 pages (a PDF and its PNG preview). Every answer carries download links that live minutes.

use chrono::{DateTime, Utc};
use kincode_common::adapters::blobs::{download_url_lifetime, BlobStore};
use kincode_common::answers::{Labelled, Rfc3339};
use kincode_common::codes::keys::KeyRing;
use kincode_common::domain::code::CodeKind;
use kincode_common::domain::colour::HealthColour;
use kincode_common::domain::relationship::Relationship;
use kincode_common::error::{AppError, ErrorFields};
use kincode_common::http::{self, Call};
use kincode_common::store::OfflineCardRecord;
use kincode_common::usecases::codes::sheet::{self, LeftOff};
use kincode_common::usecases::codes::show;
use kincode_common::wiring::services::Services;
use lambda_http::http::{Method, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde::Serialize;

pub async fn handle(
    services: &Services,
    keys: &KeyRing,
    blobs: &BlobStore,
    req: Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, Error> {
    let route = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.route_key.clone(),
        _ => None,
    };
    Ok(http::respond(if route.as_deref() == Some(SHEET_ROUTE) {
        household_sheet(services, keys, blobs, &req, now).await
    } else if req.method() == Method::GET {
        latest(services, blobs, &req, now).await
    } else {
        issue(services, keys, blobs, &req, now).await
    }))
}

pub const SHEET_ROUTE: &str = "POST /household-sheet";

/// A card and its download link; a new card also says the colour it was printed with.
#[derive(Serialize)]
struct CardAnswer<'a> {
    binding_id: &'a str,
    kind: CodeKind,
    generated_at: Rfc3339,
    valid_until: Rfc3339,
    download_url: &'a str,
    download_url_expires_at: Rfc3339,
    #[serde(flatten)]
    colour: Option<Labelled<HealthColour>>,
}

impl<'a> CardAnswer<'a> {
    fn new(card: &'a OfflineCardRecord, url: &'a str, now: DateTime<Utc>) -> Self {
        Self {
            binding_id: &card.binding_id,
            kind: CodeKind::KinOffline,
            generated_at: Rfc3339(card.generated_at),
            valid_until: Rfc3339(card.valid_until),
            download_url: url,
            download_url_expires_at: Rfc3339(now + download_url_lifetime()),
            colour: None,
        }
    }
}

async fn issue(
    services: &Services,
    keys: &KeyRing,
    blobs: &BlobStore,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let id = http::binding_id(req)?;
    let issued = show::issue_offline_card(
        &services.store,
        blobs,
        keys,
        &call.guardian,
        &id,
        call.at(now),
    )
    .await?;
    let body = CardAnswer {
        colour: Some(Labelled(issued.colour)),
        ..CardAnswer::new(&issued.card, &issued.url, now)
    };
    Ok(http::json_response(StatusCode::CREATED, &body))
}

/// A household sheet: where to download it, and what is (and is not) on it.
#[derive(Serialize)]
struct SheetAnswer<'a> {
    kind: &'static str,
    generated_at: Rfc3339,
    /// When its cards expire.
    valid_until: Rfc3339,
    pages: u32,
    /// The PDF to print (A4, four cards a page).
    download_url: &'a str,
    /// A PNG of its pages, to look at before printing.
    preview_url: &'a str,
    download_url_expires_at: Rfc3339,
    cards: Vec<SheetCardAnswer<'a>>,
    left_out: Vec<LeftOutAnswer<'a>>,
    /// What the family reads when someone is left off; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    notice: Option<String>,
}

#[derive(Serialize)]
struct SheetCardAnswer<'a> {
    binding_id: &'a str,
    name: &'a str,
    #[serde(flatten)]
    relationship: Labelled<Relationship>,
    #[serde(flatten)]
    colour: Labelled<HealthColour>,
    generated_at: Rfc3339,
    valid_until: Rfc3339,
}

#[derive(Serialize)]
struct LeftOutAnswer<'a> {
    binding_id: &'a str,
    name: &'a str,
    #[serde(flatten)]
    relationship: Labelled<Relationship>,
    /// The refusal a single card for this relative would have met.
    error: ErrorFields,
}

/// The kind of a household sheet answer.
const HOUSEHOLD_SHEET: &str = "household_sheet";

async fn household_sheet(
    services: &Services,
    keys: &KeyRing,
    blobs: &BlobStore,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let idempotency_key = http::idempotency_key(req)?;
    let made = sheet::issue_household_sheet(
        &services.store,
        blobs,
        keys,
        &call.guardian,
        idempotency_key.as_ref(),
        call.at(now),
    )
    .await?;
    let left_out: Vec<LeftOutAnswer<'_>> = made
        .left_off
        .iter()
        .map(|left| LeftOutAnswer {
            binding_id: left.binding.id.as_str(),
            name: &left.binding.masked_name,
            relationship: Labelled(left.binding.relationship),
            error: left.refusal().body().error,
        })
        .collect();
    let notice = (!made.left_off.is_empty()).then(|| left_out_notice(&made.left_off));
    let body = SheetAnswer {
        kind: HOUSEHOLD_SHEET,
        generated_at: Rfc3339(made.sheet.generated_at),
        valid_until: Rfc3339(made.sheet.valid_until),
        pages: made.sheet.pages,
        download_url: &made.pdf_url,
        preview_url: &made.preview_url,
        download_url_expires_at: Rfc3339(now + download_url_lifetime()),
        cards: made
            .cards
            .iter()
            .map(|card| SheetCardAnswer {
                binding_id: card.binding.id.as_str(),
                name: &card.binding.masked_name,
                relationship: Labelled(card.binding.relationship),
                colour: Labelled(card.entry.colour),
                generated_at: Rfc3339(card.entry.generated_at),
                valid_until: Rfc3339(card.entry.valid_until),
            })
            .collect(),
        left_out,
        notice,
    };
    Ok(http::json_response(StatusCode::CREATED, &body))
}

/// One sentence a relative left off: `**明(子女)未列入本次家庭离线码:今日离线码生成次数已达上限,请明天再试`.
fn left_out_notice(left_off: &[LeftOff]) -> String {
    left_off
        .iter()
        .map(|l| {
            format!(
                "{}({})未列入本次家庭离线码:{}",
                l.binding.masked_name,
                l.binding.relationship.label(),
                l.refusal().message()
            )
        })
        .collect::<Vec<_>>()
        .join(";")
}

async fn latest(
    services: &Services,
    blobs: &BlobStore,
    req: &Request,
    now: DateTime<Utc>,
) -> Result<Response<Body>, AppError> {
    let call = Call::from_request(req)?;
    let id = http::binding_id(req)?;
    let (card, url) =
        show::latest_offline_card(&services.store, blobs, &call.guardian, &id, call.at(now))
            .await?;
    Ok(http::json_response(
        StatusCode::OK,
        &CardAnswer::new(&card, &url, now),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use kincode_common::error::rfc3339;
    use kincode_tests::*;
    use serde_json::Value;

    async fn call(
        services: &Services,
        blobs: &BlobStore,
        event: Value,
        now: DateTime<Utc>,
    ) -> (u16, Value) {
        let route = event.route_key();
        let response = handle(services, &test_key_ring(), blobs, event.into_request(), now)
            .await
            .expect("handler never errs");
        conforms(&route, &response);
        status_and_json(&response)
    }

    #[tokio::test]
    async fn a_card_is_stored_encrypted_under_a_random_key_and_linked_for_minutes() {
        let services = fresh_services().await;
        let blobs = fresh_bucket(&services).await;
        let now = Utc::now();
        let binding = active_relative(&services, EVENT_GUARDIAN, now).await;
        let create = event("offline-create.json").with_path_binding(binding.id.as_str());
        let (status, body) = call(&services, &blobs, create, now).await;
        assert_eq!(status, 201, "{body}");
        let generated: DateTime<Utc> = body["generated_at"].as_str().unwrap().parse().unwrap();
        let valid_until: DateTime<Utc> = body["valid_until"].as_str().unwrap().parse().unwrap();
        assert_eq!(valid_until - generated, Duration::days(7));
        let url = body["download_url"].as_str().unwrap();
        assert!(url.contains("X-Amz-Expires=300"), "{url}");

        let objects = bucket_objects(&services, &blobs).await;
        assert_eq!(objects.len(), 1);
        let object = &objects[0];
        assert!(object.key.starts_with("offline/") && object.key.ends_with(".png"));
        assert!(!object.key.contains(binding.id.as_str()));
        assert_eq!(object.server_side_encryption.as_deref(), Some("AES256"));
        assert!(object.metadata.is_empty(), "{:?}", object.metadata);
        assert!(decode_qr_png(&object.body).starts_with("KC1:"));

        let fetch = event("offline-get.json").with_path_binding(binding.id.as_str());
        let (status, body) = call(&services, &blobs, fetch, now).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["valid_until"], rfc3339(valid_until));
    }

    #[tokio::test]
    async fn none_yet_or_expired_is_404_and_the_daily_limit_is_429() {
        let services = fresh_services().await;
        let blobs = fresh_bucket(&services).await;
        let now = Utc::now();
        let binding = active_relative(&services, EVENT_GUARDIAN, now).await;
        let fetch = || event("offline-get.json").with_path_binding(binding.id.as_str());
        let (status, body) = call(&services, &blobs, fetch(), now).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("offline_code_not_found"))
        );

        let create = || event("offline-create.json").with_path_binding(binding.id.as_str());
        for _ in 0..3 {
            assert_eq!(call(&services, &blobs, create(), now).await.0, 201);
        }
        let (status, body) = call(&services, &blobs, create(), now).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(
            body["error"]["message"],
            "今日离线码生成次数已达上限,请明天再试"
        );
        assert_eq!(
            bucket_objects(&services, &blobs).await.len(),
            3,
            "the refused card's image is gone"
        );

        let later = now + Duration::days(7) + Duration::seconds(1);
        assert_eq!(call(&services, &blobs, fetch(), later).await.0, 404);
    }

    #[tokio::test]
    async fn a_household_sheet_links_its_pdf_names_its_cards_and_who_is_left_out() {
        let services = fresh_services().await;
        let blobs = fresh_bucket(&services).await;
        let now = Utc::now();
        let spent = active_relative(&services, EVENT_GUARDIAN, now).await;
        let printed = active_relative(&services, EVENT_GUARDIAN, now).await;
        let create = || event("offline-create.json").with_path_binding(spent.id.as_str());
        for _ in 0..3 {
            assert_eq!(call(&services, &blobs, create(), now).await.0, 201);
        }
        let (status, body) = call(
            &services,
            &blobs,
            event("offline-household-sheet.json"),
            now,
        )
        .await;
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["kind"], "household_sheet");
        assert_eq!(body["pages"], 1);
        assert_eq!(body["cards"].as_array().unwrap().len(), 1);
        assert_eq!(body["cards"][0]["binding_id"], printed.id.as_str());
        assert_eq!(body["cards"][0]["name"], "**明");
        assert_eq!(body["cards"][0]["colour_label"], "绿码");
        assert_eq!(body["left_out"][0]["binding_id"], spent.id.as_str());
        assert_eq!(
            body["left_out"][0]["error"]["code"],
            "offline_code_limit_reached"
        );
        assert_eq!(
            body["notice"],
            "**明(子女)未列入本次家庭离线码:今日离线码生成次数已达上限,请明天再试"
        );
        let pdf_url = body["download_url"].as_str().unwrap();
        assert!(
            pdf_url.contains("/household/") && pdf_url.contains(".pdf?"),
            "{pdf_url}"
        );
        assert!(
            pdf_url.contains("response-content-type=application%2Fpdf"),
            "{pdf_url}"
        );
        assert!(pdf_url.contains("X-Amz-Expires=300"), "{pdf_url}");
        let preview = body["preview_url"].as_str().unwrap();
        assert!(preview.contains(".png?"), "{preview}");

        // The files are stored encrypted, under keys that say nothing of the family.
        let objects = bucket_objects(&services, &blobs).await;
        let sheet_files: Vec<_> = objects
            .iter()
            .filter(|o| o.key.starts_with("household/"))
            .collect();
        assert_eq!(sheet_files.len(), 2);
        for object in sheet_files {
            assert_eq!(object.server_side_encryption.as_deref(), Some("AES256"));
            assert!(object.metadata.is_empty());
            for id in [spent.id.as_str(), printed.id.as_str(), EVENT_GUARDIAN] {
                assert!(!object.key.contains(id), "{}", object.key);
            }
        }

        // The event file carries an Idempotency-Key: sent again, the same sheet, no new card.
        let (status, again) = call(
            &services,
            &blobs,
            event("offline-household-sheet.json"),
            now,
        )
        .await;
        assert_eq!(status, 201, "{again}");
        let path = |url: &str| url.split('?').next().unwrap().to_owned();
        assert_eq!(path(again["download_url"].as_str().unwrap()), path(pdf_url));
        assert_eq!(bucket_objects(&services, &blobs).await.len(), objects.len());
    }

    #[tokio::test]
    async fn a_household_sheet_with_nobody_to_print_a_bad_key_or_no_caller_is_refused() {
        let services = fresh_services().await;
        let blobs = fresh_bucket(&services).await;
        let now = Utc::now();
        let sheet = || event("offline-household-sheet.json");
        let (status, body) = call(&services, &blobs, sheet(), now).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("no_verified_relatives"))
        );
        assert_eq!(
            body["error"]["message"],
            "暂无已完成认证的亲属,无法生成家庭离线码"
        );
        let bad_key = sheet().with_header("idempotency-key", "short");
        assert_eq!(call(&services, &blobs, bad_key, now).await.0, 400);
        assert_eq!(
            call(&services, &blobs, sheet().without_caller(), now)
                .await
                .0,
            401
        );
        // S3 down: 503 before any card is recorded (the first card's image fails): no quota used.
        let active = active_relative(&services, EVENT_GUARDIAN, now).await;
        let no_s3 = unreachable_bucket(&services).await;
        assert_eq!(call(&services, &no_s3, sheet(), now).await.0, 503);
        assert!(bucket_objects(&services, &blobs).await.is_empty());
        let fetch = event("offline-get.json").with_path_binding(active.id.as_str());
        assert_eq!(call(&services, &blobs, fetch, now).await.0, 404);
    }

    #[tokio::test]
    async fn pending_strangers_and_outages() {
        let services = fresh_services().await;
        let blobs = fresh_bucket(&services).await;
        let now = Utc::now();
        let pending = bind_relative(
            &services,
            EVENT_GUARDIAN,
            &resident_id_aged(70, now, 6),
            now,
        )
        .await
        .unwrap();
        let create = |id: &str| event("offline-create.json").with_path_binding(id);
        assert_eq!(
            call(&services, &blobs, create(pending.id.as_str()), now)
                .await
                .0,
            409
        );
        let active = active_relative(&services, EVENT_GUARDIAN, now).await;
        let stranger = create(active.id.as_str()).with_caller("user-stranger");
        assert_eq!(call(&services, &blobs, stranger, now).await.0, 404);

        // S3 down: 503, and nothing recorded (no quota used, no card listed).
        let no_s3 = unreachable_bucket(&services).await;
        assert_eq!(
            call(&services, &no_s3, create(active.id.as_str()), now)
                .await
                .0,
            503
        );
        let fetch = event("offline-get.json").with_path_binding(active.id.as_str());
        assert_eq!(call(&services, &blobs, fetch, now).await.0, 404);
    }
}
