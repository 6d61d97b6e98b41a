//! kincode-bench: every function's cold start and warm path, measured as Lambda runs them. Each
//! function's release bootstrap (`sam build`'s) runs under the Lambda Runtime Interface Emulator
//! against the local stack, on requests that do its real work (a bind binds, a render signs and
//! draws, an unbind revokes). Per function: init, first invoke and warm p50/p99 (wall), the CPU of
//! the cold start (init + first invoke, by the kernel's accounting of the function's process),
//! peak RSS, and the zipped bootstrap. A table on stdout, the same as JSON in `--json`.
//!
//!   scripts/bench            # builds, starts the local stack, runs this
//!
//! Figures from a shared machine are indicative; compare runs from one machine.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use clap::Parser;
use hyper::http::HeaderMap;
use kincode_common::codes::keys::KeyRing;

use kincode_common::domain::binding::Binding;
use kincode_common::wiring::services::{load_config, Services};
use kincode_localdev::apigw::{self, Incoming};
use kincode_localdev::emulator::Emulator;
use kincode_localdev::local::{DevKeys, LocalStack};
use kincode_localdev::template::{Route, Template};
use kincode_localdev::{scheduler, template};
use kincode_tests::{
    active_relative_with, bind_relative, distinct_resident_id, fresh_tube, register_sample_at,
    report_result_at,
};
use serde::Serialize;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Measure every function's cold start and warm path under the Lambda emulator")]
struct Args {
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// `sam build`'s output (`<Function>/bootstrap`), cargo-lambda's (`<binary>/bootstrap`),
    /// or cargo's target dir (`<binary>`).
    #[arg(long, default_value = "target/sam-build")]
    bin_dir: PathBuf,
    /// The `aws-lambda-rie` binary.
    #[arg(long, env = "KINCODE_RIE")]
    rie: PathBuf,
    /// The local AWS stack (moto).
    #[arg(long, env = "KINCODE_AWS_ENDPOINT")]
    endpoint: String,
    /// Cold starts per function, each a new process.
    #[arg(long, default_value_t = 7)]
    cold: usize,
    /// Warm invocations per function, on the last cold-started process.
    #[arg(long, default_value_t = 200)]
    warm: usize,
    /// Only these functions (logical ids, e.g. RenderFunction).
    #[arg(long)]
    only: Vec<String>,
    #[arg(long, default_value = "target/bench/functions.json")]
    json: PathBuf,
}

/// One function's figures.
#[derive(Serialize)]
struct Figures {
    function: String,
    init_ms: f64,
    first_invoke_ms: f64,
    warm_p50_ms: f64,
    warm_p99_ms: f64,
    /// CPU of one warm invoke (median): what Lambda's CPU share stretches.
    warm_cpu_ms: f64,
    cold_cpu_ms: f64,
    peak_rss_mib: f64,
    zipped_mib: f64,
    unzipped_mib: f64,
    cold_starts: usize,
    warm_invokes: usize,
}

fn median(values: &mut [f64]) -> f64 {
    percentile(values, 0.5)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 * p).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Deflated size, as in the deployment zip.
fn zipped_bytes(path: &Path) -> Result<(u64, u64), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&bytes).map_err(|e| e.to_string())?;
    let zipped = encoder.finish().map_err(|e| e.to_string())?;
    Ok((zipped.len() as u64, bytes.len() as u64))
}

/// The requests a function is measured on, built against the local stack's data.
struct Requests<'a> {
    routes: &'a [Route],
    template: &'a Template,
    services: &'a Services,
    keys: &'a KeyRing,
}

const GUARDIANS_PER_RUN: usize = 8;
/// How many requests share one person where a person accumulates records (samples, results).
const PEOPLE_REUSED: usize = 5;

