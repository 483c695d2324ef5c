//! Checks: `checks/*.yaml`, validated against their JSON Schema before any
//! data is read (every error in every file at once, with file, line and key),
//! then run by [`engine`] over the candidate tables.

pub(crate) mod engine;
pub(crate) mod report;
pub(crate) mod rules;
pub(crate) mod spec;
pub(crate) mod threshold;

use std::path::{Path, PathBuf};

use rules::{Problem, Rule};
use spec::{AnomalySpec, ChangeSpec, CheckSpec, ChecksFile, Kind};
use threshold::{Threshold, Unit};

use crate::yaml;
pub(crate) use crate::yaml::ConfigError;
use crate::yaml::key_of;

/// A check ready to run: what every check has, and its [`Rule`].
#[derive(Debug, Clone)]
pub(crate) struct Check {
    /// The file it came from, as given (`checks/events.yaml`).
    pub file: String,
    pub line: usize,
    pub name: String,
    pub table: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub filter: Option<String>,
    /// The staging table holding every row this check fails (`quarantined_in`).
    pub quarantined_in: Option<String>,
    pub rule: Rule,
    /// Tiers judge the metric against earlier runs, not as it is.
    pub history: Option<HistoryRule>,
    pub warn: Option<Threshold>,
    pub fail: Option<Threshold>,
    pub key_columns: Vec<String>,
    pub mask: Vec<String>,
    pub sample_size: u32,
}

impl Check {
    pub(crate) fn kind(&self) -> Kind {
        self.rule.kind()
    }
}

/// How a check's metric is judged against its history.
#[derive(Debug, Clone)]
pub(crate) enum HistoryRule {
    Change(ChangeSpec),
    Anomaly(AnomalySpec),
}

