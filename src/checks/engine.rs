//! Runs checks with DuckDB SQL over the layer tables (`raw.*`, `staging.*`,
//! `marts.*`). All metric checks on one table are computed in one fused
//! aggregate query; a custom check is its own query. A check that cannot run
//! (unknown table or column, bad SQL) yields `error`, never a crash.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use duckdb::Connection;

use super::spec::{Baseline, Direction};
use super::spec::{Kind, NewColumns};
use super::threshold::{Threshold, Unit};
use super::{Check, HistoryRule};
use crate::sql;

/// The one result of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// The check could not run; the gate fails.
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
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
    pub fn severity(&self) -> Option<&'static str> {
        match self.status {
            Status::Fail | Status::Error => Some("fail"),
            Status::Warn => Some("warn"),
            Status::Pass => None,
        }
    }
}

/// Everything the audit found, and how many metric queries it took.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    pub outcomes: Vec<Outcome>,
    pub queries: usize,
}

pub struct Context<'a> {
    pub conn: &'a Connection,
    pub as_of: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    /// Where failing-row samples go (`output/failed_rows/`).
    pub failed_rows_dir: &'a Path,
    /// Earlier observed values per check, newest first, of runs whose gate passed.
    pub history: &'a History,
}

/// `(check file, check name)` → earlier observed values, newest first.
pub type History = std::collections::HashMap<(String, String), Vec<f64>>;

/// `staging.events` → `"staging"."events"`.
fn table_ref(table: &str) -> String {
    table.split('.').map(sql::ident).collect::<Vec<_>>().join(".")
}

