//! Secrets Manager: the secrets a function's environment names, fetched at its cold start,
//! concurrently, and the code keys read again while it is warm ([`LiveKeys`]). Values are
//! never logged; an error names the secret, not its content.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use chrono::{DateTime, Utc};
use futures_util::future::try_join_all;

use crate::codes::keys::KeyRingError;
use crate::codes::refresh::Refreshing;
use crate::wiring::config::{Config, ConfigError, Stage};
use crate::wiring::services::secretsmanager_client;

/// Each named secret's `SecretString`, by name. A secret that does not exist is refused
/// with the variable that named it.
pub async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    names: &[(&'static str, String)],
) -> Result<HashMap<String, String>, ConfigError> {
    let reads = names.iter().map(|(variable, name)| async move {
        Ok::<_, ConfigError>((name.clone(), fetch_one(client, variable, name).await?))
    });
    Ok(try_join_all(reads).await?.into_iter().collect())
}

/// The `SecretString` of the secret `name`, which `variable` named.
async fn fetch_one(
    client: &aws_sdk_secretsmanager::Client,
    variable: &'static str,
    name: &str,
) -> Result<String, ConfigError> {
    let answer = client
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .map_err(|e| {
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception())
            {
                ConfigError::MissingSecret {
                    variable,
                    name: name.to_owned(),
                }
            } else {
                ConfigError::SecretUnavailable {
                    name: name.to_owned(),
                    reason: DisplayErrorContext(&e).to_string(),
                }
            }
        })?;
    answer
        .secret_string
        .ok_or_else(|| ConfigError::MissingSecret {
            variable,
            name: name.to_owned(),
        })
}

/// The code keys of one secret, as a warm instance holds them: read at its cold start, read
/// again every [`crate::codes::keys::KEY_REFRESH`] ([`Refreshing`]). The client is made for
/// each re-read: nothing is added to the cold start, and a connection would not outlive the
/// minutes between reads anyway.
pub struct LiveKeys<T> {
    stage: Stage,
    aws_endpoint: Option<String>,
    local_ca_file: Option<String>,
    variable: &'static str,
    name: String,
    parse: fn(&str) -> Result<T, KeyRingError>,
    keys: Refreshing<T>,
}

impl<T> LiveKeys<T> {
    /// `keys`, read at `fetched_at` from the secret `config` names in `variable`; `parse`
    /// reads its later values.
    pub fn new(
        config: &Config,
        variable: &'static str,
        parse: fn(&str) -> Result<T, KeyRingError>,
        keys: T,
        fetched_at: DateTime<Utc>,
    ) -> Result<Self, ConfigError> {
        let name = config
            .secret_name(variable)
            .ok_or(ConfigError::Missing(variable))?
            .to_owned();
        Ok(Self {
            stage: config.stage,
            aws_endpoint: config.aws_endpoint.clone(),
            local_ca_file: config.local_ca_file.clone(),
            variable,
            name,
            parse,
            keys: Refreshing::new(keys, fetched_at),
        })
    }

    /// The keys to use at `now`.
    pub async fn current(&self, now: DateTime<Utc>) -> Arc<T> {
        self.keys
            .get(now, || async {
                let client = secretsmanager_client(
                    self.stage,
                    self.aws_endpoint.as_deref(),
                    self.local_ca_file.as_deref(),
                )
                .await?;
                let text = fetch_one(&client, self.variable, &self.name).await?;
                Ok::<_, ConfigError>((self.parse)(&text)?)
            })
            .await
    }
}
