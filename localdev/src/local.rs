//! What a function gets when it runs locally instead of in the cloud.

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::template::Template;

/// Development keys, kept in a file so tokens and stored data survive restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevKeys {
    pub lookup_secret: String,
    pub data_key: String,
    pub jwt_secret: String,
}

fn random_secret() -> String {
    // Two v4 UUIDs: 32 bytes from the OS's random source (less the version bits).
    let mut bytes = uuid::Uuid::new_v4().as_bytes().to_vec();
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    B64.encode(bytes)
}

impl DevKeys {
    pub fn random() -> Self {
        Self {
            lookup_secret: random_secret(),
            data_key: random_secret(),
            jwt_secret: random_secret(),
        }
    }

    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        if let Ok(text) = std::fs::read_to_string(path) {
            return serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()));
        }
        let keys = Self::random();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&keys).expect("JSON"))
            .map_err(|e| e.to_string())?;
        Ok(keys)
    }
}

/// Overrides in `sam local --env-vars` format: `{"Parameters": {..}, "<Function>": {..}}`.
pub fn overrides(path: Option<&Path>) -> Result<Value, String> {
    match path {
        None => Ok(json!({})),
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
        }
    }
}

/// The local AWS stack and keys the functions are pointed at.
#[derive(Debug, Clone)]
pub struct LocalStack {
    pub endpoint: String,
    pub keys: DevKeys,
    /// Template logical id → the local resource standing in for it (`Table` → a table name).
    pub resources: HashMap<String, String>,
}

impl LocalStack {
    /// The template's environment for `function`, with the local stack, its resources, the dev
    /// keys and the local stage in place of what the cloud would resolve, then `extra` overrides.
    pub fn function_env(
        &self,
        template: &Template,
        function: &str,
        extra: &Value,
    ) -> HashMap<String, String> {
        let mut env = template.function_environment(function);
        // `!Ref Table` reads as `Table`: point references at the local stand-ins.
        for value in env.values_mut() {
            if let Some(local) = self.resources.get(value.as_str()) {
                *value = local.clone();
            }
        }
        env.extend([
            ("KINCODE_STAGE".to_owned(), "local".to_owned()),
            ("KINCODE_AWS_ENDPOINT".to_owned(), self.endpoint.clone()),
            (
                "KINCODE_LOOKUP_SECRET".to_owned(),
                self.keys.lookup_secret.clone(),
            ),
            ("KINCODE_DATA_KEY".to_owned(), self.keys.data_key.clone()),
            (
                "KINCODE_FACE_VERIFIER".to_owned(),
                "local-simulator".to_owned(),
            ),
        ]);
        for name in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_REGION",
            "RUST_LOG",
        ] {
            if let Ok(value) = std::env::var(name) {
                env.insert(name.to_owned(), value);
            }
        }
        env.entry("AWS_REGION".to_owned())
            .or_insert_with(|| "us-east-1".to_owned());
        for section in ["Parameters", function] {
            for (k, v) in extra[section].as_object().into_iter().flatten() {
                env.insert(
                    k.clone(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                );
            }
        }
        env
    }
}
