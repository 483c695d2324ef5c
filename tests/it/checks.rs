//! The data-quality gate: each check kind with its exact observed value, the
//! fused queries, failing-row samples, config errors, and every gate outcome.

use std::path::Path;

use serde_json::Value;

use crate::util::{Workspace, bytes, marts, published};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/checks"))
}

/// A workspace with the checks fixture as its input.
fn fixture_ws() -> Workspace {
    let ws = Workspace::new();
    ws.write(
        "input/events.csv",
        std::fs::read(fixtures().join("events.csv")).unwrap(),
    );
    ws
}

fn kinds_dir() -> String {
    fixtures().join("kinds").display().to_string()
}

fn results(ws: &Workspace) -> Value {
    serde_json::from_str(&ws.read("output/check_results.json")).unwrap()
}

/// The `message` of check `name` in `check_results.json`.
fn message_of(results: &Value, name: &str) -> Value {
    results["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()["message"]
        .clone()
}

/// `name -> (status, observed, observed_pct rounded to 2 places, failed_rows)`.
fn by_name(results: &Value) -> std::collections::BTreeMap<String, (String, Value, Value, Value)> {
    results["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let pct = c["observed_pct"]
                .as_f64()
                .map_or(Value::Null, |p| Value::from((p * 100.0).round() / 100.0));
            (
                c["name"].as_str().unwrap().to_string(),
                (
                    c["status"].as_str().unwrap().to_string(),
                    c["observed"].clone(),
                    pct,
                    c["failed_rows"].clone(),
                ),
            )
        })
        .collect()
}

