//! The publish under faults. A failure is forced at every write, sync,
//! commit and rename a publish makes (`SLUICE_FAULT`, see `src/fault.rs`),
//! once as an error the run handles and once as a crash (abort: no cleanup,
//! like `kill -9`). After the next run starts, the published state (the
//! SQLite marts and every exported file) is wholly the old run's when the
//! fault came before the commit, wholly the new run's after it, and the run
//! record says which.

use std::path::Path;

use crate::util::{AS_OF, Workspace, bytes, copy_dir, marts};

/// Exports to two more files in another directory, and one Parquet file.
const MORE_EXPORTS: &str = "  - mart: daily_region_revenue\n    csv: reports/daily_region_revenue.csv\n    parquet: daily_region_revenue.parquet\n";

const FILES: [&str; 3] = [
    "output/top_users.csv",
    "output/reports/daily_region_revenue.csv",
    "output/daily_region_revenue.parquet",
];

/// What a reader sees: the marts' rows, then each exported file's bytes.
#[derive(Debug, PartialEq)]
struct Published {
    tables: Vec<String>,
    files: Vec<Vec<u8>>,
}

fn published(ws: &Workspace) -> Published {
    Published {
        tables: marts(ws),
        files: FILES.iter().map(|f| bytes(&ws.path(f))).collect(),
    }
}

/// Which of `old` and `new` the state is, if wholly one of them.
fn which(state: &Published, old: &Published, new: &Published) -> Option<&'static str> {
    if state == old {
        Some("old")
    } else if state == new {
        Some("new")
    } else {
        None
    }
}

/// `sluice run` on `input` as of [`AS_OF`], with `SLUICE_FAULT` set to `fault`.
fn run(ws: &Workspace, input: &str, fault: Option<&str>, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["run", "--as-of", AS_OF, "--input", input];
    args.extend_from_slice(extra);
    let mut cmd = ws.sluice(&args);
    if let Some(fault) = fault {
        cmd.env("SLUICE_FAULT", fault);
    }
    cmd.output().unwrap()
}

/// The input of the newest run that published, and whether its record has
/// every export in place.
fn record(ws: &Workspace) -> (String, String) {
    let last = "(SELECT run_id FROM _sluice_runs WHERE published_db = 1 ORDER BY finished_at DESC LIMIT 1)";
    let input = ws.query(
        "agg_result.db",
        &format!("SELECT path FROM _sluice_run_inputs WHERE run_id = {last}"),
    );
    let exports = ws.query(
        "agg_result.db",
        &format!(
            "SELECT r.published_csv, min(e.published), count(e.staged) FROM _sluice_runs r \
             JOIN _sluice_run_exports e USING (run_id) WHERE r.run_id = {last}"
        ),
    );
    (input.join(","), exports.join(","))
}

/// A workspace that published `a.csv` with the init pipeline and more
/// exports, holding `b.csv` for the next run.
fn template() -> Workspace {
    let ws = Workspace::new();
    ws.sluice(&["init"]).assert().success();
    let config = ws.read("sluice.yaml") + MORE_EXPORTS;
    ws.write("sluice.yaml", config);
    ws.generate_seeded("a.csv", 1_500, "", 7);
    ws.generate_seeded("b.csv", 1_500, "", 8);
    let out = run(&ws, "a.csv", None, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ws
}

fn copy_of(template: &Workspace) -> Workspace {
    let ws = Workspace::new();
    copy_dir(template.dir.path(), ws.dir.path());
    ws
}

/// The fault points a run on `input` passes, in order, in a copy of `ws`.
fn points_passed(ws: &Workspace, input: &str, extra: &[&str]) -> Vec<String> {
    let traced = copy_of(ws);
    let trace = traced.path("trace.txt");
    let mut args = vec!["run", "--as-of", AS_OF, "--input", input];
    args.extend_from_slice(extra);
    let out = traced
        .sluice(&args)
        .env("SLUICE_FAULT_TRACE", &trace)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Files sluice left that are not its outputs: temp files of a publish.
fn temp_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(temp_files(&path));
        } else if entry.file_name().to_string_lossy().contains(".tmp") {
            found.push(path.display().to_string());
        }
    }
    found
}

