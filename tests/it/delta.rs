//! The Delta Lake sink: tables in a local directory and in S3 (moto's
//! standalone server), read back by an independent reader (PyPI's
//! `deltalake`, `tests/fixtures/delta/read_back.py`) and compared row by row
//! and type by type with the SQLite publish of the same run.

use std::process::Command;

use serde_json::Value;

use crate::s3::{S3Server, SECRET};
use crate::util::{AS_OF, Workspace, outcome};

const READER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/delta/read_back.py");

/// Both marts of the init pipeline as Delta tables under `root`.
fn delta_exports(root: &str) -> String {
    format!(
        "  - mart: daily_region_revenue\n    delta: {root}/daily_region_revenue\n\
         \x20 - mart: top_users\n    delta:\n      path: {root}/top_users\n"
    )
}

/// A workspace with the init pipeline, its marts exported to Delta under
/// `root`, and two days of input.
fn workspace(root: &str) -> Workspace {
    let ws = Workspace::new();
    ws.sluice(&["init"]).assert().success();
    let config = ws.read("sluice.yaml") + &delta_exports(root);
    ws.write("sluice.yaml", config);
    ws.generate_seeded("a.csv", 2_000, "", 11);
    ws.generate_seeded("b.csv", 3_000, "", 12);
    std::fs::create_dir_all(ws.path("empty")).unwrap();
    ws
}

/// What the reader says of `table` (at `version`), compared with the
/// SQLite mart when `mart` is given.
pub(crate) fn read_back(
    ws: &Workspace,
    s3: Option<&S3Server>,
    table: &str,
    version: Option<i64>,
    mart: Option<&str>,
) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(READER).arg(table).current_dir(ws.dir.path());
    if let Some(v) = version {
        cmd.args(["--version", &v.to_string()]);
    }
    if let Some(mart) = mart {
        cmd.args(["--sqlite", "agg_result.db", mart]);
    }
    for (key, value) in s3.map(S3Server::vars).unwrap_or_default() {
        cmd.env(key, value);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The newest run's id, and each of its Delta exports with the version it made.
fn last_run(ws: &Workspace) -> (String, Vec<String>) {
    let run = ws.query(
        "agg_result.db",
        "SELECT run_id FROM _sluice_runs ORDER BY finished_at DESC LIMIT 1",
    );
    let exports = ws.query(
        "agg_result.db",
        &format!(
            "SELECT mart, published, table_version FROM _sluice_run_exports \
             WHERE sink = 'delta' AND run_id = '{}' ORDER BY mart",
            run[0]
        ),
    );
    (run[0].clone(), exports)
}

fn run(ws: &Workspace, s3: Option<&S3Server>, input: &str, fault: Option<&str>) -> (i32, String, String) {
    let mut cmd = ws.sluice(&["run", "--as-of", AS_OF, "--input", input]);
    for (key, value) in s3.map(S3Server::vars).unwrap_or_default() {
        cmd.env(key, value);
    }
    if let Some(fault) = fault {
        cmd.env("SLUICE_FAULT", fault);
    }
    outcome(&cmd.output().unwrap())
}

/// Every passing run makes one new version of each table, with exactly the
/// SQLite marts' rows and Delta's own types; a failed gate makes none, and
/// earlier versions stay readable.
#[test]
fn each_published_run_is_one_new_delta_version() {
    let ws = workspace("lake");
    let (code, stdout, stderr) = run(&ws, None, "a.csv", None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let table = "output/lake/daily_region_revenue";
    assert!(stdout.contains(&format!("Delta `{table}` version 0")), "{stdout}");
    let (first_run, exports) = last_run(&ws);
    assert_eq!(exports, ["daily_region_revenue|1|0", "top_users|1|0"]);
    let first = read_back(
        &ws,
        None,
        "output/lake/daily_region_revenue",
        None,
        Some("daily_region_revenue"),
    );
    assert_eq!(first["matches_sqlite"], true, "{first}");
    assert_eq!(first["version"], 0);
    assert_eq!(first["run_id"], first_run.as_str());
    assert_eq!(
        first["types"],
        serde_json::json!({
            "day": "date32[day]",
            "region": "string",
            "revenue": "decimal128(18, 2)",
            "events": "int64",
            "unique_users": "int64",
        })
    );
    let users = read_back(&ws, None, "output/lake/top_users", None, Some("top_users"));
    assert_eq!(users["matches_sqlite"], true, "{users}");
    assert_eq!(users["rows"], 100);
    assert_eq!(users["types"]["first_seen"], "timestamp[us, tz=UTC]");
    assert_eq!(users["types"]["total_amount"], "decimal128(18, 2)");

    // The next day's input: a new version holding the new rows.
    let (code, stdout, stderr) = run(&ws, None, "b.csv", None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (second_run, exports) = last_run(&ws);
    assert_eq!(exports, ["daily_region_revenue|1|1", "top_users|1|1"]);
    let second = read_back(
        &ws,
        None,
        "output/lake/daily_region_revenue",
        None,
        Some("daily_region_revenue"),
    );
    assert_eq!(second["matches_sqlite"], true, "{second}");
    assert_eq!(
        (&second["version"], &second["operation"]),
        (&1.into(), &"WRITE".into())
    );
    assert_eq!(second["run_id"], second_run.as_str());
    // Time travel: version 0 is the first run's, whole, and not the new rows.
    let old = read_back(
        &ws,
        None,
        "output/lake/daily_region_revenue",
        Some(0),
        Some("daily_region_revenue"),
    );
    assert_eq!((&old["rows"], &old["run_id"]), (&first["rows"], &first["run_id"]));
    assert_eq!(old["matches_sqlite"], false, "{old}");

    // `sluice check --delta` re-audits the tables' current versions: it
    // passes as published, and fails once another writer drops a row.
    let (code, stdout, stderr) = outcome(&ws.sluice(&["check", "--delta"]).output().unwrap());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "marts.daily_region_revenue from Delta `{table}` version 1\n"
        )),
        "{stdout}"
    );
    let dropped = Command::new("python3")
        .args([
            "-c",
            "import sys; from deltalake import DeltaTable, write_deltalake\n\
             t = DeltaTable(sys.argv[1]).to_pyarrow_table()\n\
             write_deltalake(sys.argv[1], t.slice(1), mode='overwrite')",
            table,
        ])
        .current_dir(ws.dir.path())
        .output()
        .unwrap();
    assert!(
        dropped.status.success(),
        "{}",
        String::from_utf8_lossy(&dropped.stderr)
    );
    let (code, stdout, _) = outcome(&ws.sluice(&["check", "--delta"]).output().unwrap());
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("version 2\n") && stdout.contains("revenue_reconciles"),
        "{stdout}"
    );
    let line = stdout
        .lines()
        .find(|l| l.contains("revenue_reconciles"))
        .unwrap_or_default();
    assert_eq!(line.split_whitespace().next(), Some("FAIL"), "{stdout}");
    // The database's marts are untouched: without --delta it passes.
    let (code, stdout, _) = outcome(&ws.sluice(&["check"]).output().unwrap());
    assert_eq!(code, 0, "{stdout}");

    // A failed gate (no input rows) makes no version: the table stays at
    // the other writer's.
    let (code, stdout, _) = run(&ws, None, "empty", None);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("gate: FAILED"), "{stdout}");
    let after = read_back(&ws, None, "output/lake/daily_region_revenue", None, None);
    assert_eq!(after["version"], 2, "{after}");
    // A run that publishes nothing records no exports.
    assert!(last_run(&ws).1.is_empty());
}

