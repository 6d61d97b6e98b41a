//! The kin-code use cases (`common/src/usecases/codes/`) against the local stack: the online
//! code and the offline card (`show.rs`), a checkpoint's scan (`scan.rs`), the published keys
//! (`publish.rs`). An offline card touches two stores (the image in S3, the record in
//! DynamoDB): whatever the network loses, no record points to a missing image and no image is
//! left that nothing points to. Cards racing unbinds are `tests/tests/offline_cards.rs`.

use chrono::{DateTime, Duration, Utc};
use kincode_common::codes::keys::KeyRing;
use kincode_common::codes::token;
use kincode_common::domain::binding::{Binding, GuardianId};
use kincode_common::domain::code::{CodeClaims, CodeKind, ScanPurpose};
use kincode_common::domain::colour::HealthColour;
use kincode_common::error::{rfc3339, AppError};
use kincode_common::usecases::codes::publish::{self, published_keys_ttl, PublishedKeysCache};
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
