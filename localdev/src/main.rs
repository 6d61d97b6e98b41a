//! `kincode-local`: the whole API on 127.0.0.1, served by the real function binaries under the
//! Lambda Runtime Interface Emulator, on a local AWS stack. See `scripts/run`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use aws_config::BehaviorVersion;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::Parser;
use kincode_localdev::auth::DevAuth;
use kincode_localdev::emulator::Emulator;
use kincode_localdev::gateway::Gateway;
use kincode_localdev::local::{overrides, DevKeys, LocalStack};
use kincode_localdev::provision::{ensure_buckets, ensure_table};
use kincode_localdev::template::Template;

#[derive(Parser)]
#[command(about = "Serve kincode's API locally through the Lambda Runtime Interface Emulator")]
struct Args {
    /// The SAM template: routes, functions and their environment.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Where the functions' binaries are: cargo's target dir (binaries named as the template's
    /// `Binary`) or `sam build`'s build dir (`<Function>/bootstrap`, the deployed artifacts).
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
}

async fn start(args: Args) -> Result<(), String> {
    let template = Template::load(&args.template)?;
    let keys = DevKeys::load_or_create(&args.keys_file)?;
    let extra = overrides(args.env_vars.as_deref())?;

    let shared = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&args.endpoint)
        .load()
        .await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&shared);
    if ensure_table(&dynamodb, &template, &args.table).await? {
        eprintln!(
            "provisioned table {} from {}",
            args.table,
            args.template.display()
        );
    }
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(true)
            .build(),
    );
    let mut resources = HashMap::from([("Table".to_owned(), args.table.clone())]);
    resources.extend(ensure_buckets(&s3, &template, &args.table).await?);
    let local = LocalStack {
        endpoint: args.endpoint.clone(),
        keys: keys.clone(),
        resources,
    };

    let routes = template.routes();
    let mut emulators = HashMap::new();
    for (function, binary) in template.functions() {
        if !routes.iter().any(|r| r.function == function) {
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
        let emulator = Emulator::spawn(&function, &args.rie, bootstrap, &env, args.verbose).await?;
        emulators.insert(function, Arc::new(emulator));
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| format!("127.0.0.1:{}: {e}", args.port))?;
    let base = format!(
        "http://{}",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    let auth = DevAuth::new(B64.decode(&keys.jwt_secret).map_err(|e| e.to_string())?);
    let token = auth.issue("dev-guardian", chrono::Utc::now());
    println!(
        "kincode local API on {base} ({} routes, {} functions)",
        routes.len(),
        emulators.len()
    );
    for route in &routes {
        println!("  {:<52} {}", route.key(), route.function);
    }
    println!(
        "dev JWT: HS256, secret (base64) {}, iss {}, aud {}",
        auth.secret_base64(),
        kincode_localdev::auth::ISSUER,
        kincode_localdev::auth::AUDIENCE
    );
    println!("dev token (sub dev-guardian, 30 days): {token}");
    println!("or name the caller directly: -H 'Authorization: Dev <sub>'");
    println!("try: curl -s -H 'Authorization: Bearer {token}' {base}/relatives");
    println!("READY {base}");

    let gateway = Arc::new(Gateway {
        routes,
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
    if let Err(e) = start(Args::parse()).await {
        eprintln!("kincode-local: {e}");
        std::process::exit(1);
    }
}
