//! The capacity model of a city-wide testing round: from the units each operation consumes
//! (`docs/capacity-units.json`, measured by `tools/tests/capacity.rs`), the warm durations of the
//! release functions (`docs/bench-functions.json`, from `scripts/bench`) and the memory the
//! template gives each function, to the peak load of a round on every route, Lambda, DynamoDB
//! (table, index, hottest partitions) and S3, the account quotas it meets first, and its cost.
//! `scripts/capacity` prints it; `docs/capacity.md` carries it, checked current by a test.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Deserialize;

use crate::capacity::{CapacityTable, Consumed};
use kincode_tests::Template;

/// The account quotas the model meets, at their defaults (AWS documentation, `docs/capacity.md`
/// quotes each source).
pub mod quota {
    /// Lambda concurrent executions per Region.
    pub const LAMBDA_CONCURRENCY: f64 = 1_000.0;
    /// New execution environments per function every 10 seconds.
    pub const LAMBDA_SCALING_PER_10_S: f64 = 1_000.0;
    /// HTTP API requests a second per account and Region (burst 5,000).
    pub const HTTP_API_RPS: f64 = 10_000.0;
    /// What a new on-demand table serves at once, before it has seen a higher peak.
    pub const ON_DEMAND_NEW_TABLE_WRITES: f64 = 4_000.0;
    pub const ON_DEMAND_NEW_TABLE_READS: f64 = 12_000.0;
    /// On-demand request units a second per table (and per index).
    pub const TABLE_UNITS: f64 = 40_000.0;
    /// One partition (one key value, a sequential sort key defeating the split for heat).
    pub const PARTITION_WRITES: f64 = 1_000.0;
    pub const PARTITION_READS: f64 = 3_000.0;
    /// S3 requests a second per partitioned prefix.
    pub const S3_PUTS_PER_PREFIX: f64 = 3_500.0;
    pub const S3_GETS_PER_PREFIX: f64 = 5_500.0;
}

/// Prices in USD, us-east-1 (`docs/capacity.md` gives each source and its status).
pub mod price {
    pub const LAMBDA_PER_MILLION_REQUESTS: f64 = 0.20;
    pub const LAMBDA_PER_GB_SECOND: f64 = 0.000_016_666_7;
    pub const HTTP_API_PER_MILLION_REQUESTS: f64 = 1.00;
    pub const DYNAMODB_PER_MILLION_WRITE_UNITS: f64 = 0.625;
    pub const DYNAMODB_PER_MILLION_READ_UNITS: f64 = 0.125;
    pub const S3_PER_THOUSAND_PUTS: f64 = 0.005;
    pub const S3_PER_THOUSAND_GETS: f64 = 0.000_4;
}

/// What one person tested brings, on average, over the round.
#[derive(Debug, Clone)]
pub struct Mix {
    /// Online codes shown by the guardian (at the queue, at the table).
    pub renders: f64,
    /// Codes scanned at venue entry (the scan route; a sample registration verifies the code
    /// itself).
    pub scans: f64,
    pub registrations: f64,
    /// People per tube (10 for 10-in-1 pooling; 1 for single tubes).
    pub people_per_tube: f64,
    /// Results pages read by the guardian, polling.
    pub result_polls: f64,
    pub offline_cards: f64,
    /// Bindings made (and verified) during the round, per person tested.
    pub new_bindings: f64,
    pub lists: f64,
    /// Checkpoint devices refreshing the published keys, per person tested.
    pub key_fetches: f64,
    /// Access-log pages read by a guardian, per person tested.
    pub access_log_reads: f64,
}

impl Mix {
    /// The round's defaults: every person shown twice and registered once in a 10-in-1 tube,
    /// one venue scan, three result polls, one list; a few new bindings and cards.
    pub fn testing_round() -> Self {
        Self {
            renders: 2.0,
            scans: 1.0,
            registrations: 1.0,
            people_per_tube: 10.0,
            result_polls: 3.0,
            offline_cards: 0.05,
            new_bindings: 0.02,
            lists: 1.0,
            key_fetches: 0.01,
            access_log_reads: 0.2,
        }
    }

    fn displays(&self) -> f64 {
        self.renders + self.scans
    }
}

