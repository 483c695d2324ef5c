//! Runs checks with DuckDB SQL over the layer tables (`raw.*`, `staging.*`,
//! `marts.*`). All metric checks on one table are computed in one fused
//! aggregate query; a custom check is its own query. A check that cannot run
//! (unknown table or column, bad SQL) yields `error`, never a crash.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::rules::{Columns, Failing, Plan, Sql, Verdict, table_ref};
use super::spec::{Baseline, Direction};
use super::threshold::{Threshold, Unit};
use super::{Check, HistoryRule};
use crate::engine::DuckDb;
use crate::sql;

/// The one result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Pass,
    Warn,
    Fail,
    /// The check could not run; the gate fails.
    Error,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub check: Check,
    pub status: Status,
    /// In the check's own unit: rows, duplicates, failing rows, or seconds.
    pub observed: Option<f64>,
    /// The failing share of the checked rows, in percent, where it has one.
    pub observed_pct: Option<f64>,
    /// The tier that decided a warn or fail; every tier on a pass.
    pub threshold: String,
    pub failed_rows: Option<u64>,
    pub sample: Option<PathBuf>,
    /// Why an `error` could not run.
    pub message: Option<String>,
}

impl Outcome {
    /// The tier that decided the status: `fail` or `warn`, else none.
    pub(crate) fn severity(&self) -> Option<&'static str> {
        match self.status {
            Status::Fail | Status::Error => Some("fail"),
            Status::Warn => Some("warn"),
            Status::Pass => None,
        }
    }
}

/// Everything the audit found, and how many metric queries it took.
#[derive(Debug, Clone, Default)]
pub(crate) struct Audit {
    pub outcomes: Vec<Outcome>,
    pub queries: usize,
}

pub(crate) struct Context<'a> {
    pub engine: &'a DuckDb,
    pub as_of: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    /// Where failing-row samples go (`output/failed_rows/`).
    pub failed_rows_dir: &'a Path,
    /// Earlier observed values per check, newest first, of runs whose gate passed.
    pub history: &'a History,
    /// What testing the raw rows staging kept found: a check with
    /// `quarantined_in` counts its failing rows there. None: every raw row is
    /// tested, as in a re-audit, whose quarantine is read back from CSV
    /// rather than the table staging wrote.
    pub kept: Option<&'a KeptRows>,
}

/// `(check file, check name)` → earlier observed values, newest first.
pub(crate) type History = std::collections::HashMap<(String, String), Vec<f64>>;

impl Context<'_> {
    /// The SQL context of one check.
    fn sql(&self, c: &Check) -> Sql {
        Sql::new(self.as_of, self.window_start, &c.table, c.filter.as_deref())
    }

    /// Where a check's failing rows are: its quarantine when it is counted
    /// there, else its table.
    fn failing_sql(&self, c: &Check) -> Sql {
        match c.quarantined_in.as_deref().filter(|_| self.kept.is_some()) {
            Some(quarantine) => Sql::new(self.as_of, self.window_start, quarantine, c.filter.as_deref()),
            None => self.sql(c),
        }
    }

    fn query_values(&self, sql: &str, n: usize) -> Values {
        query_values(self.engine, sql, n)
    }
}

fn query_values(engine: &DuckDb, sql: &str, n: usize) -> Values {
    let clock = std::time::Instant::now();
    let values = engine
        .doubles(sql, n)
        // The first line says what is wrong; the rest quotes our generated SQL.
        .map_err(|e| e.first_line().to_string());
    // SLUICE_LOG=debug shows where the audit's time goes.
    tracing::debug!(seconds = clock.elapsed().as_secs_f64(), sql, "check query");
    values
}

/// Column names and types of a table.
fn columns_of(engine: &DuckDb, table: &str) -> Result<Columns, String> {
    match engine.describe(&table_ref(table)) {
        Ok(columns) => Ok(columns.into_iter().collect()),
        Err(_) => Err(format!("unknown table `{table}`")),
    }
}

/// The columns of each table the checks read, looked up once.
struct Catalog<'a> {
    engine: &'a DuckDb,
    tables: HashMap<String, Result<Columns, String>>,
}

