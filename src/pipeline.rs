//! `run`: the one path data takes, ingest → stage → marts → audit → publish.
//! Each stage is a module; this file only wires them together and records
//! what happened.

use std::time::Instant;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::audit::{self, Gate};
use crate::config::Pipeline;
use crate::engine::DuckDb;
use crate::error::{Error, Result};
use crate::format::{hex, iso_seconds};
use crate::ingest::{self, Http, Incremental, InputFile, Inputs};
use crate::lake::Lake;
use crate::marts::{self, Mart, Window};
use crate::metrics::Metrics;
use crate::publish::{self, Export, Finish, Sink};
use crate::settings::{Places, RunSettings};
use crate::stage::{self, StageCounts, WriteMode};
use crate::state::{ModelRecord, RunRecord, RunState};

/// What a run did, for the summary and the exit code.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub window: Window,
    pub inputs: Vec<InputFile>,
    /// Per staging model, and their sum.
    pub models: Vec<(String, StageCounts)>,
    pub counts: StageCounts,
    pub marts: Vec<Mart>,
    pub gate: Gate,
    pub published: bool,
    pub places: Places,
    /// Where each incremental source's cursor went.
    pub cursors: Vec<(String, ingest::Cursor)>,
    /// What each source's schema contract did.
    pub schema_changes: Vec<(String, ingest::Changes)>,
    /// Where each mart is published (or would have been).
    pub exports: Vec<Export>,
    /// The version each Delta table is at, by location, once published.
    pub versions: Vec<(String, u64)>,
    /// Where the staging layer is: the model's file, or the layer's
    /// directory when there are several models.
    pub staged: String,
}

