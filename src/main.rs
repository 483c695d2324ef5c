//! Parse the command line, run one command, print the error chain once and
//! turn the outcome into the exit code of docs/contract.md ("Exit codes").

use std::process::ExitCode;

use chrono::Utc;
use clap::Parser;
use std::time::Instant;

use sluice::cli::{Cli, Command, DemoArgs, GenerateArgs, RunArgs, SchemaKind};
use sluice::config::Pipeline;
use sluice::error::{Error, ExitStatus};
use sluice::metrics::{self, Metrics, PushConfig};
use sluice::{generate, pipeline};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = sluice::telemetry::init(cli.log_format);
    let status = match run(cli.command) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("error: {err}");
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            err.exit_status()
        }
    };
    telemetry.shutdown();
    ExitCode::from(status as u8)
}

fn run(command: Command) -> Result<ExitStatus, Error> {
    match command {
        Command::Run(args) => job(&args),
        Command::Demo(args) => demo(args),
        Command::Check(args) => {
            let recheck = sluice::recheck::run(&args)?;
            print!("{}", recheck.summary());
            Ok(if recheck.gate.passed() {
                ExitStatus::Success
            } else {
                ExitStatus::GateFailed
            })
        }
        Command::Validate(args) => {
            let pipeline = Pipeline::load(args.config.as_deref())?;
            let checks = sluice::audit::load_checks(args.checks_dir.as_deref(), &pipeline)?;
            let files: std::collections::BTreeSet<&str> = checks.iter().map(|c| c.file.as_str()).collect();
            let spec = &pipeline.spec;
            let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
            println!(
                "ok: pipeline `{}` in {}: {}, {}, {}; {} in {}",
                spec.pipeline,
                pipeline.file,
                count(spec.sources.len(), "source"),
                count(spec.staging.len(), "staging model"),
                count(spec.marts.len(), "mart"),
                count(checks.len(), "check"),
                count(files.len(), "file")
            );
            Ok(ExitStatus::Success)
        }
        Command::Init(args) => {
            for path in sluice::config::init(&args.dir)? {
                println!("wrote {}", path.display());
            }
            println!("next: edit sluice.yaml, then `sluice validate` and `sluice run`");
            Ok(ExitStatus::Success)
        }
        Command::Schema(args) => {
            let schema = match args.what {
                SchemaKind::Config => sluice::config::schema(),
                SchemaKind::Checks => sluice::checks::spec::schema(),
            };
            println!(
                "{}",
                serde_json::to_string_pretty(&schema).expect("JSON values serialise")
            );
            Ok(ExitStatus::Success)
        }
        Command::Generate(args) => {
            let planted = generate_file(&args)?;
            print!("{}", planted.summary());
            Ok(ExitStatus::Success)
        }
    }
}

/// One run of the job. Its metrics are exported whatever the outcome, a
/// failed gate or an error included.
fn job(args: &RunArgs) -> Result<ExitStatus, Error> {
    let pipeline = Pipeline::load(args.places.config.as_deref())?;
    let metrics = Metrics::new();
    let clock = Instant::now();
    let result = pipeline::run(args, &pipeline, &metrics);
    let (status, published) = match &result {
        Ok(outcome) if outcome.gate.passed() => (ExitStatus::Success, outcome.published),
        Ok(outcome) => (ExitStatus::GateFailed, outcome.published),
        Err(err) => (err.exit_status(), false),
    };
    if let Ok(outcome) = &result {
        print!("{}", outcome.summary());
    }
    metrics.finish(status as u8, Utc::now(), clock.elapsed(), published);
    let push_to = args.pushgateway_url.as_ref().map(|url| PushConfig {
        url: url.clone(),
        pipeline: pipeline.spec.pipeline.clone(),
        timeout: args.push_timeout,
        auth: std::env::var("SLUICE_PUSHGATEWAY_USERNAME").ok().map(|user| {
            (
                user,
                std::env::var("SLUICE_PUSHGATEWAY_PASSWORD").unwrap_or_default(),
            )
        }),
    });
    metrics::export(
        &metrics,
        &args.places.output_dir,
        push_to.as_ref(),
        status == ExitStatus::Success && published,
    );
    result.map(|_| status)
}

/// Demo data: a little of every defect that staging handles, ending now.
const DEMO_DEFECTS: &str = "null_event_id=0.001,bad_time=0.002,null_user=0.001,bad_amount=0.002,malformed=0.001,dup_event=0.005,conflict_event=0.002";

fn demo(args: DemoArgs) -> Result<ExitStatus, Error> {
    sluice::state::check_path(&args.run.places.db)?;
    // The demo writes into the input directory (or the input file) the run reads.
    let input = std::path::PathBuf::from(args.run.input.first().map_or("input", String::as_str));
    let out = if sluice::ingest::detect(&input).is_some() {
        input
    } else {
        input.join("demo_events.csv")
    };
    let planted = generate_file(&GenerateArgs {
        rows: args.rows,
        out,
        seed: args.seed,
        end: Some(Utc::now()),
        days: 30,
        defects: DEMO_DEFECTS.to_string(),
    })?;
    print!("{}", planted.summary());
    job(&args.run)
}

fn generate_file(args: &GenerateArgs) -> Result<generate::Planted, Error> {
    generate::generate(
        &args.out,
        &generate::Options {
            rows: args.rows,
            seed: args.seed,
            end: args.end.unwrap_or_else(Utc::now),
            days: args.days,
            defects: generate::parse_defects(&args.defects)?,
        },
    )
}