impl Catalog<'_> {
    fn columns(&mut self, table: &str) -> Result<&Columns, String> {
        let engine = self.engine;
        self.tables
            .entry(table.to_string())
            .or_insert_with(|| columns_of(engine, table))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Every column `names` gives exists in `table`, else which does not.
    fn known(&mut self, table: &str, names: &[&str]) -> Result<(), String> {
        let columns = self.columns(table)?;
        match names.iter().find(|name| !columns.contains_key(**name)) {
            None => Ok(()),
            Some(missing) => {
                let known: Vec<&str> = columns.keys().map(String::as_str).collect();
                Err(format!(
                    "unknown column `{missing}` in `{table}` (columns: {})",
                    known.join(", ")
                ))
            }
        }
    }

    /// The quarantine a check is counted in has the columns the check reads
    /// and each row's place (`_source_file`, `_line`), which tells the raw
    /// rows staging kept from those it quarantined.
    fn check_quarantine(&mut self, c: &Check, quarantine: &str) -> Result<(), String> {
        let mut names = c.rule.measure().columns();
        names.extend(c.key_columns.iter().chain(&c.mask).map(String::as_str));
        names.extend(["_source_file", "_line"]);
        self.known(quarantine, &names)
            .map_err(|e| format!("`quarantined_in`: {e}"))
    }

    /// Every table and column a check names exists.
    fn check(&mut self, c: &Check, sql: &Sql) -> Result<(), String> {
        let rule = c.rule.measure();
        let mut names = rule.columns();
        // The sample of a query of the check's own picks its own columns.
        if !matches!(rule.failing(sql), Failing::Query(_)) {
            names.extend(c.key_columns.iter().chain(&c.mask).map(String::as_str));
        }
        self.known(&c.table, &names)?;
        for (table, names) in rule.other_tables() {
            self.known(table, &names)?;
        }
        Ok(())
    }
}

/// A check's measured values, or why they could not be measured.
type Values = Result<Vec<Option<f64>>, String>;

/// Aggregates of some checks over one table, fused into one query: each
/// `(check, offset, expressions)` fills the check's values from `offset`.
struct Fused<'a> {
    table: &'a str,
    parts: Vec<(usize, usize, Vec<String>)>,
}

/// Adds one check's aggregates over `table` to the query of that table.
fn fuse<'a>(fused: &mut Vec<Fused<'a>>, table: &'a str, part: (usize, usize, Vec<String>)) {
    match fused.iter_mut().find(|f| f.table == table) {
        Some(f) => f.parts.push(part),
        None => fused.push(Fused {
            table,
            parts: vec![part],
        }),
    }
}

/// What testing the raw rows staging kept found for each check counted in
/// its quarantine, by name: nothing wrong, or why counting only the
/// quarantine would miss failing rows.
#[derive(Debug, Default)]
pub(crate) struct KeptRows {
    found: HashMap<String, Result<(), String>>,
    queries: usize,
}

/// A check counted in its quarantine stands on staging quarantining every
/// row it fails. The raw rows staging kept are tested too, among the sample
/// of about 100,000 raw rows that ingest kept (all of a smaller source;
/// sampling the raw layer's Parquet file instead read all of it, 1.6 s at
/// 10M rows): one failing there would be missing from the count, so the
/// check is an error rather than a pass it has not earned.
pub(crate) fn test_kept_rows(
    engine: &DuckDb,
    as_of: DateTime<Utc>,
    window_start: DateTime<Utc>,
    checks: &[Check],
) -> KeptRows {
    let mut kept = KeptRows::default();
    // By (raw table, quarantine): each check and its count of failing rows.
    type Members<'a> = Vec<(&'a str, String)>;
    let mut groups: Vec<((&str, &str), Members)> = Vec::new();
    for c in checks {
        let Some(quarantine) = c.quarantined_in.as_deref() else {
            continue;
        };
        let sql = Sql::new(as_of, window_start, &c.table, c.filter.as_deref());
        let Failing::Rows { condition, .. } = c.rule.measure().failing(&sql) else {
            continue;
        };
        let key = (c.table.as_str(), quarantine);
        let count = sql.count_where(&condition);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push((&c.name, count)),
            None => groups.push((key, vec![(&c.name, count)])),
        }
    }
    for ((table, quarantine), members) in groups {
        // The sample ingest kept of the raw table; without one (`sluice
        // validate`'s empty tables), the table itself.
        let sample = crate::ingest::sample_of(engine, table).unwrap_or_else(|| table_ref(table));
        let counts: Vec<&str> = members.iter().map(|(_, count)| count.as_str()).collect();
        let sql = format!(
            "SELECT CAST(count(*) AS DOUBLE), {} FROM {sample} AS kept \
             ANTI JOIN (SELECT _source_file, _line FROM {}) AS quarantined USING (_source_file, _line)",
            counts.join(", "),
            table_ref(quarantine)
        );
        kept.queries += 1;
        let found = query_values(engine, &sql, members.len() + 1);
        for (at, (name, _)) in members.iter().enumerate() {
            let result = match &found {
                Ok(found) => {
                    let n = |k: usize| found.get(k).copied().flatten().unwrap_or(0.0) as u64;
                    match (n(0), n(at + 1)) {
                        (_, 0) => Ok(()),
                        (tested, failing) => Err(format!(
                            "`quarantined_in`: {failing} of {tested} raw rows tested that staging kept fail this check, \
                             so counting its failures in `{quarantine}` would miss such rows; remove `quarantined_in` or have staging quarantine them"
                        )),
                    }
                }
                Err(e) => Err(format!(
                    "`quarantined_in`: could not test the raw rows staging kept: {e}"
                )),
            };
            kept.found.insert(name.to_string(), result);
        }
    }
    kept
}