/// Runs `pipeline` with the given settings.
pub(crate) fn run(settings: &RunSettings, pipeline: &Pipeline, metrics: &Metrics) -> Result<Outcome> {
    let started_at = Utc::now();
    let run_id = run_id(started_at);
    let window = Window {
        as_of: settings.as_of,
        lookback_days: settings.lookback_days,
    };
    let name = pipeline.spec.pipeline.as_str();
    let _run = tracing::info_span!("run", pipeline = name, as_of = %iso_seconds(window.as_of)).entered();
    // Everything the user configured is checked before any data is read.
    let sources = pipeline.sources();
    if !settings.inputs.is_empty() && sources.len() > 1 {
        return Err(Error::InputForManySources {
            count: sources.len(),
            names: sources.iter().map(|s| s.name.clone()).collect(),
        });
    }
    let checks = audit::selected_checks(&settings.checks, pipeline)?;
    let vars = pipeline.vars(&settings.vars)?;
    let mut files = Vec::new();
    if let Some(model) = pipeline
        .spec
        .staging
        .iter()
        .find(|m| settings.skip_ingest && m.write == WriteMode::Append)
    {
        return Err(Error::ReplayAppends {
            model: model.name.clone(),
        });
    }
    for (source, spec) in sources.iter().zip(&pipeline.spec.sources) {
        files.push(match &source.http {
            _ if settings.skip_ingest => Inputs::Lake,
            Some(http) if settings.inputs.is_empty() => {
                let env = |name: &str| std::env::var(name).ok();
                Inputs::Http(Box::new(Http::new(&source.name, http, &vars, &env)?))
            }
            Some(_) => {
                return Err(Error::InputForHttpSource {
                    source_name: source.name.clone(),
                });
            }
            None => Inputs::Files(ingest::resolve(&pipeline.inputs(spec, &settings.inputs), source)?),
        });
    }
    let mut state = RunState::open(&settings.places.db)?;
    // An incremental source reads on from the last published run: from its
    // cursor, or past the files it read.
    for (source, inputs) in sources.iter().zip(files.iter_mut()) {
        match inputs {
            Inputs::Http(http) => {
                let last = match settings.full_refresh {
                    true => None,
                    false => state.cursor(&source.name)?,
                };
                if let Some(cursor) = source.cursor(last.as_deref()) {
                    http.set_cursor(cursor);
                }
            }
            Inputs::Files(_) if settings.full_refresh => {}
            Inputs::Files(all) => {
                if let Some(changed) = source.incremental.as_ref().and_then(Incremental::files) {
                    let (unread, skipped) =
                        ingest::unread(std::mem::take(all), &state.published_inputs()?, changed)?;
                    if skipped > 0 {
                        tracing::info!(
                            "source `{}`: {skipped} files read by earlier runs skipped",
                            source.name
                        );
                    }
                    *all = unread;
                }
            }
            Inputs::Lake => {}
        }
    }
    let out = &settings.places.output_dir;
    std::fs::create_dir_all(out).map_err(|e| Error::io("create directory", out, e))?;
    let mut lake = Lake::open(&settings.places.lake)?;
    let data_dir = lake.dir.clone();
    let removed = lake.remove_unfinished(&run_id)?;
    if removed > 0 {
        tracing::info!(
            objects = removed,
            "removed the files of runs cut off before their manifest from `{}`",
            lake.location()
        );
    }

    let spill = data_dir.join(".duckdb_tmp");
    // Under the lock, no other run's temp files are in flight. A publish cut
    // off after its commit is finished first: its staged files are temp files.
    for publish::Settled {
        run_id,
        target,
        outcome,
    } in publish::finish_interrupted(&state)?
    {
        match outcome {
            Finish::Renamed => {
                tracing::warn!("run {run_id} was cut off after its commit: its `{target}` is now in place")
            }
            Finish::AlreadyInPlace => {
                tracing::info!("run {run_id} was cut off after putting `{target}` in place")
            }
            Finish::Lost => tracing::warn!(
                "run {run_id} was cut off after its commit and its staged `{target}` is gone: \
                 the file keeps an earlier run's rows until a run publishes it"
            ),
        }
    }
    // A model kept across runs goes on from the last published run's version;
    // the versions of failed or superseded runs are removed.
    let mut kept = Vec::new();
    for model in &pipeline.spec.staging {
        if model.write == WriteMode::Replace {
            kept.push(None);
            continue;
        }
        let published = state.model_version(&model.name)?;
        let dir = data_dir.join("staging").join(&model.name);
        let path = published.as_ref().map(|(_, p)| data_dir.join(p));
        stage::remove_old_versions(&dir, path.as_deref());
        if let Some((run, path)) = published.as_ref().filter(|_| !settings.full_refresh) {
            lake.fetch_version(&model.name, run, path)?;
        }
        kept.push(if settings.full_refresh { None } else { published });
    }
    // `--skip-ingest` from a lake in object storage: the newest layer's raw files.
    let mut replayed = Vec::new();
    if settings.skip_ingest {
        for source in &sources {
            replayed.push(lake.fetch_raw(&source.name)?);
        }
    }
    let removed = publish::remove_leftovers(&[&settings.places.output_dir, &data_dir], &spill);
    if removed > 0 {
        tracing::info!(files = removed, "removed temp files an interrupted run left");
    }
    let engine =
        DuckDb::open(Some(&settings.memory_limit), Some(&spill)).map_err(Error::engine("starting DuckDB"))?;

    let show = settings.progress;
    let total_bytes = files.iter().map(Inputs::size).sum();
    let bar = crate::progress::ingest(total_bytes, show);
    let step = Stage::start("ingest", metrics);
    let mut inputs = Vec::new();
    let mut cursors = Vec::new();
    let mut schema_changes = Vec::new();
    let mut raw_rows = 0;
    for (i, (source, files)) in sources.iter().zip(&files).enumerate() {
        let mut ingested = ingest::land(
            &engine,
            source,
            files,
            &data_dir.join("raw"),
            &iso_seconds(started_at),
            &bar,
        )?;
        // A replayed layer's provenance is where it is kept, not the working copy.
        if let Some(Some(url)) = replayed.get(i) {
            for file in &mut ingested.files {
                file.path = url.into();
            }
        }
        metrics.rows("raw", &source.name, ingested.rows);
        raw_rows += ingested.rows;
        inputs.extend(ingested.files);
        for ((change, action, _), rows) in &ingested.notes.changes.0 {
            metrics.schema_change(&source.name, change.as_str(), action.as_str(), *rows);
        }
        if !ingested.notes.changes.0.is_empty() {
            schema_changes.push((source.name.clone(), ingested.notes.changes));
        }
        if let Some(cursor) = ingested.cursor {
            if cursor.older > 0 {
                tracing::info!(
                    "source `{}`: {} records older than the cursor dropped",
                    source.name,
                    cursor.older
                );
            }
            cursors.push((source.name.clone(), cursor));
        }
    }
    bar.finish_and_clear();
    tracing::info!(
        stage = "ingest",
        rows = raw_rows,
        files = inputs.len(),
        seconds = step.done(raw_rows)
    );

    // Staging and the checks read the raw layer's files, not the tables.
    for source in &sources {
        ingest::serve_from_lake(&engine, source, &data_dir.join("raw"))?;
    }

    let step = Stage::start("stage", metrics);
    let spinner = crate::progress::spinner("staging: parse, quarantine, deduplicate (DuckDB)", show);
    let mut models = Vec::new();
    let mut versions = Vec::new();
    for ((model, sql), current) in pipeline.spec.staging.iter().zip(&pipeline.staging_sql).zip(&kept) {
        let sql = crate::sql::expand_params(sql, window.as_of, window.start());
        let mut staging = staging_model(pipeline, model, &sql);
        let version =
            (model.write != WriteMode::Replace).then(|| format!("staging/{}/{run_id}.parquet", model.name));
        staging.keep = version.as_ref().map(|version| stage::Keep {
            mode: model.write,
            primary_key: &model.primary_key,
            order_by: model.order_by.as_deref(),
            delete_when: model.delete_when.as_deref(),
            current: current.as_ref().map(|(_, c)| data_dir.join(c)),
            next: data_dir.join(version),
        });
        let counts = stage::stage(
            &engine,
            &staging,
            &data_dir.join("staging"),
            &settings.places.output_dir.join("quarantine"),
        )?;
        versions.push(version);
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
    let staged = match (pipeline.spec.staging.as_slice(), versions.as_slice()) {
        ([_], [Some(version)]) => version.clone(),
        ([model], _) if !model.partition_by.is_empty() => format!("staging/{}/", model.name),
        ([model], _) => format!("staging/{}.parquet", model.name),
        _ => "staging".into(),
    };
    let kept = audit::test_kept_rows(&engine, window.as_of, window.start(), &checks);
    // Staging SQL is trusted like sluice.yaml; what runs from here on (mart
    // filters, checks) may touch only the lake, the outputs and the
    // directories the engine writes Parquet exports to.
    let exports = exports(pipeline, &settings.places.output_dir);
    let mut allowed = vec![data_dir.as_path(), settings.places.output_dir.as_path()];
    allowed.extend(exports.iter().filter_map(|e| match &e.sink {
        Sink::Parquet { path } => path.parent(),
        Sink::Sqlite { .. } | Sink::Csv { .. } | Sink::Delta(_) => None,
    }));
    engine
        .restrict_files(&allowed)
        .map_err(Error::engine("restricting file access"))?;
    // Raw rows once per source (models may share one); the rest per model.
    let counts = StageCounts {
        raw: raw_rows,
        ..StageCounts::sum(models.iter().map(|(_, c)| c))
    };
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
        settings.pass_rows,
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
        window.as_of,
        window.start(),
        &settings.places.output_dir.join("failed_rows"),
        &state.history(window.as_of)?,
        &kept,
    )?;
    let gate = Gate {
        audit: checked,
        fail_on_warn: settings.gate.fail_on_warn,
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
        run_id: run_id.clone(),
        pipeline: name.into(),
        as_of: window.as_of,
        lookback_days: window.lookback_days,
        started_at,
        status: if gate.passed() { "passed" } else { "gate_failed" },
        counts: counts.clone(),
        models: pipeline
            .spec
            .staging
            .iter()
            .zip(&models)
            .zip(versions)
            .map(|((spec, (name, c)), version)| ModelRecord {
                name: name.clone(),
                source: pipeline.source_of(spec).to_string(),
                counts: c.clone(),
                version,
            })
            .collect(),
        inputs: inputs.clone(),
        cursors: cursors.clone(),
        schema_changes: schema_changes.clone(),
        git_sha: git_sha(),
        config_hash: config_hash(pipeline, window.lookback_days, &checks),
        checks: gate.audit.outcomes.clone(),
    };

    let step = Stage::start("publish", metrics);
    // The layers first: a published run's layer is always in the lake.
    if let Some(manifest) = lake.commit(&run_id, record.status)? {
        tracing::info!("the run's raw and staging layers are in the lake: `{manifest}`");
    }
    let unpublished = out.join("unpublished");
    let publishing = !settings.gate.no_publish && (gate.passed() || settings.gate.publish_on_failure);
    let mut versions = Vec::new();
    if publishing {
        versions = publish::publish(&mut state, &engine, &marts, &exports, &record)?;
        // Candidates of an earlier failed run are no longer news.
        let _ = std::fs::remove_dir_all(&unpublished);
    } else {
        publish::record_unpublished(&mut state, &record)?;
        publish::write_unpublished(&marts, &unpublished)?;
    }
    for (source, cursor) in &cursors {
        let reached = if publishing { cursor.after } else { cursor.before };
        if let Some(seconds) = reached.and_then(|c| c.seconds()) {
            metrics.cursor(source, seconds);
        }
    }
    if let Some(retain) = pipeline.lake_retention().filter(|_| lake.is_remote()) {
        // The layers later runs and re-audits read stay.
        let mut keep: Vec<String> = state.last_published()?.map(|r| r.run_id).into_iter().collect();
        for model in &pipeline.spec.staging {
            keep.extend(state.model_version(&model.name)?.map(|(run, _)| run));
        }
        match lake.apply_retention(retain, &keep, Utc::now()) {
            Ok(removed) if !removed.is_empty() => tracing::info!(
                "removed the layers of {} earlier runs from `{}` (lake.retain)",
                removed.len(),
                lake.location()
            ),
            Ok(_) => {}
            // Only space: the run's outcome stands.
            Err(e) => tracing::warn!("could not apply the lake's retention: {e}"),
        }
    }
    tracing::info!(
        stage = "publish",
        published = publishing,
        seconds = step.done(if publishing { mart_rows } else { 0 })
    );

    let as_of = iso_seconds(window.as_of);
    audit::write_reports(&gate, out, &record.run_id, &as_of, publishing)?;

    Ok(Outcome {
        window,
        inputs,
        models,
        counts,
        published: publishing,
        marts,
        gate,
        places: settings.places.clone(),
        cursors,
        schema_changes,
        exports,
        versions,
        staged: lake.show(&run_id, &staged),
    })
}