impl Context<'_> {
    fn expand(&self, sql: &str) -> String {
        sql.replace("{as_of}", &sql::timestamp(self.as_of))
            .replace("{window_start}", &sql::timestamp(self.window_start))
    }

    /// The rows a check looks at: its `filter`, or all.
    fn scope(&self, c: &Check) -> String {
        self.condition(c.filter.as_deref())
    }

    /// A filter as a condition, `TRUE` when there is none.
    fn condition(&self, filter: Option<&str>) -> String {
        filter.map_or("TRUE".into(), |f| format!("({})", self.expand(f)))
    }

    /// The checked columns are all non-null.
    fn non_null(c: &Check) -> String {
        if c.columns.is_empty() {
            return "TRUE".into();
        }
        c.columns
            .iter()
            .map(|col| format!("{} IS NOT NULL", sql::ident(col)))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// The condition a failing row meets (completeness and validity).
    fn failing(&self, c: &Check) -> String {
        match c.kind {
            Kind::Completeness => {
                let col = sql::ident(&c.columns[0]);
                if c.blank_is_missing {
                    // Blank is what `trim` would empty (Unicode space
                    // separators): matched, not trimmed, on every row.
                    format!("({col} IS NULL OR regexp_full_match(CAST({col} AS VARCHAR), '\\p{{Zs}}*'))")
                } else {
                    format!("{col} IS NULL")
                }
            }
            Kind::Validity => {
                let mut rules = Vec::new();
                let col = c.columns.first().map(|c| sql::ident(c));
                if let (Some(col), Some(values)) = (&col, &c.accepted_values) {
                    let list: Vec<String> = values.iter().map(|v| sql::string(v)).collect();
                    rules.push(format!("CAST({col} AS VARCHAR) IN ({})", list.join(", ")));
                }
                if let (Some(col), Some(re)) = (&col, &c.regex) {
                    rules.push(format!(
                        "regexp_full_match(CAST({col} AS VARCHAR), {})",
                        sql::string(re)
                    ));
                }
                if let (Some(col), Some(min)) = (&col, c.min) {
                    rules.push(format!("{col} >= {min}"));
                }
                if let (Some(col), Some(max)) = (&col, c.max) {
                    rules.push(format!("{col} <= {max}"));
                }
                if let Some(p) = &c.predicate {
                    rules.push(format!("({})", self.expand(p)));
                }
                format!("({} AND NOT ({}))", Self::non_null(c), rules.join(" AND "))
            }
            _ => "FALSE".into(),
        }
    }

    /// The key columns of a uniqueness check, to group or partition by.
    fn key_list(c: &Check) -> String {
        c.columns
            .iter()
            .map(|c| sql::ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The aggregate expressions of a metric check (DOUBLE each).
    fn metric_exprs(&self, c: &Check) -> Vec<String> {
        let scope = self.scope(c);
        let count_where = |cond: &str| format!("CAST(count(*) FILTER (WHERE {scope} AND {cond}) AS DOUBLE)");
        match c.kind {
            Kind::RowCount => vec![count_where("TRUE")],
            Kind::Completeness => vec![count_where(&self.failing(c)), count_where("TRUE")],
            Kind::Validity => vec![count_where(&self.failing(c)), count_where(&Self::non_null(c))],
            // Distinct keys by GROUP BY, which DuckDB spills past its memory
            // limit; `count(DISTINCT)` does not, and ran out of memory on
            // 100M event ids.
            Kind::Uniqueness => vec![
                format!(
                    "CAST(count(*) FILTER (WHERE {scope}) - (SELECT count(*) FROM (SELECT 1 FROM {} WHERE {scope} AND {} GROUP BY {})) AS DOUBLE)",
                    table_ref(&c.table),
                    Self::non_null(c),
                    Self::key_list(c)
                ),
                count_where("TRUE"),
            ],
            Kind::Freshness => {
                let col = format!("CAST({} AS TIMESTAMP)", sql::ident(&c.columns[0]));
                let as_of = sql::timestamp(self.as_of);
                vec![format!(
                    "CAST((epoch_us({as_of}) - epoch_us(max({col}) FILTER (WHERE {scope} AND {col} <= {as_of}))) / 1e6 AS DOUBLE)"
                )]
            }
            Kind::Custom | Kind::Consistency | Kind::Schema => Vec::new(),
        }
    }

    /// Consistency as two values: the absolute difference and the baseline's
    /// magnitude (so the share is the relative difference).
    fn consistency_sql(&self, c: &Check) -> String {
        let expr = self.expand(c.expression.as_deref().unwrap_or("NULL"));
        let table = table_ref(&c.table);
        let scope = self.scope(c);
        if let Some(other) = &c.compare_to {
            let other_scope = self.condition(other.filter.as_deref());
            let a = format!("coalesce(CAST((SELECT {expr} FROM {table} WHERE {scope}) AS DOUBLE), 0)");
            let b = format!(
                "coalesce(CAST((SELECT {} FROM {} WHERE {other_scope}) AS DOUBLE), 0)",
                self.expand(&other.expression),
                table_ref(&other.table)
            );
            return format!("SELECT abs(a - b), abs(b) FROM (SELECT {a} AS a, {b} AS b)");
        }
        // Day over day: the last complete day (before as_of's day) against the one before it.
        let day = sql::ident(c.day_column.as_deref().unwrap_or(""));
        let as_of_day = format!("CAST({} AS DATE)", sql::timestamp(self.as_of));
        format!(
            "WITH d AS (SELECT CAST({day} AS DATE) AS day, CAST({expr} AS DOUBLE) AS v FROM {table} WHERE {scope} GROUP BY 1), \
             p AS (SELECT coalesce((SELECT v FROM d WHERE day = {as_of_day} - 1), 0) AS last, \
                          coalesce((SELECT v FROM d WHERE day = {as_of_day} - 2), 0) AS prev) \
             SELECT abs(last - prev), abs(prev) FROM p"
        )
    }

    fn query_values(&self, sql: &str, n: usize) -> Result<Vec<Option<f64>>, String> {
        let clock = std::time::Instant::now();
        let values = self
            .conn
            .query_row(sql, [], |row| {
                (0..n).map(|i| row.get::<_, Option<f64>>(i)).collect()
            })
            // DuckDB's first line says what is wrong; the rest quotes our generated SQL.
            .map_err(|e| e.to_string().lines().next().unwrap_or_default().to_string());
        // SLUICE_LOG=debug shows where the audit's time goes.
        tracing::debug!(seconds = clock.elapsed().as_secs_f64(), sql, "check query");
        values
    }
}

/// Column names and DuckDB types of a table.
fn columns_of(conn: &Connection, table: &str) -> Result<BTreeMap<String, String>, String> {
    let mut stmt = conn
        .prepare(&format!(
            "SELECT column_name, column_type FROM (DESCRIBE {})",
            table_ref(table)
        ))
        .map_err(|_| format!("unknown table `{table}`"))?;
    let names = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(|_| format!("unknown table `{table}`"))?;
    names.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

/// A schema check, decided from the table's columns alone.
fn schema_outcome(c: &Check, columns: &BTreeMap<String, String>) -> Outcome {
    let norm = |t: &str| t.to_ascii_uppercase().replace(' ', "");
    let mut hard = Vec::new();
    for (name, want) in &c.required {
        match columns.get(name) {
            None => hard.push(format!("missing `{name}`")),
            Some(got) if !want.eq_ignore_ascii_case("any") && norm(got) != norm(want) => {
                hard.push(format!("`{name}` is {got}, expected {want}"))
            }
            Some(_) => {}
        }
    }
    let new: Vec<String> = columns
        .keys()
        .filter(|k| !c.required.iter().any(|(r, _)| r == *k))
        .map(|k| format!("new column `{k}`"))
        .collect();
    let (status, counted_new) = match (hard.is_empty(), c.new_columns, new.is_empty()) {
        (false, ..) => (Status::Fail, c.new_columns != NewColumns::Ignore),
        (true, NewColumns::Ignore, _) | (true, _, true) => (Status::Pass, false),
        (true, NewColumns::Warn, false) => (Status::Warn, true),
        (true, NewColumns::Fail, false) => (Status::Fail, true),
    };
    let mut problems = hard;
    if counted_new {
        problems.extend(new);
    }
    let policy = match c.new_columns {
        NewColumns::Ignore => "ignore",
        NewColumns::Warn => "warn",
        NewColumns::Fail => "fail",
    };
    Outcome {
        check: c.clone(),
        status,
        observed: Some(problems.len() as f64),
        observed_pct: None,
        threshold: format!("new columns: {policy}"),
        failed_rows: None,
        sample: None,
        message: (!problems.is_empty()).then(|| problems.join("; ")),
    }
}

/// Runs `checks` and returns one outcome per check, in the given order.
pub fn run(ctx: &Context<'_>, checks: &[Check]) -> Audit {
    let mut audit = Audit::default();
    let mut values: Vec<Result<Vec<Option<f64>>, String>> = vec![Ok(Vec::new()); checks.len()];
    let mut decided: Vec<Option<Outcome>> = vec![None; checks.len()];

    let mut tables: Vec<&str> = Vec::new();
    for c in checks {
        if !tables.contains(&c.table.as_str()) {
            tables.push(&c.table);
        }
    }
    for table in tables {
        let members: Vec<usize> = (0..checks.len()).filter(|&i| checks[i].table == table).collect();
        let columns = match columns_of(ctx.conn, table) {
            Ok(cols) => cols,
            Err(e) => {
                for &i in &members {
                    values[i] = Err(e.clone());
                }
                continue;
            }
        };
        let mut fused: Vec<(usize, Vec<String>)> = Vec::new();
        for &i in &members {
            let c = &checks[i];
            // A custom query picks its own columns; the others must be the table's.
            let referenced = c
                .columns
                .iter()
                .chain(&c.key_columns)
                .chain(&c.mask)
                .chain(&c.day_column);
            let missing = if c.kind == Kind::Custom {
                None
            } else {
                referenced.into_iter().find(|col| !columns.contains_key(*col))
            };
            if let Some(missing) = missing {
                let known: Vec<&str> = columns.keys().map(String::as_str).collect();
                values[i] = Err(format!(
                    "unknown column `{missing}` in `{table}` (columns: {})",
                    known.join(", ")
                ));
                continue;
            }
            if c.kind == Kind::Schema {
                decided[i] = Some(schema_outcome(c, &columns));
            } else if c.kind == Kind::Consistency {
                audit.queries += 1;
                values[i] = ctx.query_values(&ctx.consistency_sql(c), 2);
            } else if c.kind == Kind::Custom {
                let sql = format!(
                    "SELECT CAST(count(*) AS DOUBLE) FROM ({}) AS failing",
                    ctx.expand(c.sql.as_deref().unwrap_or(""))
                );
                audit.queries += 1;
                values[i] = ctx.query_values(&sql, 1);
            } else {
                fused.push((i, ctx.metric_exprs(c)));
            }
        }
        if fused.is_empty() {
            continue;
        }
        let exprs: Vec<&String> = fused.iter().flat_map(|(_, e)| e).collect();
        let sql = format!(
            "SELECT {} FROM {}",
            exprs.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "),
            table_ref(table)
        );
        audit.queries += 1;
        match ctx.query_values(&sql, exprs.len()) {
            Ok(all) => {
                let mut at = 0;
                for (i, e) in &fused {
                    values[*i] = Ok(all[at..at + e.len()].to_vec());
                    at += e.len();
                }
            }
            // One check's SQL is bad: run each alone to find which.
            Err(_) => {
                for (i, e) in &fused {
                    let sql = format!("SELECT {} FROM {}", e.join(", "), table_ref(table));
                    audit.queries += 1;
                    values[*i] = ctx.query_values(&sql, e.len());
                }
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
        let mut outcome = decided.unwrap_or_else(|| evaluate(c, v, past));
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
fn evaluate(c: &Check, values: Result<Vec<Option<f64>>, String>, past: &[f64]) -> Outcome {
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
    if matches!(
        c.kind,
        Kind::Completeness | Kind::Uniqueness | Kind::Validity | Kind::Custom
    ) {
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
        outcome.message = Some(format!("no `{}` value at or before as_of", c.columns.join(", ")));
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
    let scope = ctx.scope(c);
    let mut cols: Vec<&String> = Vec::new();
    for col in c.key_columns.iter().chain(&c.columns) {
        if !cols.contains(&col) {
            cols.push(col);
        }
    }
    let select = |cols: &[&String]| -> String {
        if cols.is_empty() {
            return "*".into();
        }
        cols.iter()
            .map(|col| {
                if c.mask.contains(col) {
                    format!("'***' AS {}", sql::ident(col))
                } else {
                    sql::ident(col)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let order = if cols.is_empty() {
        String::new()
    } else {
        format!(
            " ORDER BY {}",
            cols.iter().map(|c| sql::ident(c)).collect::<Vec<_>>().join(", ")
        )
    };
    let table = table_ref(&c.table);
    let limit = c.sample_size;
    let query = match c.kind {
        Kind::Completeness | Kind::Validity => {
            format!(
                "SELECT {} FROM {table} WHERE {scope} AND {}{order} LIMIT {limit}",
                select(&cols),
                ctx.failing(c)
            )
        }
        Kind::Uniqueness => format!(
            "SELECT {} FROM {table} WHERE {scope} AND {} QUALIFY count(*) OVER (PARTITION BY {}) > 1{order} LIMIT {limit}",
            select(&cols),
            Context::non_null(c),
            Context::key_list(c)
        ),
        Kind::Custom => {
            let masks: Vec<String> = c
                .mask
                .iter()
                .map(|m| format!("'***' AS {}", sql::ident(m)))
                .collect();
            let star = if masks.is_empty() {
                "*".to_string()
            } else {
                format!("* REPLACE ({})", masks.join(", "))
            };
            format!(
                "SELECT {star} FROM ({}) AS failing LIMIT {limit}",
                ctx.expand(c.sql.as_deref().unwrap_or(""))
            )
        }
        Kind::RowCount | Kind::Freshness | Kind::Consistency | Kind::Schema => return Ok(None),
    };
    std::fs::create_dir_all(ctx.failed_rows_dir).map_err(|e| e.to_string())?;
    let path = ctx.failed_rows_dir.join(format!("{}.csv", c.name));
    crate::stage::copy_atomically(ctx.conn, &query, &path, "FORMAT csv, HEADER true")
        .map_err(|e| e.to_string())?;
    Ok(Some(path))
}