#[test]
fn every_kind_reports_its_exact_observed_value() {
    let ws = fixture_ws();
    let (code, stdout, stderr) = ws.run(&["--checks-dir", &kinds_dir()]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let got = by_name(&results(&ws));
    let expect = |name: &str, status: &str, observed: Value, pct: Value, failed: Value| {
        assert_eq!(got[name], (status.to_string(), observed, pct, failed), "{name}");
    };
    use serde_json::json;
    expect("rows_present", "pass", json!(9.0), Value::Null, Value::Null);
    expect("rows_many", "fail", json!(9.0), Value::Null, Value::Null);
    expect("region_complete", "warn", json!(1.0), json!(11.11), json!(1));
    expect("sku_complete", "fail", json!(1.0), json!(11.11), json!(1));
    expect("user_region_unique", "warn", json!(1.0), json!(11.11), json!(1));
    expect("region_valid", "fail", json!(1.0), json!(12.5), json!(1));
    expect("amount_positive", "warn", json!(1.0), json!(11.11), json!(1));
    expect("sku_letter", "pass", json!(1.0), json!(11.11), json!(1));
    expect("amount_small", "pass", json!(0.0), json!(0.0), json!(0));
    expect("recent_events", "warn", json!(1.0), json!(12.5), json!(1));
    expect("fresh", "warn", json!(7200.0), Value::Null, Value::Null);
    expect("big_amounts", "fail", json!(1.0), Value::Null, json!(1));
    expect("raw_event_id_unique", "fail", json!(1.0), json!(10.0), json!(1));
    expect("quarantine_empty", "pass", json!(0.0), Value::Null, Value::Null);
    expect("rank_unique", "pass", json!(0.0), json!(0.0), json!(0));
    expect("top_total_positive", "pass", json!(0.0), json!(0.0), json!(0));
    expect("revenue_reconciles", "pass", json!(0.0), json!(0.0), Value::Null);
    expect(
        "revenue_vs_everything",
        "fail",
        json!(3.0),
        json!(8.0),
        Value::Null,
    );
    expect("event_id_complete", "pass", json!(0.0), json!(0.0), json!(0));
    expect("fresh_strict", "fail", json!(7200.0), Value::Null, Value::Null);
    expect("fresh_loose", "pass", json!(7200.0), Value::Null, Value::Null);
    expect("no_huge_amounts", "pass", json!(0.0), Value::Null, json!(0));
    expect("raw_schema", "pass", json!(0.0), Value::Null, Value::Null);
    expect(
        "revenue_day_over_day",
        "pass",
        json!(1.5),
        json!(50.0),
        Value::Null,
    );
    expect("staging_schema", "warn", json!(3.0), Value::Null, Value::Null);
    expect("top_users_schema", "fail", json!(1.0), Value::Null, Value::Null);
    let r = results(&ws);
    let message = |name: &str| message_of(&r, name);
    assert_eq!(
        message("staging_schema"),
        "new column `_source_file`; new column `amount_cents`; new column `sku`"
    );
    assert_eq!(
        message("top_users_schema"),
        "`user_id` is BIGINT, expected INTEGER"
    );
    assert_eq!(results(&ws)["gate"], "failed");
}

#[test]
fn checks_on_one_table_are_fused_into_one_query() {
    let ws = fixture_ws();
    ws.run(&["--checks-dir", &kinds_dir()]);
    // staging.events (13 metric checks), raw.events (2), the quarantine,
    // marts.top_users (2): one query each; one per custom check (2) and per
    // consistency check (3). Schema checks read the catalog only.
    assert_eq!(results(&ws)["queries"], 9);
}

#[test]
fn failing_rows_are_sampled_with_keys_and_masks() {
    let ws = fixture_ws();
    ws.run(&["--checks-dir", &kinds_dir()]);
    assert_eq!(
        ws.read("output/failed_rows/amount_positive.csv"),
        "event_id,user_id,amount\ne03,***,-3.00\n"
    );
    assert_eq!(
        ws.read("output/failed_rows/region_valid.csv"),
        "event_id,region\ne04,mars\n"
    );
    assert_eq!(
        ws.read("output/failed_rows/big_amounts.csv"),
        "event_id,amount\ne01,10.00\n"
    );
    assert_eq!(
        ws.read("output/failed_rows/raw_event_id_unique.csv"),
        "event_id\ne08\ne08\n"
    );
    assert!(!ws.path("output/failed_rows/rows_present.csv").exists());
}

#[test]
fn the_terminal_table_snapshot() {
    let ws = fixture_ws();
    let (code, stdout, _) = ws.run(&["--checks-dir", &kinds_dir(), "--select", "staging.events"]);
    assert_eq!(code, 1);
    let table: String = stdout
        .lines()
        .skip_while(|l| !l.starts_with("checks:"))
        .take_while(|l| !l.starts_with("top users"))
        .map(|l| format!("{l}\n"))
        .collect();
    insta::assert_snapshot!(table);
}

#[test]
fn a_check_that_cannot_run_is_an_error_alone() {
    let ws = fixture_ws();
    ws.write(
        "checks/c.yaml",
        "checks:\n  - {name: good, table: staging.events, kind: row_count, fail: \"< 1\"}\n  - {name: no_column, table: staging.events, kind: completeness, column: colour, fail: \"> 0\"}\n  - {name: bad_sql, table: staging.events, kind: validity, predicate: \"amount <<>> 3\", fail: \"> 0\"}\n  - {name: no_table, table: marts.nope, kind: row_count, fail: \"< 1\"}\n",
    );
    let (code, stdout, _) = ws.run(&[]);
    assert_eq!(code, 1, "{stdout}");
    let got = by_name(&results(&ws));
    assert_eq!(got["good"].0, "pass");
    for name in ["no_column", "bad_sql", "no_table"] {
        assert_eq!(got[name].0, "error", "{name}");
    }
    let r = results(&ws);
    let message = |n: usize| r["checks"][n]["message"].as_str().unwrap().to_string();
    assert!(
        message(1).starts_with("unknown column `colour` in `staging.events` (columns: "),
        "{}",
        message(1)
    );
    assert_eq!(
        message(2),
        "Catalog Error: Scalar Function with name <<>> does not exist!"
    );
    assert_eq!(message(3), "unknown table `marts.nope`");
    assert!(stdout.contains("gate: FAILED (0 fail, 3 error)"), "{stdout}");
}

#[test]
fn config_errors_are_all_reported_with_file_line_and_key() {
    let ws = Workspace::new();
    let dir = fixtures().join("broken").display().to_string();
    let out = ws.sluice(&["validate", "--checks-dir", &dir]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&format!("{dir}/"), "broken/");
    insta::assert_snapshot!(stderr);
    // The same errors stop a run before any data is read (here there is none).
    let run = ws
        .sluice(&["run", "--checks-dir", &dir, "--input", "nope"])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).starts_with("error: 8 problems in the checks:"));
}

