//! Check results for people and machines: the terminal table,
//! `output/check_results.json` and `output/summary.md`.

use serde_json::json;

use super::engine::{Audit, Outcome, Status};

/// `12 (0.06%)`, `0 rows`, `3h 2m`: the observed value in the check's unit.
pub(crate) fn observed(o: &Outcome) -> String {
    match o.observed {
        Some(v) => o.check.rule.measure().reads(v, o.observed_pct),
        None => "-".into(),
    }
}

/// Pass, warn, fail and error counts.
pub(crate) fn counts(audit: &Audit) -> [usize; 4] {
    let n = |s: Status| audit.outcomes.iter().filter(|o| o.status == s).count();
    [
        n(Status::Pass),
        n(Status::Warn),
        n(Status::Fail),
        n(Status::Error),
    ]
}

/// The compact table printed after a run.
pub(crate) fn table(audit: &Audit) -> String {
    let [pass, warn, fail, error] = counts(audit);
    let mut s = format!(
        "checks: {} run, {pass} pass, {warn} warn, {fail} fail, {error} error\n",
        audit.outcomes.len()
    );
    if audit.outcomes.is_empty() {
        return s;
    }
    let width = |len: fn(&Outcome) -> usize| audit.outcomes.iter().map(len).max().unwrap_or(0).max(5);
    let name_w = width(|o| o.check.name.len());
    let table_w = width(|o| o.check.table.len());
    let rows: Vec<(String, String)> = audit
        .outcomes
        .iter()
        .map(|o| {
            let detail = match (&o.message, o.status) {
                (Some(m), Status::Error) => m.clone(),
                (Some(m), _) => format!("{}  {m}", o.threshold),
                (None, _) => o.threshold.clone(),
            };
            (observed(o), detail)
        })
        .collect();
    let obs_w = rows.iter().map(|(o, _)| o.len()).max().unwrap_or(0).max(8);
    s += &format!(
        "  {:<6} {:<name_w$}  {:<table_w$}  {:<obs_w$}  threshold\n",
        "status", "check", "table", "observed"
    );
    for (o, (obs, detail)) in audit.outcomes.iter().zip(rows) {
        let status = match o.status {
            Status::Pass => "pass",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Error => "ERROR",
        };
        s += &format!(
            "  {status:<6} {:<name_w$}  {:<table_w$}  {obs:<obs_w$}  {detail}\n",
            o.check.name, o.check.table
        );
    }
    s
}

/// One check as JSON (the fields are documented in docs/checks.md).
fn outcome_json(o: &Outcome) -> serde_json::Value {
    json!({
        "name": o.check.name,
        "file": o.check.file,
        "line": o.check.line,
        "table": o.check.table,
        "kind": o.check.kind().as_str(),
        "status": o.status.as_str(),
        "severity": o.severity(),
        "observed": o.observed,
        "observed_pct": o.observed_pct,
        "threshold": o.threshold,
        "failed_rows": o.failed_rows,
        "sample": o.sample.as_ref().map(|p| p.display().to_string()),
        "message": o.message,
        "tags": o.check.tags,
        "description": o.check.description,
    })
}

