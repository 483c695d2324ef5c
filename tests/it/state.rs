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
    assert_eq!(version(&ws), ["6"]);
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
