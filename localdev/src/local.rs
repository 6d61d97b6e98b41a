//! What a function gets when it runs locally instead of in the cloud.

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use kincode_common::codes::keys::{KeyRing, KEY_LEN};
use kincode_common::wiring::config::Stage;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::provision::{ensure_buckets, ensure_table, put_secret};
use crate::template::Template;

/// The AWS client settings of the local tools: the functions' own (`services`), trusting the
/// local stack's CA when it speaks TLS (`KINCODE_LOCAL_CA_FILE`, set by with-local-stack.sh).
pub fn aws_config_loader() -> aws_config::ConfigLoader {
    let local_ca = std::env::var("KINCODE_LOCAL_CA_FILE").ok().map(|path| {
        kincode_common::adapters::outbound::pem_certificates(&path).expect("the local stack's CA")
    });
    kincode_common::wiring::services::aws_config_loader(
        Stage::Local,
        local_ca.as_deref().unwrap_or_default(),
    )
}

/// A Secrets Manager client of the local stack at `endpoint`.
pub async fn secrets_client(endpoint: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&aws_config_loader().endpoint_url(endpoint).load().await)
}

/// Key id of the local code signing key.
pub const SIGNING_KID: &str = "local-1";

/// Development keys, kept in a file so tokens, stored data and signed codes survive restarts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DevKeys {
    pub lookup_secret: String,
    pub data_key: String,
    pub jwt_secret: String,
    /// Seed of the Ed25519 key that signs codes (base64 in the file). A file written before
    /// it existed gets one generated.
    #[serde(with = "base64_seed", default = "random_bytes")]
    pub signing_seed: [u8; KEY_LEN],
}

/// `[u8; 32]` as base64 text; anything but 32 bytes is refused when the file is read.
mod base64_seed {
    use super::{Engine, B64, KEY_LEN};
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(seed: &[u8; KEY_LEN], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(seed))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; KEY_LEN], D::Error> {
        let text = String::deserialize(d)?;
        B64.decode(text)
            .map_err(D::Error::custom)?
            .try_into()
            .map_err(|_| D::Error::custom(format!("signing_seed must be {KEY_LEN} bytes")))
    }
}

fn random_bytes() -> [u8; KEY_LEN] {
    let mut bytes = [0; KEY_LEN];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source works");
    bytes
}

fn random_secret() -> String {
    B64.encode(random_bytes())
}

impl DevKeys {
    pub fn random() -> Self {
        Self {
            lookup_secret: random_secret(),
            data_key: random_secret(),
            jwt_secret: random_secret(),
            signing_seed: random_bytes(),
        }
    }

    /// Reads the keys file, or creates it. A file missing a newer key is saved back with the
    /// generated one, so the key stays the same on the next start.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        let in_file = |e: serde_json::Error| format!("{}: {e}", path.display());
        if let Ok(text) = std::fs::read_to_string(path) {
            let stored: Value = serde_json::from_str(&text).map_err(in_file)?;
            let keys: Self = serde_json::from_value(stored.clone()).map_err(in_file)?;
            let current = serde_json::to_value(&keys).map_err(in_file)?;
            let generated = current
                .as_object()
                .into_iter()
                .flatten()
                .any(|(name, _)| stored.get(name).is_none());
            if generated {
                keys.save(path)?;
            }
            return Ok(keys);
        }
        let keys = Self::random();
        keys.save(path)?;
        Ok(keys)
    }

    fn save(&self, path: &Path) -> Result<(), String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, serde_json::to_string_pretty(self).expect("JSON"))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The signing keys secret: a key ring whose only key comes from the signing seed.
    pub fn signing_keys_config(&self) -> String {
        KeyRing::config_json(SIGNING_KID, &self.signing_seed)
    }

    /// The public keys secret: the signing key's public half.
    pub fn public_keys_config(&self) -> String {
        KeyRing::from_json(&self.signing_keys_config())
            .expect("the dev signing keys parse")
            .verification_keys()
            .to_json()
    }

    /// The data keys secret.
    pub fn data_keys_config(&self) -> String {
        json!({"lookup_secret": self.lookup_secret, "data_key": self.data_key}).to_string()
    }

    /// The value of the secret the template parameter `parameter` names, where the dev keys
    /// have one (the Alipay keys come from the Alipay stand-in, when it runs).
    pub fn secret_for(&self, parameter: &str) -> Option<String> {
        match parameter {
            "DataKeysSecretName" => Some(self.data_keys_config()),
            "SigningKeysSecretName" => Some(self.signing_keys_config()),
            "PublicKeysSecretName" => Some(self.public_keys_config()),
            _ => None,
        }
    }
}

