//! `template.yaml` agrees with the code: the schema the store uses, the functions that exist,
//! the events that exercise them, and a production config that refuses simulators.

use std::collections::HashMap;

use kincode_common::wiring::config::{Config, ConfigError, FaceVerifierKind};
use kincode_localdev::local::{local_secret_name, DevKeys};
use kincode_tests::{repo_root, Template};

/// The secrets of a deployment, by the template's default names, made from `keys`.
fn secrets_by_name(template: &Template, prefix: Option<&str>) -> HashMap<String, String> {
    let keys = DevKeys::random();
    let alipay = serde_json::json!({"app_private_key": "MIIE…", "alipay_public_key": "MIIB…"});
    template
        .secret_name_parameters()
        .into_iter()
        .filter_map(|parameter| {
            let name = template.parameter_default(&parameter)?;
            let name = match prefix {
                Some(prefix) => local_secret_name(prefix, &name),
                None => name,
            };
            let value = keys
                .secret_for(&parameter)
                .unwrap_or_else(|| alipay.to_string());
            Some((name, value))
        })
        .collect()
}

/// A function's deployed environment, with the secrets it names fetched.
fn deployed_config(
    template: &Template,
    function: &str,
    overrides: &[(&str, &str)],
) -> Result<Config, ConfigError> {
    let mut env = template.function_environment(function);
    for (k, v) in overrides {
        env.insert((*k).into(), (*v).into());
    }
    let secrets = secrets_by_name(template, None);
    Config::from_lookup(|k| env.get(k).cloned(), |name| secrets.get(name).cloned())
}

#[test]
fn the_deployed_verify_function_uses_alipay_over_https_and_refuses_the_face_simulator() {
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    let config = deployed_config(&template, "VerifyFunction", &[]).expect("deployed config parses");
    let Ok(FaceVerifierKind::Alipay(settings)) = config.face_verifier() else {
        panic!("the deployed verify function uses Alipay")
    };
    assert_eq!(settings.gateway, "https://openapi.alipay.com/gateway.do");
    let plain = deployed_config(
        &template,
        "VerifyFunction",
        &[(
            "KINCODE_ALIPAY_GATEWAY",
            "http://openapi.alipay.com/gateway.do",
        )],
    )
    .unwrap();
    assert!(matches!(
        plain.face_verifier(),
        Err(ConfigError::InsecureAlipayGateway)
    ));
    let switched = deployed_config(
        &template,
        "VerifyFunction",
        &[("KINCODE_FACE_VERIFIER", "local-simulator")],
    )
    .unwrap();
    assert!(matches!(
        switched.face_verifier(),
        Err(ConfigError::SimulatorInProduction)
    ));
}