/// A round: how many people, how fast, how peaked.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// People tested in the round.
    pub people: f64,
    /// Hours the round takes.
    pub hours: f64,
    /// The peak hour's rate over the round's mean rate.
    pub peak_factor: f64,
    pub mix: Mix,
    /// Codes displayed (renders and scans, in the mix's proportion) a second at the peak, when
    /// the city shows codes far more than the round alone would (venues, transport).
    pub displays_per_second: Option<f64>,
}

impl Scenario {
    /// People tested a second at the peak.
    pub fn peak_people_per_second(&self) -> f64 {
        self.people / (self.hours * 3600.0) * self.peak_factor
    }

    /// Requests a second at the peak for `per_person` requests per person tested; displays
    /// follow the display rate when one is set.
    fn peak_rate(&self, per_person: f64, display: bool) -> f64 {
        match (display, self.displays_per_second) {
            (true, Some(displays)) => displays * per_person / self.mix.displays(),
            _ => self.peak_people_per_second() * per_person,
        }
    }

    pub fn worked() -> Vec<Scenario> {
        let xian = |hours: f64, displays_per_second: Option<f64>| Scenario {
            name: match displays_per_second {
                None => format!("Xi'an, 13 million people in {hours} h"),
                Some(d) => format!(
                    "{} displays a second, during Xi'an's round in {hours} h",
                    fmt(d)
                ),
            },
            people: 13_000_000.0,
            hours,
            peak_factor: 3.0,
            mix: Mix::testing_round(),
            displays_per_second,
        };
        vec![
            xian(48.0, None),
            xian(24.0, None),
            xian(24.0, Some(60_000.0)),
        ]
    }
}

/// A release function's measured figures (`scripts/bench`'s JSON).
#[derive(Debug, Clone, Deserialize)]
pub struct FunctionFigures {
    pub function: String,
    pub warm_p50_ms: f64,
    pub warm_cpu_ms: f64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BenchFigures {
    pub measured_at: String,
    pub functions: Vec<FunctionFigures>,
}

/// The inputs every figure comes from.
pub struct Inputs {
    pub units: CapacityTable,
    pub bench: BenchFigures,
    pub template: Template,
}

impl Inputs {
    pub fn load(root: &std::path::Path) -> Result<Self, String> {
        let read = |p: &str| std::fs::read_to_string(root.join(p)).map_err(|e| format!("{p}: {e}"));
        Ok(Self {
            units: serde_json::from_str(&read("docs/capacity-units.json")?)
                .map_err(|e| format!("capacity-units.json: {e}"))?,
            bench: serde_json::from_str(&read("docs/bench-functions.json")?)
                .map_err(|e| format!("bench-functions.json: {e}"))?,
            template: Template::load(&root.join("template.yaml"))?,
        })
    }

    fn units(&self, operation: &str) -> &Consumed {
        self.units
            .get(operation)
            .unwrap_or_else(|| panic!("docs/capacity-units.json has no `{operation}`"))
    }

    fn function(&self, name: &str) -> &FunctionFigures {
        self.bench
            .functions
            .iter()
            .find(|f| f.function == name)
            .unwrap_or_else(|| panic!("docs/bench-functions.json has no `{name}`"))
    }
}

/// Units per request, blended where a route's cost depends on the request.
#[derive(Debug, Clone, Copy, Default)]
struct Units {
    read: f64,
    write: f64,
    index_read: f64,
    index_write: f64,
}

impl Units {
    fn of(c: &Consumed) -> Self {
        Self {
            read: c.table_read_units,
            write: c.table_write_units,
            index_read: c.index_read_units,
            index_write: c.index_write_units,
        }
    }

    fn scaled(self, k: f64) -> Self {
        Self {
            read: self.read * k,
            write: self.write * k,
            index_read: self.index_read * k,
            index_write: self.index_write * k,
        }
    }

