//! The command line, mirrored one to one by clap. Every run flag also reads an
//! environment variable (docs/operations.md); flags win over the environment.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "sluice",
    version,
    about = "Batch ETL with data-quality gates: CSV, NDJSON or Parquet in, DuckDB staging, Polars marts, SQLite + CSV out.",
    after_help = "Examples:\n  sluice demo                                  generate demo data into input/ and run the job\n  sluice run --input 'landing/*.csv' --db state/agg_result.db\n  sluice generate --rows 1000000 --out input/events.csv.gz --defects all=0.01\n  sluice init && sluice validate                 write the default pipeline out to edit, then check it"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log lines on stderr as text or JSON (one object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "SLUICE_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline: ingest, stage, marts, audit, publish.
    Run(RunArgs),
    /// Generate demo events ending now into the input directory, then run the job.
    Demo(DemoArgs),
    /// Write deterministic synthetic events, optionally with planted defects.
    Generate(GenerateArgs),
    /// Re-audit what is published (marts in the database, the lake when present) without running the job.
    Check(CheckArgs),
    /// Validate sluice.yaml and the checks (every error in every file at once) without reading data.
    Validate(ValidateArgs),
    /// Print the JSON Schema of sluice.yaml (or of a checks file), for editors and CI linters.
    Schema(SchemaArgs),
    /// Write the default pipeline (sluice.yaml, its SQL and checks) out to edit.
    Init(InitArgs),
}

/// The pipeline and where a run's results live: shared by `run`, `demo` and `check`.
#[derive(Debug, Clone, Args)]
pub struct PlacesArgs {
    /// The pipeline file. Default: `sluice.yaml` if it exists, else the built-in default pipeline.
    #[arg(long, env = "SLUICE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// SQLite database the marts are published to.
    #[arg(long, env = "SLUICE_DB", default_value = "agg_result.db", value_name = "PATH")]
    pub db: PathBuf,

    /// Directory for CSV exports, the quarantine, reports and failing-row samples.
    #[arg(long, env = "SLUICE_OUTPUT_DIR", default_value = "output", value_name = "DIR")]
    pub output_dir: PathBuf,

    /// The lake of raw and staging Parquet files: a directory or
    /// `s3://bucket/prefix`. Default: `lake.path` in sluice.yaml, else `data`.
    #[arg(long, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub places: PlacesArgs,

    /// Directory of checks/*.yaml. Default: `checks/` if it exists, else the built-in checks.
    #[arg(long, env = "SLUICE_CHECKS_DIR", value_name = "DIR")]
    pub checks_dir: Option<PathBuf>,

    /// Run only these checks: a check name, a table or `tag:<tag>`.
    #[arg(long, env = "SLUICE_SELECT", value_delimiter = ',', value_name = "SELECTOR")]
    pub select: Vec<String>,

    /// "Now" for freshness and windows. Default: the last published run's as_of.
    #[arg(long, value_parser = parse_timestamp, value_name = "TIMESTAMP")]
    pub as_of: Option<DateTime<Utc>>,

    /// Window length. Default: the last published run's.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500), value_name = "DAYS")]
    pub lookback_days: Option<u32>,

    /// A warning fails the re-audit too.
    #[arg(long, env = "SLUICE_FAIL_ON_WARN")]
    pub fail_on_warn: bool,

