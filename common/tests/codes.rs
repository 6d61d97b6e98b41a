//! The kin-code use cases (`common/src/usecases/codes/`) against the local stack: the online
//! code and the offline card (`show.rs`), a checkpoint's scan (`scan.rs`), the published keys
//! (`publish.rs`). An offline card touches two stores (the image in S3, the record in
//! DynamoDB): whatever the network loses, no record points to a missing image and no image is
//! left that nothing points to. Cards racing unbinds are `tests/tests/offline_cards.rs`.
//! The household sheet (`sheet.rs`) makes the same cards, every relative's at once, and puts
//! them on a PDF whose every QR is read back as a printer would print it (pdftoppm, zbarimg).

use chrono::{DateTime, Duration, Utc};
use kincode_common::codes::keys::KeyRing;
use kincode_common::codes::token;
use kincode_common::domain::binding::IdempotencyKey;
use kincode_common::domain::binding::{Binding, GuardianId};
use kincode_common::domain::code::SheetLeftOutReason;
use kincode_common::domain::code::{CodeClaims, CodeKind, ScanPurpose};
use kincode_common::domain::colour::HealthColour;
use kincode_common::error::{rfc3339, AppError};
use kincode_common::store::{CleanupBudget, OfflineCardRecord};
use kincode_common::usecases::cleanup;
use kincode_common::usecases::codes::publish::{self, published_keys_ttl, PublishedKeysCache};
use kincode_common::usecases::codes::sheet::{issue_household_sheet, HouseholdSheetLink};
use kincode_common::usecases::codes::{scan, show};
use kincode_common::wiring::services::Services;
use kincode_tests::offline_cards::*;
use kincode_tests::*;
use serde_json::json;

#[tokio::test]
async fn a_lost_answer_after_the_card_landed_answers_the_card_and_keeps_its_image() {
    let now = Utc::now();
    let scene = scene("parent-lost", now).await;
    let Scene {
        services,
        blobs,
        binding,
    } = &scene;
    // Every attempt's answer is lost: the SDK gives up, and the card must be read back.
    let lossy = failing_transactions(&scene, true).await;
    let issued = issue(&lossy, blobs, binding, now)
        .await
        .expect("answered as made");
    assert_cards_and_images_agree(services, blobs).await;
    let items = all_items(services).await;
    assert_eq!(
        images_in_flight(&items),
        0,
        "the card's transaction cleared the mark"
    );
    let quota = items
        .iter()
        .find(|i| text(i, "sk").starts_with("OQ#"))
        .and_then(|i| i["generated"].as_n().ok()?.parse::<u32>().ok());
    assert_eq!(quota, Some(1), "one card counted once");
    let (latest, _) = show::latest_offline_card(
        &services.store,
        blobs,
        &binding.guardian,
        &binding.id,
        request_at(now),
    )
    .await
    .expect("the card is linked");
    assert_eq!(latest.serial, issued.card.serial);
}

#[tokio::test]
async fn a_refused_card_takes_its_image_and_mark_away() {
    let now = Utc::now();
    let Scene {
        services,
        blobs,
        binding,
    } = &scene("parent-quota", now).await;
    for _ in 0..3 {
        issue(services, blobs, binding, now).await.expect("card");
    }
    let refused = issue(services, blobs, binding, now).await;
    assert!(
        matches!(refused, Err(AppError::OfflineCodeLimitReached)),
        "{refused:?}"
    );
    assert_cards_and_images_agree(services, blobs).await;
    assert_eq!(images_in_flight(&all_items(services).await), 0);
}

/// An active binding made 25 hours before `now` (so it may be unbound at `now`).
async fn binding_unbindable_at(services: &Services, guardian: &str, now: DateTime<Utc>) -> Binding {
    active_relative(services, guardian, now - Duration::hours(25)).await
}

/// A single-tube positive for the binding's relative, sampled and reported just before `now`.
async fn test_positive(services: &Services, keys: &KeyRing, binding: &Binding, now: DateTime<Utc>) {
    let tube = fresh_tube();
    register_sample_at(
        services,
        keys,
        binding,
        &tube,
        None,
        now - Duration::minutes(2),
    )
    .await
    .expect("registered");
    report_result_at(services, &tube, "positive", now - Duration::minutes(1)).await;
}

