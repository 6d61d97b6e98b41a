//! kincode-load: a bounded load test of a local kincode API (loopback only). Binds relatives,
//! then shows their codes, each at a fixed rate, and prints throughput, latency percentiles
//! and the answers by class. Exits non-zero on any 5xx or failed request.
//!
//!   scripts/load             # starts the local stack and `kincode-local --instances 4`

use std::time::{Duration, Instant};

use clap::Parser;
use hyper::http::{Method, StatusCode};
use kincode_localdev::client::HttpClient;
use kincode_tests::distinct_resident_id;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Drive bind and render through a local kincode API at a fixed rate")]
struct Args {
    /// The API's base URL; only the loopback interface is accepted.
    #[arg(long)]
    base: String,
    #[arg(long, default_value_t = 2000)]
    binds: usize,
    #[arg(long, default_value_t = 10_000)]
    renders: usize,
    /// Requests started per second, in each phase.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Relatives verified and shown in the render phase.
    #[arg(long, default_value_t = 100)]
    shown: usize,
    /// A phase stops starting requests after this long, whatever is left.
    #[arg(long, default_value_t = 300)]
    max_seconds: u64,
}

const PER_GUARDIAN: usize = 8;

#[derive(Default)]
struct Phase {
    latencies_ms: Vec<f64>,
    ok: usize,
    client_errors: usize,
    server_errors: usize,
    failed: usize,
    not_started: usize,
    elapsed: Duration,
    /// The 2xx answers' bodies (the bind phase keeps them for the next phase).
    bodies: Vec<Value>,
}

impl Phase {
    fn report(&mut self, name: &str) {
        self.latencies_ms.sort_by(f64::total_cmp);
        let at = |p: f64| {
            let n = self.latencies_ms.len();
            if n == 0 {
                return f64::NAN;
            }
            self.latencies_ms[((n as f64 * p).ceil() as usize).clamp(1, n) - 1]
        };
        let done = self.ok + self.client_errors + self.server_errors;
        println!(
            "{name:<7} {done:>6} answered in {:>6.1} s = {:>6.1}/s | p50 {:>6.1} p90 {:>6.1} p99 {:>6.1} max {:>7.1} ms | 2xx {} 4xx {} 5xx {} failed {} not started {}",
            self.elapsed.as_secs_f64(),
            done as f64 / self.elapsed.as_secs_f64(),
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0),
            self.ok,
            self.client_errors,
            self.server_errors,
            self.failed,
            self.not_started,
        );
    }
}

/// One request as `caller`: its status and JSON body.
async fn call(
    client: &HttpClient,
    base: &str,
    method: Method,
    path: &str,
    caller: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Value), String> {
    let auth = format!("Dev {caller}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    let answer = client
        .send(method, &format!("{base}{path}"), &headers, body)
        .await?;
    Ok((
        answer.status,
        serde_json::from_slice(&answer.body).unwrap_or(Value::Null),
    ))
}

type Request = (Method, String, String, Option<Value>);

/// Starts `requests` at `rate` a second (never more than `max` in all), and waits for them.
async fn run_phase(args: &Args, client: &HttpClient, requests: Vec<Request>) -> Phase {
    let mut phase = Phase::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.max_seconds);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut running = Vec::new();
    let total = requests.len();
    for (i, (method, path, caller, body)) in requests.into_iter().enumerate() {
        ticker.tick().await;
        if Instant::now() >= deadline {
            phase.not_started = total - i;
            break;
        }
        let (client, base) = (client.clone(), args.base.clone());
        running.push(tokio::spawn(async move {
            let sent = Instant::now();
            let answer = call(&client, &base, method, &path, &caller, body).await;
            (sent.elapsed(), answer)
        }));
    }
    for handle in running {
        let Ok((latency, answer)) = handle.await else {
            phase.failed += 1;
            continue;
        };
        match answer {
            Ok((status, body)) => {
                phase.latencies_ms.push(latency.as_secs_f64() * 1000.0);
                if status.is_success() {
                    phase.ok += 1;
                    phase.bodies.push(body);
                } else if status.is_client_error() {
                    phase.client_errors += 1;
                } else {
                    phase.server_errors += 1;
                    eprintln!("{status}: {body}");
                }
            }
            Err(e) => {
                phase.failed += 1;
                eprintln!("failed: {e}");
            }
        }
    }
    phase.elapsed = started.elapsed();
    phase
}

async fn run(args: Args) -> Result<bool, String> {
    let host = args
        .base
        .strip_prefix("http://")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_default();
    if !["127.0.0.1", "localhost"].contains(&host) {
        return Err(format!("{}: only a loopback API may be loaded", args.base));
    }
    let client = HttpClient::default();
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let now = chrono::Utc::now();
    let binds: Vec<Request> = (0..args.binds)
        .map(|i| {
            let guardian = format!("load-{run}-{}", i / PER_GUARDIAN);
            let body = json!({"name": "张建国", "id_number": distinct_resident_id(70, now), "relationship": "parent", "consent": true});
            (Method::POST, "/relatives".to_owned(), guardian, Some(body))
        })
        .collect();
    let mut bound = run_phase(&args, &client, binds).await;
    bound.report("bind");

    // The relatives to show: verified first (face, through the local simulator), unmeasured.
    let mut shown = Vec::new();
    for (i, binding) in bound.bodies.iter().take(args.shown).enumerate() {
        let id = binding["id"]
            .as_str()
            .ok_or("a bind answer without an id")?;
        let guardian = format!("load-{run}-{}", i / PER_GUARDIAN);
        let (_, started) = call(
            &client,
            &args.base,
            Method::POST,
            &format!("/relatives/{id}/verification"),
            &guardian,
            None,
        )
        .await?;
        let evidence =
            json!({"certify_id": started["certify_id"], "evidence": {"simulated_outcome": "pass"}});
        let (status, done) = call(
            &client,
            &args.base,
            Method::POST,
            &format!("/relatives/{id}/verification/complete"),
            &guardian,
            Some(evidence),
        )
        .await?;
        if status != StatusCode::OK {
            return Err(format!("verifying {id}: {status} {done}"));
        }
        shown.push((id.to_owned(), guardian));
    }
    if shown.is_empty() {
        return Err("no relative was bound, nothing to show".into());
    }
    let renders: Vec<Request> = (0..args.renders)
        .map(|i| {
            let (id, guardian) = &shown[i % shown.len()];
            (
                Method::GET,
                format!("/relatives/{id}/code"),
                guardian.clone(),
                None,
            )
        })
        .collect();
    let mut rendered = run_phase(&args, &client, renders).await;
    rendered.report("render");
    let clean = |p: &Phase| p.server_errors == 0 && p.failed == 0;
    Ok(clean(&bound) && clean(&rendered))
}

#[tokio::main]
async fn main() {
    match run(Args::parse()).await {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(e) => {
            eprintln!("kincode-load: {e}");
            std::process::exit(2);
        }
    }
}
