//! Configuration, read once per cold start from the environment the template sets.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::codes::keys::{KeyRing, KeyRingError};
use crate::crypto::{KeyError, Keys};
use crate::domain::testing::{DEFAULT_RESULT_RETENTION_DAYS, MAX_RESULT_RETENTION_DAYS};
use crate::face::alipay::AlipaySettings;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
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
    LocalCa(#[from] crate::outbound::TrustError),
    #[error("KINCODE_SIGNING_KEYS: {0}")]
    SigningKeys(#[from] KeyRingError),
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

#[derive(Debug, Clone)]
pub struct Config {
    pub stage: Stage,
    pub table: String,
    /// Endpoint of a local AWS stack (moto); `None` means the real AWS endpoints.
    pub aws_endpoint: Option<String>,
    /// A PEM file of the CA a local stack's TLS certificate is signed by, trusted beside
    /// Mozilla's roots (`outbound`); local stage only.
    pub local_ca_file: Option<String>,
    lookup_secret: Vec<u8>,
    data_key: Vec<u8>,
    face_verifier: Option<String>,
    alipay: Option<AlipaySettings>,
    signing_keys: Option<String>,
    offline_bucket: Option<String>,
    /// How long sample registrations and results are kept (days).
    pub result_retention_days: u32,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// `lookup` gives a variable's value; split out so the rules are testable without touching
    /// the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let require = |name: &'static str| lookup(name).ok_or(ConfigError::Missing(name));
        let secret = |name: &'static str| {
            B64.decode(require(name)?.trim())
                .map_err(|_| ConfigError::NotBase64(name))
        };
        // Unset means production: a forgotten variable must not loosen anything.
        let stage = match lookup("KINCODE_STAGE").as_deref() {
            None | Some("production") => Stage::Production,
            Some("local") => Stage::Local,
            Some(other) => return Err(ConfigError::UnknownStage(other.into())),
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
        let aws_endpoint = lookup("KINCODE_AWS_ENDPOINT");
        if stage == Stage::Production && aws_endpoint.is_some() {
            return Err(ConfigError::LocalEndpointInProduction);
        }
        let local_ca_file = lookup("KINCODE_LOCAL_CA_FILE");
        if stage == Stage::Production && local_ca_file.is_some() {
            return Err(ConfigError::LocalCaInProduction);
        }
        let config = Self {
            stage,
            table: require("KINCODE_TABLE")?,
            aws_endpoint,
            local_ca_file,
            lookup_secret: secret("KINCODE_LOOKUP_SECRET")?,
            data_key: secret("KINCODE_DATA_KEY")?,
            face_verifier: lookup("KINCODE_FACE_VERIFIER"),
            alipay: match lookup("KINCODE_FACE_VERIFIER").as_deref() {
                Some("alipay") => Some(AlipaySettings {
                    gateway: require("KINCODE_ALIPAY_GATEWAY")?,
                    app_id: require("KINCODE_ALIPAY_APP_ID")?,
                    app_private_key: require("KINCODE_ALIPAY_APP_PRIVATE_KEY")?,
                    alipay_public_key: require("KINCODE_ALIPAY_PUBLIC_KEY")?,
                    return_url: require("KINCODE_ALIPAY_RETURN_URL")?,
                }),
                _ => None,
            },
            signing_keys: lookup("KINCODE_SIGNING_KEYS"),
            offline_bucket: lookup("KINCODE_OFFLINE_BUCKET"),
            result_retention_days,
        };
        config.keys()?;
        Ok(config)
    }

    pub fn keys(&self) -> Result<Keys, KeyError> {
        Keys::new(&self.lookup_secret, &self.data_key)
    }

    /// The code signing and verification keys; only the functions that make or check codes
    /// ask, and they fail their cold start without them.
    pub fn signing_keys(&self) -> Result<KeyRing, ConfigError> {
        let text = self
            .signing_keys
            .as_deref()
            .ok_or(ConfigError::Missing("KINCODE_SIGNING_KEYS"))?;
        Ok(KeyRing::from_json(text)?)
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

    fn base<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut v = vec![
            ("KINCODE_TABLE", "kincode"),
            ("KINCODE_LOOKUP_SECRET", KEY),
            ("KINCODE_DATA_KEY", KEY),
        ];
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn production_is_the_default_and_refuses_the_simulator() {
        let config =
            Config::from_lookup(env(&base(&[("KINCODE_FACE_VERIFIER", "local-simulator")])))
                .unwrap();
        assert_eq!(config.stage, Stage::Production);
        assert!(matches!(
            config.face_verifier(),
            Err(ConfigError::SimulatorInProduction)
        ));
    }

    #[test]
    fn local_stage_allows_the_simulator_and_a_local_endpoint() {
        let config = Config::from_lookup(env(&base(&[
            ("KINCODE_STAGE", "local"),
            ("KINCODE_FACE_VERIFIER", "local-simulator"),
            ("KINCODE_AWS_ENDPOINT", "http://127.0.0.1:5000"),
        ])))
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
            ("KINCODE_ALIPAY_APP_PRIVATE_KEY", "MIIE…"),
            ("KINCODE_ALIPAY_PUBLIC_KEY", "MIIB…"),
            (
                "KINCODE_ALIPAY_RETURN_URL",
                "alipays://platformapi/startapp?appId=1",
            ),
        ])
    }

    #[test]
    fn production_takes_alipay_over_https_only_and_all_its_settings() {
        let config =
            Config::from_lookup(env(&alipay("https://openapi.alipay.com/gateway.do"))).unwrap();
        let Ok(FaceVerifierKind::Alipay(settings)) = config.face_verifier() else {
            panic!("alipay")
        };
        assert_eq!(settings.app_id, "2021000000000001");
        assert!(
            !format!("{settings:?}").contains("MIIE"),
            "keys stay out of Debug"
        );
        let plain = Config::from_lookup(env(&alipay("http://127.0.0.1:9/gateway.do"))).unwrap();
        assert!(matches!(
            plain.face_verifier(),
            Err(ConfigError::InsecureAlipayGateway)
        ));
        let mut missing = alipay("https://openapi.alipay.com/gateway.do");
        missing.retain(|(k, _)| *k != "KINCODE_ALIPAY_PUBLIC_KEY");
        assert!(matches!(
            Config::from_lookup(env(&missing)),
            Err(ConfigError::Missing("KINCODE_ALIPAY_PUBLIC_KEY"))
        ));
        // The local stage may use a plain-HTTP stand-in.
        let mut local = alipay("http://127.0.0.1:9/gateway.do");
        local.push(("KINCODE_STAGE", "local"));
        assert!(matches!(
            Config::from_lookup(env(&local)).unwrap().face_verifier(),
            Ok(FaceVerifierKind::Alipay(_))
        ));
    }

    #[test]
    fn production_refuses_a_local_endpoint() {
        let err = Config::from_lookup(env(&base(&[(
            "KINCODE_AWS_ENDPOINT",
            "http://127.0.0.1:1",
        )])));
        assert!(matches!(err, Err(ConfigError::LocalEndpointInProduction)));
    }

    #[test]
    fn only_the_local_stage_trusts_a_local_ca() {
        let ca = ("KINCODE_LOCAL_CA_FILE", "/tmp/ca.pem");
        assert!(matches!(
            Config::from_lookup(env(&base(&[ca]))),
            Err(ConfigError::LocalCaInProduction)
        ));
        let local = Config::from_lookup(env(&base(&[ca, ("KINCODE_STAGE", "local")]))).unwrap();
        assert_eq!(local.local_ca_file.as_deref(), Some("/tmp/ca.pem"));
    }

    #[test]
    fn result_retention_defaults_and_is_bounded() {
        let default = Config::from_lookup(env(&base(&[]))).unwrap();
        assert_eq!(default.result_retention_days, DEFAULT_RESULT_RETENTION_DAYS);
        let set = base(&[("KINCODE_RESULT_RETENTION_DAYS", "30")]);
        assert_eq!(
            Config::from_lookup(env(&set))
                .unwrap()
                .result_retention_days,
            30
        );
        for bad in ["0", "366", "two weeks", "-1"] {
            let vars = base(&[("KINCODE_RESULT_RETENTION_DAYS", bad)]);
            assert!(matches!(
                Config::from_lookup(env(&vars)),
                Err(ConfigError::ResultRetention(_))
            ));
        }
    }

    #[test]
    fn missing_or_bad_keys_fail_at_start() {
        assert!(matches!(
            Config::from_lookup(env(&[("KINCODE_TABLE", "t")])),
            Err(ConfigError::Missing("KINCODE_LOOKUP_SECRET"))
        ));
        let short = base(&[("KINCODE_DATA_KEY", "AAAA")]);
        assert!(matches!(
            Config::from_lookup(env(&short)),
            Err(ConfigError::Key(_))
        ));
        let junk = base(&[("KINCODE_LOOKUP_SECRET", "%%%")]);
        assert!(matches!(
            Config::from_lookup(env(&junk)),
            Err(ConfigError::NotBase64(_))
        ));
    }
}
