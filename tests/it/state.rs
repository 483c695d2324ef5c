//! Run state across releases: `tests/fixtures/db/v3/agg_result.db` was
//! written by the release before the schema moved to version 4 (commit
//! 5678bdc, with the fixture's `checks/volume.yaml`: one run published as of
//! 2026-11-19, one whose gate failed as of 2026-11-20). A database travels
//! between releases in a volume or a CI artifact, so it must open, migrate
//! forward and keep what it holds.

use crate::util::{Workspace, fixture, marts};

#[test]
fn a_database_of_the_previous_release_migrates_forward_and_keeps_its_history() {
    let ws = Workspace::new();
    fixture(&ws, "db/v3", ".");
    let version = |ws: &Workspace| ws.query("agg_result.db", "PRAGMA user_version");
    assert_eq!(version(&ws), ["3"]);
    let runs = "SELECT run_id, as_of, status, published_db, published_csv, rows_raw FROM _sluice_runs ORDER BY started_at";
    let history = "SELECT check_file, check_name, as_of, observed, gate_passed FROM _sluice_metrics_history ORDER BY 1, 2, 3";
    let (runs_before, history_before, marts_before) = (
        ws.query("agg_result.db", runs),
        ws.query("agg_result.db", history),
        marts(&ws),
    );
    assert_eq!(runs_before.len(), 2, "{runs_before:?}");
    assert!(!history_before.is_empty());

    // Re-auditing reads the old schema as it is: nothing to migrate for a read.
    let check = ws.sluice(&["check"]).output().unwrap();
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    assert_eq!(version(&ws), ["3"]);
    assert_eq!(marts(&ws), marts_before);

    // A run of this release migrates, and its change check reads the old history.
    ws.generate("input/events.csv", 2_000, "");
    let (code, stdout, stderr) = ws.run(&["--checks-dir", "checks"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(version(&ws), ["7"]);
    let runs_after = ws.query("agg_result.db", runs);
    assert_eq!(
        runs_after[..2],
        runs_before[..],
        "earlier runs are kept as they were"
    );
    assert_eq!(runs_after.len(), 3);
    let history_after = ws.query("agg_result.db", history);
    assert!(
        history_before.iter().all(|row| history_after.contains(row)),
        "{history_before:?} within {history_after:?}"
    );
    let results: serde_json::Value = serde_json::from_str(&ws.read("output/check_results.json")).unwrap();
    let message = results["checks"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(message, "0.0% from 2000 (the last run)");
    assert_ne!(marts(&ws), marts_before, "the new run published");

    // Exports are recorded per run and sink from this release on.
    let exports = ws.query(
        "agg_result.db",
        "SELECT e.mart, e.sink, e.rows, e.published, e.target LIKE '%output/top_users.csv' FROM _sluice_run_exports e \
         JOIN _sluice_runs r USING (run_id) ORDER BY r.started_at, e.sink, e.mart",
    );
    assert_eq!(
        exports,
        [
            "top_users|csv|100|1|1",
            "daily_region_revenue|sqlite|155|1|0",
            "top_users|sqlite|100|1|0",
        ]
    );
}

/// A landing directory that only grows (`incremental: files`) with a model
/// merged across runs: each run reads only the new files, the marts see
/// every file's rows, and a file that changed after it was read stops the
/// run unless the source says to read it again.
#[test]
fn a_growing_landing_directory_is_read_one_new_file_at_a_time() {
    let ws = Workspace::new();
    ws.sluice(&["init"]).assert().success();
    let config = ws
        .read("sluice.yaml")
        .replace(
            "    new_columns: warn ",
            "    incremental: files\n    new_columns: warn ",
        )
        .replace(
            "    sql: sql/staging/events.sql\n",
            "    sql: sql/staging/events.sql\n    write: merge\n    primary_key: [event_id]\n",
        );
    ws.write("sluice.yaml", &config);
    ws.generate_seeded("input/day-1.csv", 1_000, "", 1);
    let (code, stdout, stderr) = ws.run(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("sluice: 1000 rows from 1 file;"), "{stdout}");

    ws.generate_seeded("input/day-2.csv", 500, "", 2);
    let (code, stdout, stderr) = ws.run(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("sluice: 500 rows from 1 file;"), "{stdout}");
    assert!(
        stderr.contains("source `events`: 1 files read by earlier runs skipped"),
        "{stderr}"
    );
    let totals = || {
        ws.query(
            "agg_result.db",
            "SELECT rows_staged, rows_total FROM _sluice_run_models ORDER BY rowid",
        )
    };
    assert_eq!(totals(), ["1000|1000", "500|1500"]);
    // The marts see both files' events (all within the window).
    assert_eq!(
        ws.query("agg_result.db", "SELECT sum(events) FROM daily_region_revenue"),
        ["1500"]
    );

    // A file read before is rewritten: stop, and say how to go on.
    let mut day1 = ws.read("input/day-1.csv");
    day1.push_str(&day1.lines().nth(1).unwrap().replacen(',', "x,", 1));
    day1.push('\n');
    ws.write("input/day-1.csv", &day1);
    let (code, _, stderr) = ws.run(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: input file `input/day-1.csv` changed since a published run read it"),
        "{stderr}"
    );
    assert_eq!(totals(), ["1000|1000", "500|1500"]);
    // Told to read changed files again: its rows merge in, one new.
    ws.write(
        "sluice.yaml",
        config.replace("incremental: files", "incremental: {files: {changed: read}}"),
    );
    let (code, stdout, stderr) = ws.run(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("sluice: 1001 rows from 1 file;"), "{stdout}");
    assert_eq!(totals().last().unwrap(), "1001|1501");
}

/// `append` keeps every run's rows; `merge` keeps a record's newest version
/// and drops one whose newest version is a deletion.
#[test]
fn append_and_merge_models_keep_rows_across_runs() {
    let ws = Workspace::new();
    ws.write(
        "sluice.yaml",
        "sources:\n  - name: items\n    columns: {id: integer, v: integer, deleted: boolean}\n    incremental: files\n\
         staging:\n\
         \x20 - {name: log, source: items, sql: sql/log.sql, write: append}\n\
         \x20 - {name: current, source: items, sql: sql/current.sql, write: merge, primary_key: [id], order_by: v, delete_when: deleted}\n\
         marts:\n\
         \x20 - {name: log_rows, from: log, aggregate: {n: count()}}\n\
         \x20 - {name: current_items, from: current, select: [id, v], sort: [id]}\n",
    );
    let typed = "SELECT CAST(id AS BIGINT) AS id, CAST(v AS BIGINT) AS v, CAST(deleted AS BOOLEAN) AS deleted FROM raw.items";
    ws.write(
        "sql/log.sql",
        format!("CREATE OR REPLACE TABLE staging.log AS {typed};\n"),
    );
    ws.write(
        "sql/current.sql",
        format!("CREATE OR REPLACE TABLE staging.current AS {typed};\n"),
    );
    ws.write("input/a.csv", "id,v,deleted\n1,1,false\n2,1,false\n");
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    ws.write("input/b.csv", "id,v,deleted\n1,2,false\n2,2,true\n3,1,false\n");
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(ws.query("agg_result.db", "SELECT n FROM log_rows"), ["5"]);
    assert_eq!(
        ws.query("agg_result.db", "SELECT * FROM current_items"),
        ["1|2", "3|1"]
    );
    // An older version read later does not win over a newer one.
    ws.write("input/c.csv", "id,v,deleted\n1,0,false\n");
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        ws.query("agg_result.db", "SELECT * FROM current_items"),
        ["1|2", "3|1"]
    );
}