#[test]
fn validate_and_schema_commands() {
    let ws = Workspace::new();
    let out = ws.sluice(&["validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok: pipeline `default` in <built-in>/sluice.yaml: 1 source, 1 staging model, 2 marts; 20 checks in 1 file\n"
    );
    let schema = ws.sluice(&["schema", "checks"]).output().unwrap();
    let schema: Value = serde_json::from_slice(&schema.stdout).unwrap();
    assert_eq!(schema["required"], serde_json::json!(["checks"]));
    assert!(
        schema["$defs"]["CheckSpec"]["properties"]["kind"].is_object(),
        "{schema}"
    );
    let missing = ws.sluice(&["validate", "--checks-dir", "nope"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

/// Adds data with `defects` and a checks file, runs with `flags`; returns the exit code.
fn rerun(ws: &Workspace, defects: &str, flags: &[&str]) -> i32 {
    ws.generate_seeded("input/more.csv", 1_000, defects, 8);
    let (code, _, _) = ws.run(flags);
    code
}

#[test]
fn a_failed_gate_publishes_nothing_and_records_the_run() {
    let (ws, csv) = published();
    let before = marts(&ws);
    assert_eq!(rerun(&ws, "negative_amount=0.2", &[]), 1);
    assert_eq!(marts(&ws), before);
    assert_eq!(bytes(&ws.path("output/top_users.csv")), csv);
    assert!(ws.path("output/unpublished/top_users.csv").is_file());
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT r.status, r.published_db, c.status, c.failed_rows FROM _sluice_runs r JOIN _sluice_check_results c USING (run_id) WHERE c.check_name = 'amount_not_negative' ORDER BY r.started_at"
        ),
        vec!["passed|1|pass|0", "gate_failed|0|fail|205"]
    );
    assert_eq!(results(&ws)["published"], false);
    assert!(
        ws.read("output/summary.md")
            .starts_with("## sluice: gate FAILED, nothing published\n")
    );
}

#[test]
fn gate_outcomes_and_their_exit_codes() {
    // Warnings publish; --fail-on-warn turns them into a failed gate.
    let (ws, csv) = published();
    assert_eq!(rerun(&ws, "negative_amount=0.002", &["--fail-on-warn"]), 1);
    assert_eq!(bytes(&ws.path("output/top_users.csv")), csv);
    assert_eq!(rerun(&ws, "negative_amount=0.002", &[]), 0);
    assert_ne!(bytes(&ws.path("output/top_users.csv")), csv);

    // --publish-on-failure publishes and still exits 1.
    let (ws, csv) = published();
    assert_eq!(rerun(&ws, "negative_amount=0.2", &["--publish-on-failure"]), 1);
    assert_ne!(bytes(&ws.path("output/top_users.csv")), csv);
    assert_eq!(results(&ws)["published"], true);
    assert!(
        ws.read("output/summary.md")
            .starts_with("## sluice: gate FAILED, published anyway")
    );

    // --no-publish: the gate's exit code, nothing published.
    let (ws, csv) = published();
    assert_eq!(rerun(&ws, "negative_amount=0.2", &["--no-publish"]), 1);
    assert_eq!(rerun(&ws, "", &["--no-publish"]), 0);
    assert_eq!(bytes(&ws.path("output/top_users.csv")), csv);
}

/// Each planted defect kind, at 3% of 3000 rows, fails the check made for it
/// (and no other check fails).
#[test]
fn the_default_checks_name_each_planted_defect() {
    let table = [
        ("null_event_id", "raw_event_id_present"),
        ("null_time", "raw_event_time_present"),
        ("bad_time", "raw_event_time_parses"),
        ("null_user", "raw_user_id_present"),
        ("bad_user", "raw_user_id_parses"),
        ("null_amount", "raw_amount_present"),
        ("bad_amount", "raw_amount_parses"),
        ("malformed", "raw_rows_well_formed"),
        ("non_utf8", "raw_rows_well_formed"),
        ("dup_event", "raw_event_id_unique"),
        ("conflict_event", "raw_event_id_unique"),
        ("negative_amount", "amount_not_negative"),
        ("bad_region", "region_accepted"),
        ("stale", "events_not_stale"),
    ];
    let clean = Workspace::new();
    clean.generate("input/events.csv", 3_000, "");
    let (code, stdout, _) = clean.run(&[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.contains("checks: 20 run, 20 pass, 0 warn, 0 fail, 0 error"),
        "{stdout}"
    );
    for (defect, check) in table {
        let ws = Workspace::new();
        ws.generate("input/events.csv", 3_000, &format!("{defect}=0.03"));
        let (code, stdout, _) = ws.run(&[]);
        assert_eq!(code, 1, "{defect}: {stdout}");
        let failing: Vec<String> = by_name(&results(&ws))
            .into_iter()
            .filter(|(_, v)| v.0 == "fail" || v.0 == "error")
            .map(|(k, _)| k)
            .collect();
        assert_eq!(failing, vec![check.to_string()], "{defect}");
    }
}

#[test]
fn sluice_check_reaudits_what_is_published() {
    let (ws, _) = published();
    let out = ws.sluice(&["check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("as of 2026-11-20T12:00:00Z\nchecks: 20 run, 20 pass,"),
        "{stdout}"
    );

    // Damage the published marts and lose the lake: the marts' checks catch it,
    // the checks on layers that are gone are skipped.
    rusqlite::Connection::open(ws.path("agg_result.db"))
        .unwrap()
        .execute_batch("UPDATE top_users SET rank = 1 WHERE rank <= 3;")
        .unwrap();
    std::fs::remove_dir_all(ws.path("data")).unwrap();
    let out = ws.sluice(&["check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .contains("skipped 17 checks whose tables are not available: raw_event_id_present (raw.events),"),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.contains(" top_users_rank_unique "))
        .unwrap_or_default();
    assert!(
        line.starts_with("  FAIL") && line.contains("2 (2.00%)"),
        "{stdout}"
    );

    let fresh = Workspace::new();
    let out = fresh.sluice(&["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!fresh.path("agg_result.db").exists());
}

/// Reads a JUnit file with a real JUnit parser (PyPI's `junitparser`, which
/// `ci/test.sh` installs) and lists `suite tests failures` and `classname name result system-out`.
fn parse_junit(path: &Path) -> String {
    let script = r#"
import sys, junitparser
for suite in junitparser.JUnitXml.fromfile(sys.argv[1]):
    print("suite", suite.name, suite.tests, suite.failures)
    for case in suite:
        result = ",".join((r.type or "") + ":" + (r.message or "") for r in case.result)
        print(" ", case.classname, case.name, result, (case.system_out or "").strip())
"#;
    let python = |args: &[&str]| {
        std::process::Command::new("python3")
            .args(args)
            .output()
            .expect("python3")
    };
    assert!(
        python(&["-c", "import junitparser"]).status.success(),
        "PyPI's junitparser is not installed: `bash ci/test.sh` installs it, or `pip install junitparser`"
    );
    let out = python(&["-c", script, &path.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn junit_and_github_annotations_report_every_check() {
    let ws = fixture_ws();
    ws.write(
        "checks/staging.yaml",
        std::fs::read(fixtures().join("kinds/staging.yaml")).unwrap(),
    );
    ws.write("step-summary.md", "# an earlier step\n");
    let out = ws
        .sluice(&[
            "run",
            "--as-of",
            crate::util::AS_OF,
            "--select",
            "region_complete,sku_complete,rows_present",
        ])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", ws.path("step-summary.md"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let annotations: String = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("::"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        annotations,
        "::warning file=checks/staging.yaml,line=12,title=sluice check region_complete::warn on staging.events: observed 1 (11.11%25), warn: > 0
::error file=checks/staging.yaml,line=17,title=sluice check sku_complete::fail on staging.events: observed 1 (11.11%25), fail: > 10%25
"
    );
    let summary = ws.read("step-summary.md");
    assert!(
        summary.starts_with("# an earlier step\n## sluice: gate FAILED, nothing published\n"),
        "{summary}"
    );
    assert_eq!(
        parse_junit(&ws.path("output/junit.xml")),
        "suite checks/staging.yaml 3 1
  staging.events rows_present  \n  staging.events region_complete  warn: observed 1 (11.11%), warn: > 0
  staging.events sku_complete fail:observed 1 (11.11%), fail: > 10% \n"
    );
}

#[test]
fn a_select_that_matches_nothing_is_a_usage_error() {
    let ws = fixture_ws();
    let (code, _, stderr) = ws.run(&["--select", "tag:volume,raw.evnts"]);
    assert_eq!(code, 2);
    assert!(
        stderr.starts_with("error: --select matches no check: raw.evnts\n"),
        "{stderr}"
    );
}

#[test]
fn freshness_without_data_breaches_only_the_tiers_it_has() {
    let ws = Workspace::new();
    ws.write(
        "input/events.csv",
        "event_id,user_id,event_time,region,sku,amount\n",
    );
    ws.write(
        "checks/fresh.yaml",
        "checks:\n  - {name: soft, table: staging.events, kind: freshness, column: event_time, warn: \"> 1h\"}\n  - {name: hard, table: staging.events, kind: freshness, column: event_time, warn: \"> 1h\", fail: \"> 2h\"}\n",
    );
    ws.run(&[]);
    let got = by_name(&results(&ws));
    assert_eq!(got["soft"].0, "warn");
    assert_eq!(got["hard"].0, "fail");
}

/// Runs the job as of day `day` of 2026-11 on `rows` fresh generated events;
/// returns the exit code and `name -> (status, message)` of the checks.
fn run_day(
    ws: &Workspace,
    day: u32,
    rows: u64,
) -> (i32, std::collections::BTreeMap<String, (String, String)>) {
    let as_of = format!("2026-11-{day:02}T12:00:00Z");
    let (rows, seed) = (rows.to_string(), day.to_string());
    ws.sluice(&[
        "generate",
        "--rows",
        &rows,
        "--out",
        "input/events.csv",
        "--end",
        &as_of,
        "--seed",
        &seed,
    ])
    .assert()
    .success();
    let out = ws.sluice(&["run", "--as-of", &as_of]).output().unwrap();
    let r = results(ws);
    let checks = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("name"), (text("status"), text("message")))
        })
        .collect();
    (out.status.code().unwrap_or(-1), checks)
}

#[test]
fn change_and_anomaly_checks_learn_from_earlier_runs() {
    let ws = Workspace::new();
    ws.write(
        "checks/history.yaml",
        "checks:
  - name: volume_change
    table: staging.events
    kind: row_count
    change: {baseline: last}
    warn: \"> 50%\"
  - name: volume_anomaly
    table: staging.events
    kind: row_count
    anomaly: {runs: 10, min_history: 3, direction: both}
    fail: \"> 4\"
",
    );
    // Quiet while the history is short, whatever the volume does.
    let (code, r) = run_day(&ws, 1, 1000);
    assert_eq!(code, 0);
    assert_eq!(
        r["volume_change"],
        ("pass".into(), "no earlier run to compare with yet".into())
    );
    assert_eq!(
        r["volume_anomaly"],
        ("pass".into(), "0 of 3 runs of history before it can fire".into())
    );
    assert_eq!(
        run_day(&ws, 2, 1040).1["volume_change"],
        ("pass".into(), "4.0% from 1000 (the last run)".into())
    );
    let (_, r) = run_day(&ws, 3, 980);
    assert_eq!(r["volume_anomaly"].1, "2 of 3 runs of history before it can fire");
    // With enough history, a normal wobble stays quiet ...
    let (code, r) = run_day(&ws, 4, 1020);
    assert_eq!(code, 0);
    assert_eq!(
        r["volume_anomaly"],
        (
            "pass".into(),
            "z = 0.44 against a mean of 1006.67 over 3 runs".into()
        )
    );
    assert_eq!(run_day(&ws, 5, 1010).0, 0);
    // ... and a spike is caught by both.
    let (code, r) = run_day(&ws, 6, 5000);
    assert_eq!(code, 1);
    assert_eq!(r["volume_anomaly"].0, "fail");
    assert_eq!(
        r["volume_anomaly"].1,
        "z = 178.44 against a mean of 1010.00 over 5 runs"
    );
    assert_eq!(
        r["volume_change"],
        ("warn".into(), "395.0% from 1010 (the last run)".into())
    );
    // The failed run is no baseline: back to normal compares with day 5.
    let (code, r) = run_day(&ws, 7, 1030);
    assert_eq!(code, 0);
    assert_eq!(r["volume_change"].1, "2.0% from 1010 (the last run)");
    // A re-run with the same as_of replaces its own history rows.
    run_day(&ws, 7, 1030);
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT count(*), sum(gate_passed) FROM _sluice_metrics_history WHERE check_name = 'volume_change'"
        ),
        vec!["7|6"]
    );
}

#[test]
fn relationships_count_and_sample_the_orphans() {
    let ws = Workspace::new();
    let mut csv = String::from_utf8(std::fs::read(fixtures().join("events.csv")).unwrap()).unwrap();
    // Two rows staging quarantines: their event ids never reach staging.events.
    csv += "e10,6,2026-11-20T08:00:00Z,us,f,abc\ne11,x,2026-11-20T08:00:00Z,us,f,1.00\n";
    ws.write("input/events.csv", csv);
    ws.write(
        "checks/r.yaml",
        r#"checks:
  - name: raw_ids_staged
    table: raw.events
    kind: relationships
    column: event_id
    to: {table: staging.events, column: event_id}
    key_columns: [_line]
    warn: "> 0"
  - name: users_in_top
    table: staging.events
    kind: relationships
    column: user_id
    to: {table: marts.top_users, column: user_id, filter: "events > 1"}
    fail: "> 10%"
  - name: top_users_staged
    table: marts.top_users
    kind: relationships
    column: user_id
    to: {table: staging.events, column: user_id}
    fail: "> 0"
  - name: no_such_table
    table: staging.events
    kind: relationships
    column: user_id
    to: {table: staging.users, column: id}
    fail: "> 0"
  - name: no_such_column
    table: staging.events
    kind: relationships
    column: user_id
    to: {table: marts.top_users, column: customer}
    fail: "> 0"
"#,
    );
    let (code, stdout, stderr) = ws.run(&[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let got = by_name(&results(&ws));
    use serde_json::json;
    let expect = |name: &str, status: &str, observed: Value, pct: Value, failed: Value| {
        assert_eq!(got[name], (status.to_string(), observed, pct, failed), "{name}");
    };
    // 12 raw rows with an id; e10 and e11 were quarantined.
    expect("raw_ids_staged", "warn", json!(2.0), json!(16.67), json!(2));
    // User 5's one event is outside the window, so not in top_users.
    expect("users_in_top", "fail", json!(1.0), json!(11.11), json!(1));
    expect("top_users_staged", "pass", json!(0.0), json!(0.0), json!(0));
    assert_eq!(got["no_such_table"].0, "error");
    assert_eq!(got["no_such_column"].0, "error");
    let r = results(&ws);
    let message = |name: &str| message_of(&r, name).as_str().unwrap_or_default().to_string();
    assert_eq!(message("no_such_table"), "unknown table `staging.users`");
    assert!(
        message("no_such_column").starts_with("unknown column `customer` in `marts.top_users` (columns: "),
        "{}",
        message("no_such_column")
    );
    assert_eq!(
        ws.read("output/failed_rows/raw_ids_staged.csv"),
        "_line,event_id\n12,e10\n13,e11\n"
    );
    assert_eq!(ws.read("output/failed_rows/users_in_top.csv"), "user_id\n5\n");
    assert!(
        stdout.contains("\n  WARN   raw_ids_staged    raw.events       2 (16.67%)  warn: > 0\n"),
        "{stdout}"
    );
}

/// Checks come from files a pull request may change, and their samples are
/// uploaded as CI artifacts: their SQL may read the lake and the outputs,
/// never another file or the environment (`/proc/self/environ`).
#[test]
fn check_sql_cannot_read_files_outside_the_lake() {
    let ws = fixture_ws();
    ws.write(
        "checks/c.yaml",
        "checks:\n  - {name: rows, table: raw.events, kind: row_count, fail: \"< 1\"}\n  - {name: passwd, table: staging.events, kind: custom, sql: \"SELECT content FROM read_text('/etc/passwd')\", fail: \"> 0\"}\n  - {name: environ, table: staging.events, kind: validity, predicate: \"(SELECT count(*) FROM read_text('/proc/self/environ')) = 0\", fail: \"> 0\"}\n",
    );
    let (code, stdout, stderr) = ws.run(&[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let got = by_name(&results(&ws));
    // The raw layer is read from the lake's Parquet: still allowed.
    assert_eq!(got["rows"].0, "pass");
    for name in ["passwd", "environ"] {
        assert_eq!(got[name].0, "error", "{name}");
        let message = message_of(&results(&ws), name);
        assert!(
            message
                .as_str()
                .unwrap_or_default()
                .starts_with("Permission Error: "),
            "{name}: {message}"
        );
        assert!(!ws.path(&format!("output/failed_rows/{name}.csv")).exists());
    }
    // A re-audit of what is published is held to the same.
    ws.write(
        "checks/c.yaml",
        "checks:\n  - {name: rows, table: raw.events, kind: row_count, fail: \"< 1\"}\n",
    );
    assert_eq!(ws.run(&[]).0, 0);
    ws.write(
        "checks/c.yaml",
        "checks:\n  - {name: passwd, table: marts.top_users, kind: custom, sql: \"SELECT content FROM read_text('/etc/passwd')\", fail: \"> 0\"}\n",
    );
    let out = ws.sluice(&["check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("Permission Error: "), "{stdout}");
}

/// The default raw checks count their failing rows in the quarantine: the
/// same results and samples as testing every raw row (every defect at 1%,
/// spaces beyond ASCII among them). A check whose failing rows staging keeps
/// is an error naming `quarantined_in`, not an undercount.
#[test]
fn raw_checks_counted_in_the_quarantine_equal_testing_every_row() {
    let ws = Workspace::new();
    ws.generate("input/events.csv", 20_000, "all=0.01");
    let (code, stdout, _) = ws.run(&[]);
    assert_eq!(code, 1, "{stdout}");
    let default =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/checks/events.yaml")).unwrap();
    let scoped = "    quarantined_in: staging.events_quarantine\n";
    assert_eq!(default.matches(scoped).count(), 7);
    ws.write("every-row/events.yaml", default.replace(scoped, ""));
    let (code, stdout, _) = ws.run(&[
        "--checks-dir",
        "every-row",
        "--db",
        "every-row.db",
        "--output-dir",
        "every-row-out",
        "--data-dir",
        "every-row-data",
    ]);
    assert_eq!(code, 1, "{stdout}");
    let every_row: Value = serde_json::from_str(&ws.read("every-row-out/check_results.json")).unwrap();
    let (counted, tested) = (by_name(&results(&ws)), by_name(&every_row));
    assert_eq!(counted, tested);
    for check in [
        "raw_event_id_present",
        "raw_event_time_parses",
        "raw_user_id_parses",
        "raw_amount_parses",
    ] {
        assert!(counted[check].0 != "pass", "{check}: {counted:?}");
        let sample = format!("failed_rows/{check}.csv");
        assert_eq!(
            ws.read(&format!("output/{sample}")),
            ws.read(&format!("every-row-out/{sample}")),
            "{check}"
        );
    }

    ws.write(
        "misused/checks.yaml",
        "checks:\n\
         \x20 - {name: raw_amount_small, table: raw.events, kind: validity, column: amount, predicate: \"length(trim(amount)) < 4\", quarantined_in: staging.events_quarantine, fail: \"> 90%\"}\n\
         \x20 - {name: raw_sku_present, table: raw.events, kind: completeness, column: sku, quarantined_in: staging.nope, fail: \"> 90%\"}\n\
         \x20 - {name: raw_time_present, table: raw.events, kind: completeness, column: event_time, quarantined_in: staging.events_quarantine, fail: \"> 90%\"}\n",
    );
    let (code, stdout, _) = ws.run(&["--checks-dir", "misused", "--output-dir", "misused-out"]);
    assert_eq!(code, 1, "{stdout}");
    let misused: Value = serde_json::from_str(&ws.read("misused-out/check_results.json")).unwrap();
    let status = by_name(&misused);
    assert_eq!(status["raw_amount_small"].0, "error");
    let message = message_of(&misused, "raw_amount_small");
    let message = message.as_str().unwrap();
    assert!(
        message.starts_with("`quarantined_in`: ")
            && message.contains(" raw rows tested that staging kept fail this check"),
        "{message}"
    );
    assert_eq!(status["raw_sku_present"].0, "error");
    assert!(
        message_of(&misused, "raw_sku_present")
            .as_str()
            .unwrap()
            .contains("unknown table `staging.nope`"),
        "{misused}"
    );
    // A check that keeps its claim passes beside them.
    assert_eq!(status["raw_time_present"].0, "pass");
}
