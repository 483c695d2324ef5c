//! `sluice run` and `sluice demo`: one run of the job, its metrics exported
//! whatever the outcome, and the summary printed after it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;

use super::generate::generate_file;
use crate::checks::report;
use crate::cli::{DemoArgs, GenerateArgs, RunArgs};
use crate::config::Pipeline;
use crate::error::{ExitStatus, Result};
use crate::format::iso_seconds;
use crate::ingest::CursorValue;
use crate::marts::Mart;
use crate::metrics::{self, Metrics};
use crate::pipeline::{self, Outcome};
use crate::publish::{self, Sink};
use crate::settings::RunSettings;

/// One run of the job. Its metrics are exported whatever the outcome, a
/// failed gate or an error included.
pub(super) fn run(args: &RunArgs) -> Result<ExitStatus> {
    let pipeline = Pipeline::load(args.places.config.as_deref())?;
    let settings = RunSettings::new(args, &pipeline);
    let metrics = Metrics::new();
    let clock = Instant::now();
    let result = pipeline::run(&settings, &pipeline, &metrics);
    let (status, published) = match &result {
        Ok(outcome) if outcome.gate.passed() => (ExitStatus::Success, outcome.published),
        Ok(outcome) => (ExitStatus::GateFailed, outcome.published),
        Err(err) => (err.exit_status(), false),
    };
    if let Ok(outcome) = &result {
        print!("{}", summary(outcome));
    }
    metrics.finish(status as u8, Utc::now(), clock.elapsed(), published);
    metrics::export(
        &metrics,
        &settings.places.output_dir,
        settings.push.as_ref(),
        status == ExitStatus::Success && published,
    );
    result.map(|_| status)
}

/// Demo data: a little of every defect that staging handles, ending now.
const DEMO_DEFECTS: &str = "null_event_id=0.001,bad_time=0.002,null_user=0.001,bad_amount=0.002,malformed=0.001,dup_event=0.005,conflict_event=0.002";

