//! `scripts/capacity`: the capacity model of a testing round (`kincode_tools::capacity_model`),
//! for the worked scenarios of `docs/capacity.md` or one of your own.

use clap::Parser;
use kincode_tools::capacity_model::{self, Inputs, Mix, Scenario};

#[derive(Parser)]
#[command(about = "The capacity model of a city-wide testing round")]
struct Args {
    /// People tested in the round (with --hours: your own scenario instead of the worked ones).
    #[arg(long, requires = "hours")]
    people: Option<f64>,
    /// Hours the round takes.
    #[arg(long, requires = "people")]
    hours: Option<f64>,
    /// The peak hour's rate over the round's mean rate.
    #[arg(long, default_value_t = 3.0)]
    peak_factor: f64,
    /// People per tube (10 for 10-in-1 pooling, 1 for single tubes).
    #[arg(long)]
    people_per_tube: Option<f64>,
    /// Result polls per person.
    #[arg(long)]
    result_polls: Option<f64>,
    /// Codes displayed (renders and scans) a second at the peak, if the city shows more than
    /// the round does.
    #[arg(long)]
    displays_per_second: Option<f64>,
    /// Rewrite the model's part of docs/capacity.md.
    #[arg(long)]
    write_docs: bool,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let root = kincode_tests::repo_root();
    let inputs = Inputs::load(&root)?;
    let scenarios = match (args.people, args.hours) {
        (Some(people), Some(hours)) => {
            let mut mix = Mix::testing_round();
            mix.people_per_tube = args.people_per_tube.unwrap_or(mix.people_per_tube);
            mix.result_polls = args.result_polls.unwrap_or(mix.result_polls);
            vec![Scenario {
                name: format!("{people} people in {hours} h"),
                people,
                hours,
                peak_factor: args.peak_factor,
                mix,
                displays_per_second: args.displays_per_second,
            }]
        }
        _ => Scenario::worked(),
    };
    let report = capacity_model::report(&inputs, &scenarios);
    if args.write_docs {
        let path = root.join("docs/capacity.md");
        let document = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let spliced = capacity_model::splice(&document, &report)
            .ok_or("docs/capacity.md has no capacity:begin/end markers")?;
        std::fs::write(&path, spliced).map_err(|e| e.to_string())?;
    }
    print!("{report}");
    Ok(())
}