/// Runs `checks` and returns one outcome per check, in the given order.
pub(crate) fn run(ctx: &Context<'_>, checks: &[Check]) -> Audit {
    let mut audit = Audit::default();
    let mut values: Vec<Values> = vec![Ok(Vec::new()); checks.len()];
    let mut decided: Vec<Option<Verdict>> = vec![None; checks.len()];
    let mut catalog = Catalog {
        engine: ctx.engine,
        tables: HashMap::new(),
    };

    let mut tables: Vec<&str> = Vec::new();
    for c in checks {
        if !tables.contains(&c.table.as_str()) {
            tables.push(&c.table);
        }
    }
    let mut fused: Vec<Fused> = Vec::new();
    // Checks whose failing rows are counted in a quarantine.
    let mut scoped: Vec<usize> = Vec::new();
    for table in tables {
        let members: Vec<usize> = (0..checks.len()).filter(|&i| checks[i].table == table).collect();
        for &i in &members {
            let c = &checks[i];
            let sql = ctx.sql(c);
            let columns = match catalog.check(c, &sql).and_then(|()| catalog.columns(table)) {
                Ok(columns) => columns,
                Err(e) => {
                    values[i] = Err(e);
                    continue;
                }
            };
            match c.rule.measure().plan(&sql, columns) {
                Plan::Decided(verdict) => decided[i] = Some(verdict),
                Plan::Query { sql, values: n } => {
                    audit.queries += 1;
                    values[i] = ctx.query_values(&sql, n);
                }
                Plan::Aggregates(mut exprs) => {
                    values[i] = Ok(vec![None; exprs.len()]);
                    match c.quarantined_in.as_deref().filter(|_| ctx.kept.is_some()) {
                        None => fuse(&mut fused, table, (i, 0, exprs)),
                        Some(quarantine) => match catalog.check_quarantine(c, quarantine) {
                            Err(e) => values[i] = Err(e),
                            // The failing rows from the quarantine, the total from every raw row.
                            Ok(()) => {
                                let total = exprs.split_off(1);
                                fuse(&mut fused, quarantine, (i, 0, exprs));
                                fuse(&mut fused, table, (i, 1, total));
                                scoped.push(i);
                            }
                        },
                    }
                }
            }
        }
    }
    for f in &fused {
        let exprs: Vec<&String> = f.parts.iter().flat_map(|(_, _, e)| e).collect();
        let sql = format!(
            "SELECT {} FROM {}",
            exprs.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
            table_ref(f.table)
        );
        audit.queries += 1;
        let results: Vec<Values> = match ctx.query_values(&sql, exprs.len()) {
            Ok(all) => {
                let mut at = 0;
                f.parts
                    .iter()
                    .map(|(_, _, e)| {
                        at += e.len();
                        Ok(all[at - e.len()..at].to_vec())
                    })
                    .collect()
            }
            // One check's SQL is bad: run each alone to find which.
            Err(_) => f
                .parts
                .iter()
                .map(|(_, _, e)| {
                    let sql = format!("SELECT {} FROM {}", e.join(", "), table_ref(f.table));
                    audit.queries += 1;
                    ctx.query_values(&sql, e.len())
                })
                .collect(),
        };
        for ((i, offset, _), result) in f.parts.iter().zip(results) {
            match (&mut values[*i], result) {
                (Ok(slots), Ok(got)) => slots[*offset..*offset + got.len()].copy_from_slice(&got),
                (slot @ Ok(_), Err(e)) => *slot = Err(e),
                (Err(_), _) => {}
            }
        }
    }
    if let Some(kept) = ctx.kept {
        audit.queries += kept.queries;
        for i in scoped {
            let found =
                kept.found.get(&checks[i].name).cloned().unwrap_or_else(|| {
                    Err("`quarantined_in`: the raw rows staging kept were not tested".into())
                });
            if let (Ok(_), Err(e)) = (&values[i], found) {
                values[i] = Err(e);
            }
        }
    }

    // Samples of these checks from an earlier run would mislead; others stay.
    for c in checks {
        let _ = std::fs::remove_file(ctx.failed_rows_dir.join(format!("{}.csv", c.name)));
    }
    for ((c, v), decided) in checks.iter().zip(values).zip(decided) {
        let span = tracing::info_span!(
            "check",
            otel.name = %format!("check {}", c.name),
            check = %c.name,
            table = %c.table,
            status = tracing::field::Empty,
            observed = tracing::field::Empty,
        )
        .entered();
        let past = ctx
            .history
            .get(&(c.file.clone(), c.name.clone()))
            .map_or(&[][..], Vec::as_slice);
        let mut outcome = match decided {
            Some(verdict) => Outcome {
                check: c.clone(),
                status: verdict.status,
                observed: Some(verdict.observed),
                observed_pct: None,
                threshold: verdict.threshold,
                failed_rows: None,
                sample: None,
                message: verdict.message,
            },
            None => evaluate(c, v, past),
        };
        span.record("status", outcome.status.as_str());
        if let Some(observed) = outcome.observed {
            span.record("observed", observed);
        }
        if matches!(outcome.status, Status::Warn | Status::Fail) && c.sample_size > 0 {
            match write_sample(ctx, c) {
                Ok(path) => outcome.sample = path,
                Err(e) => tracing::warn!("could not write the failing rows of `{}`: {e}", c.name),
            }
        }
        audit.outcomes.push(outcome);
    }
    audit
}

