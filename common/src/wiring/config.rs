//! Configuration, read once per cold start: settings and secret *names* from the environment
//! the template sets, secret values from Secrets Manager (`secrets`), each function fetching
//! only the secrets its environment names (and its role may read). The code keys are read again
//! while the function is warm (`secrets::LiveKeys`), by the names kept here.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::adapters::face::alipay::AlipaySettings;
use crate::codes::keys::{KeyRing, KeyRingError, VerificationKeys};
use crate::crypto::{KeyError, Keys};
use crate::domain::nucleic::{DEFAULT_RESULT_RETENTION_DAYS, MAX_RESULT_RETENTION_DAYS};

/// The secret holding `lookup_secret` and `data_key` (base64): every function that reads or
/// writes personal data.
pub const DATA_KEYS_SECRET: &str = "KINCODE_DATA_KEYS_SECRET";
/// The secret holding the code signing key ring: render and offline only.
pub const SIGNING_KEYS_SECRET: &str = "KINCODE_SIGNING_KEYS_SECRET";
/// The secret holding the public verification keys: the functions that check codes, and the
/// keys route that publishes them.
pub const PUBLIC_KEYS_SECRET: &str = "KINCODE_PUBLIC_KEYS_SECRET";
/// The secret holding the Alipay app's private key and Alipay's public key: verify only.
pub const ALIPAY_KEYS_SECRET: &str = "KINCODE_ALIPAY_KEYS_SECRET";

