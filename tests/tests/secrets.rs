//! Key custody: which function can read which secret (IAM in `template.yaml`, kept equal to
//! the README's table), no secret value in the template, the cold-start path through Secrets
//! Manager on the local stack, and a key rotation end to end.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Duration, Utc};
use kincode_common::cleanup;
use kincode_common::codes::keys::VerificationKeys;
use kincode_common::codes::{publish, show, token};
use kincode_common::config::{
    ConfigError, DATA_KEYS_SECRET, PUBLIC_KEYS_SECRET, SIGNING_KEYS_SECRET,
};
use kincode_common::domain::binding::{BindingId, GuardianId};
use kincode_common::domain::code::{CodeClaims, CodeKind};
use kincode_common::domain::health::HealthColour;
use kincode_common::services::{load_config, Services};
use kincode_common::store::{ActionContext, CleanupBudget};
use kincode_localdev::local::secrets_client;
use kincode_localdev::provision::put_secret;
use kincode_localdev::rotate::rotate_keys;
use kincode_tests::*;

/// The variable each secret parameter's name is given in.
const VARIABLES: [(&str, &str); 4] = [
    ("DataKeysSecretName", DATA_KEYS_SECRET),
    ("SigningKeysSecretName", SIGNING_KEYS_SECRET),
    ("PublicKeysSecretName", PUBLIC_KEYS_SECRET),
    ("AlipayKeysSecretName", "KINCODE_ALIPAY_KEYS_SECRET"),
];

/// Function → the secrets (by default name) its role may read, from its policies; each grant
/// is `secretsmanager:GetSecretValue` on exactly one secret's ARN.
fn granted_secrets(template: &Template) -> BTreeMap<String, BTreeSet<String>> {
    let mut granted = BTreeMap::new();
    for (function, _) in template.functions() {
        let mut secrets = BTreeSet::new();
        for policy in template.resource(&function)["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
        {
            for statement in policy["Statement"].as_sequence().unwrap() {
                let actions: Vec<&str> = statement["Action"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap())
                    .collect();
                if !actions.iter().any(|a| a.starts_with("secretsmanager:")) {
                    continue;
                }
                assert_eq!(actions, ["secretsmanager:GetSecretValue"], "{function}");
                // `!Sub "arn:…:secret:${Parameter}-??????"` reads as its template string.
                let resource = statement["Resource"].as_str().unwrap();
                let parameter = resource
                    .strip_prefix(
                        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${",
                    )
                    .and_then(|r| r.strip_suffix("}-??????"))
                    .unwrap_or_else(|| panic!("{function}: {resource} is not one secret's ARN"));
                secrets.insert(template.parameter_default(parameter).unwrap());
            }
        }
        granted.insert(function, secrets);
    }
    granted
}

/// The README's secrets table: function → the secrets marked `read`.
fn readme_table() -> BTreeMap<String, BTreeSet<String>> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let mut lines = readme
        .lines()
        .skip_while(|l| !l.starts_with("| function | `kincode/data-keys`"));
    let header: Vec<String> = lines
        .next()
        .expect("README has the secrets table")
        .split('|')
        .map(|c| c.trim().trim_matches('`').to_owned())
        .collect();
    lines
        .skip(1)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let function = cells[1].split('`').nth(1).unwrap().to_owned();
            let read = cells
                .iter()
                .enumerate()
                .filter(|(_, c)| **c == "read")
                .map(|(i, _)| header[i].clone())
                .collect();
            (function, read)
        })
        .collect()
}

#[test]
fn the_readme_secrets_table_is_what_iam_grants_and_each_function_names_only_those() {
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    let granted = granted_secrets(&template);
    assert_eq!(readme_table(), granted, "README's secrets table");
    for (function, secrets) in &granted {
        let env = template.function_environment(function);
        for (parameter, variable) in VARIABLES {
            let name = template.parameter_default(parameter).unwrap();
            assert_eq!(
                env.get(variable),
                secrets.contains(&name).then_some(&name),
                "{function} names {variable} exactly when it may read it"
            );
        }
    }
    // The split the review asked for: nothing that only checks codes can sign one.
    let holders = |secret: &str| -> BTreeSet<&str> {
        granted
            .iter()
            .filter(|(_, s)| s.contains(secret))
            .map(|(f, _)| f.as_str())
            .collect()
    };
    assert_eq!(
        holders("kincode/signing-keys"),
        BTreeSet::from(["OfflineFunction", "RenderFunction"])
    );
    assert_eq!(
        holders("kincode/public-keys"),
        BTreeSet::from(["KeysFunction", "SamplesFunction", "ScanFunction"])
    );
    assert_eq!(
        holders("kincode/alipay-keys"),
        BTreeSet::from(["VerifyFunction"])
    );
    assert!(!holders("kincode/data-keys").contains("KeysFunction"));
    assert!(!holders("kincode/data-keys").contains("CleanupFunction"));
}

