//! What a function needs, built once per cold start: config, keys, the DynamoDB client.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;

use crate::blobs::BlobStore;
use crate::config::{Config, ConfigError, Stage};
use crate::store::Store;

pub struct Services {
    pub config: Config,
    pub store: Store,
}

/// A bounded wait: a testing site's queue should see a quick 503, not a hung spinner. DynamoDB
/// answers in milliseconds, so 2 s per attempt is already a failure. The local stack (moto, one
/// Python process serving every function) can take seconds per transaction under a load test;
/// there the bounds only catch a stack that is gone, within the function's 10 s timeout.
fn timeouts(stage: Stage) -> TimeoutConfig {
    let (attempt, operation) = match stage {
        Stage::Production => (2, 5),
        Stage::Local => (8, 9),
    };
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(attempt))
        .operation_timeout(Duration::from_secs(operation))
        .build()
}

async fn sdk_config(stage: Stage) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts(stage))
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

pub async fn dynamodb_client(config: &Config) -> aws_sdk_dynamodb::Client {
    let shared = sdk_config(config.stage).await;
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&shared);
    if let Some(endpoint) = &config.aws_endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// The S3 client of the offline-card bucket; path-style on a local stack (moto).
pub async fn s3_client(config: &Config) -> aws_sdk_s3::Client {
    let shared = sdk_config(config.stage).await;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared);
    if let Some(endpoint) = &config.aws_endpoint {
        builder = builder.endpoint_url(endpoint).force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

impl Services {
    pub async fn from_env() -> Result<Self, ConfigError> {
        Self::from_config(Config::from_env()?).await
    }

    pub async fn from_config(config: Config) -> Result<Self, ConfigError> {
        let client = dynamodb_client(&config).await;
        Self::new(config, client)
    }

    /// The offline-card store, for the functions that handle cards.
    pub async fn blobs(&self) -> Result<BlobStore, ConfigError> {
        Ok(BlobStore::new(
            s3_client(&self.config).await,
            self.config.offline_bucket()?,
        ))
    }

    pub fn new(config: Config, dynamodb: aws_sdk_dynamodb::Client) -> Result<Self, ConfigError> {
        let store = Store::new(dynamodb, config.table.clone(), config.keys()?)
            .with_result_retention(chrono::Duration::days(config.result_retention_days.into()));
        Ok(Self { config, store })
    }
}