/// Generates demo events ending now into the input the run reads, then runs.
pub(super) fn demo(args: &DemoArgs) -> Result<ExitStatus> {
    crate::state::check_path(&args.run.places.db)?;
    // The demo writes into the input directory (or the input file) the run reads.
    let input = PathBuf::from(args.run.input.first().map_or("input", String::as_str));
    let out = if crate::ingest::detect(&input).is_some() {
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
    run(&args.run)
}

/// The human summary printed to stdout after a run.
fn summary(o: &Outcome) -> String {
    let c = &o.counts;
    let pages = o
        .inputs
        .iter()
        .filter(|i| {
            i.path
                .to_str()
                .is_some_and(|p| p.starts_with("http://") || p.starts_with("https://"))
        })
        .count();
    let counted = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let read = match (o.inputs.len() - pages, pages) {
        (_, 0) => counted(o.inputs.len(), "file"),
        (0, pages) => counted(pages, "page"),
        (files, pages) => format!("{} and {}", counted(files, "file"), counted(pages, "page")),
    };
    let mut s = format!(
        "sluice: {} rows from {read}; window {} .. {} ({} days)\n",
        c.raw,
        iso_seconds(o.window.start()),
        iso_seconds(o.window.as_of),
        o.window.lookback_days,
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
            show(&model_file(o, &o.places.output_dir.join("quarantine"), "csv"))
        );
    }
    s += &format!("\n  duplicates   {:>10}\n", c.duplicates);
    s += &format!("  staged       {:>10}  -> `{}`\n", c.staged, o.staged);
    if o.models.len() > 1 {
        // Each model accounts for its source's rows on its own.
        let width = o.models.iter().map(|(m, _)| m.len()).max().unwrap_or(0).max(5);
        s += &format!(
            "  {:<width$}  {:>10}  {:>11}  {:>10}  {:>10}\n",
            "model", "raw", "quarantined", "duplicates", "staged"
        );
        for (model, m) in &o.models {
            s += &format!(
                "  {model:<width$}  {:>10}  {:>11}  {:>10}  {:>10}\n",
                m.raw,
                m.quarantined_total(),
                m.duplicates,
                m.staged
            );
        }
    }

    for (source, changes) in &o.schema_changes {
        for ((change, action, columns), rows) in &changes.0 {
            s += &format!(
                "  schema       {source}: {} {} ({columns}): {rows} row{}\n",
                change.as_str().replace('_', " "),
                action.as_str(),
                if *rows == 1 { "" } else { "s" }
            );
        }
    }
    for (source, cursor) in &o.cursors {
        let text = |v: Option<CursorValue>| v.map_or_else(|| "start".to_string(), |v| v.text());
        s += &format!(
            "  cursor       {source}: {} -> {}{}{}\n",
            text(cursor.before),
            text(cursor.after),
            match cursor.older {
                0 => String::new(),
                n => format!(" ({n} older record{} dropped)", if n == 1 { "" } else { "s" }),
            },
            if o.published {
                ""
            } else {
                "; not moved: nothing was published"
            }
        );
    }
    s += &report::table(&o.gate.audit);
    if o.gate.passed() {
        s += "gate: passed\n";
    } else {
        let [_, warn, fail, error] = report::counts(&o.gate.audit);
        s += &match (o.gate.fail_on_warn, fail + error) {
            (true, 0) => format!("gate: FAILED ({warn} warn, with --fail-on-warn)\n"),
            _ => format!("gate: FAILED ({fail} fail, {error} error)\n"),
        };
    }

    if let Some(first) = o.marts.first() {
        s += &preview(first);
    }
    let sizes: Vec<String> = o
        .marts
        .iter()
        .map(|m| format!("{} {} rows", m.name, m.frame.height()))
        .collect();
    let mut targets = vec![show(&o.places.db)];
    targets.extend(o.exports.iter().filter_map(|e| match &e.sink {
        Sink::Csv { path } => Some(show(path)),
        Sink::Delta(table) => Some(match o.versions.iter().find(|(t, _)| t == &table.location) {
            Some((_, version)) => format!("Delta `{}` version {version}", table.location),
            None => format!("Delta `{}`", table.location),
        }),
        Sink::Sqlite { .. } | Sink::Parquet { .. } => None,
    }));
    if o.published {
        s += &format!("published: {} ({})", targets[0], sizes.join(", "));
        for target in &targets[1..] {
            s += &format!(", {target}");
        }
        s += "\n";
    } else {
        s += &format!(
            "not published: the marts in {} are unchanged; candidates ({}) in {}\n",
            targets.join(" and "),
            sizes.join(", "),
            show(&o.places.output_dir.join("unpublished"))
        );
    }
    s
}

/// A model's file in `dir` when there is one model, else `dir` itself.
fn model_file(o: &Outcome, dir: &Path, extension: &str) -> PathBuf {
    match o.models.as_slice() {
        [(name, _)] => dir.join(format!("{name}.{extension}")),
        _ => dir.to_path_buf(),
    }
}

fn show(path: &Path) -> String {
    format!("`{}`", path.display())
}

/// The first rows of a mart as its CSV writes them, at most five rows and
/// four columns, each right-aligned under its name.
fn preview(mart: &Mart) -> String {
    let Ok((names, rows)) = publish::text_rows(mart, 5) else {
        return String::new();
    };
    let shown = names.len().min(4);
    let widths: Vec<usize> = (0..shown)
        .map(|c| rows.iter().map(|r| r[c].len()).fold(names[c].len(), usize::max))
        .collect();
    let line = |cells: &[String]| {
        let cells: Vec<String> = (0..shown)
            .map(|c| format!("{:>w$}", cells[c], w = widths[c]))
            .collect();
        format!("  {}\n", cells.join("   "))
    };
    let mut s = format!(
        "{} ({} of {}):\n",
        mart.name.replace('_', " "),
        rows.len(),
        mart.frame.height()
    );
    s += &line(&names);
    for row in &rows {
        s += &line(row);
    }
    s
}
