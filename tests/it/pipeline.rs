//! The job end to end on real files: marts to the row, counts that add up,
//! provenance, configuration through flags and environment.

use chrono::DateTime;

use crate::reference;
use crate::util::{AS_OF, Workspace};

fn as_of_us() -> i64 {
    DateTime::parse_from_rfc3339(AS_OF).unwrap().timestamp_micros()
}

#[test]
fn generated_data_with_every_defect_matches_the_spec_to_the_row() {
    let ws = Workspace::new();
    let planted = ws.generate("input/events.csv", 20_000, "all=0.01");
    assert!(planted.contains("wrote 20000 rows"), "{planted}");
    // Every defect at 1% fails the gate; publish anyway to compare the marts.
    let (code, stdout, stderr) = ws.run(&["--publish-on-failure"]);
    assert_eq!(code, 1, "stdout:\n{stdout}\nstderr:\n{stderr}");

    let expected = reference::stage(&[&ws.path("input/events.csv")]);
    // Every reason the generator plants is seen, and every raw row is accounted for.
    for reason in [
        "missing_event_id",
        "missing_event_time",
        "bad_event_time",
        "missing_user_id",
        "bad_user_id",
        "missing_amount",
        "bad_amount",
        "malformed_row",
    ] {
        assert!(
            expected.quarantined.get(reason).copied().unwrap_or(0) > 50,
            "{reason}: {:?}",
            expected.quarantined
        );
    }
    let quarantined: u64 = expected.quarantined.values().sum();
    assert_eq!(expected.raw, 20_000);
    assert_eq!(
        expected.raw,
        expected.staged.len() as u64 + quarantined + expected.duplicates
    );
    assert!(expected.duplicates > 300);

    assert_eq!(
        ws.read("output/top_users.csv"),
        reference::top_users_csv(&expected.staged, as_of_us(), 30)
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT day, region, revenue, events, unique_users FROM daily_region_revenue ORDER BY rowid"
        ),
        reference::daily_region_revenue(&expected.staged, as_of_us(), 30)
    );

    let run = ws.query(
        "agg_result.db",
        "SELECT rows_raw, rows_quarantined, rows_duplicates, rows_staged, status, published_db, published_csv, as_of, lookback_days FROM _sluice_runs",
    );
    assert_eq!(
        run,
        vec![format!(
            "20000|{quarantined}|{}|{}|gate_failed|1|1|2026-11-20T12:00:00Z|30",
            expected.duplicates,
            expected.staged.len()
        )]
    );
    let by_reason: serde_json::Value =
        serde_json::from_str(&ws.query("agg_result.db", "SELECT quarantined_by_reason FROM _sluice_runs")[0])
            .unwrap();
    for (reason, n) in &expected.quarantined {
        assert_eq!(by_reason[reason], serde_json::json!(n), "{reason}");
    }

    // The quarantine file holds every quarantined row with its reason.
    let mut rdr = csv::Reader::from_path(ws.path("output/quarantine/events.csv")).unwrap();
    let reason_col = rdr
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "_reason")
        .unwrap();
    let mut seen = std::collections::BTreeMap::<String, u64>::new();
    for rec in rdr.records() {
        *seen.entry(rec.unwrap()[reason_col].to_string()).or_default() += 1;
    }
    assert_eq!(seen, expected.quarantined);

    // SQLite types and the summary's numbers.
    assert_eq!(
        ws.query("agg_result.db", "SELECT typeof(rank), typeof(user_id), typeof(total_amount), typeof(events), typeof(first_seen) FROM top_users LIMIT 1"),
        vec!["integer|integer|real|integer|text"]
    );
    // Built in passes over hash partitions of user_id: the same marts, to the row.
    let out = ws
        .sluice(&[
            "run",
            "--as-of",
            AS_OF,
            "--publish-on-failure",
            "--pass-rows",
            "1500",
        ])
        .args([
            "--db",
            "passes.db",
            "--output-dir",
            "passes",
            "--data-dir",
            "passes-data",
        ])
        .env("SLUICE_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let log = String::from_utf8_lossy(&out.stderr);
    let passes = log
        .split("handoff passes")
        .nth(1)
        .and_then(|l| l.split("passes=").nth(1))
        .and_then(|n| n.split_whitespace().next())
        .and_then(|n| n.parse::<u32>().ok());
    assert!(
        passes.is_some_and(|n| n >= 10) && log.contains("column=user_id"),
        "{log}"
    );
    assert_eq!(ws.read("passes/top_users.csv"), ws.read("output/top_users.csv"));
    let marts = "SELECT * FROM daily_region_revenue ORDER BY rowid";
    assert_eq!(ws.query("passes.db", marts), ws.query("agg_result.db", marts));

    assert!(
        stdout.contains(&format!("  staged       {:>10}", expected.staged.len())),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("  duplicates   {:>10}", expected.duplicates)),
        "{stdout}"
    );
    assert!(ws.path("data/raw/events/events.parquet").is_file());
    assert!(ws.path("data/staging/events.parquet").is_file());

    // Provenance: the input file with its size, hash and rows.
    let inputs = ws.query(
        "agg_result.db",
        "SELECT path, size_bytes, length(sha256), rows FROM _sluice_run_inputs",
    );
    let size = std::fs::metadata(ws.path("input/events.csv")).unwrap().len();
    assert_eq!(inputs, vec![format!("input/events.csv|{size}|64|20000")]);
}