/// Variables that once carried secret values: refused, so a value never sits in a function's
/// configuration again.
const FORMER_SECRET_VARIABLES: [&str; 5] = [
    "KINCODE_LOOKUP_SECRET",
    "KINCODE_DATA_KEY",
    "KINCODE_SIGNING_KEYS",
    "KINCODE_ALIPAY_APP_PRIVATE_KEY",
    "KINCODE_ALIPAY_PUBLIC_KEY",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{variable} names the secret `{name}`, which could not be read")]
    MissingSecret {
        variable: &'static str,
        name: String,
    },
    #[error("reading the secret `{name}` from Secrets Manager failed: {reason}")]
    SecretUnavailable { name: String, reason: String },
    #[error("the secret named by {0} is not JSON of the expected shape")]
    SecretShape(&'static str),
    #[error("{0} must not be set: secrets come from Secrets Manager, never the environment")]
    SecretInEnvironment(&'static str),
    #[error("{0} is not valid base64")]
    NotBase64(&'static str),
    #[error("{0}")]
    Key(#[from] KeyError),
    #[error("KINCODE_STAGE must be `production` or `local`, not `{0}`")]
    UnknownStage(String),
    #[error("unknown face verifier `{0}`")]
    UnknownFaceVerifier(String),
    #[error("the local face simulator is refused in production")]
    SimulatorInProduction,
    #[error("KINCODE_ALIPAY_GATEWAY must be https in production")]
    InsecureAlipayGateway,
    #[error("KINCODE_AWS_ENDPOINT (a local AWS stack) is refused in production")]
    LocalEndpointInProduction,
    #[error("KINCODE_LOCAL_CA_FILE (a local stack's CA) is refused in production")]
    LocalCaInProduction,
    #[error("{0}")]
    LocalCa(#[from] crate::adapters::outbound::TrustError),
    #[error("code keys: {0}")]
    CodeKeys(#[from] KeyRingError),
    #[error("KINCODE_RESULT_RETENTION_DAYS must be a whole number of days from 1 to {MAX_RESULT_RETENTION_DAYS}, not `{0}`")]
    ResultRetention(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Production,
    /// A laptop or CI: local AWS stack, simulators allowed.
    Local,
}

#[derive(Debug, Clone)]
pub enum FaceVerifierKind {
    /// Named as what it is: it decides from what the client says. Never in production.
    LocalSimulator,
    /// Alipay's identity certification: the production provider.
    Alipay(AlipaySettings),
}

/// The data keys secret: `{"lookup_secret": "<base64>", "data_key": "<base64>"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataKeysDocument {
    lookup_secret: String,
    data_key: String,
}

/// The Alipay keys secret: `{"app_private_key": "…", "alipay_public_key": "…"}` (base64 DER
/// or PEM).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlipayKeysDocument {
    app_private_key: String,
    alipay_public_key: String,
}

/// A secret's text, shown by `Debug` as redacted and wiped when dropped.
#[derive(Clone)]
struct SecretText(Zeroizing<String>);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone)]
struct DataKeys {
    lookup_secret: Zeroizing<Vec<u8>>,
    data_key: Zeroizing<Vec<u8>>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub stage: Stage,
    pub table: String,
    /// Endpoint of a local AWS stack (moto); `None` means the real AWS endpoints.
    pub aws_endpoint: Option<String>,
    /// A PEM file of the CA a local stack's TLS certificate is signed by, trusted beside
    /// Mozilla's roots (`outbound`); local stage only.
    pub local_ca_file: Option<String>,
    data_keys: Option<DataKeys>,
    face_verifier: Option<String>,
    alipay: Option<AlipaySettings>,
    signing_keys: Option<SecretText>,
    public_keys: Option<String>,
    offline_bucket: Option<String>,
    /// How long sample registrations and results are kept (days).
    pub result_retention_days: u32,
    /// The secrets the environment names (names, not values), with the variable naming each:
    /// the code keys are read again by name while the function is warm.
    secret_names: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for DataKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKeys(<redacted>)")
    }
}

/// What a cold start reads before any secret: where AWS is, and which secrets to fetch.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub stage: Stage,
    /// Endpoint of a local AWS stack (moto); `None` means the real AWS endpoints.
    pub aws_endpoint: Option<String>,
    /// A local stack's CA (local stage only).
    pub local_ca_file: Option<String>,
    /// The secrets the environment names, with the variable naming each. The Alipay keys only
    /// with the Alipay verifier.
    pub secrets: Vec<(&'static str, String)>,
    face_verifier: Option<String>,
}

impl Bootstrap {
    pub fn from_lookup(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Unset means production: a forgotten variable must not loosen anything.
        let stage = match lookup("KINCODE_STAGE").as_deref() {
            None | Some("production") => Stage::Production,
            Some("local") => Stage::Local,
            Some(other) => return Err(ConfigError::UnknownStage(other.into())),
        };
        if let Some(variable) = FORMER_SECRET_VARIABLES
            .into_iter()
            .find(|v| lookup(v).is_some())
        {
            return Err(ConfigError::SecretInEnvironment(variable));
        }
        let aws_endpoint = lookup("KINCODE_AWS_ENDPOINT");
        if stage == Stage::Production && aws_endpoint.is_some() {
            return Err(ConfigError::LocalEndpointInProduction);
        }
        let local_ca_file = lookup("KINCODE_LOCAL_CA_FILE");
        if stage == Stage::Production && local_ca_file.is_some() {
            return Err(ConfigError::LocalCaInProduction);
        }
        let face_verifier = lookup("KINCODE_FACE_VERIFIER");
        let alipay = face_verifier.as_deref() == Some("alipay");
        let secrets = [DATA_KEYS_SECRET, SIGNING_KEYS_SECRET, PUBLIC_KEYS_SECRET]
            .into_iter()
            .chain(alipay.then_some(ALIPAY_KEYS_SECRET))
            .filter_map(|variable| Some((variable, lookup(variable)?)))
            .collect();
        Ok(Self {
            stage,
            aws_endpoint,
            local_ca_file,
            secrets,
            face_verifier,
        })
    }
}

impl Config {
    /// `lookup` gives a variable's value, `secret` a named secret's (already fetched); split
    /// out so the rules are testable without the process environment or Secrets Manager. A
    /// secret the environment names but `secret` does not have is refused.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
        secret: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let require = |name: &'static str| lookup(name).ok_or(ConfigError::Missing(name));
        let Bootstrap {
            stage,
            aws_endpoint,
            local_ca_file,
            face_verifier,
            secrets: secret_names,
        } = Bootstrap::from_lookup(&lookup)?;
        let named_secret =
            |variable: &'static str| -> Result<Option<Zeroizing<String>>, ConfigError> {
                let Some(name) = lookup(variable) else {
                    return Ok(None);
                };
                secret(&name)
                    .map(|value| Some(Zeroizing::new(value)))
                    .ok_or(ConfigError::MissingSecret { variable, name })
            };
        let result_retention_days = match lookup("KINCODE_RESULT_RETENTION_DAYS") {
            None => DEFAULT_RESULT_RETENTION_DAYS,
            Some(raw) => raw
                .trim()
                .parse()
                .ok()
                .filter(|days| (1..=MAX_RESULT_RETENTION_DAYS).contains(days))
                .ok_or(ConfigError::ResultRetention(raw))?,
        };
        let data_keys = match named_secret(DATA_KEYS_SECRET)? {
            None => None,
            Some(text) => {
                let document: DataKeysDocument = serde_json::from_str(&text)
                    .map_err(|_| ConfigError::SecretShape(DATA_KEYS_SECRET))?;
                let document = (
                    Zeroizing::new(document.lookup_secret),
                    Zeroizing::new(document.data_key),
                );
                let decode = |value: &str, what: &'static str| {
                    B64.decode(value.trim())
                        .map(Zeroizing::new)
                        .map_err(|_| ConfigError::NotBase64(what))
                };
                let keys = DataKeys {
                    lookup_secret: decode(&document.0, "lookup_secret")?,
                    data_key: decode(&document.1, "data_key")?,
                };
                Keys::new(&keys.lookup_secret, &keys.data_key)?;
                Some(keys)
            }
        };
        let alipay = match face_verifier.as_deref() {
            Some("alipay") => {
                let text = named_secret(ALIPAY_KEYS_SECRET)?
                    .ok_or(ConfigError::Missing(ALIPAY_KEYS_SECRET))?;
                let keys: AlipayKeysDocument = serde_json::from_str(&text)
                    .map_err(|_| ConfigError::SecretShape(ALIPAY_KEYS_SECRET))?;
                Some(AlipaySettings {
                    gateway: require("KINCODE_ALIPAY_GATEWAY")?,
                    app_id: require("KINCODE_ALIPAY_APP_ID")?,
                    app_private_key: keys.app_private_key,
                    alipay_public_key: keys.alipay_public_key,
                    return_url: require("KINCODE_ALIPAY_RETURN_URL")?,
                })
            }
            _ => None,
        };
        let config = Self {
            stage,
            table: require("KINCODE_TABLE")?,
            aws_endpoint,
            local_ca_file,
            data_keys,
            face_verifier,
            alipay,
            signing_keys: named_secret(SIGNING_KEYS_SECRET)?.map(SecretText),
            public_keys: named_secret(PUBLIC_KEYS_SECRET)?.map(|text| text.to_string()),
            offline_bucket: lookup("KINCODE_OFFLINE_BUCKET"),
            result_retention_days,
            secret_names,
        };
        // Malformed code keys fail the cold start, not the first request.
        if config.signing_keys.is_some() {
            config.signing_keys()?;
        }
        if config.public_keys.is_some() {
            config.public_keys()?;
        }
        Ok(config)
    }

    /// The keys for personal data; only the functions that read or write it are given them.
    pub fn keys(&self) -> Result<Keys, ConfigError> {
        let keys = self
            .data_keys
            .as_ref()
            .ok_or(ConfigError::Missing(DATA_KEYS_SECRET))?;
        Ok(Keys::new(&keys.lookup_secret, &keys.data_key)?)
    }

    /// Whether the data keys were given (functions that hold no personal data go without).
    pub fn has_data_keys(&self) -> bool {
        self.data_keys.is_some()
    }

    /// The code signing key ring; only the functions that make codes ask, and they fail their
    /// cold start without it.
    pub fn signing_keys(&self) -> Result<KeyRing, ConfigError> {
        let text = self
            .signing_keys
            .as_ref()
            .ok_or(ConfigError::Missing(SIGNING_KEYS_SECRET))?;
        Ok(KeyRing::from_json(&text.0)?)
    }

    /// The public verification keys; only the functions that check or publish codes ask.
    pub fn public_keys(&self) -> Result<VerificationKeys, ConfigError> {
        let text = self
            .public_keys
            .as_deref()
            .ok_or(ConfigError::Missing(PUBLIC_KEYS_SECRET))?;
        Ok(VerificationKeys::from_json(text)?)
    }

    /// The name of the secret `variable` names, if it does.
    pub fn secret_name(&self, variable: &str) -> Option<&str> {
        self.secret_names
            .iter()
            .find(|(v, _)| *v == variable)
            .map(|(_, name)| name.as_str())
    }

    /// The bucket of offline card images.
    pub fn offline_bucket(&self) -> Result<&str, ConfigError> {
        self.offline_bucket
            .as_deref()
            .ok_or(ConfigError::Missing("KINCODE_OFFLINE_BUCKET"))
    }

    /// Only the functions that verify faces ask; the others start without one.
    pub fn face_verifier(&self) -> Result<FaceVerifierKind, ConfigError> {
        match self.face_verifier.as_deref() {
            None => Err(ConfigError::Missing("KINCODE_FACE_VERIFIER")),
            Some("local-simulator") if self.stage == Stage::Production => {
                Err(ConfigError::SimulatorInProduction)
            }
            Some("local-simulator") => Ok(FaceVerifierKind::LocalSimulator),
            Some("alipay") => {
                let settings = self
                    .alipay
                    .clone()
                    .ok_or(ConfigError::Missing("KINCODE_ALIPAY_GATEWAY"))?;
                if self.stage == Stage::Production && !settings.gateway.starts_with("https://") {
                    return Err(ConfigError::InsecureAlipayGateway);
                }
                Ok(FaceVerifierKind::Alipay(settings))
            }
            Some(other) => Err(ConfigError::UnknownFaceVerifier(other.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

    fn data_keys(lookup_secret: &str, data_key: &str) -> String {
        serde_json::json!({"lookup_secret": lookup_secret, "data_key": data_key}).to_string()
    }

    /// The secrets of the store, by name.
    fn secrets(extra: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let mut map = HashMap::from([
            ("kincode/data-keys".to_owned(), data_keys(KEY, KEY)),
            (
                "kincode/alipay-keys".to_owned(),
                serde_json::json!({"app_private_key": "MIIE…", "alipay_public_key": "MIIB…"})
                    .to_string(),
            ),
        ]);
        map.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
        move |k| map.get(k).cloned()
    }

    fn base<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut v = vec![
            ("KINCODE_TABLE", "kincode"),
            (DATA_KEYS_SECRET, "kincode/data-keys"),
        ];
        v.extend_from_slice(extra);
        v
    }

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(env(vars), secrets(&[]))
    }

    #[test]
    fn production_is_the_default_and_refuses_the_simulator() {
        let config = config(&base(&[("KINCODE_FACE_VERIFIER", "local-simulator")])).unwrap();
        assert_eq!(config.stage, Stage::Production);
        assert!(matches!(
            config.face_verifier(),
            Err(ConfigError::SimulatorInProduction)
        ));
    }

    #[test]
    fn local_stage_allows_the_simulator_and_a_local_endpoint() {
        let config = config(&base(&[
            ("KINCODE_STAGE", "local"),
            ("KINCODE_FACE_VERIFIER", "local-simulator"),
            ("KINCODE_AWS_ENDPOINT", "http://127.0.0.1:5000"),
        ]))
        .unwrap();
        assert!(matches!(
            config.face_verifier().unwrap(),
            FaceVerifierKind::LocalSimulator
        ));
    }

    fn alipay(gateway: &'static str) -> Vec<(&'static str, &'static str)> {
        base(&[
            ("KINCODE_FACE_VERIFIER", "alipay"),
            ("KINCODE_ALIPAY_GATEWAY", gateway),
            ("KINCODE_ALIPAY_APP_ID", "2021000000000001"),
            (ALIPAY_KEYS_SECRET, "kincode/alipay-keys"),
            (
                "KINCODE_ALIPAY_RETURN_URL",
                "alipays://platformapi/startapp?appId=1",
            ),
        ])
    }

    #[test]
    fn production_takes_alipay_over_https_only_and_all_its_settings() {
        let config = config(&alipay("https://openapi.alipay.com/gateway.do")).unwrap();
        let Ok(FaceVerifierKind::Alipay(settings)) = config.face_verifier() else {
            panic!("alipay")
        };
        assert_eq!(settings.app_id, "2021000000000001");
        assert_eq!(settings.app_private_key, "MIIE…");
        assert!(
            !format!("{settings:?}").contains("MIIE"),
            "keys stay out of Debug"
        );
        let plain = super::tests::config(&alipay("http://127.0.0.1:9/gateway.do")).unwrap();
        assert!(matches!(
            plain.face_verifier(),
            Err(ConfigError::InsecureAlipayGateway)
        ));
        let mut missing = alipay("https://openapi.alipay.com/gateway.do");
        missing.retain(|(k, _)| *k != ALIPAY_KEYS_SECRET);
        assert!(matches!(
            super::tests::config(&missing),
            Err(ConfigError::Missing(ALIPAY_KEYS_SECRET))
        ));
        // The local stage may use a plain-HTTP stand-in.
        let mut local = alipay("http://127.0.0.1:9/gateway.do");
        local.push(("KINCODE_STAGE", "local"));
        assert!(matches!(
            super::tests::config(&local).unwrap().face_verifier(),
            Ok(FaceVerifierKind::Alipay(_))
        ));
    }

    #[test]
    fn production_refuses_a_local_endpoint() {
        let err = config(&base(&[("KINCODE_AWS_ENDPOINT", "http://127.0.0.1:1")]));
        assert!(matches!(err, Err(ConfigError::LocalEndpointInProduction)));
    }

    #[test]
    fn only_the_local_stage_trusts_a_local_ca() {
        let ca = ("KINCODE_LOCAL_CA_FILE", "/tmp/ca.pem");
        assert!(matches!(
            config(&base(&[ca])),
            Err(ConfigError::LocalCaInProduction)
        ));
        let local = config(&base(&[ca, ("KINCODE_STAGE", "local")])).unwrap();
        assert_eq!(local.local_ca_file.as_deref(), Some("/tmp/ca.pem"));
    }

    #[test]
    fn result_retention_defaults_and_is_bounded() {
        let default = config(&base(&[])).unwrap();
        assert_eq!(default.result_retention_days, DEFAULT_RESULT_RETENTION_DAYS);
        let set = base(&[("KINCODE_RESULT_RETENTION_DAYS", "30")]);
        assert_eq!(config(&set).unwrap().result_retention_days, 30);
        for bad in ["0", "366", "two weeks", "-1"] {
            let vars = base(&[("KINCODE_RESULT_RETENTION_DAYS", bad)]);
            assert!(matches!(
                config(&vars),
                Err(ConfigError::ResultRetention(_))
            ));
        }
    }

    #[test]
    fn bad_data_keys_fail_at_start() {
        let with = |text: String| {
            Config::from_lookup(env(&base(&[])), secrets(&[("kincode/data-keys", text)]))
        };
        assert!(matches!(
            with(data_keys(KEY, "AAAA")),
            Err(ConfigError::Key(_))
        ));
        assert!(matches!(
            with(data_keys("%%%", KEY)),
            Err(ConfigError::NotBase64("lookup_secret"))
        ));
        let shape = with(format!("{{\"lookup_secret\": \"{KEY}\"}}")).unwrap_err();
        assert!(matches!(shape, ConfigError::SecretShape(DATA_KEYS_SECRET)));
        assert!(!shape.to_string().contains(KEY), "{shape}");
    }

    #[test]
    fn a_named_secret_that_is_missing_is_refused_clearly() {
        let missing = Config::from_lookup(env(&base(&[])), |_| None).unwrap_err();
        assert!(matches!(
            &missing,
            ConfigError::MissingSecret { variable: DATA_KEYS_SECRET, name } if name == "kincode/data-keys"
        ));
        assert_eq!(
            missing.to_string(),
            "KINCODE_DATA_KEYS_SECRET names the secret `kincode/data-keys`, which could not be read"
        );
        let signing = base(&[(SIGNING_KEYS_SECRET, "kincode/signing-keys")]);
        assert!(matches!(
            config(&signing),
            Err(ConfigError::MissingSecret {
                variable: SIGNING_KEYS_SECRET,
                ..
            })
        ));
    }

    #[test]
    fn a_function_without_a_secret_is_refused_when_it_asks_for_it() {
        let bare = config(&[("KINCODE_TABLE", "t")]).unwrap();
        assert!(!bare.has_data_keys());
        assert!(matches!(
            bare.keys(),
            Err(ConfigError::Missing(DATA_KEYS_SECRET))
        ));
        assert!(matches!(
            bare.signing_keys(),
            Err(ConfigError::Missing(SIGNING_KEYS_SECRET))
        ));
        assert!(matches!(
            bare.public_keys(),
            Err(ConfigError::Missing(PUBLIC_KEYS_SECRET))
        ));
    }

    #[test]
    fn secret_values_in_the_environment_are_refused() {
        for variable in FORMER_SECRET_VARIABLES {
            assert!(
                matches!(
                    config(&base(&[(variable, KEY)])),
                    Err(ConfigError::SecretInEnvironment(v)) if v == variable
                ),
                "{variable}"
            );
        }
    }

    #[test]
    fn only_the_named_secrets_are_fetched_and_alipays_only_for_alipay() {
        let names = |vars: &[(&str, &str)]| Bootstrap::from_lookup(&env(vars)).unwrap().secrets;
        assert_eq!(
            names(&base(&[(PUBLIC_KEYS_SECRET, "kincode/public-keys")])),
            [
                (DATA_KEYS_SECRET, "kincode/data-keys".to_owned()),
                (PUBLIC_KEYS_SECRET, "kincode/public-keys".to_owned())
            ]
        );
        let mut simulator = alipay("https://openapi.alipay.com/gateway.do");
        simulator.push(("KINCODE_FACE_VERIFIER", "local-simulator"));
        assert_eq!(names(&simulator).len(), 1);
        assert_eq!(
            names(&alipay("https://openapi.alipay.com/gateway.do"))[1],
            (ALIPAY_KEYS_SECRET, "kincode/alipay-keys".to_owned())
        );
    }

    #[test]
    fn code_keys_come_from_their_secrets_and_stay_out_of_debug() {
        let ring = KeyRing::generate("k1");
        let seed_config = KeyRing::config_json("k1", &[3; 32]);
        let public = ring.verification_keys().to_json();
        let config = Config::from_lookup(
            env(&base(&[
                (SIGNING_KEYS_SECRET, "kincode/signing-keys"),
                (PUBLIC_KEYS_SECRET, "kincode/public-keys"),
            ])),
            secrets(&[
                ("kincode/signing-keys", seed_config.clone()),
                ("kincode/public-keys", public),
            ]),
        )
        .unwrap();
        assert_eq!(
            config
                .signing_keys()
                .unwrap()
                .signer(chrono::Utc::now())
                .kid(),
            "k1"
        );
        assert!(config
            .public_keys()
            .unwrap()
            .verifier(b"k1", chrono::Utc::now())
            .is_some());
        let shown = format!("{config:?}");
        assert!(
            !shown.contains(&seed_config) && !shown.contains(KEY),
            "{shown}"
        );
        // A seed in the public keys is refused: every verifier reads that secret.
        let leaked = Config::from_lookup(
            env(&base(&[(PUBLIC_KEYS_SECRET, "kincode/public-keys")])),
            secrets(&[(
                "kincode/public-keys",
                r#"{"keys":[{"kid":"k1","seed":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}]}"#
                    .to_owned(),
            )]),
        );
        assert!(matches!(
            leaked,
            Err(ConfigError::CodeKeys(KeyRingError::SeedInPublicKeys(_)))
        ));
    }
}
