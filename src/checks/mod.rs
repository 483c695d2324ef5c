//! Checks: `checks/*.yaml`, validated against their JSON Schema before any
//! data is read (every error in every file at once, with file, line and key),
//! then run by [`engine`] over the candidate tables.

pub mod engine;
pub mod report;
pub mod spec;
pub mod threshold;

use std::path::{Path, PathBuf};

use spec::{AnomalySpec, ChangeSpec, CheckSpec, ChecksFile, CompareTo, Kind, NewColumns};
use threshold::{Threshold, Unit};

use crate::yaml;
pub use crate::yaml::ConfigError;
use crate::yaml::key_of;

/// A check ready to run.
#[derive(Debug, Clone)]
pub struct Check {
    /// The file it came from, as given (`checks/events.yaml`).
    pub file: String,
    pub line: usize,
    pub name: String,
    pub table: String,
    pub kind: Kind,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub filter: Option<String>,
    /// The checked columns: `column`, or `columns` for a composite key.
    pub columns: Vec<String>,
    pub blank_is_missing: bool,
    pub accepted_values: Option<Vec<String>>,
    pub regex: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub predicate: Option<String>,
    pub sql: Option<String>,
    pub expression: Option<String>,
    pub compare_to: Option<CompareTo>,
    pub day_column: Option<String>,
    pub required: Vec<(String, String)>,
    pub new_columns: NewColumns,
    /// Tiers judge the metric against earlier runs, not as it is.
    pub history: Option<HistoryRule>,
    pub warn: Option<Threshold>,
    pub fail: Option<Threshold>,
    pub key_columns: Vec<String>,
    pub mask: Vec<String>,
    pub sample_size: u32,
}

/// How a check's metric is judged against its history.
#[derive(Debug, Clone)]
pub enum HistoryRule {
    Change(ChangeSpec),
    Anomaly(AnomalySpec),
}