    /// Re-audit each mart exported to Delta Lake from its table's current
    /// version (the others from the database).
    #[arg(long)]
    pub delta: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    /// The pipeline file. Default: `sluice.yaml` if it exists, else the built-in default pipeline.
    #[arg(long, env = "SLUICE_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Directory of checks/*.yaml. Default: `checks/` if it exists, else the built-in checks.
    #[arg(long, env = "SLUICE_CHECKS_DIR", value_name = "DIR")]
    pub checks_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// Which file's schema.
    #[arg(value_enum, default_value = "config")]
    pub what: SchemaKind,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SchemaKind {
    /// `sluice.yaml`, the pipeline.
    Config,
    /// A `checks/*.yaml` file.
    Checks,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Directory to write `sluice.yaml`, `sql/staging/events.sql` and `checks/events.yaml` into.
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Input: a file, a directory or a glob (repeatable). Default: the source's
    /// `path` in sluice.yaml, else `input`.
    #[arg(long, env = "SLUICE_INPUT", value_name = "PATH")]
    pub input: Vec<String>,

    /// A variable of the pipeline (`vars` in sluice.yaml), as `name=value`
    /// (repeatable; comma-separated in the environment): `--var org=duckdb`.
    #[arg(long = "var", env = "SLUICE_VARS", value_delimiter = ',', value_parser = parse_var, value_name = "NAME=VALUE")]
    pub vars: Vec<(String, String)>,

    #[command(flatten)]
    pub places: PlacesArgs,

    /// The run's "now" (RFC 3339); the marts window ends here. Default: now.
    #[arg(long, env = "SLUICE_AS_OF", value_parser = parse_timestamp, value_name = "TIMESTAMP")]
    pub as_of: Option<DateTime<Utc>>,

    /// Days in the marts window: as_of - days < event_time <= as_of. Default:
    /// `lookback_days` in sluice.yaml, else 30.
    #[arg(long, env = "SLUICE_LOOKBACK_DAYS",
          value_parser = clap::value_parser!(u32).range(1..=36500), value_name = "DAYS")]
    pub lookback_days: Option<u32>,

    /// Stage, compute and audit the raw layer an earlier run left in the lake
    /// (`data/raw/`) instead of reading the sources: no file is read, no API called.
    #[arg(long, env = "SLUICE_SKIP_INGEST", conflicts_with_all = ["input", "full_refresh"])]
    pub skip_ingest: bool,

    /// Read incremental sources from their start (`initial`), as if no run
    /// had published before; their cursors move on from there if this run publishes.
    #[arg(long, env = "SLUICE_FULL_REFRESH")]
    pub full_refresh: bool,

    /// Compute and audit, but publish nothing (pull requests): candidates go to
    /// output/unpublished/ and the exit code is the gate's.
    #[arg(long, env = "SLUICE_NO_PUBLISH")]
    pub no_publish: bool,

    /// Directory of checks/*.yaml. Default: `checks/` if it exists, else the built-in checks.
    #[arg(long, env = "SLUICE_CHECKS_DIR", value_name = "DIR")]
    pub checks_dir: Option<PathBuf>,

    /// Run only these checks: a check name, a table (`staging.events`) or `tag:<tag>`.
    #[arg(long, env = "SLUICE_SELECT", value_delimiter = ',', value_name = "SELECTOR")]
    pub select: Vec<String>,

    /// A warning fails the gate too (exit 1, nothing published).
    #[arg(long, env = "SLUICE_FAIL_ON_WARN")]
    pub fail_on_warn: bool,

    /// Publish even when the gate fails (the exit code is still 1).
    #[arg(long, env = "SLUICE_PUBLISH_ON_FAILURE", conflicts_with = "no_publish")]
    pub publish_on_failure: bool,

    /// Run, and publish, with no checks at all. Without it, an empty or
    /// missing checks directory is an error (exit 2), never a silent ungated publish.
    #[arg(long, env = "SLUICE_ALLOW_UNGATED")]
    pub allow_ungated: bool,

    /// Memory DuckDB may use before it spills to `<data-dir>/.duckdb_tmp` (`512MB`, `2GB`, `4GiB`).
    /// The default keeps a 10M-row run under 2 GiB in all (bench/run.sh).
    #[arg(long, env = "SLUICE_MEMORY_LIMIT", default_value = "1500MB", value_parser = parse_memory, value_name = "SIZE")]
    pub memory_limit: String,

    /// Most rows handed from DuckDB to the marts per pass. Above it the handoff
    /// runs in passes over hash partitions of a group key or `count_distinct`
    /// column, so Polars holds one partition's groups and distinct values at a time.
    #[arg(long, env = "SLUICE_PASS_ROWS", default_value_t = crate::marts::PASS_ROWS,
          value_parser = clap::value_parser!(u64).range(1..), value_name = "ROWS")]
    pub pass_rows: u64,

    /// Draw no progress bars (they are drawn only when stderr is a terminal).
    #[arg(long, env = "SLUICE_NO_PROGRESS")]
    pub no_progress: bool,

    /// Prometheus Pushgateway to push the run's metrics to (basic auth from
    /// SLUICE_PUSHGATEWAY_USERNAME and SLUICE_PUSHGATEWAY_PASSWORD).
    #[arg(long, env = "SLUICE_PUSHGATEWAY_URL", value_name = "URL")]
    pub pushgateway_url: Option<String>,

    /// Give up on the push after this long (`10s`, `1m`); a failed push is only a warning.
    #[arg(long, env = "SLUICE_PUSH_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub push_timeout: std::time::Duration,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Rows of demo data to generate.
    #[arg(long, default_value_t = 100_000)]
    pub rows: u64,

    /// Seed of the demo data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Number of events (before planted duplicates).
    #[arg(long)]
    pub rows: u64,

    /// File to write: `.csv` or `.ndjson`/`.jsonl`, compressed if it ends `.gz` or `.zst`
    /// (parent directories are created).
    #[arg(long, value_name = "PATH")]
    pub out: PathBuf,

    /// Seed: the same seed, rows and options write the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Timestamp of the newest event (RFC 3339). Default: now.
    #[arg(long, value_parser = parse_timestamp, value_name = "TIMESTAMP")]
    pub end: Option<DateTime<Utc>>,

    /// Events are spread over this many days before --end.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36500))]
    pub days: u32,

    /// Planted defects as kind=rate pairs, e.g. `null_user=0.01,dup_event=0.005` or `all=0.01`.
    #[arg(long, default_value = "", value_name = "LIST")]
    pub defects: String,
}

/// A size DuckDB understands: a number and a unit such as `MB`, `GB` or `GiB`.
pub fn parse_memory(s: &str) -> Result<String, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let units = ["B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB"];
    if number.parse::<f64>().is_ok_and(|n| n > 0.0) && units.contains(&unit.trim()) {
        Ok(format!("{number}{}", unit.trim()))
    } else {
        Err(format!("`{s}` is not a size such as `512MB` or `2GB`"))
    }
}

/// `name=value`, for `--var`.
fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => Ok((name.trim().to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not `name=value`")),
    }
}

/// Accepts RFC 3339 (`2026-11-20T13:05:00Z`) or a bare date (midnight UTC).
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    Err(format!(
        "`{s}` is not an RFC 3339 timestamp such as 2026-11-20T13:05:00Z"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_to_utc() {
        let t = parse_timestamp("2026-11-20T15:05:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-20T13:05:00+00:00");
        let d = parse_timestamp("2026-11-20").unwrap();
        assert_eq!(d.to_rfc3339(), "2026-11-20T00:00:00+00:00");
        assert!(parse_timestamp("yesterday").is_err());
        assert_eq!(parse_memory("2GB").unwrap(), "2GB");
        assert_eq!(parse_memory("512 MiB").unwrap(), "512MiB");
        assert!(parse_memory("lots").is_err() && parse_memory("2 parsecs").is_err());
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