    fn plus(self, o: Self) -> Self {
        Self {
            read: self.read + o.read,
            write: self.write + o.write,
            index_read: self.index_read + o.index_read,
            index_write: self.index_write + o.index_write,
        }
    }
}

/// One route's load at the peak.
struct RouteLoad {
    route: &'static str,
    function: &'static str,
    per_person: f64,
    /// A code displayed (render or scan).
    display: bool,
    units: Units,
    s3_puts: f64,
    s3_gets: f64,
}

fn routes(inputs: &Inputs, mix: &Mix) -> Vec<RouteLoad> {
    let u = |op: &str| Units::of(inputs.units(op));
    // A tube is opened by its first person; the others take a place in it.
    let opens = 1.0 / mix.people_per_tube;
    let registration = u("registration (opens the tube)")
        .scaled(opens)
        .plus(u("registration (a tube already open)").scaled(1.0 - opens));
    // A lab row costs a base and a part per person in the tube (measured at 1 and 2).
    let single = u("lab row (a single tube)");
    let per_person = u("lab row (a pooled tube holding 2 people)").plus(single.scaled(-1.0));
    let lab_row = single.plus(per_person.scaled(mix.people_per_tube - 1.0));
    let verify = u("verify: start").plus(u("verify: complete"));
    // A person's shows fall within one hour (the queue, the table): the first writes the
    // access-log entry, the others find the hour recorded.
    let first_shows = (1.0 / mix.renders).min(1.0);
    let render = u("render (the first show of the hour: the access log)")
        .scaled(first_shows)
        .plus(u("render (again within the hour)").scaled(1.0 - first_shows));
    let route = |route, function, per_person, units, s3_puts, s3_gets| RouteLoad {
        route,
        function,
        per_person,
        display: matches!(function, "RenderFunction" | "ScanFunction"),
        units,
        s3_puts,
        s3_gets,
    };
    vec![
        route(
            "GET /relatives/{binding_id}/code",
            "RenderFunction",
            mix.renders,
            render,
            0.0,
            0.0,
        ),
        route(
            "POST /checkpoints/scan",
            "ScanFunction",
            mix.scans,
            u("scan"),
            0.0,
            0.0,
        ),
        route(
            "POST /checkpoints/samples",
            "SamplesFunction",
            mix.registrations,
            registration,
            0.0,
            0.0,
        ),
        route(
            "POST /lab/results (per row)",
            "LabResultsFunction",
            mix.registrations / mix.people_per_tube,
            lab_row,
            0.0,
            0.0,
        ),
        route(
            "GET /relatives/{binding_id}/results",
            "ResultsFunction",
            mix.result_polls,
            u("results page"),
            0.0,
            0.0,
        ),
        route(
            "GET /relatives/{binding_id}/access-log",
            "AccessLogFunction",
            mix.access_log_reads,
            u("access log page"),
            0.0,
            0.0,
        ),
        route(
            "GET /relatives",
            "ListFunction",
            mix.lists,
            u("list"),
            0.0,
            0.0,
        ),
        route(
            "POST /relatives/{binding_id}/offline-code",
            "OfflineFunction",
            mix.offline_cards,
            u("offline card: issue"),
            1.0,
            0.0,
        ),
        // The download itself is the client's GET on S3 (a presigned link).
        route(
            "GET /relatives/{binding_id}/offline-code",
            "OfflineFunction",
            mix.offline_cards,
            u("offline card: fetch"),
            0.0,
            1.0,
        ),
        route(
            "POST /relatives",
            "BindFunction",
            mix.new_bindings,
            u("bind"),
            0.0,
            0.0,
        ),
        route(
            "POST /relatives/{binding_id}/verification[/complete]",
            "VerifyFunction",
            mix.new_bindings * 2.0,
            verify.scaled(0.5),
            0.0,
            0.0,
        ),
        route(
            "GET /.well-known/kincode-keys",
            "KeysFunction",
            mix.key_fetches,
            u("published keys"),
            0.0,
            0.0,
        ),
    ]
}

fn fmt(x: f64) -> String {
    let rounded = if x >= 100.0 {
        x.round()
    } else if x >= 10.0 {
        (x * 10.0).round() / 10.0
    } else {
        (x * 100.0).round() / 100.0
    };
    let s = format!("{rounded}");
    // Thousands separators on the integer part.
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{grouped}.{f}"),
        None => grouped,
    }
}