#[tokio::test]
async fn an_online_code_is_signed_for_an_active_binding_in_the_persons_colour_now() {
    let services = fresh_services().await;
    let keys = test_key_ring();
    let now = Utc::now();
    let binding = active_relative(&services, "user-show", now - Duration::hours(1)).await;
    let code = show::online_code(
        &services.store,
        &keys,
        &binding.guardian,
        &binding.id,
        request_at(now),
    )
    .await
    .unwrap();
    let claims = token::decode(&code.token, &keys, now).expect("the code verifies");
    assert_eq!(claims.binding, binding.id);
    assert_eq!(
        (claims.kind, claims.colour),
        (CodeKind::KinOnline, HealthColour::Green)
    );
    assert_eq!(claims.serial, code.claims.serial);
    assert_eq!(claims.expires_at - claims.issued_at, Duration::minutes(5));
    assert!(
        token::decode(&code.token, &test_key_ring(), now).is_err(),
        "another ring's keys do not verify it"
    );

    let later = now + Duration::minutes(10);
    test_positive(&services, &keys, &binding, later).await;
    let red = show::online_code(
        &services.store,
        &keys,
        &binding.guardian,
        &binding.id,
        request_at(later),
    )
    .await
    .unwrap();
    assert_eq!(red.claims.colour, HealthColour::Red);
    assert_ne!(
        red.claims.serial, code.claims.serial,
        "a new serial each time"
    );

    let pending = bind_relative(&services, "user-show", &distinct_resident_id(70, now), now)
        .await
        .unwrap();
    let refused = show::online_code(
        &services.store,
        &keys,
        &pending.guardian,
        &pending.id,
        request_at(now),
    )
    .await;
    assert!(
        matches!(refused, Err(AppError::VerificationRequired)),
        "{refused:?}"
    );
    let stranger = GuardianId::parse("user-stranger").unwrap();
    let refused = show::online_code(
        &services.store,
        &keys,
        &stranger,
        &binding.id,
        request_at(now),
    )
    .await;
    assert!(
        matches!(refused, Err(AppError::BindingNotFound)),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_latest_offline_card_is_the_newest_still_valid_with_a_working_link() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let t0 = Utc::now();
    let binding = active_relative(&services, "user-card", t0).await;
    let (guardian, id) = (&binding.guardian, &binding.id);
    let latest = |at: DateTime<Utc>| {
        let (services, blobs) = (&services, &blobs);
        async move {
            show::latest_offline_card(&services.store, blobs, guardian, id, request_at(at)).await
        }
    };
    let none = latest(t0).await;
    assert!(
        matches!(none, Err(AppError::OfflineCodeNotFound)),
        "{none:?}"
    );

    let first = issue(&services, &blobs, &binding, t0).await.unwrap();
    let second = issue(&services, &blobs, &binding, t0 + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(
        second.card.valid_until - second.card.generated_at,
        Duration::days(7)
    );
    let (card, url) = latest(t0 + Duration::hours(2)).await.unwrap();
    assert_eq!(card.serial, second.card.serial, "the newest");
    let image = kincode_tests::local_api::download(&url).await;
    assert_eq!(image.status, 200);
    let printed = decode_qr_png(&image.body);
    assert!(printed.starts_with(token::PREFIX), "{printed}");

    // The older card expires first; the newer then goes too.
    let (card, _) = latest(first.card.valid_until).await.unwrap();
    assert_eq!(card.serial, second.card.serial);
    let gone = latest(second.card.valid_until).await;
    assert!(
        matches!(gone, Err(AppError::OfflineCodeNotFound)),
        "{gone:?}"
    );
}

#[tokio::test]
async fn a_scan_answers_the_holder_in_their_colour_now_and_refuses_what_is_no_live_code() {
    let services = fresh_services().await;
    let keys = test_key_ring();
    let now = Utc::now();
    let binding = binding_unbindable_at(&services, "user-scanned", now).await;
    let code = show::online_code(
        &services.store,
        &keys,
        &binding.guardian,
        &binding.id,
        request_at(now),
    )
    .await
    .unwrap()
    .token;
    let scan = |code: &str, purpose: ScanPurpose, at: DateTime<Utc>| {
        let (services, keys, code) = (&services, &keys, code.to_owned());
        async move { scan::scan(&services.store, keys, &code, purpose, at).await }
    };
    for purpose in [ScanPurpose::VenueEntry, ScanPurpose::NucleicAcidTest] {
        let scanned = scan(&code, purpose, now).await.unwrap();
        assert_eq!(scanned.claims.binding, binding.id);
        assert_eq!(scanned.holder.relative_key, binding.relative_key);
        assert_eq!(scanned.colour, HealthColour::Green);
    }
    // The colour is the person's now, not the one the code was signed with.
    let later = now + Duration::minutes(3);
    test_positive(&services, &keys, &binding, later).await;
    let scanned = scan(&code, ScanPurpose::VenueEntry, later).await.unwrap();
    assert_eq!(
        (scanned.claims.colour, scanned.colour),
        (HealthColour::Green, HealthColour::Red)
    );

    let tampered = tampered(&code);
    let foreign = {
        let other = test_key_ring();
        let claims = CodeClaims::issue(
            binding.id.clone(),
            CodeKind::KinOnline,
            HealthColour::Green,
            now,
        );
        token::encode(&claims, other.signer(now))
    };
    let expired = now + Duration::minutes(5);
    for (code, at) in [
        (tampered.as_str(), now),
        (foreign.as_str(), now),
        ("not a code", now),
        (code.as_str(), expired),
    ] {
        let refused = scan(code, ScanPurpose::VenueEntry, at).await;
        assert!(
            matches!(refused, Err(AppError::InvalidCode(_))),
            "{code} at {at}: {refused:?}"
        );
    }
    let refused = scan(&code, ScanPurpose::Arrival, now).await;
    assert!(
        matches!(refused, Err(AppError::KinCodeNotForArrival)),
        "{refused:?}"
    );

    unbind_relative(&services, binding.guardian.as_str(), &binding, now).await;
    let refused = scan(&code, ScanPurpose::VenueEntry, now).await;
    assert!(matches!(refused, Err(AppError::CodeRevoked)), "{refused:?}");
}

#[tokio::test]
async fn the_published_keys_name_the_signing_key_and_each_revoked_card_until_it_expires() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let keys = test_key_ring();
    let now = Utc::now();
    let published = |at: DateTime<Utc>| {
        let (services, keys) = (&services, &keys);
        async move {
            publish::published_keys(&services.store, keys, at)
                .await
                .unwrap()
        }
    };
    let before = published(now).await;
    let document = &before.document;
    assert_eq!(document["issuer"], token::ISSUER);
    assert_eq!(document["code_prefix"], token::PREFIX);
    assert_eq!(document["revoked"], json!([]));
    let kids: Vec<&str> = document["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["test-key"]);
    assert_eq!(document["generated_at"], rfc3339(now));
    let a_minute_on = published(now + Duration::minutes(1)).await;
    assert_ne!(a_minute_on.document, before.document, "generated_at moves");
    assert_eq!(a_minute_on.etag, before.etag, "the tag does not");

    // An unbind publishes its cards' serials, each until its card would have expired.
    let binding = binding_unbindable_at(&services, "user-revoked", now).await;
    let card = issue(&services, &blobs, &binding, now).await.unwrap().card;
    unbind_relative(&services, binding.guardian.as_str(), &binding, now).await;
    let after = published(now).await;
    assert_eq!(
        after.document["revoked"],
        json!([{ "cti": card.serial, "exp": rfc3339(card.valid_until) }])
    );
    assert_ne!(after.etag, before.etag);
    let expired = published(card.valid_until).await;
    assert_eq!(expired.document["revoked"], json!([]));
    assert_eq!(
        expired.etag, before.etag,
        "the same keys and revocations, the same tag"
    );
}

#[tokio::test]
async fn an_instance_reads_the_published_keys_once_per_ttl() {
    let (services, calls) = counted_services().await;
    let blobs = fresh_bucket(&services).await;
    let keys = test_key_ring();
    let now = Utc::now();
    let binding = binding_unbindable_at(&services, "user-cached", now).await;
    let cache = PublishedKeysCache::default();
    let get = |at: DateTime<Utc>| {
        let (services, keys, cache) = (&services, &keys, &cache);
        async move { cache.get(&services.store, keys, at).await.unwrap() }
    };
    calls.take();
    let first = get(now).await;
    assert_eq!(calls.take(), ["Query"]);

    // A revocation within the TTL reaches the route only once the TTL has passed.
    issue(&services, &blobs, &binding, now).await.unwrap();
    unbind_relative(&services, binding.guardian.as_str(), &binding, now).await;
    calls.take();
    let within = get(now + published_keys_ttl() - Duration::seconds(1)).await;
    assert_eq!(within, first);
    assert!(calls.take().is_empty(), "served from memory");
    let after = get(now + published_keys_ttl()).await;
    assert_eq!(calls.take(), ["Query"]);
    assert_eq!(after.document["revoked"].as_array().unwrap().len(), 1);
    // A clock that stepped back reads again rather than serve the copy for longer.
    get(now).await;
    assert_eq!(calls.take(), ["Query"]);
}

/// The household sheet of `guardian`, made at `at`.
async fn sheet(
    services: &Services,
    blobs: &kincode_common::adapters::blobs::BlobStore,
    keys: &KeyRing,
    guardian: &GuardianId,
    idempotency_key: Option<&str>,
    at: DateTime<Utc>,
) -> Result<HouseholdSheetLink, AppError> {
    let key = idempotency_key.map(|k| IdempotencyKey::parse(k).expect("key"));
    issue_household_sheet(
        &services.store,
        blobs,
        keys,
        guardian,
        key.as_ref(),
        ctx(at),
    )
    .await
}

/// A relative's offline cards, newest first.
async fn cards_of(services: &Services, binding: &Binding) -> Vec<OfflineCardRecord> {
    services.store.offline_cards(&binding.id).await.unwrap()
}

/// The day's card count of each relative, as the quota items say.
fn quotas(
    items: &[std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>],
) -> Vec<u32> {
    let mut counts: Vec<u32> = items
        .iter()
        .filter(|i| text(i, "sk").starts_with("OQ#"))
        .filter_map(|i| i["generated"].as_n().ok()?.parse().ok())
        .collect();
    counts.sort();
    counts
}

#[tokio::test]
async fn a_household_sheet_prints_every_active_relatives_card_in_its_colour_each_counted() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let keys = test_key_ring();
    let now = Utc::now();
    let guardian = "user-sheet";
    let green = active_relative(&services, guardian, now - Duration::hours(1)).await;
    let yellow = active_relative(&services, guardian, now - Duration::hours(1)).await;
    let red = active_relative(&services, guardian, now - Duration::hours(1)).await;
    let pending = bind_relative(&services, guardian, &resident_id_aged(70, now, 9), now)
        .await
        .unwrap();
    // A pooled positive makes yellow, a single-tube positive red.
    let pooled = fresh_tube();
    register_sample_at(
        &services,
        &keys,
        &yellow,
        &pooled,
        Some("pooled_10"),
        now - Duration::minutes(3),
    )
    .await
    .expect("registered");
    report_result_at(&services, &pooled, "positive", now - Duration::minutes(2)).await;
    test_positive(&services, &keys, &red, now).await;

    let made = sheet(&services, &blobs, &keys, &green.guardian, None, now)
        .await
        .expect("sheet");
    assert!(made.left_off.is_empty());
    assert_eq!(made.sheet.pages, 1);
    let on_sheet: Vec<(String, HealthColour)> = made
        .cards
        .iter()
        .map(|c| (c.binding.id.as_str().to_owned(), c.entry.colour))
        .collect();
    let mut expected = vec![
        (green.id.as_str().to_owned(), HealthColour::Green),
        (yellow.id.as_str().to_owned(), HealthColour::Yellow),
        (red.id.as_str().to_owned(), HealthColour::Red),
    ];
    let mut sorted = on_sheet.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected, "every active relative once, none pending");
    assert!(!on_sheet.iter().any(|(id, _)| id == pending.id.as_str()));

    // Each card on the sheet is an offline card issued like any: recorded, counted, linked.
    for relative in [&green, &yellow, &red] {
        let cards = cards_of(&services, relative).await;
        assert_eq!(cards.len(), 1);
        let entry = made
            .cards
            .iter()
            .find(|c| c.binding.id == relative.id)
            .unwrap();
        assert_eq!(cards[0].serial, entry.entry.serial);
    }
    let items = all_items(&services).await;
    assert_eq!(quotas(&items), [1, 1, 1], "one card of the day each");
    assert_eq!(
        images_in_flight(&items),
        0,
        "the sheet's record cleared its marks"
    );
    assert_cards_and_images_agree(&services, &blobs).await;

    // The PDF, printed at 300 dpi, holds each card's own code, in its colour, once.
    let pdf = kincode_tests::local_api::download(&made.pdf_url).await;
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with(b"%PDF-"));
    let pages = qr_codes_in_pdf(&pdf.body);
    assert_eq!(pages.len(), 1);
    let mut printed: Vec<(String, HealthColour)> = pages[0]
        .iter()
        .map(|text| {
            let claims = token::decode(text, &keys, now).expect("a code kincode signed");
            assert_eq!(claims.kind, CodeKind::KinOffline);
            let serial = made
                .cards
                .iter()
                .find(|c| c.binding.id == claims.binding)
                .map(|c| c.entry.serial.clone());
            assert_eq!(
                serial,
                Some(claims.serial.to_hex()),
                "the card recorded for it"
            );
            (claims.binding.as_str().to_owned(), claims.colour)
        })
        .collect();
    printed.sort();
    assert_eq!(printed, expected);
    let preview = kincode_tests::local_api::download(&made.preview_url).await;
    assert_eq!(preview.status, 200);
    assert!(preview.body.starts_with(b"\x89PNG"));
}