/// A staging model of the pipeline to run, with its script as `sql` (the
/// run's parameters filled in).
fn staging_model<'a>(
    pipeline: &'a Pipeline,
    model: &'a crate::config::StagingSpec,
    sql: &'a str,
) -> stage::Model<'a> {
    stage::Model {
        name: &model.name,
        source: pipeline.source_of(model),
        sql,
        file: &model.sql,
        reasons: &model.reasons,
        keep: None,
        partition_by: model.partition_by.iter().map(|c| c.0.as_str()).collect(),
    }
}

/// The run's path over empty inputs, to report before any data is read what
/// a run would find wrong: every staging script runs on empty raw tables of
/// the declared columns, every mart is planned against the tables they
/// make (its columns and their types), and every check runs over the empty
/// layers (a check naming a column or table that is not there).
pub(crate) fn compile(pipeline: &Pipeline, checks: &[crate::checks::Check]) -> Result<()> {
    let engine = DuckDb::open(None, None).map_err(Error::engine("starting DuckDB"))?;
    let window = Window {
        as_of: Utc::now(),
        lookback_days: pipeline
            .spec
            .lookback_days
            .unwrap_or(crate::settings::LOOKBACK_DAYS),
    };
    let scratch =
        tempfile::tempdir().map_err(|e| Error::io("create a temp directory in", std::env::temp_dir(), e))?;
    // Empty raw layers, read as a run reads them: a view of each file.
    let raw_dir = scratch.path().join("raw");
    for source in pipeline.sources() {
        ingest::create_raw_table(&engine, &source)?;
        ingest::write_raw_layer(&engine, &source, &raw_dir, &iso_seconds(window.as_of))?;
        ingest::serve_from_lake(&engine, &source, &raw_dir)?;
    }
    for (model, sql) in pipeline.spec.staging.iter().zip(&pipeline.staging_sql) {
        let sql = crate::sql::expand_params(sql, window.as_of, window.start());
        stage::run_script(&engine, &staging_model(pipeline, model, &sql))?;
    }
    marts::build(
        &engine,
        pipeline,
        window.as_of,
        window.lookback_days,
        marts::PASS_ROWS,
    )?;
    let audit = audit::audit(
        &engine,
        checks,
        window.as_of,
        window.start(),
        scratch.path(),
        &crate::checks::engine::History::new(),
        &audit::test_kept_rows(&engine, window.as_of, window.start(), checks),
    )?;
    // Only what is wrong in a check's SQL; its verdict on no rows means nothing.
    let errors: Vec<crate::yaml::ConfigError> = audit
        .outcomes
        .iter()
        .filter_map(|o| {
            let message = o.message.as_deref()?;
            let class = crate::engine::classify(message.split_once("DuckDB: ").map_or(message, |(_, m)| m));
            let in_the_sql = matches!(
                class,
                crate::engine::ErrorClass::Syntax | crate::engine::ErrorClass::Binding
            );
            in_the_sql.then(|| crate::yaml::ConfigError {
                file: o.check.file.clone(),
                line: o.check.line,
                key: o.check.name.clone(),
                message: message.to_string(),
            })
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Checks { errors })
    }
}

