//! Key custody: which function can read which secret (IAM in `template.yaml`, kept equal to
//! the README's table), no secret value in the template, the cold-start path through Secrets
//! Manager on the local stack, and a key rotation end to end.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Duration, Utc};
use kincode_common::codes::keys::{VerificationKeys, ACTIVATION_DELAY, KEY_REFRESH};
use kincode_common::codes::token;
use kincode_common::domain::binding::{BindingId, GuardianId};
use kincode_common::domain::code::{CodeClaims, CodeKind};
use kincode_common::domain::colour::HealthColour;
use kincode_common::store::{ActionContext, CleanupBudget};
use kincode_common::usecases::cleanup;
use kincode_common::usecases::codes::{publish, show};
use kincode_common::wiring::config::{
    ConfigError, DATA_KEYS_SECRET, PUBLIC_KEYS_SECRET, SIGNING_KEYS_SECRET,
};
use kincode_common::wiring::services::{load_config, Services};
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
    let first = rotate_keys(&client, &signing, &public, "k-old", t0, ACTIVATION_DELAY)
        .await
        .unwrap();
    // Nothing signed before the first key: it signs at once.
    assert_eq!(first.active_from, t0);
    let (old_ring, _) = cold_start().await;
    let issue = |kind, at| CodeClaims::issue(BindingId::random(), kind, HealthColour::Green, at);
    let offline = issue(CodeKind::KinOffline, t0 + Duration::days(1));
    let old_card = token::encode(&offline, old_ring.signer(offline.issued_at));

    let rotated_at = t0 + Duration::days(2);
    let rotated = rotate_keys(
        &client,
        &signing,
        &public,
        "k-new",
        rotated_at,
        ACTIVATION_DELAY,
    )
    .await
    .unwrap();
    assert_eq!(rotated.published, ["k-old", "k-new"]);
    let switch = rotated.active_from;
    assert!(switch > rotated_at + KEY_REFRESH);
    // A second rotation before the switch is refused, and changes nothing.
    let early = rotate_keys(
        &client,
        &signing,
        &public,
        "k-x",
        rotated_at,
        ACTIVATION_DELAY,
    )
    .await
    .unwrap_err();
    assert!(early.contains("k-new"), "{early}");
    let (new_ring, verifiers) = cold_start().await;
    // The old key signs until the switch, the new one from then on, and their codes verify.
    assert_eq!(
        new_ring.signer(switch - Duration::seconds(1)).kid(),
        "k-old"
    );
    assert_eq!(new_ring.signer(switch).kid(), "k-new");
    let fresh = issue(CodeKind::KinOnline, rotated_at + Duration::hours(1));
    let at = fresh.issued_at;
    assert_eq!(
        token::decode(&token::encode(&fresh, new_ring.signer(at)), &verifiers, at),
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
    // A code the old key signed after its retirement (the switch) is refused.
    let late = issue(CodeKind::KinOnline, switch + Duration::seconds(1));
    assert_eq!(
        token::decode(
            &token::encode(&late, old_ring.signer(late.issued_at)),
            &verifiers,
            late.issued_at
        ),
        Err(token::TokenError::IssuedAfterKeyRetired)
    );
    // The published keys carry the retirement at the switch.
    let jwks = verifiers.jwks(rotated_at);
    assert_eq!(jwks["keys"][0]["kid"], "k-old");
    assert_eq!(
        jwks["keys"][0]["kincode_retired_at"],
        switch.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );

    // Once every code of the old key has expired, the next rotation drops it, from both
    // secrets.
    let later = switch + Duration::days(7);
    let again = rotate_keys(
        &client,
        &signing,
        &public,
        "k-next",
        later,
        ACTIVATION_DELAY,
    )
    .await
    .unwrap();
    assert_eq!(again.published, ["k-new", "k-next"]);
    let (ring, _) = cold_start().await;
    assert!(ring.verifier(b"k-old", rotated_at).is_none());
    assert_eq!(ring.signer(later).kid(), "k-new");

    // The card route signs with whatever the signing secret holds at cold start.
    let services = fresh_services().await;
    let (ring, _) = cold_start().await;
    let guardian = GuardianId::parse("user-rotation").unwrap();
    let now = Utc::now();
    let binding = active_relative(&services, guardian.as_str(), now).await;
    let code = show::online_code(
        &services.store,
        &ring,
        &guardian,
        &binding.id,
        request_at(now),
    )
    .await
    .unwrap();
    let (_, verifiers) = cold_start().await;
    assert!(token::decode(&code.token, &verifiers, now).is_ok());
}