#[tokio::test]
async fn a_relative_out_of_cards_today_is_left_off_and_named_and_the_others_printed() {
    let Scene {
        services,
        blobs,
        binding: spent,
    } = &scene("user-sheet-quota", Utc::now()).await;
    let now = Utc::now();
    let keys = test_key_ring();
    let fresh = active_relative(services, "user-sheet-quota", now).await;
    for _ in 0..3 {
        issue(services, blobs, spent, now).await.expect("card");
    }
    let made = sheet(services, blobs, &keys, &spent.guardian, None, now)
        .await
        .expect("sheet");
    assert_eq!(made.cards.len(), 1);
    assert_eq!(made.cards[0].binding.id, fresh.id);
    assert_eq!(made.left_off.len(), 1);
    let left = &made.left_off[0];
    assert_eq!(left.binding.id, spent.id);
    assert_eq!(left.binding.masked_name, "**明");
    assert_eq!(left.reason, SheetLeftOutReason::DailyLimitReached);
    assert_eq!(left.refusal().code(), "offline_code_limit_reached");
    assert_eq!(cards_of(services, spent).await.len(), 3, "no fourth card");
    assert_eq!(quotas(&all_items(services).await), [1, 3]);
    assert_cards_and_images_agree(services, blobs).await;

    // Both used up: refused as a single card is, and nothing more is stored.
    for _ in 0..2 {
        issue(services, blobs, &fresh, now).await.expect("card");
    }
    let objects = bucket_objects(services, blobs).await.len();
    let refused = sheet(services, blobs, &keys, &spent.guardian, None, now).await;
    assert!(
        matches!(refused, Err(AppError::OfflineCodeLimitReached)),
        "{refused:?}"
    );
    assert_eq!(bucket_objects(services, blobs).await.len(), objects);
    assert_eq!(images_in_flight(&all_items(services).await), 0);
}