#[test]
fn no_secret_value_is_in_the_template() {
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    assert!(
        !text.contains("resolve:secretsmanager") && !text.contains("resolve:ssm-secure"),
        "no dynamic reference resolves a secret into the template"
    );
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    let names: BTreeSet<&str> = VARIABLES.iter().map(|(_, v)| *v).collect();
    for (function, _) in template.functions() {
        for (variable, _) in template.function_environment(&function) {
            assert!(
                !variable.contains("KEY") || names.contains(variable.as_str()),
                "{function}: {variable} looks like key material"
            );
        }
    }
}

/// Writes the local stack's secrets under a fresh prefix; returns the environment of a
/// function naming `which` of them.
async fn provisioned(which: &[&str]) -> (HashMap<String, String>, VerificationKeys) {
    let prefix = format!("secrets-test-{}", uuid::Uuid::new_v4().simple());
    let client = secrets_client(&local_endpoint()).await;
    let keys = kincode_localdev::local::DevKeys::random();
    let mut env = HashMap::from([
        ("KINCODE_STAGE".to_owned(), "local".to_owned()),
        ("KINCODE_TABLE".to_owned(), format!("{prefix}-table")),
        ("KINCODE_AWS_ENDPOINT".to_owned(), local_endpoint()),
    ]);
    for (parameter, variable) in VARIABLES {
        let Some(value) = keys.secret_for(parameter) else {
            continue;
        };
        let name = format!("{prefix}/{parameter}");
        put_secret(&client, &name, &value).await.unwrap();
        if which.contains(&variable) {
            env.insert(variable.to_owned(), name);
        }
    }
    let public = VerificationKeys::from_json(&keys.public_keys_config()).unwrap();
    (env, public)
}

#[tokio::test]
async fn a_cold_start_fetches_exactly_the_named_secrets_from_the_local_stack() {
    let (env, public) = provisioned(&[DATA_KEYS_SECRET, PUBLIC_KEYS_SECRET]).await;
    let config = load_config(|k| env.get(k).cloned()).await.unwrap();
    assert!(config.keys().is_ok());
    let now = Utc::now();
    let fetched = config.public_keys().unwrap();
    assert_eq!(
        fetched.verifier(b"local-1", now).unwrap().public_key(),
        public.verifier(b"local-1", now).unwrap().public_key()
    );
    assert!(matches!(
        config.signing_keys(),
        Err(ConfigError::Missing(SIGNING_KEYS_SECRET))
    ));

    // A name that is not in Secrets Manager stops the cold start, naming it.
    let mut missing = env.clone();
    missing.insert(SIGNING_KEYS_SECRET.into(), "no/such/secret".into());
    let err = load_config(|k| missing.get(k).cloned()).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "KINCODE_SIGNING_KEYS_SECRET names the secret `no/such/secret`, which could not be read"
    );
    // Production refuses a value in the environment outright.
    let mut plaintext = env;
    plaintext.remove("KINCODE_STAGE");
    plaintext.remove("KINCODE_AWS_ENDPOINT");
    plaintext.insert("KINCODE_LOOKUP_SECRET".into(), "c2VjcmV0".into());
    assert!(matches!(
        load_config(|k| plaintext.get(k).cloned()).await,
        Err(ConfigError::SecretInEnvironment("KINCODE_LOOKUP_SECRET"))
    ));
}

