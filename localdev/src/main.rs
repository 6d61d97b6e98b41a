//! `kincode-local`: the whole API on 127.0.0.1, served by the real function binaries under the
//! Lambda Runtime Interface Emulator, on a local AWS stack, with each schedule runnable on demand
//! at `POST /_local/schedules/{Function}`. See `scripts/run`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{Duration, SecondsFormat};
use clap::Parser;
use kincode_common::codes::keys::ACTIVATION_DELAY;
use kincode_localdev::alipay::{generate_key_pair, AlipayStandIn, RunningStandIn};
use kincode_localdev::auth::DevAuth;
use kincode_localdev::emulator::{Emulator, Instances};
use kincode_localdev::gateway::Gateway;
use kincode_localdev::local::{overrides, DevKeys, LocalStack};
use kincode_localdev::template::{RouteAuth, Template};
use kincode_localdev::{rotate, scheduler};

/// The staff callers the banner prints tokens for: their `sub` and other claims.
const CHECKPOINT_STAFF: (&str, &[(&str, &str)]) = (
    "dev-checkpoint",
    &[
        ("scope", "kincode/checkpoint"),
        ("site_id", "dev-site-1"),
        ("site_name", "本地测试采样点"),
    ],
);
const LAB: (&str, &[(&str, &str)]) = ("dev-lab", &[("scope", "kincode/lab")]);
const AUTHORITY: (&str, &[(&str, &str)]) = ("dev-authority", &[("scope", "kincode/authority")]);

#[derive(Parser)]
#[command(
    about = "Serve kincode's API locally through the Lambda Runtime Interface Emulator",
    after_help = "`kincode-local rotate-keys --help`: rotate the code signing key (deployed or local)."
)]
struct Args {
    /// The SAM template: routes, functions and their environment.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Where the functions' binaries are: cargo's target dir (binaries named after the template's
    /// `CodeUri`) or `sam build`'s build dir (`<Function>/bootstrap`, the deployed artifacts).
    #[arg(long, default_value = "target/debug")]
    bin_dir: PathBuf,
    /// The `aws-lambda-rie` binary.
    #[arg(long)]
    rie: PathBuf,
    /// The local AWS stack (moto).
    #[arg(long, env = "KINCODE_AWS_ENDPOINT")]
    endpoint: String,
    /// Table to provision (from the template's definition) and give the functions.
    #[arg(long, default_value = "kincode-local")]
    table: String,
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Development keys, created on first start and kept so tokens survive restarts.
    #[arg(long, default_value = ".local/dev-keys.json")]
    keys_file: PathBuf,
    /// Overrides in `sam local --env-vars` format: {"Parameters": {..}, "<Function>": {..}}.
    #[arg(long)]
    env_vars: Option<PathBuf>,
    /// Show the emulator's own log lines too.
    #[arg(long)]
    verbose: bool,
    /// Instances of each function (each an emulator and a function process), as Lambda runs
    /// as many as there are requests in flight: a request goes to an idle one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    instances: u16,
    /// Face verification: the local simulator, or the production adapter (Alipay) against a
    /// local Alipay stand-in started here.
    #[arg(long, value_enum, default_value = "local-simulator")]
    face: FaceChoice,
}

/// `kincode-local rotate-keys`: rotate the code signing key (deployed or local). The new key is
/// published now and signs from the activation delay on; the key that signed until then is
/// retired at that instant and stays published until its codes have expired (README,
/// "Rotating the code signing key"). No function needs recycling.
#[derive(Parser)]
#[command(name = "kincode-local rotate-keys")]
struct RotateArgs {
    /// The signing keys secret (render and offline read it).
    #[arg(long, default_value = "kincode/signing-keys")]
    signing_secret: String,
    /// The public keys secret (scan, samples and the keys route read it).
    #[arg(long, default_value = "kincode/public-keys")]
    public_secret: String,
    /// The new key's id (default: `k` and the minute, UTC).
    #[arg(long)]
    kid: Option<String>,
    /// A local AWS stack; without it, the AWS account and region of the environment.
    #[arg(long)]
    endpoint: Option<String>,
    /// Seconds from the rotation to the switch (default: ACTIVATION_DELAY, 15 minutes). Shorter
    /// than the functions' key refresh (5 minutes) plus a margin, a warm verifier may refuse
    /// the new key's codes: for tests only.
    #[arg(long)]
    activation_delay: Option<u32>,
}