#[tokio::test]
async fn nobody_verified_is_409_and_nothing_is_made() {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let now = Utc::now();
    let guardian = GuardianId::parse("user-sheet-none").unwrap();
    let none = sheet(&services, &blobs, &test_key_ring(), &guardian, None, now).await;
    assert!(
        matches!(none, Err(AppError::NoVerifiedRelatives)),
        "{none:?}"
    );
    bind_relative(
        &services,
        "user-sheet-none",
        &resident_id_aged(70, now, 3),
        now,
    )
    .await
    .unwrap();
    let pending = sheet(&services, &blobs, &test_key_ring(), &guardian, None, now).await;
    assert!(
        matches!(pending, Err(AppError::NoVerifiedRelatives)),
        "{pending:?}"
    );
    assert!(bucket_objects(&services, &blobs).await.is_empty());
}

#[tokio::test]
async fn a_retry_with_the_same_idempotency_key_answers_the_same_sheet_and_makes_no_card() {
    let Scene {
        services,
        blobs,
        binding,
    } = &scene("user-sheet-retry", Utc::now()).await;
    let now = Utc::now();
    let keys = test_key_ring();
    let first = sheet(
        services,
        blobs,
        &keys,
        &binding.guardian,
        Some("sheet-key-0001"),
        now,
    )
    .await
    .unwrap();
    let retry = sheet(
        services,
        blobs,
        &keys,
        &binding.guardian,
        Some("sheet-key-0001"),
        now + Duration::minutes(3),
    )
    .await
    .unwrap();
    assert_eq!(retry.sheet, first.sheet, "the same sheet");
    assert_eq!(retry.cards.len(), 1);
    assert_eq!(cards_of(services, binding).await.len(), 1, "no second card");
    // Another key is another sheet (and another card).
    let other = sheet(
        services,
        blobs,
        &keys,
        &binding.guardian,
        Some("sheet-key-0002"),
        now,
    )
    .await
    .unwrap();
    assert_ne!(other.sheet.pdf_key, first.sheet.pdf_key);
    assert_eq!(cards_of(services, binding).await.len(), 2);
    // Another guardian's same key never meets this sheet.
    let stranger = active_relative(services, "user-sheet-stranger", now).await;
    let theirs = sheet(
        services,
        blobs,
        &keys,
        &stranger.guardian,
        Some("sheet-key-0001"),
        now,
    )
    .await
    .unwrap();
    assert_ne!(theirs.sheet.sheet_id, first.sheet.sheet_id);
    assert_eq!(theirs.cards[0].binding.id, stranger.id);
    assert_cards_and_images_agree(services, blobs).await;
}