#[test]
fn a_fault_at_any_step_of_the_publish_leaves_one_run_published_wholly() {
    let template = template();
    let old = published(&template);
    let clean = copy_of(&template);
    let out = run(&clean, "b.csv", None, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = published(&clean);
    assert_ne!(old.files, new.files, "the two runs publish different files");
    assert_ne!(old.tables, new.tables);

    // Every point a publish passes, in order.
    let points = points_passed(&template, "b.csv", &[]);
    for expected in [
        "write top_users.csv",
        "sync top_users.csv",
        "write daily_region_revenue.csv",
        "sync daily_region_revenue.parquet",
        "commit",
        "rename top_users.csv",
        "rename daily_region_revenue.parquet",
        "sync-dir output",
        "sync-dir reports",
        "record",
    ] {
        assert!(points.iter().any(|p| p == expected), "{expected} in {points:?}");
    }
    let commit = points.iter().position(|p| p == "commit").unwrap();

    for (i, point) in points.iter().enumerate() {
        for crash in [false, true] {
            let case = format!("{point}{}", if crash { " (crash)" } else { "" });
            let ws = copy_of(&template);
            let fault = if crash {
                format!("{point}:crash")
            } else {
                point.clone()
            };
            let out = run(&ws, "b.csv", Some(&fault), &[]);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if crash {
                assert_eq!(out.status.code(), None, "{case}: killed by the abort\n{stderr}");
            } else {
                assert_eq!(out.status.code(), Some(3), "{case}\n{stderr}");
                assert!(stderr.contains("fault injected"), "{case}: {stderr}");
                assert!(stderr.contains("hint: "), "{case}: {stderr}");
            }
            if i < commit || (i == commit && !crash) {
                assert_eq!(which(&published(&ws), &old, &new), Some("old"), "{case}: at once");
            }

            // The next run starts, finishes or discards, and publishes nothing.
            let next = run(&ws, "a.csv", None, &["--no-publish"]);
            let next_err = String::from_utf8_lossy(&next.stderr);
            assert_eq!(next.status.code(), Some(0), "{case}: the next run\n{next_err}");
            let expected = if i <= commit { "old" } else { "new" };
            assert_eq!(
                which(&published(&ws), &old, &new),
                Some(expected),
                "{case}: after the next start\n{stderr}\n{next_err}"
            );
            let (input, exports) = record(&ws);
            let run_input = if expected == "old" { "a.csv" } else { "b.csv" };
            assert!(input.ends_with(run_input), "{case}: the record names {input}");
            assert_eq!(exports, "1|1|0", "{case}: every export of the run is in place");
            assert_eq!(temp_files(&ws.path("output")), Vec::<String>::new(), "{case}");
            assert_eq!(temp_files(&ws.path("data")), Vec::<String>::new(), "{case}");
        }
    }
}

/// The next run, finishing a publish, may be cut off too: the one after it
/// finishes the publish all the same.
#[test]
fn a_crash_while_finishing_an_interrupted_publish_is_finished_by_the_next_run() {
    let template = template();
    let clean = copy_of(&template);
    assert_eq!(run(&clean, "b.csv", None, &[]).status.code(), Some(0));
    let new = published(&clean);

    let interrupted = copy_of(&template);
    let out = run(&interrupted, "b.csv", Some("rename top_users.csv:crash"), &[]);
    assert_eq!(out.status.code(), None);
    let points: Vec<String> = points_passed(&interrupted, "a.csv", &["--no-publish"])
        .into_iter()
        .filter(|p| p.starts_with("finish ") || p.starts_with("sync-dir "))
        .collect();
    assert!(points.iter().any(|p| p == "finish top_users.csv"), "{points:?}");
    for point in &points {
        let ws = copy_of(&interrupted);
        let out = run(&ws, "a.csv", Some(&format!("{point}:crash")), &["--no-publish"]);
        assert_eq!(out.status.code(), None, "{point}");
        let out = run(&ws, "a.csv", None, &["--no-publish"]);
        assert_eq!(out.status.code(), Some(0), "{point}");
        assert_eq!(published(&ws), new, "{point}");
        assert_eq!(record(&ws).1, "1|1|0", "{point}");
    }
}

#[test]
fn a_staged_file_that_vanished_is_recorded_as_not_in_place() {
    let template = template();
    let old = published(&template);
    let ws = copy_of(&template);
    let out = run(&ws, "b.csv", Some("rename top_users.csv:crash"), &[]);
    assert_eq!(out.status.code(), None);
    let staged: Vec<String> = temp_files(&ws.path("output"))
        .into_iter()
        .filter(|f| f.ends_with(".csv.tmp") && !f.contains("reports"))
        .collect();
    assert_eq!(staged.len(), 1, "{staged:?}");
    std::fs::remove_file(&staged[0]).unwrap();

    let next = run(&ws, "a.csv", None, &["--no-publish"]);
    let stderr = String::from_utf8_lossy(&next.stderr);
    assert_eq!(next.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("its staged `") && stderr.contains("top_users.csv` is gone"),
        "{stderr}"
    );
    // The database holds the new run; the CSV kept the old rows, and the
    // record says so.
    assert_ne!(marts(&ws), old.tables);
    assert_eq!(bytes(&ws.path(FILES[0])), old.files[0]);
    let (input, exports) = record(&ws);
    assert!(input.ends_with("b.csv"), "{input}");
    assert_eq!(exports, "0|0|0");
    let csv_row = ws.query(
        "agg_result.db",
        "SELECT published FROM _sluice_run_exports WHERE target LIKE '%top_users.csv' ORDER BY rowid DESC LIMIT 1",
    );
    assert_eq!(csv_row, ["0"]);

    // The next publish puts everything in place again.
    let out = run(&ws, "b.csv", None, &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(record(&ws).1, "1|1|0");
}