async fn rotate_keys(args: RotateArgs) -> Result<(), String> {
    let mut loader = kincode_localdev::local::aws_config_loader();
    if let Some(endpoint) = &args.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let client = aws_sdk_secretsmanager::Client::new(&loader.load().await);
    let now = chrono::Utc::now();
    let kid = args.kid.unwrap_or_else(|| rotate::default_kid(now));
    let rotated = rotate::rotate_keys(
        &client,
        &args.signing_secret,
        &args.public_secret,
        &kid,
        now,
        args.activation_delay.map_or(ACTIVATION_DELAY, |seconds| {
            Duration::seconds(seconds.into())
        }),
    )
    .await?;
    println!(
        "rotated: {} is published now and signs from {}; published: {}",
        rotated.new_kid,
        rotated
            .active_from
            .to_rfc3339_opts(SecondsFormat::Secs, true),
        rotated.published.join(", ")
    );
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum FaceChoice {
    LocalSimulator,
    AlipayStandIn,
}

const STAND_IN_APP_ID: &str = "2021000000000001";

/// Starts the Alipay stand-in and points the verify function's Alipay settings at it; returns
/// it with the Alipay keys secret to provision (the app's private key, the stand-in's public).
async fn alipay_stand_in(
    extra: &mut serde_json::Value,
) -> Result<(RunningStandIn, String), String> {
    let (app_private, app_public) = generate_key_pair();
    let stand_in = AlipayStandIn::start(STAND_IN_APP_ID, &app_public).await?;
    set_function_env(
        extra,
        "VerifyFunction",
        serde_json::json!({
            "KINCODE_FACE_VERIFIER": "alipay",
            "KINCODE_ALIPAY_GATEWAY": stand_in.gateway(),
            "KINCODE_ALIPAY_APP_ID": STAND_IN_APP_ID,
            "KINCODE_ALIPAY_RETURN_URL": "alipays://platformapi/startapp?appId=2021000000000001&page=pages/verify/done",
        }),
    );
    let secret = serde_json::json!({
        "app_private_key": app_private,
        "alipay_public_key": stand_in.alipay_public_key,
    })
    .to_string();
    Ok((stand_in, secret))
}

/// Sets `vars` (an object) in `function`'s `--env-vars` overrides, over the user's own values
/// of the same names and keeping their others.
fn set_function_env(extra: &mut serde_json::Value, function: &str, vars: serde_json::Value) {
    let section = &mut extra[function];
    match (section.as_object_mut(), vars) {
        (Some(own), serde_json::Value::Object(vars)) => own.extend(vars),
        (_, vars) => *section = vars,
    }
}

async fn start(args: Args) -> Result<(), String> {
    let template = Template::load(&args.template)?;
    let keys = DevKeys::load_or_create(&args.keys_file)?;
    let mut extra = overrides(args.env_vars.as_deref())?;
    let stand_in = match args.face {
        FaceChoice::LocalSimulator => None,
        FaceChoice::AlipayStandIn => Some(alipay_stand_in(&mut extra).await?),
    };

    let mut local =
        LocalStack::provision(&template, &args.endpoint, &args.table, keys.clone()).await?;
    let stand_in = match stand_in {
        None => None,
        Some((stand_in, secret)) => {
            local
                .put_secret(&template, "AlipayKeysSecretName", &args.table, &secret)
                .await?;
            Some(stand_in)
        }
    };

    let routes = template.routes();
    let schedules = template.schedules()?;
    // The schedule endpoint names a function, so it can run one schedule per function.
    for schedule in &schedules {
        if schedules
            .iter()
            .filter(|s| s.function == schedule.function)
            .count()
            > 1
        {
            return Err(format!(
                "{}: more than one schedule; {} runs one per function",
                schedule.function,
                scheduler::PATH_PREFIX
            ));
        }
    }
    let mut emulators = HashMap::new();
    for (function, binary) in template.functions() {
        let invoked = routes.iter().any(|r| r.function == function)
            || schedules.iter().any(|s| s.function == function);
        if !invoked {
            continue;
        }
        // Cargo's layout (`<dir>/<binary>`) or `sam build`'s (`<dir>/<Function>/bootstrap`).
        let candidates = [
            args.bin_dir.join(&binary),
            args.bin_dir.join(&function).join("bootstrap"),
        ];
        let Some(bootstrap) = candidates.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "{function}: no {} or {} (build first)",
                candidates[0].display(),
                candidates[1].display()
            ));
        };
        let env = local.function_env(&template, &function, &extra);
        let mut instances = Vec::new();
        for _ in 0..args.instances {
            instances
                .push(Emulator::spawn(&function, &args.rie, bootstrap, &env, args.verbose).await?);
        }
        emulators.insert(function, Instances::new(instances));
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| format!("127.0.0.1:{}: {e}", args.port))?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let auth = DevAuth::new(B64.decode(&keys.jwt_secret).map_err(|e| e.to_string())?);
    let now = chrono::Utc::now();
    let token = auth.issue("dev-guardian", now);
    println!(
        "kincode local API on {base} ({} routes, {} schedules, {} functions, {} instances each)",
        routes.len(),
        schedules.len(),
        emulators.len(),
        args.instances
    );
    for route in &routes {
        let access = match &route.auth {
            RouteAuth::Public => "public".to_owned(),
            RouteAuth::Jwt { scopes } if scopes.is_empty() => "jwt".to_owned(),
            RouteAuth::Jwt { scopes } => format!("jwt + scope {}", scopes.join(" | ")),
        };
        println!("  {:<52} {:<22} {access}", route.key(), route.function);
    }
    for schedule in &schedules {
        let endpoint = format!("POST {}", scheduler::path(&schedule.function));
        println!(
            "  {endpoint:<52} {:<22} local only, no auth: runs schedule {} ({}) with its Input {}",
            schedule.function, schedule.name, schedule.expression, schedule.input
        );
    }
    println!(
        "dev JWT: HS256, secret (base64) {}, iss {}, aud {}; a `scope` claim (space-separated) grants route scopes",
        auth.secret_base64(),
        kincode_localdev::auth::ISSUER,
        kincode_localdev::auth::AUDIENCE
    );
    println!("dev token (sub dev-guardian, 30 days): {token}");
    for (sub, claims) in [CHECKPOINT_STAFF, LAB, AUTHORITY] {
        let listed: Vec<String> = claims.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "dev token (sub {sub}, {}, 30 days): {}",
            listed.join(", "),
            auth.issue_with_claims(sub, claims, now)
        );
    }
    println!(
        "or name the caller (and any scopes and claims) directly: -H 'Authorization: Dev <sub> [<scope> ...] [<claim>=<value> ...]'"
    );
    println!("try: curl -s -H 'Authorization: Bearer {token}' {base}/relatives");
    println!(
        "try: curl -s -H 'Authorization: Dev dev-checkpoint kincode/checkpoint site_id=dev-site-1' -H 'content-type: application/json' -d '{{\"code\":\"<code>\",\"tube_id\":\"T-000001\",\"tube_kind\":\"pooled_10\"}}' {base}/checkpoints/samples"
    );
    for schedule in &schedules {
        println!(
            "try: curl -s -X POST {base}{}  (local only, no auth: what the schedule does when it fires)",
            scheduler::path(&schedule.function)
        );
    }
    if let Some(stand_in) = &stand_in {
        println!(
            "face verification: Alipay stand-in at {} (open a session's certify_url to pass its scan; script outcomes: POST {}{} {{\"certify_id\":\"…\",\"outcome\":\"fail|not_finished|expired|error|refused|declined|bad_signature|slow\"}})",
            stand_in.gateway(),
            stand_in.base_url,
            kincode_localdev::alipay::SCRIPT_PATH
        );
    }
    println!("READY {base}");

    let gateway = Arc::new(Gateway {
        routes,
        schedules,
        emulators,
        auth,
    });
    let serving = tokio::spawn(gateway.clone().serve(listener));
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    serving.abort();
    gateway.stop().await;
    eprintln!("stopped");
    Ok(())
}