/// A mart whose columns changed fails the publish (nothing published, the
/// table untouched) unless its export lets the schema evolve.
#[test]
fn a_changed_mart_needs_schema_evolve() {
    let ws = workspace("lake");
    let (code, stdout, stderr) = run(&ws, None, "a.csv", None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let config = ws.read("sluice.yaml").replace(
        "      unique_users: count_distinct(user_id)\n",
        "      biggest: max(amount)\n",
    );
    ws.write("sluice.yaml", &config);
    let (code, _, stderr) = run(&ws, None, "b.csv", None);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            "error: mart `daily_region_revenue` no longer has the columns of Delta table \
             `output/lake/daily_region_revenue`: `unique_users` (long) is gone; `biggest` (decimal(18,2)) is new"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("set `schema: evolve` on its export"), "{stderr}");
    let table = read_back(&ws, None, "output/lake/daily_region_revenue", None, None);
    assert_eq!(table["version"], 0);
    // The SQLite marts are the first run's too: nothing was published.
    let db_runs = ws.query("agg_result.db", "SELECT count(*) FROM _sluice_runs");
    assert_eq!(db_runs, ["1"]);

    let config = config.replace(
        "    delta: lake/daily_region_revenue\n",
        "    delta:\n      path: lake/daily_region_revenue\n      schema: evolve\n",
    );
    ws.write("sluice.yaml", config);
    let (code, stdout, stderr) = run(&ws, None, "b.csv", None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let table = read_back(
        &ws,
        None,
        "output/lake/daily_region_revenue",
        None,
        Some("daily_region_revenue"),
    );
    assert_eq!(table["matches_sqlite"], true, "{table}");
    assert_eq!(table["version"], 1);
    assert_eq!(table["types"]["biggest"], "decimal128(18, 2)");
    assert!(table["types"].get("unique_users").is_none(), "{table}");
}

/// `retain: 2 runs` keeps the versions of the last two published runs
/// whole and vacuums the files only older versions read.
#[test]
fn delta_retention_in_runs_keeps_the_last_runs_versions() {
    let ws = workspace("lake");
    let config = ws.read("sluice.yaml").replace(
        "      path: lake/top_users\n",
        "      path: lake/top_users\n      retain: 2 runs\n",
    );
    ws.write("sluice.yaml", config);
    ws.generate_seeded("c.csv", 1_000, "", 13);
    for input in ["a.csv", "b.csv", "c.csv"] {
        let (code, stdout, stderr) = run(&ws, None, input, None);
        assert_eq!(code, 0, "{stdout}{stderr}");
    }
    let versions = ws.query(
        "agg_result.db",
        "SELECT table_version FROM _sluice_run_exports WHERE sink = 'delta' AND mart = 'top_users' ORDER BY rowid",
    );
    assert_eq!(versions.len(), 3);
    // After a failed read of a vacuumed version, deltalake's native threads
    // sometimes abort the interpreter's exit ("terminate called without an
    // active exception"): the answers are printed, then the process leaves
    // without that teardown.
    let script = "import os, sys\nfrom deltalake import DeltaTable\n\
                  for v in sys.argv[2:]:\n\
                  \x20   try:\n\
                  \x20       DeltaTable(sys.argv[1], version=int(v)).to_pyarrow_table()\n\
                  \x20       print('whole')\n\
                  \x20   except Exception:\n\
                  \x20       print('vacuumed')\n\
                  sys.stdout.flush()\n\
                  os._exit(0)\n";
    let out = Command::new("python3")
        .args(["-c", script, "output/lake/top_users"])
        .args(&versions)
        .current_dir(ws.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().collect::<Vec<_>>(),
        ["vacuumed", "whole", "whole"]
    );
    // The other table has no `retain`: every version stays.
    let table = read_back(&ws, None, "output/lake/daily_region_revenue", Some(0), None);
    assert_eq!(table["version"], 0);
}

/// A run killed between its SQLite commit and its Delta commit (or just
/// after the Delta commit) leaves the previous version readable; the next
/// run makes (or finds) the commit first, and records its version.
#[test]
fn a_publish_cut_off_at_the_delta_commit_is_finished_by_the_next_run() {
    for fault in [
        "commit daily_region_revenue:crash",
        "record daily_region_revenue:crash",
    ] {
        let ws = workspace("lake");
        let (code, stdout, stderr) = run(&ws, None, "a.csv", None);
        assert_eq!(code, 0, "{stdout}{stderr}");
        let (code, _, stderr) = run(&ws, None, "b.csv", Some(fault));
        assert_ne!(code, 0, "{fault}: {stderr}");
        let (cut_off, _) = last_run(&ws);
        let table = read_back(&ws, None, "output/lake/daily_region_revenue", None, None);
        let expected = if fault.starts_with("commit") { 0 } else { 1 };
        assert_eq!(table["version"], expected, "{fault}");
        // The next run (a failing one: it publishes nothing of its own)
        // finishes the cut-off publish first.
        let (code, stdout, stderr) = run(&ws, None, "empty", None);
        assert_eq!(code, 1, "{fault}: {stdout}{stderr}");
        if fault.starts_with("commit") {
            assert!(
                stderr.contains(&format!("run {cut_off} was cut off after its commit: its `")),
                "{fault}: {stderr}"
            );
        }
        let table = read_back(
            &ws,
            None,
            "output/lake/daily_region_revenue",
            None,
            Some("daily_region_revenue"),
        );
        assert_eq!(table["matches_sqlite"], true, "{fault}: {table}");
        assert_eq!(
            (&table["version"], &table["run_id"]),
            (&1.into(), &cut_off.as_str().into())
        );
        let recorded = ws.query(
            "agg_result.db",
            &format!(
                "SELECT mart, published, table_version, staged IS NULL FROM _sluice_run_exports \
                 WHERE sink = 'delta' AND run_id = '{cut_off}' ORDER BY mart"
            ),
        );
        assert_eq!(
            recorded,
            ["daily_region_revenue|1|1|1", "top_users|1|1|1"],
            "{fault}"
        );
    }
}

/// The same tables in a bucket: one version per run, read back from the
/// bucket, and the secret key nowhere in the output.
#[test]
fn delta_tables_in_s3() {
    let s3 = S3Server::start();
    s3.put("lake", &[]);
    let ws = workspace("s3://lake/tables");
    for (i, input) in ["a.csv", "b.csv"].iter().enumerate() {
        let (code, stdout, stderr) = run(&ws, Some(&s3), input, None);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(
            stdout.contains(&format!("Delta `s3://lake/tables/top_users` version {i}")),
            "{stdout}"
        );
        assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
        for mart in ["daily_region_revenue", "top_users"] {
            let table = read_back(
                &ws,
                Some(&s3),
                &format!("s3://lake/tables/{mart}"),
                None,
                Some(mart),
            );
            assert_eq!(table["matches_sqlite"], true, "{table}");
            assert_eq!(table["version"], i, "{table}");
        }
    }
    let (code, _, _) = run(&ws, Some(&s3), "empty", None);
    assert_eq!(code, 1);
    let table = read_back(&ws, Some(&s3), "s3://lake/tables/top_users", None, None);
    assert_eq!(table["version"], 1);
    // A bucket that is not there: the URL and the fix, nothing published.
    let config = ws.read("sluice.yaml").replace("s3://lake/", "s3://nobucket/");
    ws.write("sluice.yaml", config);
    let (code, _, stderr) = run(&ws, Some(&s3), "a.csv", None);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("error: Delta table `s3://nobucket/tables/"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: check AWS_ENDPOINT_URL, the bucket"),
        "{stderr}"
    );
    assert!(!stderr.contains(SECRET));
}