/// The name a template secret has on the local stack: `<prefix>/<its default name>`, so stacks
/// sharing one local AWS endpoint (a test each) never read each other's.
pub fn local_secret_name(prefix: &str, name: &str) -> String {
    format!("{prefix}/{name}")
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
    /// Provisions `table`, the template's buckets (what exists is kept) and its secrets (written
    /// from `keys`) on the local stack at `endpoint`, and points the functions at them.
    pub async fn provision(
        template: &Template,
        endpoint: &str,
        table: &str,
        keys: DevKeys,
    ) -> Result<Self, String> {
        let shared = aws_config_loader().endpoint_url(endpoint).load().await;
        if ensure_table(&aws_sdk_dynamodb::Client::new(&shared), template, table).await? {
            eprintln!("provisioned table {table}");
        }
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&shared)
                .force_path_style(true)
                .build(),
        );
        let mut resources = HashMap::from([("Table".to_owned(), table.to_owned())]);
        resources.extend(ensure_buckets(&s3, template, table).await?);
        let mut local = Self {
            endpoint: endpoint.to_owned(),
            keys,
            resources,
        };
        local.provision_secrets(template, table).await?;
        Ok(local)
    }

    /// Writes the dev keys into the template's secrets on the local stack, named after
    /// `prefix`, and points the functions' secret names at them.
    pub async fn provision_secrets(
        &mut self,
        template: &Template,
        prefix: &str,
    ) -> Result<(), String> {
        for parameter in template.secret_name_parameters() {
            if let Some(value) = self.keys.secret_for(&parameter) {
                self.put_secret(template, &parameter, prefix, &value)
                    .await?;
            }
        }
        Ok(())
    }

    /// Writes `value` into the secret the template parameter `parameter` names (on the local
    /// stack, under `prefix`), and points the functions' environment at it.
    pub async fn put_secret(
        &mut self,
        template: &Template,
        parameter: &str,
        prefix: &str,
        value: &str,
    ) -> Result<(), String> {
        let name = template
            .parameter_default(parameter)
            .ok_or_else(|| format!("template parameter {parameter} has no default"))?;
        let local_name = local_secret_name(prefix, &name);
        let client = secrets_client(&self.endpoint).await;
        put_secret(&client, &local_name, value).await?;
        self.resources.insert(name, local_name);
        Ok(())
    }
    /// The template's environment for `function`, with the local stack, its resources, the dev
    /// keys and the local stage in place of what the cloud would resolve, then `extra` overrides.
    pub fn function_env(
        &self,
        template: &Template,
        function: &str,
        extra: &Value,
    ) -> HashMap<String, String> {
        let mut env = template.function_environment(function);
        // `!Ref Table` reads as `Table`, a secret's name as its default: point references at
        // the local stand-ins. Only the names the template gives the function, as Lambda gives
        // a function only its configured environment; it fetches the values itself.
        for value in env.values_mut() {
            if let Some(local) = self.resources.get(value.as_str()) {
                *value = local.clone();
            }
        }
        env.extend([
            ("KINCODE_STAGE".to_owned(), "local".to_owned()),
            ("KINCODE_AWS_ENDPOINT".to_owned(), self.endpoint.clone()),
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
            // A local stack speaking TLS (with-local-stack.sh, LOCAL_STACK_TLS=1): its CA.
            "KINCODE_LOCAL_CA_FILE",
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn project_template() -> Template {
        Template::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml")).unwrap()
    }

    fn stack(keys: DevKeys) -> LocalStack {
        LocalStack {
            endpoint: "http://127.0.0.1:5000".into(),
            keys,
            resources: HashMap::from([
                ("Table".to_owned(), "local-table".to_owned()),
                (
                    "OfflineCodeBucket".to_owned(),
                    "local-offline-code-bucket".to_owned(),
                ),
                (
                    "kincode/signing-keys".to_owned(),
                    "local-table/kincode/signing-keys".to_owned(),
                ),
                (
                    "kincode/public-keys".to_owned(),
                    "local-table/kincode/public-keys".to_owned(),
                ),
                (
                    "kincode/data-keys".to_owned(),
                    "local-table/kincode/data-keys".to_owned(),
                ),
            ]),
        }
    }

    #[test]
    fn functions_get_local_resources_and_the_names_of_their_secrets_only() {
        let template = project_template();
        let local = stack(DevKeys::random());
        let offline = local.function_env(&template, "OfflineFunction", &json!({}));
        assert_eq!(
            offline["KINCODE_OFFLINE_BUCKET"],
            "local-offline-code-bucket"
        );
        assert_eq!(offline["KINCODE_TABLE"], "local-table");
        assert_eq!(
            offline["KINCODE_SIGNING_KEYS_SECRET"],
            "local-table/kincode/signing-keys"
        );
        assert!(!offline.contains_key("KINCODE_PUBLIC_KEYS_SECRET"));
        let scan = local.function_env(&template, "ScanFunction", &json!({}));
        assert_eq!(
            scan["KINCODE_PUBLIC_KEYS_SECRET"],
            "local-table/kincode/public-keys"
        );
        assert!(!scan.contains_key("KINCODE_SIGNING_KEYS_SECRET"));
        let keys = local.function_env(&template, "KeysFunction", &json!({}));
        assert!(!keys.contains_key("KINCODE_DATA_KEYS_SECRET"));
        let bind = local.function_env(&template, "BindFunction", &json!({}));
        assert_eq!(
            bind["KINCODE_DATA_KEYS_SECRET"],
            "local-table/kincode/data-keys"
        );
        assert!(!bind.contains_key("KINCODE_SIGNING_KEYS_SECRET"));
        assert!(!bind.contains_key("KINCODE_OFFLINE_BUCKET"));
        // No value of a secret is in any function's environment.
        let dev = &local.keys;
        for (function, _) in template.functions() {
            let env = local.function_env(&template, &function, &json!({}));
            for value in env.values() {
                for secret in [
                    &dev.lookup_secret,
                    &dev.data_key,
                    &B64.encode(dev.signing_seed),
                ] {
                    assert!(!value.contains(secret.as_str()), "{function}");
                }
            }
        }
    }

    #[test]
    fn the_dev_keys_fill_the_signing_public_and_data_secrets() {
        let keys = DevKeys::random();
        let ring = KeyRing::from_json(&keys.secret_for("SigningKeysSecretName").unwrap()).unwrap();
        let public = kincode_common::codes::keys::VerificationKeys::from_json(
            &keys.secret_for("PublicKeysSecretName").unwrap(),
        )
        .unwrap();
        let now = chrono::Utc::now();
        assert_eq!(
            public
                .verifier(SIGNING_KID.as_bytes(), now)
                .unwrap()
                .public_key(),
            ring.verifier(SIGNING_KID.as_bytes(), now)
                .unwrap()
                .public_key()
        );
        let data: Value =
            serde_json::from_str(&keys.secret_for("DataKeysSecretName").unwrap()).unwrap();
        assert_eq!(data["lookup_secret"], keys.lookup_secret);
        assert_eq!(keys.secret_for("AlipayKeysSecretName"), None);
    }

    #[test]
    fn an_old_keys_file_gets_a_signing_seed_that_sticks() {
        let dir = std::env::temp_dir().join(format!("kincode-keys-{}", uuid::Uuid::new_v4()));
        let path = dir.join("dev-keys.json");
        let old = json!({"lookup_secret": "bA==", "data_key": "ZA==", "jwt_secret": "ag=="});
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, old.to_string()).unwrap();

        let first = DevKeys::load_or_create(&path).unwrap();
        assert_eq!(first.jwt_secret, "ag==");
        let saved: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(saved["signing_seed"], B64.encode(first.signing_seed));
        let again = DevKeys::load_or_create(&path).unwrap();
        assert_eq!(again.signing_seed, first.signing_seed);

        let mut short = old;
        short["signing_seed"] = B64.encode(b"short").into();
        std::fs::write(&path, short.to_string()).unwrap();
        let refused = DevKeys::load_or_create(&path).unwrap_err();
        assert!(refused.contains("32 bytes"), "{refused}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