impl Requests<'_> {
    /// An API Gateway event for `method path` as `claims`, routed as the template routes it.
    fn event(
        &self,
        method: &str,
        path: &str,
        claims: &[(&str, &str)],
        body: Option<Value>,
    ) -> Value {
        let (route, params) = self
            .routes
            .iter()
            .find_map(|route| route.matches(method, path).map(|params| (route, params)))
            .unwrap_or_else(|| panic!("no route for {method} {path}"));
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let claims: BTreeMap<String, String> = claims
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let incoming = Incoming {
            method,
            path,
            query: None,
            headers: &headers,
            body: &body,
            source_ip: "127.0.0.1",
        };
        let authorized = matches!(route.auth, template::RouteAuth::Jwt { .. });
        apigw::event(
            &incoming,
            route,
            &params,
            authorized.then_some(&claims),
            &uuid::Uuid::new_v4().to_string(),
            Utc::now(),
        )
    }

    async fn active(&self, guardian: &str, at: chrono::DateTime<Utc>) -> Binding {
        active_relative_with(self.services, guardian, &distinct_resident_id(70, at), at).await
    }

    /// `count` events doing `function`'s real work, each usable once.
    async fn for_function(&self, function: &str, count: usize) -> Vec<Value> {
        let now = Utc::now();
        let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let guardian = format!("bench-{run}");
        let me: &[(&str, &str)] = &[("sub", &guardian)];
        let checkpoint: &[(&str, &str)] = &[
            ("sub", "bench-checkpoint"),
            ("scope", "kincode/checkpoint"),
            ("site_id", "bench-site"),
            ("site_name", "bench"),
        ];
        let mut events = Vec::with_capacity(count);
        match function {
            "BindFunction" => {
                for i in 0..count {
                    let guardian = format!("bench-{run}-{}", i / GUARDIANS_PER_RUN);
                    let body = json!({"name": "张建国", "id_number": distinct_resident_id(70, now), "relationship": "parent", "consent": true});
                    events.push(self.event(
                        "POST",
                        "/relatives",
                        &[("sub", &guardian)],
                        Some(body),
                    ));
                }
            }
            "VerifyFunction" => {
                // A pending binding each: starting again on one abandons its session, which
                // counts toward the face lockout.
                for i in 0..count {
                    let guardian = format!("bench-{run}-{}", i / GUARDIANS_PER_RUN);
                    let pending = bind_relative(
                        self.services,
                        &guardian,
                        &distinct_resident_id(70, now),
                        now,
                    )
                    .await
                    .expect("bind");
                    let path = format!("/relatives/{}/verification", pending.id.as_str());
                    events.push(self.event("POST", &path, &[("sub", &guardian)], None));
                }
            }
            "ListFunction" => {
                for _ in 0..3 {
                    self.active(&guardian, now).await;
                }
                events.extend((0..count).map(|_| self.event("GET", "/relatives", me, None)));
            }
            "UnbindFunction" => {
                // Bound and verified a day ago, so the unbind may happen now.
                let then = now - chrono::Duration::hours(25);
                for i in 0..count {
                    let guardian = format!("bench-{run}-{}", i / GUARDIANS_PER_RUN);
                    let binding = self.active(&guardian, then).await;
                    let path = format!("/relatives/{}", binding.id.as_str());
                    events.push(self.event("DELETE", &path, &[("sub", &guardian)], None));
                }
            }
            "RenderFunction" | "ResultsFunction" | "AccessLogFunction" | "ExportFunction" => {
                let binding = self.active(&guardian, now).await;
                let suffix = match function {
                    "RenderFunction" => "code",
                    "ResultsFunction" => "results",
                    "AccessLogFunction" => "access-log",
                    _ => "export",
                };
                // Results read (and an access log with a page of entries) as in life.
                if function != "RenderFunction" {
                    for _ in 0..3 {
                        let tube = fresh_tube();
                        register_sample_at(self.services, self.keys, &binding, &tube, None, now)
                            .await
                            .expect("register");
                        report_result_at(self.services, &tube, "negative", now).await;
                    }
                }
                let path = format!("/relatives/{}/{suffix}", binding.id.as_str());
                events.extend((0..count).map(|_| self.event("GET", &path, me, None)));
            }
            "OfflineFunction" => {
                // Three cards a relative a day.
                for i in 0..count {
                    let guardian = format!("bench-{run}-{}", i / 3 / GUARDIANS_PER_RUN);
                    if i % 3 == 0 {
                        let binding = self.active(&guardian, now).await;
                        let path = format!("/relatives/{}/offline-code", binding.id.as_str());
                        for _ in 0..3.min(count - i) {
                            events.push(self.event(
                                "POST",
                                &path,
                                &[("sub", &guardian)],
                                Some(json!({})),
                            ));
                        }
                    }
                }
            }
            "ScanFunction" | "SamplesFunction" => {
                // A few codes, each person sampled a few times: a person's record of tests
                // (which every scan reads for the colour) stays as long as in life.
                let mut code = String::new();
                for i in 0..count {
                    if i % PEOPLE_REUSED == 0 {
                        let guardian =
                            format!("bench-{run}-{}", i / PEOPLE_REUSED / GUARDIANS_PER_RUN);
                        let binding = self.active(&guardian, now).await;
                        code = kincode_common::usecases::codes::show::online_code(
                            &self.services.store,
                            self.keys,
                            &binding.guardian,
                            &binding.id,
                            kincode_tests::request_at(now),
                        )
                        .await
                        .expect("code")
                        .token;
                    }
                    events.push(if function == "ScanFunction" {
                        self.event(
                            "POST",
                            "/checkpoints/scan",
                            checkpoint,
                            Some(json!({"code": code, "purpose": "nucleic_acid_test"})),
                        )
                    } else {
                        self.event(
                            "POST",
                            "/checkpoints/samples",
                            checkpoint,
                            Some(json!({"code": code, "tube_id": fresh_tube()})),
                        )
                    });
                }
            }
            "LabResultsFunction" => {
                let mut binding = self.active(&guardian, now).await;
                for i in 0..count {
                    if i > 0 && i % PEOPLE_REUSED == 0 {
                        let guardian =
                            format!("bench-{run}-{}", i / PEOPLE_REUSED / GUARDIANS_PER_RUN);
                        binding = self.active(&guardian, now).await;
                    }
                    let tube = fresh_tube();
                    register_sample_at(self.services, self.keys, &binding, &tube, None, now)
                        .await
                        .expect("register");
                    let rows = json!({"rows": [{"tube_id": tube, "result": "negative", "reported_at": now}]});
                    events.push(self.event(
                        "POST",
                        "/lab/results",
                        &[("sub", "bench-lab"), ("scope", "kincode/lab")],
                        Some(rows),
                    ));
                }
            }
            "RiskFlagsFunction" => {
                for _ in 0..count {
                    let rows = json!({"rows": [{"id_number": distinct_resident_id(70, now), "flag": "secondary_contact", "effective_at": now}]});
                    events.push(self.event(
                        "POST",
                        "/authority/risk-flags",
                        &[("sub", "bench-authority"), ("scope", "kincode/authority")],
                        Some(rows),
                    ));
                }
            }
            "CoGuardiansFunction" => {
                // The read a family makes: a child held by three guardians.
                let person = distinct_resident_id(5, now);
                let binding = active_relative_with(self.services, &guardian, &person, now).await;
                for other in ["a", "b"] {
                    let other = format!("{guardian}-{other}");
                    active_relative_with(self.services, &other, &person, now).await;
                }
                let path = format!("/relatives/{}/guardians", binding.id.as_str());
                events.extend((0..count).map(|_| self.event("GET", &path, me, None)));
            }
            "AuthorityDisputesFunction" => {
                // The authority's queue, with a page of open reports in it.
                for i in 0..3 {
                    let person = distinct_resident_id(5, now);
                    let mine = active_relative_with(self.services, &guardian, &person, now).await;
                    let other = format!("{guardian}-{i}");
                    active_relative_with(self.services, &other, &person, now).await;
                    let request = kincode_common::usecases::disputes::ReportRequest {
                        guardian: Some(
                            self.services
                                .store
                                .keys()
                                .guardian_handle(&mine.relative_key, &other),
                        ),
                        reason: Some("not_family".into()),
                        details: Some("bench".into()),
                    };
                    let request_id = uuid::Uuid::new_v4().to_string();
                    let ctx = kincode_common::store::ActionContext {
                        request_id: &request_id,
                        at: now,
                    };
                    kincode_common::usecases::disputes::report(
                        &self.services.store,
                        &mine.guardian,
                        &mine.id,
                        request,
                        ctx,
                    )
                    .await
                    .expect("report");
                }
                let authority: &[(&str, &str)] =
                    &[("sub", "bench-authority"), ("scope", "kincode/authority")];
                events.extend(
                    (0..count).map(|_| self.event("GET", "/authority/disputes", authority, None)),
                );
            }
            "KeysFunction" => {
                events.extend(
                    (0..count).map(|_| self.event("GET", "/.well-known/kincode-keys", &[], None)),
                );
            }
            "CleanupFunction" => {
                // A deployment's cleanup resumes from the last day it finished; the very first
                // run's walk of the past days happens once in its life, so it is done here.
                let blobs = self.services.blobs().await.expect("bucket");
                let request_id = uuid::Uuid::new_v4().to_string();
                let ctx = kincode_common::store::ActionContext {
                    request_id: &request_id,
                    at: now,
                };
                let budget = kincode_common::store::CleanupBudget {
                    max_items: 100_000,
                    max_duration: Duration::from_secs(600),
                };
                kincode_common::usecases::cleanup::run(&self.services.store, &blobs, budget, ctx)
                    .await
                    .expect("first cleanup run");
                let schedule = self
                    .template
                    .schedules()
                    .expect("schedules")
                    .into_iter()
                    .find(|s| s.function == function)
                    .expect("the cleanup's schedule");
                // Each run queries every expiry bucket of a day (152), and moto answers an index
                // query by reading the whole table, which by now holds every other function's
                // workload: seconds a run here, not on DynamoDB. An hourly job needs no 200
                // samples; 30 runs in all.
                events.extend((0..count.min(30)).map(|_| schedule.input.clone()));
            }
            other => panic!("{other}: no workload (add one to kincode-bench)"),
        }
        events
    }
}