/// The whole model, as the Markdown `docs/capacity.md` carries between its markers.
pub fn report(inputs: &Inputs, scenarios: &[Scenario]) -> String {
    let mut out = String::new();
    let shards = f64::from(kincode_common::domain::EXPIRY_SHARDS);
    let _ = writeln!(
        out,
        "Inputs: units per operation from `docs/capacity-units.json`; warm durations from \
         `docs/bench-functions.json` (measured {}); memory sizes from `template.yaml`; \
         {} expiry-index shards.\n",
        inputs.bench.measured_at.get(..10).unwrap_or_default(),
        shards
    );
    let _ = writeln!(
        out,
        "#### Units per operation (measured)\n\n\
         | operation | DynamoDB calls | table reads | table writes | index reads | index writes |\n\
         | --- | --- | ---: | ---: | ---: | ---: |"
    );
    for (operation, c) in &inputs.units {
        let _ = writeln!(
            out,
            "| {operation} | {} | {} | {} | {} | {} |",
            c.calls.join(", "),
            fmt(c.table_read_units),
            fmt(c.table_write_units),
            fmt(c.index_read_units),
            fmt(c.index_write_units)
        );
    }
    out.push('\n');
    for scenario in scenarios {
        scenario_report(&mut out, inputs, scenario, shards);
    }
    out
}