/// The YAML files of a checks directory, sorted; `None` when it does not exist.
pub fn files_in(dir: &Path) -> std::io::Result<Option<Vec<PathBuf>>> {
    if !dir.exists() {
        return Ok(None);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(Some(files))
}

/// Parses and validates every file; returns all checks or all errors.
pub fn load(files: &[(String, String)]) -> Result<Vec<Check>, Vec<ConfigError>> {
    let schema = spec::schema();
    let validator = jsonschema::options()
        .build(&schema)
        .expect("the generated checks schema is valid");
    let mut checks = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in files {
        let err = |line: usize, key: String, message: String| ConfigError {
            file: file.clone(),
            line,
            key,
            message,
        };
        let (parsed, doc) = match yaml::load::<ChecksFile>(file, text, &validator, &spec::describe) {
            Ok(loaded) => loaded,
            Err(problems) => {
                errors.extend(problems);
                continue;
            }
        };
        for (i, spec) in parsed.checks.into_iter().enumerate() {
            let pointer = format!("/checks/{i}");
            match build(file, doc.line(&pointer), spec) {
                Ok(check) => checks.push(check),
                Err(problems) => {
                    for (field, message) in problems {
                        let p = format!("{pointer}/{field}");
                        errors.push(err(doc.line(&p), key_of(&p), message));
                    }
                }
            }
        }
    }
    for (i, check) in checks.iter().enumerate() {
        if let Some(first) = checks[..i].iter().find(|c| c.name == check.name) {
            errors.push(ConfigError {
                file: check.file.clone(),
                line: check.line,
                key: String::new(),
                message: format!(
                    "check name `{}` is already used at {}:{}; names name the failing-row files, so they are unique",
                    check.name, first.file, first.line
                ),
            });
        }
    }
    // Schema errors come in schema order; people read files top to bottom.
    errors.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    if errors.is_empty() {
        Ok(checks)
    } else {
        Err(errors)
    }
}

/// Turns one spec into a check, or lists `(field, problem)` pairs.
fn build(file: &str, line: usize, s: CheckSpec) -> Result<Check, Vec<(&'static str, String)>> {
    let mut problems: Vec<(&'static str, String)> = Vec::new();
    let mut tier = |field: &'static str, text: &Option<String>| -> Option<Threshold> {
        let t = Threshold::parse(text.as_deref()?)
            .map_err(|m| problems.push((field, m)))
            .ok()?;
        // A change is a count or a share of the baseline; an anomaly is a z-score.
        let (allowed, expected): (&[Unit], &str) = match (s.kind, s.change.is_some(), s.anomaly.is_some()) {
            (_, true, _) => (
                &[Unit::Count, Unit::Percent],
                "an absolute (`> 100`) or relative (`> 50%`) change",
            ),
            (_, _, true) => (&[Unit::Count], "a z-score such as `> 3`"),
            (Kind::Freshness, ..) => (&[Unit::Seconds], "a duration such as `24h`"),
            (Kind::RowCount | Kind::Custom, ..) => (&[Unit::Count], "a count such as `< 1` or `> 0`"),
            _ => (
                &[Unit::Count, Unit::Percent],
                "a count (`> 0`) or a percent (`> 1%`)",
            ),
        };
        if !allowed.contains(&t.unit) {
            problems.push((
                field,
                format!("a {} check takes {expected}, not `{}`", s.kind.as_str(), t.text),
            ));
            return None;
        }
        Some(t)
    };
    let warn = tier("warn", &s.warn);
    let fail = tier("fail", &s.fail);
    match (s.kind, s.warn.is_some() || s.fail.is_some()) {
        (Kind::Schema, true) => problems.push((
            if s.warn.is_some() { "warn" } else { "fail" },
            "a schema check takes no tiers: missing columns and wrong types fail, `new_columns` decides the rest".into(),
        )),
        (Kind::Schema, false) | (_, true) => {}
        (_, false) => problems.push(("fail", "give `warn`, `fail` or both".into())),
    }
    match (s.kind, &s.expression, &s.compare_to, &s.day_column) {
        (Kind::Consistency, None, ..) => problems.push((
            "expression",
            "a consistency check needs `expression`, an aggregate such as `sum(revenue)`".into(),
        )),
        (Kind::Consistency, Some(_), None, None) | (Kind::Consistency, Some(_), Some(_), Some(_)) => problems.push((
            "kind",
            "a consistency check needs `compare_to` (reconciliation) or `day_column` (day over day), one of them".into(),
        )),
        (Kind::Consistency, ..) => {}
        (_, None, None, None) => {}
        _ => problems.push((
            "expression",
            "`expression`, `compare_to` and `day_column` belong to consistency checks".into(),
        )),
    }
    match (s.kind, s.change.is_some(), s.anomaly.is_some()) {
        (_, true, true) => problems.push(("anomaly", "give `change` or `anomaly`, not both".into())),
        (Kind::Schema, true, _) | (Kind::Schema, _, true) => problems.push((
            "kind",
            "a schema check has no metric to compare with history".into(),
        )),
        _ => {}
    }
    owned_field(
        &mut problems,
        (s.kind, Kind::Schema),
        ("required", s.required.is_some()),
        "a schema check needs `required`: column -> type",
    );
    let mut columns: Vec<String> = s.column.iter().cloned().collect();
    if let Some(cs) = &s.columns {
        if s.kind != Kind::Uniqueness {
            problems.push((
                "columns",
                "`columns` is for uniqueness checks; use `column`".into(),
            ));
        } else if s.column.is_some() {
            problems.push(("columns", "give `column` or `columns`, not both".into()));
        }
        columns.extend(cs.iter().cloned());
    }
    // accepted_values, regex, min/max, predicate: all but the last are about a column.
    let rules = [
        s.accepted_values.is_some(),
        s.regex.is_some(),
        s.min.is_some() || s.max.is_some(),
        s.predicate.is_some(),
    ];
    let needs_column = matches!(s.kind, Kind::Completeness | Kind::Uniqueness | Kind::Freshness)
        || (s.kind == Kind::Validity && (s.predicate.is_none() || rules[..3].contains(&true)));
    if needs_column && columns.is_empty() {
        problems.push(("column", format!("a {} check needs `column`", s.kind.as_str())));
    }
    match s.kind {
        Kind::Validity if !rules.contains(&true) => problems.push((
            "kind",
            "a validity check needs `accepted_values`, `regex`, `min`/`max` or `predicate`".into(),
        )),
        Kind::Validity => {}
        _ if rules.contains(&true) => problems.push((
            "kind",
            "`accepted_values`, `regex`, `min`, `max` and `predicate` belong to validity checks".into(),
        )),
        _ => {}
    }
    owned_field(
        &mut problems,
        (s.kind, Kind::Custom),
        ("sql", s.sql.is_some()),
        "a custom check needs `sql`, a query returning the failing rows",
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Check {
        file: file.to_string(),
        line,
        name: s.name,
        table: s.table,
        kind: s.kind,
        description: s.description,
        tags: s.tags,
        filter: s.filter,
        columns,
        blank_is_missing: s.blank_is_missing,
        accepted_values: s.accepted_values,
        regex: s.regex,
        min: s.min,
        max: s.max,
        predicate: s.predicate,
        sql: s.sql,
        expression: s.expression,
        compare_to: s.compare_to,
        day_column: s.day_column,
        required: s.required.unwrap_or_default().into_iter().collect(),
        new_columns: s.new_columns.unwrap_or_default(),
        history: match (s.change, s.anomaly) {
            (Some(change), _) => Some(HistoryRule::Change(change)),
            (None, Some(anomaly)) => Some(HistoryRule::Anomaly(anomaly)),
            (None, None) => None,
        },
        warn,
        fail,
        key_columns: s.key_columns,
        mask: s.mask,
        sample_size: s.sample_size.unwrap_or(20),
    })
}

/// A field that one kind needs and no other kind takes: `(kind, owner)` and
/// `(field, present)` decide which of the two problems, if any, it is.
fn owned_field(
    problems: &mut Vec<(&'static str, String)>,
    (kind, owner): (Kind, Kind),
    (field, present): (&'static str, bool),
    needed: &str,
) {
    match (kind == owner, present) {
        (true, false) => problems.push((field, needed.to_string())),
        (false, true) => problems.push((field, format!("`{field}` belongs to {} checks", owner.as_str()))),
        _ => {}
    }
}

/// Keeps the checks `--select` names: a check name, `tag:<tag>`, or a table.
/// A selector that matches nothing is an error, never a silently empty gate.
pub fn select(checks: Vec<Check>, selectors: &[String]) -> Result<Vec<Check>, Vec<String>> {
    if selectors.is_empty() {
        return Ok(checks);
    }
    let matches = |c: &Check, s: &str| match s.strip_prefix("tag:") {
        Some(tag) => c.tags.iter().any(|t| t == tag),
        None => s == c.name || s == c.table,
    };
    let unmatched: Vec<String> = selectors
        .iter()
        .filter(|s| !checks.iter().any(|c| matches(c, s)))
        .cloned()
        .collect();
    if !unmatched.is_empty() {
        return Err(unmatched);
    }
    Ok(checks
        .into_iter()
        .filter(|c| selectors.iter().any(|s| matches(c, s)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_one(text: &str) -> Result<Vec<Check>, Vec<String>> {
        load(&[("checks/t.yaml".into(), text.into())])
            .map_err(|es| es.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn the_default_checks_load() {
        let checks = load(&crate::config::built_in_checks()).unwrap();
        assert!(checks.len() >= 10);
    }

    #[test]
    fn every_error_is_reported_with_line_and_key() {
        let errors = load_one(
            "checks:\n  - name: a\n    table: staging.events\n    kind: completness\n    column: x\n    fail: \"> 0\"\n  - name: b\n    table: staging.events\n    kind: row_count\n    colum: x\n    fail: \"< 1\"\n",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(
            errors[0].starts_with("checks/t.yaml:4: `checks[0].kind`: "),
            "{errors:#?}"
        );
        assert!(
            errors[1].starts_with("checks/t.yaml:7: `checks[1]`: ") && errors[1].contains("colum"),
            "{errors:#?}"
        );
    }

    #[test]
    fn semantic_errors_name_the_field() {
        let errors = load_one(
            "checks:\n  - name: a\n    table: staging.events\n    kind: freshness\n    column: t\n    fail: \"> 5%\"\n  - name: b\n    table: staging.events\n    kind: validity\n    column: x\n    warn: \"> 0\"\n",
        )
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "checks/t.yaml:6: `checks[0].fail`: a freshness check takes a duration such as `24h`, not `> 5%`",
                "checks/t.yaml:9: `checks[1].kind`: a validity check needs `accepted_values`, `regex`, `min`/`max` or `predicate`",
            ]
        );
    }

    #[test]
    fn select_by_name_tag_or_table() {
        let checks = load_one(
            "checks:\n  - {name: a, table: staging.events, kind: row_count, fail: \"< 1\", tags: [volume]}\n  - {name: b, table: raw.events, kind: row_count, fail: \"< 1\"}\n",
        )
        .unwrap();
        let names = |sel: &[&str]| {
            select(
                checks.clone(),
                &sel.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
        };
        assert_eq!(names(&["tag:volume"]), vec!["a"]);
        assert_eq!(names(&["raw.events"]), vec!["b"]);
        assert_eq!(names(&[]), vec!["a", "b"]);
        let typo = select(checks.clone(), &["tag:volume".into(), "raw.evnts".into()]);
        assert_eq!(typo.unwrap_err(), vec!["raw.evnts"]);
    }
}
