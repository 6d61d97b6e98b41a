//! What a function needs, built once per cold start: config (with the secrets it names,
//! from Secrets Manager), keys (the code keys re-read while warm), the DynamoDB client.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};
use chrono::{DateTime, Utc};
use rustls::pki_types::CertificateDer;

use crate::adapters::blobs::BlobStore;
use crate::adapters::outbound::{self, sdk_http_client};
use crate::codes::keys::{KeyRing, VerificationKeys};
use crate::store::Store;
use crate::wiring::config::{
    Bootstrap, Config, ConfigError, Stage, PUBLIC_KEYS_SECRET, SIGNING_KEYS_SECRET,
};
use crate::wiring::secrets::LiveKeys;

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

/// How every AWS client of the project is made (the functions', and the local tools'): the
/// project's HTTPS client (`outbound`: compiled-in roots, plus `extra_roots` on a local stack),
/// bounded timeouts, three attempts.
pub fn aws_config_loader(stage: Stage, extra_roots: &[CertificateDer<'static>]) -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(sdk_http_client(extra_roots))
        .timeout_config(timeouts(stage))
        .retry_config(RetryConfig::standard().with_max_attempts(3))
}

async fn sdk_config(
    stage: Stage,
    local_ca_file: Option<&str>,
) -> Result<aws_config::SdkConfig, ConfigError> {
    let extra_roots = match local_ca_file {
        Some(path) => outbound::pem_certificates(path)?,
        None => Vec::new(),
    };
    Ok(aws_config_loader(stage, &extra_roots).load().await)
}

/// The Secrets Manager client, made the way the other clients are.
pub(crate) async fn secretsmanager_client(
    stage: Stage,
    aws_endpoint: Option<&str>,
    local_ca_file: Option<&str>,
) -> Result<aws_sdk_secretsmanager::Client, ConfigError> {
    let shared = sdk_config(stage, local_ca_file).await?;
    let mut builder = aws_sdk_secretsmanager::config::Builder::from(&shared);
    if let Some(endpoint) = aws_endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(aws_sdk_secretsmanager::Client::from_conf(builder.build()))
}

/// The configuration of the environment `lookup`, with the secrets it names read from
/// Secrets Manager (none named: no client is made, no call is sent).
pub async fn load_config(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let bootstrap = Bootstrap::from_lookup(&lookup)?;
    let fetched = if bootstrap.secrets.is_empty() {
        Default::default()
    } else {
        let client = secretsmanager_client(
            bootstrap.stage,
            bootstrap.aws_endpoint.as_deref(),
            bootstrap.local_ca_file.as_deref(),
        )
        .await?;
        crate::wiring::secrets::fetch(&client, &bootstrap.secrets).await?
    };
    Config::from_lookup(lookup, |name| fetched.get(name).cloned())
}

pub async fn dynamodb_client(config: &Config) -> Result<aws_sdk_dynamodb::Client, ConfigError> {
    let shared = sdk_config(config.stage, config.local_ca_file.as_deref()).await?;
    let mut builder = aws_sdk_dynamodb::config::Builder::from(&shared);
    if let Some(endpoint) = &config.aws_endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(aws_sdk_dynamodb::Client::from_conf(builder.build()))
}

/// The S3 client of the offline-card bucket; path-style on a local stack (moto).
pub async fn s3_client(config: &Config) -> Result<aws_sdk_s3::Client, ConfigError> {
    let shared = sdk_config(config.stage, config.local_ca_file.as_deref()).await?;
    let mut builder = aws_sdk_s3::config::Builder::from(&shared);
    if let Some(endpoint) = &config.aws_endpoint {
        builder = builder.endpoint_url(endpoint).force_path_style(true);
    }
    Ok(aws_sdk_s3::Client::from_conf(builder.build()))
}

impl Services {
    pub async fn from_env() -> Result<Self, ConfigError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Self::from_config(load_config(env).await?).await
    }

    pub async fn from_config(config: Config) -> Result<Self, ConfigError> {
        let client = dynamodb_client(&config).await?;
        Self::new(config, client)
    }

    /// The offline-card store, for the functions that handle cards.
    pub async fn blobs(&self) -> Result<BlobStore, ConfigError> {
        Ok(BlobStore::new(
            s3_client(&self.config).await?,
            self.config.offline_bucket()?,
        ))
    }

    /// The code signing keys (render, offline), as read at the cold start (`now`), then
    /// re-read every `KEY_REFRESH`.
    pub fn signing_keys(&self, now: DateTime<Utc>) -> Result<LiveKeys<KeyRing>, ConfigError> {
        let keys = self.config.signing_keys()?;
        LiveKeys::new(
            &self.config,
            SIGNING_KEYS_SECRET,
            KeyRing::from_json,
            keys,
            now,
        )
    }

    /// The public verification keys (scan, samples, the keys route), likewise: they hold no
    /// key that signs.
    pub fn public_keys(
        &self,
        now: DateTime<Utc>,
    ) -> Result<LiveKeys<VerificationKeys>, ConfigError> {
        let keys = self.config.public_keys()?;
        LiveKeys::new(
            &self.config,
            PUBLIC_KEYS_SECRET,
            VerificationKeys::from_json,
            keys,
            now,
        )
    }

    /// The store holds the data keys when the function was given them: the keys route and
    /// the cleanup touch no personal data and go without.
    pub fn new(config: Config, dynamodb: aws_sdk_dynamodb::Client) -> Result<Self, ConfigError> {
        let keys = if config.has_data_keys() {
            Some(config.keys()?)
        } else {
            None
        };
        let store = Store::new(dynamodb, config.table.clone(), keys)
            .with_result_retention(chrono::Duration::days(config.result_retention_days.into()));
        Ok(Self { config, store })
    }
}