/// `output/check_results.json`.
pub(crate) fn json(audit: &Audit, run_id: &str, as_of: &str, gate_passed: bool, published: bool) -> String {
    let [pass, warn, fail, error] = counts(audit);
    let doc = json!({
        "run_id": run_id,
        "as_of": as_of,
        "gate": if gate_passed { "passed" } else { "failed" },
        "published": published,
        "queries": audit.queries,
        "counts": {"pass": pass, "warn": warn, "fail": fail, "error": error},
        "checks": audit.outcomes.iter().map(outcome_json).collect::<Vec<_>>(),
    });
    serde_json::to_string_pretty(&doc).expect("JSON values serialise") + "\n"
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

/// `output/summary.md`: the same results as Markdown, for a CI step summary.
pub(crate) fn markdown(audit: &Audit, as_of: &str, gate_passed: bool, published: bool) -> String {
    let [pass, warn, fail, error] = counts(audit);
    let verdict = match (gate_passed, published) {
        (true, true) => "passed, published",
        (true, false) => "passed, not published",
        (false, true) => "FAILED, published anyway (--publish-on-failure)",
        (false, false) => "FAILED, nothing published",
    };
    let mut s = format!(
        "## sluice: gate {verdict}\n\nas of `{as_of}`: {pass} pass, {warn} warn, {fail} fail, {error} error\n\n| status | check | table | observed | threshold |\n|---|---|---|---|---|\n"
    );
    for o in &audit.outcomes {
        let icon = match o.status {
            Status::Pass => "✅ pass",
            Status::Warn => "⚠️ warn",
            Status::Fail => "❌ fail",
            Status::Error => "🛑 error",
        };
        let detail = match &o.message {
            Some(m) => format!("{} {}", o.threshold, m),
            None => o.threshold.clone(),
        };
        s += &format!(
            "| {icon} | `{}` | `{}` | {} | {} |\n",
            o.check.name,
            o.check.table,
            observed(o),
            md_escape(detail.trim())
        );
    }
    s
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// What a result says in one line: observed value, the deciding tier, and why.
fn verdict(o: &Outcome) -> String {
    match (&o.message, o.status) {
        (Some(m), Status::Error) => format!("could not run: {m}"),
        (Some(m), _) => format!("observed {}, {}: {m}", observed(o), o.threshold),
        (None, _) => format!("observed {}, {}", observed(o), o.threshold),
    }
}

/// `output/junit.xml`: a test suite per checks file, a test case per check. A
/// warning passes with the warning in `system-out`; fail and error are
/// `<failure>`s (of type `fail` or `error`).
pub(crate) fn junit(audit: &Audit) -> String {
    let [_, _, fail, error] = counts(audit);
    let mut files: Vec<&str> = Vec::new();
    for o in &audit.outcomes {
        if !files.contains(&o.check.file.as_str()) {
            files.push(&o.check.file);
        }
    }
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"sluice\" tests=\"{}\" failures=\"{}\">\n",
        audit.outcomes.len(),
        fail + error
    );
    for file in files {
        let cases: Vec<&Outcome> = audit.outcomes.iter().filter(|o| o.check.file == file).collect();
        let failures = cases
            .iter()
            .filter(|o| matches!(o.status, Status::Fail | Status::Error))
            .count();
        s += &format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n",
            xml_escape(file),
            cases.len()
        );
        for o in cases {
            s += &format!(
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\">",
                xml_escape(&o.check.name),
                xml_escape(&o.check.table),
                xml_escape(file),
                o.check.line
            );
            let text = xml_escape(&verdict(o));
            match o.status {
                Status::Pass => {}
                Status::Warn => s += &format!("\n      <system-out>warn: {text}</system-out>\n    "),
                Status::Fail | Status::Error => {
                    s += &format!(
                        "\n      <failure type=\"{}\" message=\"{text}\">{text}</failure>\n    ",
                        o.status.as_str()
                    )
                }
            }
            s += "</testcase>\n";
        }
        s += "  </testsuite>\n";
    }
    s + "</testsuites>\n"
}

/// GitHub Actions workflow commands: `::error` for fail and error, `::warning`
/// for warn, each pointing at the check's YAML file and line.
pub(crate) fn annotations(audit: &Audit) -> String {
    let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let property = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    let mut s = String::new();
    for o in &audit.outcomes {
        let level = match o.status {
            Status::Pass => continue,
            Status::Warn => "warning",
            Status::Fail | Status::Error => "error",
        };
        s += &format!(
            "::{level} file={},line={},title={}::{} on {}: {}\n",
            property(&o.check.file),
            o.check.line,
            property(&format!("sluice check {}", o.check.name)),
            o.status.as_str(),
            data(&o.check.table),
            data(&verdict(o))
        );
    }
    s
}