#[tokio::main]
async fn main() {
    let done = if std::env::args().nth(1).as_deref() == Some("rotate-keys") {
        rotate_keys(RotateArgs::parse_from(std::env::args().skip(1))).await
    } else {
        start(Args::parse()).await
    };
    if let Err(e) = done {
        eprintln!("kincode-local: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_stand_ins_settings_join_the_users_overrides_of_the_function() {
        let mut extra = json!({
            "Parameters": {"AlipayAppId": "1"},
            "VerifyFunction": {"RUST_LOG": "debug", "KINCODE_ALIPAY_GATEWAY": "https://elsewhere"},
        });
        let stand_in = json!({"KINCODE_ALIPAY_GATEWAY": "http://127.0.0.1:1/gateway.do", "KINCODE_FACE_VERIFIER": "alipay"});
        set_function_env(&mut extra, "VerifyFunction", stand_in.clone());
        assert_eq!(
            extra,
            json!({
                "Parameters": {"AlipayAppId": "1"},
                "VerifyFunction": {"RUST_LOG": "debug", "KINCODE_ALIPAY_GATEWAY": "http://127.0.0.1:1/gateway.do", "KINCODE_FACE_VERIFIER": "alipay"},
            })
        );
        let mut none = json!({});
        set_function_env(&mut none, "VerifyFunction", stand_in.clone());
        assert_eq!(none, json!({ "VerifyFunction": stand_in }));
    }
}