#[tokio::test]
async fn two_requests_at_once_with_one_key_answer_one_sheet_and_leave_no_stray_file() {
    let Scene {
        services,
        blobs,
        binding,
    } = &scene("user-sheet-race", Utc::now()).await;
    let now = Utc::now();
    let keys = test_key_ring();
    let guardian = &binding.guardian;
    let (a, b) = tokio::join!(
        sheet(
            services,
            blobs,
            &keys,
            guardian,
            Some("sheet-race-0001"),
            now
        ),
        sheet(
            services,
            blobs,
            &keys,
            guardian,
            Some("sheet-race-0001"),
            now
        ),
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a.sheet, b.sheet, "both answer the sheet recorded first");
    // Each request made its card before either recorded the sheet: both are counted, within
    // the day's quota, and the one not on the sheet is an ordinary card of its own.
    let cards = cards_of(services, binding).await;
    assert!((1..=2).contains(&cards.len()), "{}", cards.len());
    let items = all_items(services).await;
    assert_eq!(quotas(&items), [cards.len() as u32]);
    assert_eq!(
        images_in_flight(&items),
        0,
        "the loser's files and marks are gone"
    );
    assert_cards_and_images_agree(services, blobs).await;
    let sheets = items
        .iter()
        .filter(|i| text(i, "pk").starts_with("HS#") && text(i, "sk") == "SHEET")
        .count();
    assert_eq!(sheets, 1);
}