#[test]
fn demo_runs_on_a_fresh_directory() {
    let ws = Workspace::new();
    let out = ws.sluice(&["demo", "--rows", "3000"]).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    for needle in [
        "wrote 3000 rows",
        "quarantined",
        "duplicates",
        "top users (5 of 100)",
        "published: `agg_result.db`",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
    let csv = ws.read("output/top_users.csv");
    assert!(
        csv.starts_with("rank,user_id,total_amount,events,first_seen,last_seen\n1,"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 101);
    assert_eq!(
        ws.query("agg_result.db", "SELECT count(*) FROM top_users"),
        vec!["100"]
    );
}

#[test]
fn a_rerun_replaces_the_marts_and_appends_the_run() {
    let ws = Workspace::new();
    ws.generate("input/a.csv", 2_000, "");
    assert_eq!(ws.run(&[]).0, 0);
    ws.generate_seeded("input/b.csv", 1_000, "", 8);
    assert_eq!(ws.run(&[]).0, 0);
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT count(*) FROM _sluice_runs WHERE published_db = 1"
        ),
        vec!["2"]
    );
    assert_eq!(
        ws.query("agg_result.db", "SELECT count(*) FROM top_users"),
        vec!["100"]
    );
    assert_eq!(
        ws.query("agg_result.db", "SELECT max(rows_raw) FROM _sluice_runs"),
        vec!["3000"]
    );
    assert_eq!(ws.query("agg_result.db", "PRAGMA user_version"), vec!["7"]);
    // A database from before the metrics history is migrated forward.
    rusqlite::Connection::open(ws.path("agg_result.db"))
        .unwrap()
        .execute_batch(
            "DROP TABLE _sluice_metrics_history; DROP TABLE _sluice_run_exports; DROP TABLE _sluice_money_columns; DROP TABLE _sluice_run_models; DROP TABLE _sluice_run_cursors; DROP TABLE _sluice_run_schema_changes; ALTER TABLE _sluice_run_inputs DROP COLUMN etag; PRAGMA user_version = 2;",
        )
        .unwrap();
    assert_eq!(ws.run(&[]).0, 0);
    assert_eq!(ws.query("agg_result.db", "PRAGMA user_version"), vec!["7"]);
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT count(DISTINCT as_of) FROM _sluice_metrics_history"
        ),
        vec!["1"]
    );
    assert_eq!(ws.query("agg_result.db", "PRAGMA journal_mode"), vec!["delete"]);
}

#[test]
fn files_globs_and_several_inputs_are_read_once_each() {
    let ws = Workspace::new();
    ws.generate_seeded("landing/2026/a.csv", 500, "", 1);
    ws.generate_seeded("landing/2026/b.csv", 700, "", 2);
    ws.generate_seeded("other/c.csv", 300, "", 3);
    let (code, stdout, _) = ws.run(&[
        "--input",
        "landing/*/*.csv",
        "--input",
        "other",
        "--input",
        "landing/2026/a.csv",
    ]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("sluice: 1500 rows from 3 files"), "{stdout}");
}