/// Whether the function answered as a success: 2xx through the gateway, or a schedule's result.
fn succeeded(function: &str, payload: &[u8]) -> Result<(), String> {
    if function == "CleanupFunction" {
        return match scheduler::answer(payload) {
            (_, None) => Ok(()),
            (_, Some(cause)) => Err(cause),
        };
    }
    let answer = apigw::response(payload)?;
    if answer.status.is_success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ))
    }
}

async fn measure(
    args: &Args,
    function: &str,
    bootstrap: &Path,
    env: &HashMap<String, String>,
    events: Vec<Value>,
) -> Result<Figures, String> {
    let mut events = events.into_iter();
    let (mut inits, mut firsts, mut cpus) = (Vec::new(), Vec::new(), Vec::new());
    let (mut warm, mut warm_cpus) = (Vec::new(), Vec::new());
    let mut peak_rss_kib = 0;
    for round in 0..args.cold {
        let emulator = Emulator::spawn(function, &args.rie, bootstrap, env, false).await?;
        let first = emulator.invoke(&events.next().expect("an event")).await?;
        succeeded(function, &first.payload).map_err(|e| format!("{function} cold start: {e}"))?;
        let usage = emulator
            .function_usage()
            .ok_or_else(|| format!("{function}: no function process"))?;
        inits.push(first.init_ms.unwrap_or(f64::NAN));
        firsts.push(ms(first.elapsed));
        cpus.push(ms(usage.cpu));
        if round + 1 == args.cold {
            let mut before = usage.cpu;
            for event in events.by_ref() {
                let invocation = emulator.invoke(&event).await?;
                succeeded(function, &invocation.payload)
                    .map_err(|e| format!("{function} warm: {e}"))?;
                warm.push(ms(invocation.elapsed));
                let after = emulator.function_usage().map_or(before, |u| u.cpu);
                warm_cpus.push(ms(after.saturating_sub(before)));
                before = after;
            }
            peak_rss_kib = emulator.function_usage().map_or(0, |u| u.peak_rss_kib);
        }
        emulator.stop().await;
    }
    let (zipped, unzipped) = zipped_bytes(bootstrap)?;
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    Ok(Figures {
        function: function.to_owned(),
        init_ms: median(&mut inits),
        first_invoke_ms: median(&mut firsts),
        warm_p50_ms: percentile(&mut warm.clone(), 0.5),
        warm_p99_ms: percentile(&mut warm, 0.99),
        warm_cpu_ms: median(&mut warm_cpus),
        cold_cpu_ms: median(&mut cpus),
        peak_rss_mib: peak_rss_kib as f64 / 1024.0,
        zipped_mib: mib(zipped),
        unzipped_mib: mib(unzipped),
        cold_starts: args.cold,
        warm_invokes: args.warm,
    })
}