fn tiers(c: &Check) -> String {
    let mut parts = Vec::new();
    if let Some(w) = &c.warn {
        parts.push(format!("warn: {w}"));
    }
    if let Some(f) = &c.fail {
        parts.push(format!("fail: {f}"));
    }
    parts.join(", ")
}

/// Turns the measured values into the check's one result.
fn evaluate(c: &Check, values: Values, past: &[f64]) -> Outcome {
    let mut outcome = Outcome {
        check: c.clone(),
        status: Status::Pass,
        observed: None,
        observed_pct: None,
        threshold: tiers(c),
        failed_rows: None,
        sample: None,
        message: None,
    };
    let values = match values {
        Ok(v) => v,
        Err(message) => {
            outcome.status = Status::Error;
            outcome.message = Some(message);
            return outcome;
        }
    };
    let first = values.first().copied().flatten();
    outcome.observed = first;
    if let (Some(failing), Some(Some(total))) = (first, values.get(1)) {
        outcome.observed_pct = Some(match (*total > 0.0, failing > 0.0) {
            (true, _) => 100.0 * failing / total,
            // Anything against a baseline of nothing is all change.
            (false, true) => 100.0,
            (false, false) => 0.0,
        });
    }
    if c.rule.measure().counts_failing_rows() {
        outcome.failed_rows = first.map(|v| v as u64);
    }
    let Some(observed) = first else {
        // Only freshness can measure nothing: no value at or before as_of.
        // That breaches the check's most severe tier.
        let (status, tier) = match (&c.fail, &c.warn) {
            (Some(t), _) => (Status::Fail, format!("fail: {t}")),
            (None, Some(t)) => (Status::Warn, format!("warn: {t}")),
            (None, None) => (Status::Fail, String::new()),
        };
        outcome.status = status;
        outcome.threshold = tier;
        outcome.message = Some(format!(
            "no `{}` value at or before as_of",
            c.rule.measure().columns().join(", ")
        ));
        return outcome;
    };
    // What the tiers judge: the metric itself, or how far it is from its history.
    let (value, pct) = match &c.history {
        None => (observed, outcome.observed_pct.unwrap_or(0.0)),
        Some(rule) => match against_history(rule, observed, past) {
            Ok((value, pct, note)) => {
                outcome.message = Some(note);
                (value, pct)
            }
            Err(note) => {
                outcome.message = Some(note);
                return outcome;
            }
        },
    };
    let breached = |t: &Threshold| match t.unit {
        Unit::Percent => t.breached(pct),
        Unit::Count | Unit::Seconds => t.breached(value),
    };
    if let Some(t) = c.fail.as_ref().filter(|t| breached(t)) {
        outcome.threshold = format!("fail: {t}");
        outcome.status = Status::Fail;
    } else if let Some(t) = c.warn.as_ref().filter(|t| breached(t)) {
        outcome.threshold = format!("warn: {t}");
        outcome.status = Status::Warn;
    }
    outcome
}

