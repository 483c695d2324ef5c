//! The settings a command runs with, resolved in this one place from the
//! command line and the environment (clap reads both; a flag wins) and then
//! `sluice.yaml`, then the defaults. The library takes these plain types and
//! never clap's.

use std::path::PathBuf;

use chrono::{DateTime, SubsecRound, Utc};

use crate::cli::{CheckArgs, PlacesArgs, RunArgs};
use crate::config::Pipeline;
use crate::lake::Location;
use crate::metrics::PushConfig;

/// The window's length when neither a flag nor `sluice.yaml` gives one.
pub(crate) const LOOKBACK_DAYS: u32 = 30;

/// Where a run's results live (the pipeline file is read by the command).
#[derive(Debug, Clone)]
pub(crate) struct Places {
    pub db: PathBuf,
    pub output_dir: PathBuf,
    /// The raw and staging layers (`--data-dir`, `lake.path`).
    pub lake: Location,
}

/// Which checks gate a run.
#[derive(Debug, Clone, Default)]
pub(crate) struct CheckSelection {
    /// `None`: as `sluice.yaml` says, else `checks/`, else the built-in checks.
    pub dir: Option<PathBuf>,
    /// Check names, tables or `tag:<tag>`; empty for all.
    pub select: Vec<String>,
    /// No checks at all is allowed (an ungated publish), not an error.
    pub allow_ungated: bool,
}

/// What a run does with the gate's verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct GatePolicy {
    /// A warning fails the gate too.
    pub fail_on_warn: bool,
    /// Compute and audit only.
    pub no_publish: bool,
    /// Publish even when the gate fails.
    pub publish_on_failure: bool,
}

/// One `sluice run`.
#[derive(Debug, Clone)]
pub(crate) struct RunSettings {
    pub places: Places,
    /// Files, directories or globs of the one source; empty: each source's `path`.
    pub inputs: Vec<String>,
    /// `--var name=value`: values for the pipeline's `vars`.
    pub vars: Vec<(String, String)>,
    /// Read incremental sources from their start, ignoring their cursors.
    pub full_refresh: bool,
    /// Replay the lake's raw layer instead of reading the sources.
    pub skip_ingest: bool,
    /// The run's "now", to the second as the run record keeps it, so a
    /// re-audit reproduces the run.
    pub as_of: DateTime<Utc>,
    pub lookback_days: u32,
    pub checks: CheckSelection,
    pub gate: GatePolicy,
    /// DuckDB's memory limit (`1500MB`).
    pub memory_limit: String,
    /// Most rows handed to the marts per pass.
    pub pass_rows: u64,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
    /// Where metrics are pushed, if anywhere.
    pub push: Option<PushConfig>,
}

/// One `sluice check` (a re-audit of what is published).
#[derive(Debug, Clone)]
pub(crate) struct CheckSettings {
    pub places: Places,
    pub checks: CheckSelection,
    /// `None`: the last published run's.
    pub as_of: Option<DateTime<Utc>>,
    /// `None`: the last published run's.
    pub lookback_days: Option<u32>,
    pub fail_on_warn: bool,
    /// Marts exported to Delta are read from their tables.
    pub delta: bool,
}

impl Places {
    pub(crate) fn new(args: &PlacesArgs, pipeline: &Pipeline) -> Places {
        Places {
            db: args.db.clone(),
            output_dir: args.output_dir.clone(),
            lake: pipeline.lake(args.data_dir.as_deref()),
        }
    }
}

impl RunSettings {
    /// A run's settings: flags and environment first, then `pipeline`, then
    /// the defaults. Pushgateway credentials come from the environment only
    /// (`SLUICE_PUSHGATEWAY_USERNAME`, `SLUICE_PUSHGATEWAY_PASSWORD`), so they
    /// are never on a command line.
    pub(crate) fn new(args: &RunArgs, pipeline: &Pipeline) -> RunSettings {
        RunSettings {
            places: Places::new(&args.places, pipeline),
            inputs: args.input.clone(),
            vars: args.vars.clone(),
            full_refresh: args.full_refresh,
            skip_ingest: args.skip_ingest,
            as_of: args.as_of.unwrap_or_else(Utc::now).trunc_subsecs(0),
            lookback_days: args
                .lookback_days
                .or(pipeline.spec.lookback_days)
                .unwrap_or(LOOKBACK_DAYS),
            checks: CheckSelection {
                dir: args.checks_dir.clone(),
                select: args.select.clone(),
                allow_ungated: args.allow_ungated,
            },
            gate: GatePolicy {
                fail_on_warn: args.fail_on_warn,
                no_publish: args.no_publish,
                publish_on_failure: args.publish_on_failure,
            },
            memory_limit: args.memory_limit.clone(),
            pass_rows: args.pass_rows,
            progress: crate::progress::enabled(args.no_progress),
            push: args.pushgateway_url.as_ref().map(|url| PushConfig {
                url: url.clone(),
                pipeline: pipeline.spec.pipeline.clone(),
                timeout: args.push_timeout,
                auth: std::env::var("SLUICE_PUSHGATEWAY_USERNAME").ok().map(|user| {
                    (
                        user,
                        std::env::var("SLUICE_PUSHGATEWAY_PASSWORD").unwrap_or_default(),
                    )
                }),
            }),
        }
    }
}

impl CheckSettings {
    pub(crate) fn new(args: &CheckArgs, pipeline: &Pipeline) -> CheckSettings {
        CheckSettings {
            places: Places::new(&args.places, pipeline),
            checks: CheckSelection {
                dir: args.checks_dir.clone(),
                select: args.select.clone(),
                // A re-audit publishes nothing: with no checks it has nothing to say.
                allow_ungated: true,
            },
            as_of: args.as_of,
            lookback_days: args.lookback_days,
            fail_on_warn: args.fail_on_warn,
            delta: args.delta,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use clap::Parser;

    fn run_settings(flags: &[&str], pipeline: &Pipeline) -> RunSettings {
        let mut argv = vec!["sluice", "run"];
        argv.extend_from_slice(flags);
        let cli = crate::cli::Cli::try_parse_from(argv).expect("valid flags");
        let crate::cli::Command::Run(args) = cli.command else {
            panic!("a run")
        };
        RunSettings::new(&args, pipeline)
    }

    #[test]
    fn a_flag_wins_over_sluice_yaml_which_wins_over_the_default() {
        let mut pipeline = Pipeline::built_in().unwrap();
        assert_eq!(run_settings(&[], &pipeline).lookback_days, LOOKBACK_DAYS);
        pipeline.spec.lookback_days = Some(7);
        assert_eq!(run_settings(&[], &pipeline).lookback_days, 7);
        let flagged = run_settings(
            &["--lookback-days", "3", "--as-of", "2026-11-20T13:05:00.7Z"],
            &pipeline,
        );
        assert_eq!(flagged.lookback_days, 3);
        assert_eq!(flagged.as_of.to_rfc3339(), "2026-11-20T13:05:00+00:00");
        assert!(flagged.push.is_none());
        let pushed = run_settings(&["--pushgateway-url", "http://127.0.0.1:9091"], &pipeline);
        let push = pushed.push.expect("a push");
        assert_eq!(
            (push.pipeline.as_str(), push.timeout),
            ("default", Duration::from_secs(10))
        );
    }
}