/// A warm instance's services: the environment naming `secret` (as the template gives a
/// signer or a verifier), loaded at its cold start.
async fn warm_instance(secret: (&str, &str)) -> Services {
    let env = HashMap::from([
        ("KINCODE_STAGE".to_owned(), "local".to_owned()),
        ("KINCODE_TABLE".to_owned(), "unused".to_owned()),
        ("KINCODE_AWS_ENDPOINT".to_owned(), local_endpoint()),
        (secret.0.to_owned(), secret.1.to_owned()),
    ]);
    let config = load_config(|k| env.get(k).cloned()).await.unwrap();
    Services::from_config(config).await.unwrap()
}

#[tokio::test]
async fn warm_instances_follow_a_rotation_and_no_code_is_refused_across_the_switch() {
    let client = secrets_client(&local_endpoint()).await;
    let prefix = format!("warm-rotation-{}", uuid::Uuid::new_v4().simple());
    let (signing, public) = (format!("{prefix}/signing"), format!("{prefix}/public"));
    let t0 = Utc::now() - Duration::days(30);
    rotate_keys(&client, &signing, &public, "k-old", t0, ACTIVATION_DELAY)
        .await
        .unwrap();

    // A render instance and a scan instance, started before the rotation and kept warm.
    let started = t0 + Duration::days(1);
    let render = warm_instance((SIGNING_KEYS_SECRET, &signing)).await;
    let scan = warm_instance((PUBLIC_KEYS_SECRET, &public)).await;
    let signer = render.signing_keys(started).unwrap();
    let verifier = scan.public_keys(started).unwrap();
    // The verifier holds no signing key, and the signer no way to the public keys secret.
    assert!(scan.signing_keys(started).is_err());
    assert!(render.public_keys(started).is_err());
    let issue = |kind, at| CodeClaims::issue(BindingId::random(), kind, HealthColour::Green, at);
    let card = issue(CodeKind::KinOffline, started);
    let card_token = token::encode(&card, signer.current(started).await.signer(started));

    let rotated_at = started + Duration::minutes(2);
    let rotated = rotate_keys(
        &client,
        &signing,
        &public,
        "k-new",
        rotated_at,
        ACTIVATION_DELAY,
    )
    .await
    .unwrap();
    let switch = rotated.active_from;
    // What an instance started after the rotation verifies with.
    let cold = warm_instance((PUBLIC_KEYS_SECRET, &public))
        .await
        .config
        .public_keys()
        .unwrap();
    // Every minute from the rotation to well past the switch, and the seconds around it.
    let mut times: Vec<_> = (0..=40)
        .map(|minute| rotated_at + Duration::minutes(minute))
        .chain([switch - Duration::seconds(1), switch])
        .collect();
    times.sort();
    let mut kids = Vec::new();
    for at in times {
        let ring = signer.current(at).await;
        let key = ring.signer(at);
        if kids.last().map(String::as_str) != Some(key.kid()) {
            kids.push(key.kid().to_owned());
        }
        let claims = issue(CodeKind::KinOnline, at);
        let code = token::encode(&claims, key);
        // The warm verifier accepts it ...
        let keys = verifier.current(at).await;
        assert_eq!(
            token::decode(&code, &keys, at),
            Ok(claims.clone()),
            "{at}: signed by {}",
            key.kid()
        );
        // ... as does a verifier started after the rotation ...
        assert_eq!(
            token::decode(&code, &cold, at),
            Ok(claims.clone()),
            "{at}: cold"
        );
        // ... and a third party with the keys the route publishes then (its JWKS).
        let jwk = keys.jwks(at)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == key.kid())
            .unwrap_or_else(|| panic!("{at}: {} is not published", key.kid()))
            .clone();
        if let Some(retired_at) = jwk["kincode_retired_at"].as_str() {
            let retired_at: chrono::DateTime<Utc> = retired_at.parse().unwrap();
            assert!(claims.issued_at <= retired_at, "{at}: {jwk}");
        }
    }
    assert_eq!(
        kids,
        ["k-old", "k-new"],
        "the warm signer switched keys once"
    );
    // The switch is the activation delay on, to the whole second.
    let delay = switch - rotated_at;
    assert!(delay <= ACTIVATION_DELAY && delay > ACTIVATION_DELAY - Duration::seconds(1));

    // The old key's card, issued before the rotation, verifies until it expires.
    let last_second = card.expires_at - Duration::seconds(1);
    assert_eq!(
        token::decode(
            &card_token,
            &*verifier.current(last_second).await,
            last_second
        ),
        Ok(card.clone())
    );
    assert_eq!(
        token::decode(
            &card_token,
            &*verifier.current(card.expires_at).await,
            card.expires_at
        ),
        Err(token::TokenError::Expired)
    );
}
