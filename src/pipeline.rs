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
use crate::config::Pipeline;
use crate::engine::DuckDb;
use crate::error::{Error, Result};
use crate::format::{format_cents, hex, iso_seconds};
use crate::ingest::{self, InputFile};
use crate::marts::{self, Mart, Window};
use crate::metrics::Metrics;
use crate::publish::{self, Export, Sink};
use crate::stage::{self, StageCounts};
use crate::state::{RunRecord, RunState};

/// What a run did, for the summary and the exit code.
#[derive(Debug)]
pub struct Outcome {
    pub run_id: String,
    pub pipeline: String,
    pub window: Window,
    pub inputs: Vec<InputFile>,
    /// Per staging model, and their sum.
    pub models: Vec<(String, StageCounts)>,
    pub counts: StageCounts,
    pub marts: Vec<Mart>,
    pub gate: Gate,
    pub published: bool,
    pub places: Places,
    /// The CSV exports, relative to the output directory.
    pub csv_exports: Vec<String>,
}

/// Runs `pipeline` with the given settings.
pub fn run(args: &RunArgs, pipeline: &Pipeline, metrics: &Metrics) -> Result<Outcome> {
    let started_at = Utc::now();
    let window = Window {
        // To the second, as `_sluice_runs` records it, so `sluice check` reproduces the run.
        as_of: chrono::SubsecRound::trunc_subsecs(args.as_of.unwrap_or(started_at), 0),
        lookback_days: args.lookback_days.or(pipeline.spec.lookback_days).unwrap_or(30),
    };
    let name = pipeline.spec.pipeline.as_str();
    let _run = tracing::info_span!("run", pipeline = name, as_of = %iso_seconds(window.as_of)).entered();
    // Everything the user configured is checked before any data is read.
    let sources = pipeline.sources();
    if !args.input.is_empty() && sources.len() > 1 {
        return Err(Error::InputForManySources {
            count: sources.len(),
            names: sources.iter().map(|s| s.name.clone()).collect(),
        });
    }
    let checks = audit::selected_checks(args.checks_dir.as_deref(), pipeline, &args.select)?;
    let mut files = Vec::new();
    for (source, spec) in sources.iter().zip(&pipeline.spec.sources) {
        files.push(ingest::resolve_inputs(
            &pipeline.inputs(spec, &args.input),
            source,
        )?);
    }
    let mut state = RunState::open(&args.places.db)?;
    for dir in [&args.places.output_dir, &args.places.data_dir] {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }

    let spill = args.places.data_dir.join(".duckdb_tmp");
    let engine =
        DuckDb::open(Some(&args.memory_limit), Some(&spill)).map_err(Error::engine("starting DuckDB"))?;

    let show = crate::progress::enabled(args.no_progress);
    let total_bytes = files
        .iter()
        .flatten()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let bar = crate::progress::ingest(total_bytes, show);
    let step = Stage::start("ingest", metrics);
    let mut inputs = Vec::new();
    let mut raw_rows = 0;
    for (source, files) in sources.iter().zip(&files) {
        let ingested = ingest::land(
            &engine,
            source,
            files,
            &args.places.data_dir.join("raw"),
            &iso_seconds(started_at),
            &bar,
        )?;
        metrics.rows("raw", &source.name, ingested.rows);
        raw_rows += ingested.rows;
        inputs.extend(ingested.files);
    }
    bar.finish_and_clear();
    tracing::info!(
        stage = "ingest",
        rows = raw_rows,
        files = inputs.len(),
        seconds = step.done(raw_rows)
    );

    let step = Stage::start("stage", metrics);
    let spinner = crate::progress::spinner("staging: parse, quarantine, deduplicate (DuckDB)", show);
    let mut models = Vec::new();
    for (model, sql) in pipeline.spec.staging.iter().zip(&pipeline.staging_sql) {
        let counts = stage::stage(
            &engine,
            &stage::Model {
                name: &model.name,
                source: pipeline.source_of(model),
                sql,
                file: &model.sql,
                reasons: &model.reasons,
            },
            &args.places.data_dir.join("staging"),
            &args.places.output_dir.join("quarantine"),
        )?;
        metrics.rows("staging", &model.name, counts.staged);
        metrics.rows(
            "staging",
            &format!("{}_quarantine", model.name),
            counts.quarantined_total(),
        );
        for (reason, n) in &counts.quarantined {
            metrics.quarantined(&format!("staging.{}", model.name), reason, *n);
        }
        models.push((model.name.clone(), counts));
    }
    for source in &sources {
        ingest::serve_from_lake(&engine, source, &args.places.data_dir.join("raw"))?;
    }
    let counts = StageCounts::sum(models.iter().map(|(_, c)| c));
    spinner.finish_and_clear();
    tracing::info!(
        stage = "stage",
        rows = counts.staged,
        quarantined = counts.quarantined_total(),
        duplicates = counts.duplicates,
        seconds = step.done(counts.staged)
    );

    let step = Stage::start("marts", metrics);
    let marts = marts::build(
        &engine,
        pipeline,
        window.as_of,
        window.lookback_days,
        args.pass_rows,
    )?;
    for mart in &marts {
        metrics.rows("marts", &mart.name, mart.frame.height() as u64);
    }
    let mart_rows: u64 = marts.iter().map(|m| m.frame.height() as u64).sum();
    tracing::info!(
        stage = "marts",
        marts = marts.len(),
        seconds = step.done(mart_rows)
    );

    let step = Stage::start("audit", metrics);
    let checked = audit::audit(
        &engine,
        &checks,
        &marts,
        window.as_of,
        window.start(),
        &args.places.output_dir.join("failed_rows"),
        &state.history(window.as_of)?,
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
        pipeline: name.into(),
        as_of: window.as_of,
        lookback_days: window.lookback_days,
        started_at,
        status: if gate.passed() { "passed" } else { "gate_failed" },
        counts: counts.clone(),
        inputs: inputs.clone(),
        git_sha: git_sha(),
        config_hash: config_hash(pipeline, window.lookback_days, &checks),
        checks: gate.audit.outcomes.clone(),
    };

    let step = Stage::start("publish", metrics);
    let out = &args.places.output_dir;
    let unpublished = out.join("unpublished");
    let publishing = !args.no_publish && (gate.passed() || args.publish_on_failure);
    let mut exports = Vec::new();
    let mut csv_exports = Vec::new();
    for (i, mart) in marts.iter().enumerate() {
        let e = pipeline.exports_of(&mart.name);
        let sinks = e.sqlite.into_iter().map(|table| Sink::Sqlite { table });
        let csv = e.csv.iter().map(|f| Sink::Csv { path: out.join(f) });
        let parquet = e.parquet.iter().map(|f| Sink::Parquet { path: out.join(f) });
        exports.extend(
            sinks
                .chain(csv)
                .chain(parquet)
                .map(|sink| Export { mart: i, sink }),
        );
        csv_exports.extend(e.csv);
    }
    if publishing {
        publish::publish(&mut state, &engine, &marts, &exports, &record)?;
        // Candidates of an earlier failed run are no longer news.
        let _ = std::fs::remove_dir_all(&unpublished);
    } else {
        publish::record_unpublished(&mut state, &record)?;
        publish::write_unpublished(&marts, &unpublished)?;
    }
    tracing::info!(
        stage = "publish",
        published = publishing,
        seconds = step.done(if publishing { mart_rows } else { 0 })
    );

    let as_of = iso_seconds(window.as_of);
    audit::write_reports(&gate, out, &record.run_id, &as_of, publishing)?;

    Ok(Outcome {
        run_id: record.run_id,
        pipeline: name.into(),
        window,
        inputs,
        models,
        counts,
        published: publishing,
        marts,
        gate,
        places: args.places.clone(),
        csv_exports,
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

/// Identifies the logic of a run: the pipeline and its SQL, the window and the checks.
fn config_hash(pipeline: &Pipeline, lookback_days: u32, checks: &[crate::checks::Check]) -> String {
    let mut h = Sha256::new();
    h.update(pipeline.hash.as_bytes());
    h.update(format!("lookback_days={lookback_days}").as_bytes());
    h.update(format!("{checks:?}").as_bytes());
    hex(&h.finalize())
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
                show(&self.model_file(&self.places.output_dir.join("quarantine"), "csv"))
            );
        }
        s += &format!("\n  duplicates   {:>10}\n", c.duplicates);
        s += &format!(
            "  staged       {:>10}  -> {}\n",
            c.staged,
            show(&self.model_file(&self.places.data_dir.join("staging"), "parquet"))
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
        let mut targets = vec![show(&self.places.db)];
        targets.extend(
            self.csv_exports
                .iter()
                .map(|f| show(&self.places.output_dir.join(f))),
        );
        if self.published {
            s += &format!(
                "published: {} ({}), {}\n",
                targets[0],
                sizes.join(", "),
                targets[1..].join(", ")
            );
        } else {
            s += &format!(
                "not published: the marts in {} are unchanged; candidates ({}) in {}\n",
                targets.join(" and "),
                sizes.join(", "),
                show(&self.places.output_dir.join("unpublished"))
            );
        }
        s
    }

    /// A model's file in `dir` when there is one model, else `dir` itself.
    fn model_file(&self, dir: &Path, extension: &str) -> std::path::PathBuf {
        match self.models.as_slice() {
            [(name, _)] => dir.join(format!("{name}.{extension}")),
            _ => dir.to_path_buf(),
        }
    }
}

fn show(path: &Path) -> String {
    format!("`{}`", path.display())
}

/// The first five rows of `top_users` as a small table.
fn top_five(top: &Mart) -> String {
    if top.scale("total_amount") != Some(2) {
        return String::new();
    }
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
        "top users ({} of {}):\n  rank     user_id   total_amount   events\n",
        f.height().min(5),
        f.height()
    );
    for i in 0..f.height().min(5) {
        s += &format!(
            "  {:>4}  {:>10}  {:>13}  {:>7}\n",
            rank.get(i).unwrap_or_default(),
            user.get(i).map_or_else(|| "null".into(), |u| u.to_string()),
            total.get(i).map_or_else(String::new, format_cents),
            events.get(i).unwrap_or_default()
        );
    }
    s
}