#[tokio::test]
async fn unbinding_revokes_the_sheets_card_of_that_relative_and_the_cleanup_removes_the_sheet() {
    let now = Utc::now();
    let Scene {
        services,
        blobs,
        binding: leaving,
    } = &scene("user-sheet-unbind", now - Duration::hours(25)).await;
    let keys = test_key_ring();
    let staying = active_relative(services, "user-sheet-unbind", now - Duration::hours(25)).await;
    let made = sheet(services, blobs, &keys, &leaving.guardian, None, now)
        .await
        .unwrap();
    assert_eq!(made.cards.len(), 2);
    let serial_of = |b: &Binding| {
        made.cards
            .iter()
            .find(|c| c.binding.id == b.id)
            .unwrap()
            .entry
            .serial
            .clone()
    };
    unbind_relative(
        services,
        "user-sheet-unbind",
        leaving,
        now + Duration::minutes(1),
    )
    .await;
    let revoked: Vec<String> = services
        .store
        .revocations(now + Duration::minutes(2))
        .await
        .unwrap()
        .into_iter()
        .map(|(serial, _)| serial.to_hex())
        .collect();
    assert!(
        revoked.contains(&serial_of(leaving)),
        "the leaving relative's card is void"
    );
    assert!(
        !revoked.contains(&serial_of(&staying)),
        "the other card stands"
    );

    // When the cards expire the cleanup takes the sheet's PDF and preview with them.
    let after = made.sheet.valid_until + Duration::hours(1);
    let report = cleanup::run(
        &services.store,
        blobs,
        CleanupBudget {
            max_items: 1_000,
            max_duration: std::time::Duration::from_secs(60),
        },
        ctx(after),
    )
    .await
    .unwrap();
    assert_eq!(report.household_sheets_deleted, 1);
    assert_eq!(report.offline_cards_deleted, 2);
    assert!(
        bucket_objects(services, blobs).await.is_empty(),
        "no file left"
    );
    assert!(services
        .store
        .household_sheet(&made.sheet.sheet_id)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_sheet_failing_half_way_leaves_whole_cards_and_nothing_pointing_at_nothing() {
    let now = Utc::now();
    let scene = scene("user-sheet-half", now).await;
    let Scene {
        services,
        blobs,
        binding: first,
    } = &scene;
    let keys = test_key_ring();
    let second = active_relative(services, "user-sheet-half", now).await;
    let failing = failing_sheet_files(services, blobs).await;
    let failed = sheet(
        services,
        &failing,
        &keys,
        &first.guardian,
        Some("sheet-half-0001"),
        now,
    )
    .await;
    assert!(
        matches!(failed, Err(AppError::DependencyUnavailable(_))),
        "{failed:?}"
    );

    // The cards were made before the sheet's files failed: each is whole (image, record,
    // quota) and linked as any card; no sheet is recorded, no record names a missing file.
    for relative in [first, &second] {
        let (card, url) = show::latest_offline_card(
            &services.store,
            blobs,
            &relative.guardian,
            &relative.id,
            request_at(now),
        )
        .await
        .expect("the card stands on its own");
        assert_eq!(card.binding_id, relative.id.as_str());
        assert_eq!(kincode_tests::local_api::download(&url).await.status, 200);
    }
    let items = all_items(services).await;
    assert_eq!(quotas(&items), [1, 1]);
    assert!(!items
        .iter()
        .any(|i| text(i, "pk").starts_with("HS#") && text(i, "sk") == "SHEET"));
    assert_cards_and_images_agree(services, blobs).await;
    assert_eq!(
        images_in_flight(&items),
        1,
        "the PDF's mark, for the cleanup"
    );

    // The retry (same key) makes the sheet; the failed attempt's cards stay counted.
    let made = sheet(
        services,
        blobs,
        &keys,
        &first.guardian,
        Some("sheet-half-0001"),
        now,
    )
    .await
    .expect("sheet");
    assert_eq!(made.cards.len(), 2);
    assert_eq!(quotas(&all_items(services).await), [2, 2]);

    // An hour on, the cleanup removes the failed attempt's mark; records and files agree.
    let report = cleanup::run(
        &services.store,
        blobs,
        CleanupBudget {
            max_items: 1_000,
            max_duration: std::time::Duration::from_secs(60),
        },
        ctx(now + Duration::hours(2)),
    )
    .await
    .unwrap();
    assert_eq!(report.orphan_images_deleted, 1);
    assert_eq!(images_in_flight(&all_items(services).await), 0);
    assert_cards_and_images_agree(services, blobs).await;
}
