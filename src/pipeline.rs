//! `run`: the one path data takes, ingest → stage → marts → audit → publish.
//! Each stage is a module; this file only wires them together and records
//! what happened.

use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::audit::{self, Gate};
use crate::checks::report;
use crate::cli::{Places, RunArgs};
use crate::error::{Error, Result};
use crate::handoff;
use crate::ingest::{self, InputFile};
use crate::marts::{self, Mart, Window};
use crate::metrics::Metrics;
use crate::publish::{self, Db, RunRecord, iso_seconds};
use crate::stage::{self, StageCounts};

/// What a run did, for the summary and the exit code.
#[derive(Debug)]
pub struct Outcome {
    pub run_id: String,
    pub window: Window,
    pub inputs: Vec<InputFile>,
    pub counts: StageCounts,
    pub marts: Vec<Mart>,
    pub gate: Gate,
    pub published: bool,
    pub places: Places,
}

/// Runs the default pipeline with the given settings.
pub fn run(args: &RunArgs, metrics: &Metrics) -> Result<Outcome> {
    let started_at = Utc::now();
    let window = Window {
        // To the second, as `_sluice_runs` records it, so `sluice check` reproduces the run.
        as_of: chrono::SubsecRound::trunc_subsecs(args.as_of.unwrap_or(started_at), 0),
        lookback_days: args.lookback_days,
    };
    let _run = tracing::info_span!("run", pipeline = "default", as_of = %iso_seconds(window.as_of)).entered();
    // Everything the user configured is checked before any data is read.
    let checks = audit::selected_checks(args.checks_dir.as_deref(), &args.select)?;
    let source = ingest::Source::events();
    let files = ingest::resolve_inputs(&args.input, &source)?;
    let mut db = Db::open(&args.places.db)?;
    for dir in [&args.places.output_dir, &args.places.data_dir] {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }

    let conn = duckdb::Connection::open_in_memory().map_err(Error::duckdb("starting DuckDB"))?;
    let spill = args.places.data_dir.join(".duckdb_tmp");
    conn.execute_batch(&format!(
        "SET temp_directory = {}; SET preserve_insertion_order = false; SET memory_limit = {};",
        crate::sql::path(&spill),
        crate::sql::string(&args.memory_limit)
    ))
    .map_err(Error::duckdb("configuring DuckDB"))?;

    let show = crate::progress::enabled(args.no_progress);
    let total_bytes = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = crate::progress::ingest(total_bytes, show);
    let step = Stage::start("ingest", metrics);
    let ingested = ingest::land(
        &conn,
        &source,
        &files,
        &args.places.data_dir.join("raw"),
        &iso_seconds(started_at),
        &bar,
    )?;
    bar.finish_and_clear();
    tracing::info!(
        stage = "ingest",
        rows = ingested.rows,
        files = files.len(),
        seconds = step.done(ingested.rows)
    );

    let step = Stage::start("stage", metrics);
    let spinner = crate::progress::spinner("staging: parse, quarantine, deduplicate (DuckDB)", show);
    let counts = stage::stage(
        &conn,
        &args.places.data_dir.join("staging"),
        &args.places.output_dir.join("quarantine"),
    )?;
    spinner.finish_and_clear();
    tracing::info!(
        stage = "stage",
        rows = counts.staged,
        quarantined = counts.quarantined_total(),
        duplicates = counts.duplicates,
        seconds = step.done(counts.staged)
    );

    let step = Stage::start("marts", metrics);
    // Only the columns and rows the marts can use cross over; the marts still
    // define their window themselves.
    let staged = handoff::query_polars(
        &conn,
        &format!(
            "SELECT user_id, event_time, region, amount_cents FROM staging.events \
             WHERE event_time > {} AND event_time <= {}",
            crate::sql::timestamp(window.start()),
            crate::sql::timestamp(window.as_of)
        ),
    )?;
    let marts = marts::build(staged, window)?;
    metrics.rows("raw", "events", counts.raw);
    metrics.rows("staging", "events", counts.staged);
    metrics.rows("staging", "events_quarantine", counts.quarantined_total());
    for (reason, n) in &counts.quarantined {
        metrics.quarantined("staging.events", reason, *n);
    }
    for mart in &marts {
        metrics.rows("marts", mart.name, mart.frame.height() as u64);
    }
    let mart_rows: u64 = marts.iter().map(|m| m.frame.height() as u64).sum();
    tracing::info!(
        stage = "marts",
        marts = marts.len(),
        seconds = step.done(mart_rows)
    );

    let step = Stage::start("audit", metrics);
    let checked = audit::audit(
        &conn,
        &checks,
        &marts,
        window.as_of,
        window.start(),
        &args.places.output_dir.join("failed_rows"),
        &db.history(window.as_of)?,
    )?;
    let gate = Gate {
        audit: checked,
        fail_on_warn: args.fail_on_warn,
    };
    metrics.checks(&gate.audit);
    tracing::info!(
        stage = "audit",
        checks = checks.len(),
        queries = gate.audit.queries,
        passed = gate.passed(),
        seconds = step.done(gate.audit.outcomes.len() as u64)
    );
    let record = RunRecord {
        run_id: run_id(started_at),
        pipeline: "default".into(),
        as_of: window.as_of,
        lookback_days: window.lookback_days,
        started_at,
        status: if gate.passed() { "passed" } else { "gate_failed" },
        counts: counts.clone(),
        inputs: ingested.files.clone(),
        git_sha: git_sha(),
        config_hash: config_hash(window.lookback_days, &checks),
        checks: gate.audit.outcomes.clone(),
    };

    let step = Stage::start("publish", metrics);
    let unpublished = args.places.output_dir.join("unpublished");
    let publishing = !args.no_publish && (gate.passed() || args.publish_on_failure);
    if publishing {
        db.publish(&marts, &record)?;
        for mart in marts.iter().filter(|m| m.name == "top_users") {
            publish::write_csv(mart, &args.places.output_dir.join(format!("{}.csv", mart.name)))?;
        }
        db.mark_csv_published(&record.run_id)?;
        // Candidates of an earlier failed run are no longer news.
        let _ = std::fs::remove_dir_all(&unpublished);
    } else {
        db.record_unpublished(&record)?;
        for mart in &marts {
            publish::write_csv(mart, &unpublished.join(format!("{}.csv", mart.name)))?;
        }
    }
    tracing::info!(
        stage = "publish",
        published = publishing,
        seconds = step.done(if publishing { mart_rows } else { 0 })
    );

    let as_of = iso_seconds(window.as_of);
    audit::write_reports(&gate, &args.places.output_dir, &record.run_id, &as_of, publishing)?;

    Ok(Outcome {
        run_id: record.run_id,
        window,
        inputs: ingested.files,
        counts,
        published: publishing,
        marts,
        gate,
        places: args.places.clone(),
    })
}

