//! What a function needs, built once per cold start: config, keys, the DynamoDB client.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;

use crate::blobs::BlobStore;
use crate::config::{Config, ConfigError};
use crate::store::Store;

pub struct Services {
    pub config: Config,
    pub store: Store,
}

/// A bounded wait: a testing site's queue should see a quick 503, not a hung spinner.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await
}

pub async fn dynamodb_client(config: &Config) -> aws_sdk_dynamodb::Client {
    let shared = sdk_config().await;
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&shared);
    if let Some(endpoint) = &config.aws_endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    aws_sdk_dynamodb::Client::from_conf(builder.build())
}

/// The S3 client of the offline-card bucket; path-style on a local stack (moto).
pub async fn s3_client(config: &Config) -> aws_sdk_s3::Client {
    let shared = sdk_config().await;
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