/// Small files' rows are gathered and appended together, a large file's on
/// its own: between them every row lands once, with its own file and line.
#[test]
fn small_and_large_files_land_every_row_with_its_file_and_line() {
    let ws = Workspace::new();
    ws.generate_seeded("input/a.csv", 300, "", 1);
    // Over 1 MiB: landed on its own, between the small ones.
    ws.generate_seeded("input/b.csv", 20_000, "", 2);
    ws.generate_seeded("input/c.ndjson", 200, "", 3);
    ws.generate_seeded("input/d.csv.gz", 100, "", 4);
    assert!(std::fs::metadata(ws.path("input/b.csv")).unwrap().len() > 1 << 20);
    let (code, stdout, _) = ws.run(&[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("sluice: 20600 rows from 4 files"), "{stdout}");
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, pyarrow.parquet as pq\n\
             t = pq.read_table(sys.argv[1]).group_by('_source_file').aggregate(\n\
             [('_line', 'count'), ('_line', 'min'), ('_line', 'max'), ('_line', 'count_distinct')])\n\
             keys = ['_source_file', '_line_count', '_line_min', '_line_max', '_line_count_distinct']\n\
             print(sorted(tuple(r[k] for k in keys) for r in t.to_pylist()))",
        )
        .arg(ws.path("data/raw/events/events.parquet"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "[('input/a.csv', 300, 2, 301, 300), ('input/b.csv', 20000, 2, 20001, 20000), \
         ('input/c.ndjson', 200, 1, 200, 200), ('input/d.csv.gz', 100, 2, 101, 100)]",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn environment_variables_configure_the_run_and_flags_win() {
    let ws = Workspace::new();
    ws.generate("landing/events.csv", 1_000, "");
    std::fs::create_dir_all(ws.path("my-checks")).unwrap();
    let out = ws
        .sluice(&["run", "--lookback-days", "10"])
        .env("SLUICE_INPUT", "landing")
        .env("SLUICE_DB", "state/sluice.db")
        .env("SLUICE_OUTPUT_DIR", "out")
        .env("SLUICE_DATA_DIR", "lake")
        .env("SLUICE_AS_OF", AS_OF)
        .env("SLUICE_LOOKBACK_DAYS", "7")
        .env("SLUICE_CHECKS_DIR", "my-checks")
        .env("SLUICE_ALLOW_UNGATED", "true")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ws.path("out/top_users.csv").is_file());
    assert!(ws.path("lake/staging/events.parquet").is_file());
    assert_eq!(
        ws.query("state/sluice.db", "SELECT as_of, lookback_days FROM _sluice_runs"),
        vec!["2026-11-20T12:00:00Z|10"]
    );
    let first_seen = ws.query("state/sluice.db", "SELECT min(first_seen) FROM top_users");
    assert!(first_seen[0].as_str() > "2026-11-10T12:00:00Z", "{first_seen:?}");
}

#[test]
fn the_window_excludes_its_start_and_includes_as_of() {
    let ws = Workspace::new();
    ws.write(
        "input/edge.csv",
        "event_id,user_id,event_time,region,sku,amount\n\
         a,1,2026-10-21T12:00:00Z,eu,s,1.00\n\
         b,1,2026-10-21T12:00:00.000001Z,eu,s,2.00\n\
         c,2,2026-11-20T12:00:00Z,us,s,4.00\n\
         d,2,2026-11-20T14:00:00+02:00,us,s,8.00\n\
         e,3,2026-11-20T12:00:00.000001Z,us,s,16.00\n",
    );
    assert_eq!(ws.run_unchecked(&[]).0, 0);
    assert_eq!(
        ws.read("output/top_users.csv"),
        "rank,user_id,total_amount,events,first_seen,last_seen\n\
         1,2,12.00,2,2026-11-20T12:00:00Z,2026-11-20T12:00:00Z\n\
         2,1,2.00,1,2026-10-21T12:00:00Z,2026-10-21T12:00:00Z\n"
    );
}

#[test]
fn summary_snapshot() {
    let ws = Workspace::new();
    ws.write(
        "input/events.csv",
        "event_id,user_id,event_time,region,sku,amount\n\
         e1,7,2026-11-19T10:00:00Z, EU ,sku-1,10.50\n\
         e1,7,2026-11-19T09:00:00Z,eu,sku-1,99.00\n\
         e2,007,2026-11-18T10:00:00Z,us,sku-2,1\n\
         e3,8,2026-11-18T11:00:00Z,,sku-3,2.5\n\
         ,8,2026-11-18T11:00:00Z,us,sku-3,2.5\n\
         e4,9,2026-11-31T11:00:00Z,us,sku-3,2.5\n\
         e5,x9,2026-11-18T11:00:00Z,us,sku-3,2.5\n\
         e6,9,2026-11-18T11:00:00Z,us,sku-3,12,30\n",
    );
    let (code, stdout, _) = ws.run(&[]);
    assert_eq!(code, 1);
    insta::assert_snapshot!(stdout);
}

#[test]
fn progress_is_drawn_on_a_terminal_only() {
    let ws = Workspace::new();
    ws.generate("input/events.csv", 20_000, "");
    let binary = assert_cmd::cargo::cargo_bin("sluice");
    // `script` runs the command on a pseudo-terminal and copies what it drew.
    let on_tty = |extra: &str| {
        let command = format!("{} run --as-of {AS_OF} {extra}", binary.display());
        let out = std::process::Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .current_dir(ws.dir.path())
            .output()
            .expect("run script(1)");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let drawn = on_tty("");
    assert!(drawn.contains("ingest ["), "{drawn}");
    assert!(!on_tty("--no-progress").contains("ingest ["));
    let (_, _, stderr) = ws.run(&[]);
    assert!(!stderr.contains("ingest ["), "{stderr}");
}