#[tokio::test]
async fn the_keys_route_and_the_cleanup_work_without_the_data_keys() {
    let (env, public) = provisioned(&[PUBLIC_KEYS_SECRET]).await;
    let full = fresh_services().await;
    let mut env = env;
    env.insert("KINCODE_TABLE".into(), full.config.table.clone());
    env.insert(
        "KINCODE_OFFLINE_BUCKET".into(),
        full.config.offline_bucket().unwrap().to_owned(),
    );
    let config = load_config(|k| env.get(k).cloned()).await.unwrap();
    assert!(!config.has_data_keys());
    let services = Services::from_config(config).await.unwrap();
    let now = Utc::now();
    let published = publish::published_keys(&services.store, &public, now)
        .await
        .unwrap();
    assert_eq!(published.document["keys"][0]["kid"], "local-1");
    let blobs = fresh_bucket(&full).await;
    let budget = CleanupBudget {
        max_items: 100,
        max_duration: std::time::Duration::from_secs(30),
    };
    let context = ActionContext {
        request_id: "secrets",
        at: now,
    };
    cleanup::run(&services.store, &blobs, budget, context)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_rotation_signs_with_the_new_key_and_retires_the_old_one() {
    let client = secrets_client(&local_endpoint()).await;
    let prefix = format!("rotation-{}", uuid::Uuid::new_v4().simple());
    let (signing, public) = (format!("{prefix}/signing"), format!("{prefix}/public"));
    let env = |extra: &[(&str, &str)]| -> HashMap<String, String> {
        let mut env = HashMap::from([
            ("KINCODE_STAGE".to_owned(), "local".to_owned()),
            ("KINCODE_TABLE".to_owned(), "unused".to_owned()),
            ("KINCODE_AWS_ENDPOINT".to_owned(), local_endpoint()),
            (SIGNING_KEYS_SECRET.to_owned(), signing.clone()),
            (PUBLIC_KEYS_SECRET.to_owned(), public.clone()),
        ]);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    };
    // What a cold start after the rotation holds: the signer, and the verifiers' keys.
    let cold_start = || async {
        let env = env(&[]);
        let config = load_config(|k| env.get(k).cloned()).await.unwrap();
        (
            config.signing_keys().unwrap(),
            config.public_keys().unwrap(),
        )
    };
    let t0 = Utc::now() - Duration::days(10);
    // The first rotation makes the first key.
    rotate_keys(&client, &signing, &public, "k-old", t0)
        .await
        .unwrap();
    let (old_ring, _) = cold_start().await;
    let issue = |kind, at| CodeClaims::issue(BindingId::random(), kind, HealthColour::Green, at);
    let offline = issue(CodeKind::KinOffline, t0 + Duration::days(1));
    let old_card = token::encode(&offline, old_ring.signer());

    let rotated_at = t0 + Duration::days(2);
    let rotated = rotate_keys(&client, &signing, &public, "k-new", rotated_at)
        .await
        .unwrap();
    assert_eq!(rotated.published, ["k-old", "k-new"]);
    let (new_ring, verifiers) = cold_start().await;
    // A new key signs, and its codes verify.
    assert_eq!(new_ring.signer().kid(), "k-new");
    let fresh = issue(CodeKind::KinOnline, rotated_at + Duration::hours(1));
    let at = fresh.issued_at;
    assert_eq!(
        token::decode(&token::encode(&fresh, new_ring.signer()), &verifiers, at),
        Ok(fresh)
    );
    // The old key's card verifies until it expires, and no longer.
    let last_second = offline.expires_at - Duration::seconds(1);
    assert_eq!(
        token::decode(&old_card, &verifiers, last_second),
        Ok(offline.clone())
    );
    assert_eq!(
        token::decode(&old_card, &verifiers, offline.expires_at),
        Err(token::TokenError::Expired)
    );
    // A code the old key signed after its retirement is refused.
    let late = issue(CodeKind::KinOnline, rotated_at + Duration::minutes(1));
    assert_eq!(
        token::decode(
            &token::encode(&late, old_ring.signer()),
            &verifiers,
            late.issued_at
        ),
        Err(token::TokenError::IssuedAfterKeyRetired)
    );
    // The published keys carry the retirement; the signing secret holds the new seed only.
    let jwks = verifiers.jwks(rotated_at);
    assert_eq!(jwks["keys"][0]["kid"], "k-old");
    assert!(jwks["keys"][0]["kincode_retired_at"].is_string());
    assert!(new_ring.verifier(b"k-old", rotated_at).is_none());

    // Once every code of the old key has expired, the next rotation drops it.
    let later = rotated_at + Duration::days(7);
    let again = rotate_keys(&client, &signing, &public, "k-next", later)
        .await
        .unwrap();
    assert_eq!(again.published, ["k-new", "k-next"]);

    // The card route signs with whatever the signing secret holds at cold start.
    let services = fresh_services().await;
    let (ring, _) = cold_start().await;
    let guardian = GuardianId::parse("user-rotation").unwrap();
    let now = Utc::now();
    let binding = active_relative(&services, guardian.as_str(), now).await;
    let code = show::online_code(&services.store, &ring, &guardian, &binding.id, now)
        .await
        .unwrap();
    let (_, verifiers) = cold_start().await;
    assert!(token::decode(&code.token, &verifiers, now).is_ok());
}
