//! The kin-code use cases (`common/src/usecases/codes/`) against the local stack: the online
//! code and the offline card (`show.rs`), a checkpoint's scan (`scan.rs`), the published keys
//! (`publish.rs`). An offline card touches two stores (the image in S3, the record in
//! DynamoDB): whatever the network loses, no record points to a missing image and no image is
//! left that nothing points to. Cards racing unbinds are `tests/tests/offline_cards.rs`.

use chrono::Utc;
use kincode_common::error::AppError;
use kincode_common::usecases::codes::show;
use kincode_tests::offline_cards::*;
use kincode_tests::*;

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
    let (latest, _) =
        show::latest_offline_card(&services.store, blobs, &binding.guardian, &binding.id, now)
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