fn scenario_report(out: &mut String, inputs: &Inputs, s: &Scenario, shards: f64) {
    let people_rate = s.peak_people_per_second();
    let _ = writeln!(out, "### {}\n", s.name);
    let displays = match s.displays_per_second {
        Some(d) => format!(
            " Codes are displayed (rendered or scanned) {} times a second.",
            fmt(d)
        ),
        None => String::new(),
    };
    let m = &s.mix;
    let _ = writeln!(
        out,
        "{} people in {} h, the peak hour at {}× the mean rate: **{} people tested a second** \
         at the peak.{displays} Per person tested: renders {}, scans {}, registrations {} (tubes \
         of {}), result polls {}, lists {}, offline cards {}, new bindings {}, access-log pages {}; \
         a person's renders fall within one hour, so one of them writes the access log.\n",
        fmt(s.people),
        s.hours,
        s.peak_factor,
        fmt(people_rate),
        m.renders,
        m.scans,
        m.registrations,
        m.people_per_tube,
        m.result_polls,
        m.lists,
        m.offline_cards,
        m.new_bindings,
        m.access_log_reads,
    );
    let _ = writeln!(
        out,
        "| route | requests/s | Lambda concurrency | table reads/s | table writes/s | index reads/s | index writes/s |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut total = Units::default();
    let (mut rps_total, mut concurrency_total, mut puts, mut gets) = (0.0, 0.0, 0.0, 0.0);
    let mut lambda_cost = 0.0;
    let mut per_function: BTreeMap<&str, f64> = BTreeMap::new();
    for r in routes(inputs, &s.mix) {
        let rps = s.peak_rate(r.per_person, r.display);
        let figures = inputs.function(r.function);
        let concurrency = rps * figures.warm_p50_ms / 1000.0;
        let units = r.units.scaled(rps);
        total = total.plus(units);
        rps_total += rps;
        concurrency_total += concurrency;
        *per_function.entry(r.function).or_default() += concurrency;
        puts += rps * r.s3_puts;
        gets += rps * r.s3_gets;
        let memory_gb = inputs
            .template
            .function_memory_mb(r.function)
            .unwrap_or(128) as f64
            / 1024.0;
        // Per person tested, over the whole round.
        lambda_cost += rps / people_rate
            * (price::LAMBDA_PER_MILLION_REQUESTS / 1e6
                + memory_gb * figures.warm_p50_ms.ceil() / 1000.0 * price::LAMBDA_PER_GB_SECOND);
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} | {} |",
            r.route,
            fmt(rps),
            fmt(concurrency),
            fmt(units.read),
            fmt(units.write),
            fmt(units.index_read),
            fmt(units.index_write)
        );
    }
    let _ = writeln!(
        out,
        "| **all routes** | **{}** | **{}** | **{}** | **{}** | **{}** | **{}** |\n",
        fmt(rps_total),
        fmt(concurrency_total),
        fmt(total.read),
        fmt(total.write),
        fmt(total.index_read),
        fmt(total.index_write)
    );

    // The cleanup's own index reads are a few hundred queries an hour: not at the peak.
    let per_shard = total.index_write / shards;
    let busiest_function = per_function
        .iter()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(f, c)| (*f, *c))
        .unwrap_or_default();
    let checks = [
        (
            "HTTP API requests/s (account, Region)",
            rps_total,
            quota::HTTP_API_RPS,
        ),
        (
            "Lambda concurrency (Region)",
            concurrency_total,
            quota::LAMBDA_CONCURRENCY,
        ),
        (
            "Lambda scale-out of the busiest function from cold, environments per 10 s",
            busiest_function.1,
            quota::LAMBDA_SCALING_PER_10_S,
        ),
        (
            "DynamoDB table writes/s at once, new on-demand table (`TableWarmWriteUnits`)",
            total.write,
            quota::ON_DEMAND_NEW_TABLE_WRITES,
        ),
        (
            "DynamoDB table reads/s at once, new on-demand table (`TableWarmReadUnits`)",
            total.read,
            quota::ON_DEMAND_NEW_TABLE_READS,
        ),
        (
            "`by_expiry` writes/s at once, new index (`ExpiryIndexWarmWriteUnits`)",
            total.index_write,
            quota::ON_DEMAND_NEW_TABLE_WRITES,
        ),
        (
            "DynamoDB table writes/s (per-table quota)",
            total.write,
            quota::TABLE_UNITS,
        ),
        (
            "DynamoDB table reads/s (per-table quota)",
            total.read,
            quota::TABLE_UNITS,
        ),
        (
            "`by_expiry` writes/s on one shard (one partition)",
            per_shard,
            quota::PARTITION_WRITES,
        ),
        (
            "`by_expiry` writes/s if it were not sharded (one partition)",
            total.index_write,
            quota::PARTITION_WRITES,
        ),
        (
            "S3 PUTs/s (the `offline/` prefix)",
            puts,
            quota::S3_PUTS_PER_PREFIX,
        ),
        (
            "S3 GETs/s (the `offline/` prefix)",
            gets,
            quota::S3_GETS_PER_PREFIX,
        ),
    ];
    let _ = writeln!(out, "| limit (default) | peak need | limit | use |");
    let _ = writeln!(out, "| --- | ---: | ---: | ---: |");
    for (name, need, limit) in checks {
        let share = need / limit;
        let mark = if share > 1.0 { " **over**" } else { "" };
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {}%{mark} |",
            fmt(need),
            fmt(limit),
            fmt(share * 100.0)
        );
    }
    let people_million = 1e6;
    let per_person_units = total.scaled(1.0 / people_rate);
    let dynamodb = (per_person_units.write + per_person_units.index_write) * people_million / 1e6
        * price::DYNAMODB_PER_MILLION_WRITE_UNITS
        + (per_person_units.read + per_person_units.index_read) * people_million / 1e6
            * price::DYNAMODB_PER_MILLION_READ_UNITS;
    let requests_per_person = rps_total / people_rate;
    let http = requests_per_person * price::HTTP_API_PER_MILLION_REQUESTS;
    let lambda = lambda_cost * people_million;
    let s3 = (puts / people_rate * price::S3_PER_THOUSAND_PUTS
        + gets / people_rate * price::S3_PER_THOUSAND_GETS)
        * people_million
        / 1000.0;
    let _ = writeln!(
        out,
        "\nCost per million people tested (USD, on-demand, us-east-1 prices): Lambda {}, \
         HTTP API {}, DynamoDB {}, S3 requests {}: **{}** ({} requests per person). \
         The whole round: USD {}.\n",
        fmt(lambda),
        fmt(http),
        fmt(dynamodb),
        fmt(s3),
        fmt(lambda + http + dynamodb + s3),
        fmt(requests_per_person),
        fmt((lambda + http + dynamodb + s3) * s.people / people_million)
    );
}

/// Replaces what lies between `<!-- capacity:begin -->` and `<!-- capacity:end -->`.
pub fn splice(document: &str, generated: &str) -> Option<String> {
    const BEGIN: &str = "<!-- capacity:begin -->\n";
    const END: &str = "<!-- capacity:end -->";
    let start = document.find(BEGIN)? + BEGIN.len();
    let end = document.find(END)?;
    Some(format!(
        "{}{generated}{}",
        &document[..start],
        &document[end..]
    ))
}
