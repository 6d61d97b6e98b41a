//! Offline cards across two stores (the image in S3, the record in DynamoDB): a scene to make
//! them in, callers whose transactions fail, and the checks that records and images agree. For
//! the card's own tests (`common/tests/codes.rs`) and its races with unbinds
//! (`tests/tests/offline_cards.rs`).

use std::collections::HashMap;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use chrono::{DateTime, Utc};
use kincode_common::adapters::blobs::BlobStore;
use kincode_common::domain::binding::Binding;
use kincode_common::error::AppError;
use kincode_common::store::ActionContext;
use kincode_common::usecases::codes::show::{self, OfflineCardLink};
use kincode_common::wiring::services::Services;

use crate::{active_relative, all_items, bucket_objects, fresh_bucket, fresh_services};
use crate::{intercepted_on_same_table, test_key_ring};

pub fn is_transaction(cfg: &ConfigBag) -> bool {
    cfg.load::<Metadata>()
        .is_some_and(|m| m.name() == "TransactWriteItems")
}

/// Fails every transaction: before it is sent (nothing lands), or after DynamoDB answered
/// (the write landed, the answer is lost), on every attempt the SDK makes.
#[derive(Debug)]
pub struct FailTransactions {
    pub after_landing: bool,
}

impl FailTransactions {
    fn fail(&self, cfg: &ConfigBag, after_landing: bool) -> Result<(), BoxError> {
        match is_transaction(cfg) && self.after_landing == after_landing {
            true => Err("connection reset (test)".into()),
            false => Ok(()),
        }
    }
}

impl Intercept for FailTransactions {
    fn name(&self) -> &'static str {
        "FailTransactions"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.fail(cfg, false)
    }

    fn read_after_transmit(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.fail(cfg, true)
    }
}

/// Fails every S3 upload of a household sheet's files (`household/…`), on every attempt: the
/// cards before them are made, then the sheet fails half-way.
#[derive(Debug)]
struct FailSheetFiles;

impl Intercept for FailSheetFiles {
    fn name(&self) -> &'static str {
        "FailSheetFiles"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        match request.method() == "PUT" && request.uri().contains("/household/") {
            true => Err("connection reset (test)".into()),
            false => Ok(()),
        }
    }
}

/// The same bucket as `blobs`, reached by a caller whose uploads of sheet files fail.
pub async fn failing_sheet_files(services: &Services, blobs: &BlobStore) -> BlobStore {
    let client = kincode_common::wiring::services::s3_client(&services.config)
        .await
        .expect("S3 client");
    let config = client
        .config()
        .to_builder()
        .interceptor(FailSheetFiles)
        .build();
    BlobStore::new(aws_sdk_s3::Client::from_conf(config), blobs.bucket())
}

/// A fresh table and bucket, and a guardian's active binding made at `bound_at`.
pub struct Scene {
    pub services: Services,
    pub blobs: BlobStore,
    pub binding: Binding,
}

pub async fn scene(guardian: &str, bound_at: DateTime<Utc>) -> Scene {
    let services = fresh_services().await;
    let blobs = fresh_bucket(&services).await;
    let binding = active_relative(&services, guardian, bound_at).await;
    Scene {
        services,
        blobs,
        binding,
    }
}

/// The scene's table, reached by a caller whose every transaction fails.
pub async fn failing_transactions(scene: &Scene, after_landing: bool) -> Services {
    intercepted_on_same_table(&scene.services, FailTransactions { after_landing }).await
}

pub fn ctx(at: DateTime<Utc>) -> ActionContext<'static> {
    ActionContext {
        request_id: "offline-card-test",
        at,
    }
}

pub async fn issue(
    services: &Services,
    blobs: &BlobStore,
    binding: &Binding,
    at: DateTime<Utc>,
) -> Result<OfflineCardLink, AppError> {
    show::issue_offline_card(
        &services.store,
        blobs,
        &test_key_ring(),
        &binding.guardian,
        &binding.id,
        ctx(at),
    )
    .await
}

pub fn text(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

/// Records and objects agree: every card's image and every household sheet's files are there,
/// and every object is a card's or a sheet's.
pub async fn assert_cards_and_images_agree(services: &Services, blobs: &BlobStore) {
    let items = all_items(services).await;
    let mut recorded: Vec<String> = items
        .iter()
        .filter(|i| text(i, "pk").starts_with("K#") && text(i, "sk").starts_with("O#"))
        .map(|i| text(i, "object_key"))
        .collect();
    recorded.extend(
        items
            .iter()
            .filter(|i| text(i, "pk").starts_with("HS#") && text(i, "sk") == "SHEET")
            .flat_map(|i| [text(i, "pdf_key"), text(i, "preview_key")]),
    );
    let mut stored: Vec<String> = bucket_objects(services, blobs)
        .await
        .into_iter()
        .map(|o| o.key)
        .collect();
    recorded.sort();
    stored.sort();
    assert_eq!(recorded, stored, "card records and images");
}

pub fn images_in_flight(items: &[HashMap<String, AttributeValue>]) -> usize {
    items
        .iter()
        .filter(|i| text(i, "sk").starts_with("OP#"))
        .count()
}