fn print_table(figures: &[Figures]) {
    println!(
        "{:<20} {:>8} {:>10} {:>9} {:>9} {:>9} {:>10} {:>9} {:>9} {:>10}",
        "function",
        "init ms",
        "1st inv ms",
        "warm p50",
        "warm p99",
        "warm CPU",
        "cold CPU",
        "peak RSS",
        "zip MiB",
        "unzip MiB"
    );
    for f in figures {
        println!(
            "{:<20} {:>8.1} {:>10.1} {:>9.1} {:>9.1} {:>9.2} {:>10.1} {:>9.1} {:>9.2} {:>10.2}",
            f.function,
            f.init_ms,
            f.first_invoke_ms,
            f.warm_p50_ms,
            f.warm_p99_ms,
            f.warm_cpu_ms,
            f.cold_cpu_ms,
            f.peak_rss_mib,
            f.zipped_mib,
            f.unzipped_mib
        );
    }
    println!(
        "(ms: medians of the cold starts, percentiles of the warm invokes; CPU by the kernel's \
         accounting of the function's process, cold = init + first invoke; RSS in MiB)"
    );
}

/// Lambda gives a function CPU in proportion to its memory: 1,769 MB is one vCPU.
const MB_PER_VCPU: f64 = 1769.0;
/// Lambda's published x86 prices (us-east-1, first tier): per GB-second, and per request.
const USD_PER_GB_SECOND: f64 = 0.000_016_666_7;
const USD_PER_REQUEST: f64 = 0.000_000_2;
const MEMORY_SIZES_MB: [f64; 4] = [128.0, 256.0, 512.0, 1024.0];

