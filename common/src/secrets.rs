//! Secrets Manager: the secrets a function's environment names, fetched once at its cold
//! start, concurrently. Values are never logged; an error names the secret, not its content.

use std::collections::HashMap;

use aws_sdk_secretsmanager::error::DisplayErrorContext;
use futures_util::future::try_join_all;

use crate::config::ConfigError;

/// Each named secret's `SecretString`, by name. A secret that does not exist is refused
/// with the variable that named it.
pub async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    names: &[(&'static str, String)],
) -> Result<HashMap<String, String>, ConfigError> {
    let reads = names.iter().map(|(variable, name)| async move {
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
                        name: name.clone(),
                    }
                } else {
                    ConfigError::SecretUnavailable {
                        name: name.clone(),
                        reason: DisplayErrorContext(&e).to_string(),
                    }
                }
            })?;
        let value = answer
            .secret_string
            .ok_or_else(|| ConfigError::MissingSecret {
                variable,
                name: name.clone(),
            })?;
        Ok::<_, ConfigError>((name.clone(), value))
    });
    Ok(try_join_all(reads).await?.into_iter().collect())
}