/// A metric against its history: `(absolute change or z-score, change in
/// percent, note)`, or why it cannot be judged yet (the check then passes).
fn against_history(rule: &HistoryRule, observed: f64, past: &[f64]) -> Result<(f64, f64, String), String> {
    match rule {
        HistoryRule::Change(spec) => {
            let (baseline, label) = match (spec.baseline, past) {
                (_, []) => return Err("no earlier run to compare with yet".into()),
                (Baseline::Last, [last, ..]) => (*last, "the last run".to_string()),
                (Baseline::Mean, _) => {
                    let runs = &past[..past.len().min(spec.runs as usize)];
                    (
                        runs.iter().sum::<f64>() / runs.len() as f64,
                        format!("the mean of {} runs", runs.len()),
                    )
                }
            };
            let change = (observed - baseline).abs();
            let pct = match (baseline != 0.0, change > 0.0) {
                (true, _) => 100.0 * change / baseline.abs(),
                (false, true) => 100.0,
                (false, false) => 0.0,
            };
            Ok((change, pct, format!("{pct:.1}% from {baseline} ({label})")))
        }
        HistoryRule::Anomaly(spec) => {
            let runs = &past[..past.len().min(spec.runs as usize)];
            if runs.len() < spec.min_history as usize {
                return Err(format!(
                    "{} of {} runs of history before it can fire",
                    runs.len(),
                    spec.min_history
                ));
            }
            let n = runs.len() as f64;
            let mean = runs.iter().sum::<f64>() / n;
            let sd = (runs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            let z = match (sd > 0.0, observed == mean) {
                (true, _) => (observed - mean) / sd,
                (false, true) => 0.0,
                (false, false) => f64::INFINITY.copysign(observed - mean),
            };
            let score = match spec.direction {
                Direction::Spike => z,
                Direction::Drop => -z,
                Direction::Both => z.abs(),
            };
            Ok((
                score,
                0.0,
                format!("z = {z:.2} against a mean of {mean:.2} over {} runs", runs.len()),
            ))
        }
    }
}

/// Writes up to `sample_size` failing rows (key and checked columns, masked
/// where asked) to `<failed_rows_dir>/<check>.csv`.
fn write_sample(ctx: &Context<'_>, c: &Check) -> Result<Option<PathBuf>, String> {
    let sql = ctx.failing_sql(c);
    let rule = c.rule.measure();
    let mut cols: Vec<&str> = Vec::new();
    for col in c.key_columns.iter().map(String::as_str).chain(rule.columns()) {
        if !cols.contains(&col) {
            cols.push(col);
        }
    }
    let masked = |col: &str| {
        if c.mask.iter().any(|m| m == col) {
            format!("'***' AS {}", sql::ident(col))
        } else {
            sql::ident(col)
        }
    };
    let limit = c.sample_size;
    let query = match rule.failing(&sql) {
        Failing::Nothing => return Ok(None),
        Failing::Rows { condition, qualify } => {
            let (select, order) = if cols.is_empty() {
                ("*".to_string(), String::new())
            } else {
                (
                    cols.iter().map(|c| masked(c)).collect::<Vec<_>>().join(", "),
                    format!(
                        " ORDER BY {}",
                        cols.iter().map(|c| sql::ident(c)).collect::<Vec<_>>().join(", ")
                    ),
                )
            };
            let qualify = qualify.map_or(String::new(), |q| format!(" QUALIFY {q}"));
            format!(
                "SELECT {select} FROM {} WHERE {} AND {condition}{qualify}{order} LIMIT {limit}",
                sql.table, sql.scope
            )
        }
        Failing::Query(query) => {
            let masks: Vec<String> = c.mask.iter().map(|m| masked(m)).collect();
            let star = if masks.is_empty() {
                "*".to_string()
            } else {
                format!("* REPLACE ({})", masks.join(", "))
            };
            format!("SELECT {star} FROM ({query}) AS failing LIMIT {limit}")
        }
    };
    std::fs::create_dir_all(ctx.failed_rows_dir).map_err(|e| e.to_string())?;
    let path = ctx.failed_rows_dir.join(format!("{}.csv", c.name));
    ctx.engine
        .copy_to(&query, &path, crate::engine::FileFormat::Csv)
        .map_err(|e| e.to_string())?;
    Ok(Some(path))
}