/// The YAML files of a checks directory, sorted; `None` when it does not exist.
pub(crate) fn files_in(dir: &Path) -> std::io::Result<Option<Vec<PathBuf>>> {
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
pub(crate) fn load(files: &[(String, String)]) -> Result<Vec<Check>, Vec<ConfigError>> {
    let schema = spec::schema();
    let validator = jsonschema::options()
        .build(&schema)
        .expect("the generated checks schema is valid");
    let item_schema = serde_json::to_value(schemars::schema_for!(CheckSpec)).expect("a schema is JSON");
    let item_validator = jsonschema::options()
        .build(&item_schema)
        .expect("the generated check schema is valid");
    let mut checks = Vec::new();
    let mut errors = Vec::new();
    for (file, text) in files {
        let err = |line: usize, key: String, message: String| ConfigError {
            file: file.clone(),
            line,
            key,
            message,
        };
        let (problems, parsed) = yaml::load_all::<ChecksFile>(file, text, &validator, &spec::describe);
        errors.extend(problems);
        let (doc, specs) = match parsed {
            Some((parsed, doc)) => (doc, parsed.checks.into_iter().map(Ok).collect()),
            None => match yaml::items::<CheckSpec>(text, "/checks", &item_validator) {
                Some(salvaged) => salvaged,
                None => continue,
            },
        };
        for (i, spec) in specs.into_iter().enumerate() {
            let pointer = format!("/checks/{i}");
            let problems = match spec {
                Ok(spec) => match build(file, doc.line(&pointer), spec) {
                    Ok(check) => {
                        checks.push(check);
                        continue;
                    }
                    Err(problems) => problems,
                },
                Err(value) => tier_syntax(&value),
            };
            for (field, message) in problems {
                let p = format!("{pointer}/{field}");
                errors.push(err(doc.line(&p), key_of(&p), message));
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
fn build(file: &str, line: usize, s: CheckSpec) -> Result<Check, Vec<Problem>> {
    let mut problems: Vec<Problem> = Vec::new();
    let takes = s.kind.fields();
    for field in s.given_fields() {
        if !takes.contains(&field) {
            let owners: Vec<&str> = Kind::all()
                .filter(|k| k.fields().contains(&field))
                .map(Kind::as_str)
                .collect();
            problems.push((
                field,
                format!(
                    "a {} check takes no `{field}` (it is a field of {} checks)",
                    s.kind.as_str(),
                    owners.join(" and ")
                ),
            ));
        }
    }
    let (warn, fail) = tiers(&s, &mut problems);
    if s.change.is_some() && s.anomaly.is_some() {
        problems.push(("anomaly", "give `change` or `anomaly`, not both".into()));
    }
    if s.quarantined_in.is_some() {
        if !matches!(s.kind, Kind::Completeness | Kind::Validity) {
            problems.push((
                "quarantined_in",
                format!(
                    "a {} check takes no `quarantined_in`: only completeness and validity count failing rows that staging quarantines",
                    s.kind.as_str()
                ),
            ));
        } else if !s.table.starts_with("raw.") {
            problems.push((
                "quarantined_in",
                format!(
                    "`quarantined_in` is for checks of a raw table, where staging quarantines rows; `{}` is not one",
                    s.table
                ),
            ));
        }
    }
    let rule = rules::build(&s).map_err(|p| problems.extend(p));
    let Ok(rule) = rule else {
        return Err(problems);
    };
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Check {
        file: file.to_string(),
        line,
        name: s.name,
        table: s.table,
        description: s.description,
        tags: s.tags,
        filter: s.filter,
        quarantined_in: s.quarantined_in,
        rule,
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

/// The `warn` and `fail` tiers in the units the kind (or its history rule) takes.
fn tiers(s: &CheckSpec, problems: &mut Vec<Problem>) -> (Option<Threshold>, Option<Threshold>) {
    let units = match s.kind.tiers() {
        Ok(units) => units,
        Err(how) => return no_tiers(s, how, problems),
    };
    // A change is a count or a share of the baseline; an anomaly is a z-score.
    let (allowed, expected) = match (s.change.is_some(), s.anomaly.is_some()) {
        (true, _) => (
            &[Unit::Count, Unit::Percent][..],
            "an absolute (`> 100`) or relative (`> 50%`) change",
        ),
        (_, true) => (&[Unit::Count][..], "a z-score such as `> 3`"),
        _ => units,
    };
    let mut tier = |field: &'static str, text: &Option<String>| -> Option<Threshold> {
        let t = Threshold::parse(text.as_deref()?)
            .map_err(|m| problems.push((field, m)))
            .ok()?;
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
    if s.warn.is_none() && s.fail.is_none() {
        problems.push(("fail", "give `warn`, `fail` or both".into()));
    }
    (warn, fail)
}

/// What can be said of a check the schema rejects (an unknown `kind`, say):
/// whether its tiers parse at all, which does not depend on the kind.
fn tier_syntax(value: &serde_json::Value) -> Vec<Problem> {
    ["warn", "fail"]
        .into_iter()
        .filter_map(|field| {
            let text = value.get(field)?.as_str()?;
            Threshold::parse(text).err().map(|message| (field, message))
        })
        .collect()
}

/// A kind that decides its own result takes no tiers and no history.
fn no_tiers(s: &CheckSpec, how: &str, problems: &mut Vec<Problem>) -> (Option<Threshold>, Option<Threshold>) {
    if s.warn.is_some() || s.fail.is_some() {
        problems.push((
            if s.warn.is_some() { "warn" } else { "fail" },
            format!("a {} check takes no tiers: {how}", s.kind.as_str()),
        ));
    }
    if s.change.is_some() || s.anomaly.is_some() {
        problems.push((
            "kind",
            format!(
                "a {} check has no metric to compare with history",
                s.kind.as_str()
            ),
        ));
    }
    (None, None)
}

/// Keeps the checks `--select` names: a check name, `tag:<tag>`, or a table.
/// A selector that matches nothing is an error, never a silently empty gate.
pub(crate) fn select(checks: Vec<Check>, selectors: &[String]) -> Result<Vec<Check>, Vec<String>> {
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
    fn a_schema_error_does_not_hide_the_other_problems_of_its_file() {
        let errors = load_one(
            "checks:\n  - name: a\n    table: staging.events\n    kind: row_cnt\n    fail: \"more than 3\"\n  - name: b\n    table: staging.events\n    kind: validity\n    column: x\n    warn: \"> 0\"\n    colour: red\n",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 4, "{errors:#?}");
        assert!(
            errors[0].starts_with("checks/t.yaml:4: `checks[0].kind`: \"row_cnt\" is not one of"),
            "{errors:#?}"
        );
        assert_eq!(
            errors[1],
            "checks/t.yaml:5: `checks[0].fail`: `more than 3` should start with >, >=, <, <=, = or !="
        );
        assert!(
            errors[2].starts_with("checks/t.yaml:6: `checks[1]`: ") && errors[2].contains("colour"),
            "{errors:#?}"
        );
        assert_eq!(
            errors[3],
            "checks/t.yaml:8: `checks[1].kind`: a validity check needs `accepted_values`, `regex`, `min`/`max` or `predicate`"
        );
    }

    #[test]
    fn only_raw_completeness_and_validity_are_counted_in_a_quarantine() {
        let errors = load_one(
            "checks:\n  - {name: a, table: raw.events, kind: uniqueness, column: event_id, quarantined_in: staging.events_quarantine, fail: \"> 0\"}\n  - {name: b, table: staging.events, kind: completeness, column: sku, quarantined_in: staging.events_quarantine, fail: \"> 0\"}\n  - {name: c, table: raw.events, kind: completeness, column: sku, quarantined_in: marts.top_users, fail: \"> 0\"}\n",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(
            errors[0].ends_with("a uniqueness check takes no `quarantined_in`: only completeness and validity count failing rows that staging quarantines"),
            "{errors:#?}"
        );
        assert!(
            errors[1].ends_with("`quarantined_in` is for checks of a raw table, where staging quarantines rows; `staging.events` is not one"),
            "{errors:#?}"
        );
        assert!(errors[2].contains("`checks[2].quarantined_in`"), "{errors:#?}");
        let ok = load_one(
            "checks:\n  - {name: a, table: raw.events, kind: validity, column: sku, regex: 'S.*', quarantined_in: staging.events_quarantine, fail: \"> 0\"}\n",
        )
        .unwrap();
        assert_eq!(ok[0].quarantined_in.as_deref(), Some("staging.events_quarantine"));
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