/// What each memory size would make of the measured figures: the CPU stretched by the CPU
/// share, the rest (waiting on DynamoDB and S3) unchanged. Local waits are moto's, slower
/// than DynamoDB's, so the warm figures lean high.
fn print_memory_table(figures: &[Figures]) {
    print!("{:<20}", "function");
    for mb in MEMORY_SIZES_MB {
        print!(" {:>26}", format!("{mb} MB: cold/warm ms, $/M"));
    }
    println!();
    for f in figures {
        print!("{:<20}", f.function);
        let waiting = (f.warm_p50_ms - f.warm_cpu_ms).max(0.0);
        for mb in MEMORY_SIZES_MB {
            let stretch = MB_PER_VCPU / mb;
            let cold = f.cold_cpu_ms * stretch;
            let warm = f.warm_cpu_ms * stretch + waiting;
            let usd_per_million = 1e6
                * (USD_PER_REQUEST + (mb / 1024.0) * (warm.ceil() / 1000.0) * USD_PER_GB_SECOND);
            print!(
                " {:>26}",
                format!("{cold:.0} / {warm:.0}, {usd_per_million:.2}")
            );
        }
        println!();
    }
    println!("(cold: the cold start's CPU at that share; warm: CPU stretched plus the measured wait; $ per million warm requests, duration and request charges)");
}

async fn run(args: Args) -> Result<(), String> {
    if args.cold == 0 {
        return Err("--cold must be at least 1".into());
    }
    let template = Template::load(&args.template)?;
    let table = format!(
        "kincode-bench-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let local = LocalStack::provision(&template, &args.endpoint, &table, DevKeys::random()).await?;
    let functions: Vec<(String, String)> = template
        .functions()
        .into_iter()
        .filter(|(f, _)| args.only.is_empty() || args.only.contains(f))
        .collect();
    let envs: HashMap<String, HashMap<String, String>> = functions
        .iter()
        .map(|(f, _)| (f.clone(), local.function_env(&template, f, &json!({}))))
        .collect();
    // The setup writes through the use cases with the functions' own keys (fetched from the
    // local stack's secrets, as the functions do), so they read it.
    let mut setup_env: HashMap<String, String> = HashMap::new();
    for env in envs.values() {
        setup_env.extend(env.clone());
    }
    let config = load_config(|k| setup_env.get(k).cloned())
        .await
        .map_err(|e| e.to_string())?;
    let keys = config.signing_keys().map_err(|e| e.to_string())?;
    let services = Services::from_config(config)
        .await
        .map_err(|e| e.to_string())?;
    let routes = template.routes();
    let requests = Requests {
        routes: &routes,
        template: &template,
        services: &services,
        keys: &keys,
    };
    let mut figures = Vec::new();
    for (function, binary) in &functions {
        let candidates = [
            args.bin_dir.join(function).join("bootstrap"),
            args.bin_dir.join(binary).join("bootstrap"),
            args.bin_dir.join(binary),
        ];
        let Some(bootstrap) = candidates.iter().find(|p| p.is_file()) else {
            return Err(format!(
                "{function}: no {} (run sam build)",
                candidates[0].display()
            ));
        };
        eprintln!("{function}: preparing {} requests", args.cold + args.warm);
        let events = requests.for_function(function, args.cold + args.warm).await;
        eprintln!(
            "{function}: {} cold starts, {} warm invokes",
            args.cold, args.warm
        );
        figures.push(measure(&args, function, bootstrap, &envs[function], events).await?);
    }
    print_table(&figures);
    println!();
    print_memory_table(&figures);
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let report = json!({
        "measured_at": Utc::now(),
        "cold_starts": args.cold,
        "warm_invokes": args.warm,
        "functions": figures,
    });
    std::fs::write(&args.json, serde_json::to_vec_pretty(&report).unwrap())
        .map_err(|e| format!("{}: {e}", args.json.display()))?;
    eprintln!("figures written to {}", args.json.display());
    Ok(())
}

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("kincode-bench: {e}");
        std::process::exit(1);
    }
}