/// `LabResults` → `lab-results`, as the Makefile's `build-%Function` rule spells it.
fn kebab_case(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('-');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

#[test]
fn every_function_is_production_staged_and_has_a_binary_and_an_event() {
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    let functions: Vec<_> = template
        .resources_of_type("AWS::Serverless::Function")
        .collect();
    assert!(functions.len() >= 4);
    let events: Vec<String> = std::fs::read_dir(repo_root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let binaries: HashMap<String, String> = template.functions().into_iter().collect();
    for (name, resource) in functions {
        let binary = binaries.get(name).expect("CodeUri: functions/<binary>");
        // The root Makefile's `build-<Function>` finds the binary from the logical id.
        let from_name = kebab_case(name.strip_suffix("Function").expect("…Function"));
        assert_eq!(*binary, from_name, "{name}: CodeUri");
        assert_eq!(
            resource["Metadata"]["BuildMethod"].as_str(),
            Some("makefile")
        );
        assert_eq!(resource["Metadata"]["WorkingDirectory"].as_str(), Some("."));
        let main = repo_root()
            .join("functions")
            .join(binary)
            .join("src/main.rs");
        assert!(main.exists(), "{name}: no {}", main.display());
        assert!(
            events.iter().any(|e| e.starts_with(binary)),
            "{name}: no event file for {binary}"
        );
        let env = template.function_environment(name);
        assert_eq!(
            env.get("KINCODE_STAGE").map(String::as_str),
            Some("production"),
            "{name}"
        );
        assert!(!env.contains_key("KINCODE_AWS_ENDPOINT"), "{name}");
        deployed_config(&template, name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn the_table_has_the_keys_index_and_ttl_the_store_uses() {
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    let props = template.table_properties();
    let names = |list: &serde_yaml::Value| -> Vec<String> {
        list.as_sequence()
            .unwrap()
            .iter()
            .map(|k| k["AttributeName"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&props["KeySchema"]), ["pk", "sk"]);
    let gsi = &props["GlobalSecondaryIndexes"][0];
    assert_eq!(gsi["IndexName"].as_str(), Some("by_expiry"));
    assert_eq!(names(&gsi["KeySchema"]), ["expiry_bucket", "due_at"]);
    assert_eq!(
        props["TimeToLiveSpecification"]["AttributeName"].as_str(),
        Some("expires_at")
    );
    let types: HashMap<String, String> = props["AttributeDefinitions"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["AttributeName"].as_str().unwrap().into(),
                a["AttributeType"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(types["due_at"], "N", "the cleanup compares due times");
    assert_eq!(
        props["GlobalSecondaryIndexes"][0]["IndexName"].as_str(),
        Some(kincode_common::store::EXPIRY_INDEX)
    );
}

#[test]
fn the_sam_local_example_env_file_is_a_valid_local_config() {
    let text =
        std::fs::read_to_string(repo_root().join("scripts/sam-local-env.example.json")).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let params = &file["Parameters"];
    // The secrets kincode-local writes for its default table, `kincode-local`.
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    let secrets = secrets_by_name(&template, Some("kincode-local"));
    let config = Config::from_lookup(
        |k| params[k].as_str().map(str::to_owned),
        |name| secrets.get(name).cloned(),
    )
    .expect("valid config");
    assert!(config.face_verifier().is_ok());
}

#[test]
fn the_template_carries_what_a_city_wide_round_needs() {
    let template = Template::load(&repo_root().join("template.yaml")).unwrap();
    // The cleanup can never take more than one of the account's concurrent executions.
    assert_eq!(
        template.resource("CleanupFunction")["Properties"]["ReservedConcurrentExecutions"].as_u64(),
        Some(1)
    );
    // The table is pre-warmed to what the parameters say (`!Ref` reads as the name).
    let warm = &template.table_properties()["WarmThroughput"];
    assert_eq!(
        (
            warm["ReadUnitsPerSecond"].as_str(),
            warm["WriteUnitsPerSecond"].as_str()
        ),
        (Some("TableWarmReadUnits"), Some("TableWarmWriteUnits"))
    );
    let index = &template.table_properties()["GlobalSecondaryIndexes"][0];
    assert_eq!(
        index["WarmThroughput"]["WriteUnitsPerSecond"].as_str(),
        Some("ExpiryIndexWarmWriteUnits")
    );
    // Past the planned peak, callers get API Gateway's 429, set by the parameters.
    let throttle = &template.resource("Api")["Properties"]["DefaultRouteSettings"];
    assert_eq!(
        (
            throttle["ThrottlingRateLimit"].as_str(),
            throttle["ThrottlingBurstLimit"].as_str()
        ),
        (Some("ApiRateLimit"), Some("ApiBurstLimit"))
    );
    // Alarms on what a round would show first.
    let alarmed: std::collections::BTreeSet<String> = template
        .resources_of_type("AWS::CloudWatch::Alarm")
        .flat_map(|(_, alarm)| {
            let properties = &alarm["Properties"];
            let direct = properties["MetricName"].as_str().map(|m| {
                format!(
                    "{}/{m}",
                    properties["Namespace"].as_str().unwrap_or_default()
                )
            });
            let math = properties["Metrics"]
                .as_sequence()
                .into_iter()
                .flatten()
                .filter_map(|m| {
                    let metric = &m["MetricStat"]["Metric"];
                    Some(format!(
                        "{}/{}",
                        metric["Namespace"].as_str()?,
                        metric["MetricName"].as_str()?
                    ))
                });
            direct.into_iter().chain(math).collect::<Vec<_>>()
        })
        .collect();
    for metric in [
        "AWS/ApiGateway/5xx",
        "AWS/ApiGateway/Latency",
        "AWS/Lambda/Throttles",
        "AWS/Lambda/Errors",
        "AWS/Lambda/Duration",
        "AWS/DynamoDB/ReadThrottleEvents",
        "AWS/DynamoDB/WriteThrottleEvents",
    ] {
        assert!(
            alarmed.contains(metric),
            "no alarm on {metric}: {alarmed:?}"
        );
    }
}