/// Every sink of every mart, by the mart's index in file order (the order
/// `marts::build` returns them in); files and local Delta tables under `output_dir`.
pub(crate) fn exports(pipeline: &Pipeline, output_dir: &std::path::Path) -> Vec<Export> {
    let mut exports = Vec::new();
    for (i, mart) in pipeline.marts.iter().enumerate() {
        let e = pipeline.exports_of(&mart.name);
        let tables = e.sqlite.into_iter().map(|table| Sink::Sqlite { table });
        let csv = e.csv.iter().map(|f| Sink::Csv {
            path: output_dir.join(f),
        });
        let parquet = e.parquet.iter().map(|f| Sink::Parquet {
            path: output_dir.join(f),
        });
        let delta = e.delta.iter().map(|d| {
            Sink::Delta(publish::delta::Table {
                location: match crate::object::is_remote(&d.path) {
                    true => d.path.clone(),
                    false => output_dir.join(&d.path).display().to_string(),
                },
                schema: d.schema,
                // Checked with the configuration.
                retain: d
                    .retain
                    .as_deref()
                    .and_then(|r| crate::lake::Retain::parse(r).ok()),
            })
        });
        exports.extend(
            tables
                .chain(csv)
                .chain(parquet)
                .chain(delta)
                .map(|sink| Export { mart: i, sink }),
        );
    }
    exports
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