/// One stage of a run: an OpenTelemetry span (child of the run) while it
/// works; its rows and duration recorded when it is done.
struct Stage<'m> {
    name: &'static str,
    clock: Instant,
    span: tracing::span::EnteredSpan,
    metrics: &'m Metrics,
}

impl<'m> Stage<'m> {
    fn start(name: &'static str, metrics: &'m Metrics) -> Self {
        Stage {
            name,
            clock: Instant::now(),
            span: tracing::info_span!("stage", otel.name = name, rows = tracing::field::Empty).entered(),
            metrics,
        }
    }

    /// Ends the stage (and its span); returns its duration in seconds.
    fn done(self, rows: u64) -> f64 {
        // As i64: OpenTelemetry has no unsigned integers (a u64 would become text).
        self.span.record("rows", i64::try_from(rows).unwrap_or(i64::MAX));
        let seconds = self.clock.elapsed().as_secs_f64();
        self.metrics.stage(self.name, seconds);
        seconds
    }
}

fn run_id(started_at: DateTime<Utc>) -> String {
    format!(
        "{}-{:05}",
        started_at.format("%Y%m%dT%H%M%S%.6fZ"),
        std::process::id() % 100_000
    )
}

/// The commit the run's configuration came from, when CI says so.
fn git_sha() -> Option<String> {
    ["SLUICE_GIT_SHA", "GITHUB_SHA"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Identifies the logic of a run: the staging SQL, the window and the checks.
fn config_hash(lookback_days: u32, checks: &[crate::checks::Check]) -> String {
    let mut h = Sha256::new();
    h.update(stage::EVENTS_SQL.as_bytes());
    h.update(format!("lookback_days={lookback_days}").as_bytes());
    h.update(format!("{checks:?}").as_bytes());
    ingest::hex(&h.finalize())
}

impl Outcome {
    /// The human summary printed to stdout after a run.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let mut s = format!(
            "sluice: {} rows from {} file{}; window {} .. {} ({} days)\n",
            c.raw,
            self.inputs.len(),
            if self.inputs.len() == 1 { "" } else { "s" },
            iso_seconds(self.window.start()),
            iso_seconds(self.window.as_of),
            self.window.lookback_days,
        );
        let reasons: Vec<String> = c
            .quarantined
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{r} {n}"))
            .collect();
        s += &format!("  raw          {:>10}\n", c.raw);
        s += &format!("  quarantined  {:>10}", c.quarantined_total());
        if !reasons.is_empty() {
            s += &format!(
                "  ({}) -> {}",
                reasons.join(", "),
                show(&self.places.output_dir.join("quarantine").join("events.csv"))
            );
        }
        s += &format!("\n  duplicates   {:>10}\n", c.duplicates);
        s += &format!(
            "  staged       {:>10}  -> {}\n",
            c.staged,
            show(&self.places.data_dir.join("staging").join("events.parquet"))
        );

        s += &report::table(&self.gate.audit);
        if self.gate.passed() {
            s += "gate: passed\n";
        } else {
            let [_, warn, fail, error] = report::counts(&self.gate.audit);
            s += &match (self.gate.fail_on_warn, fail + error) {
                (true, 0) => format!("gate: FAILED ({warn} warn, with --fail-on-warn)\n"),
                _ => format!("gate: FAILED ({fail} fail, {error} error)\n"),
            };
        }

        if let Some(top) = self.marts.iter().find(|m| m.name == "top_users") {
            s += &top_five(top);
        }
        let sizes: Vec<String> = self
            .marts
            .iter()
            .map(|m| format!("{} {} rows", m.name, m.frame.height()))
            .collect();
        if self.published {
            s += &format!(
                "published: {} ({}), {}\n",
                show(&self.places.db),
                sizes.join(", "),
                show(&self.places.output_dir.join("top_users.csv"))
            );
        } else {
            s += &format!(
                "not published: the marts in {} and {} are unchanged; candidates ({}) in {}\n",
                show(&self.places.db),
                show(&self.places.output_dir.join("top_users.csv")),
                sizes.join(", "),
                show(&self.places.output_dir.join("unpublished"))
            );
        }
        s
    }
}

fn show(path: &Path) -> String {
    format!("`{}`", path.display())
}

/// The first five rows of `top_users` as a small table.
fn top_five(top: &Mart) -> String {
    let f = &top.frame;
    let get = |name: &str| {
        f.column(name)
            .and_then(|c| c.cast(&polars::prelude::DataType::Int64))
    };
    let (Ok(rank), Ok(user), Ok(total), Ok(events)) =
        (get("rank"), get("user_id"), get("total_amount"), get("events"))
    else {
        return String::new();
    };
    let (Ok(rank), Ok(user), Ok(total), Ok(events)) = (rank.i64(), user.i64(), total.i64(), events.i64())
    else {
        return String::new();
    };
    let mut s = format!(
        "top users (5 of {}):\n  rank     user_id   total_amount   events\n",
        f.height()
    );
    for i in 0..f.height().min(5) {
        s += &format!(
            "  {:>4}  {:>10}  {:>13}  {:>7}\n",
            rank.get(i).unwrap_or_default(),
            user.get(i).map_or_else(|| "null".into(), |u| u.to_string()),
            total.get(i).map_or_else(String::new, publish::format_cents),
            events.get(i).unwrap_or_default()
        );
    }
    s
}
