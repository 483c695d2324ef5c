//! Bad input and faults: one clear error naming the file and the fix, the exit
//! code of docs/contract.md ("Exit codes"), no panic, and the last published results intact.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::util::{Workspace, bytes, leaked_env, marts, outcome, published};

/// Runs with `args`, expects `code`, and checks that nothing was published
/// (and, for errors, that the database was not written at all).
fn runs_untouched(ws: &Workspace, csv: &[u8], args: &[&str], code: i32) -> (String, String) {
    let before = marts(ws);
    let db_before = bytes(&ws.path("agg_result.db"));
    let (got, stdout, stderr) = ws.run(args);
    assert_eq!(got, code, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(marts(ws), before, "marts changed");
    assert_eq!(bytes(&ws.path("output/top_users.csv")), csv, "CSV changed");
    if code >= 2 {
        // Errors stop the run before anything is recorded.
        assert_eq!(
            bytes(&ws.path("agg_result.db")),
            db_before,
            "database bytes changed"
        );
    }
    (stdout, stderr)
}

#[test]
fn a_missing_input_path_is_a_usage_error() {
    let (ws, csv) = published();
    let (_, stderr) = runs_untouched(&ws, &csv, &["--input", "nope"], 2);
    assert_eq!(
        stderr,
        "error: input `nope` does not exist\nhint: pass an existing file, directory or glob with --input (or SLUICE_INPUT); `sluice generate` writes sample data\n"
    );
}

#[test]
fn an_unsupported_file_or_an_empty_glob_is_a_usage_error() {
    let (ws, csv) = published();
    ws.write("notes.txt", "hello");
    let (_, stderr) = runs_untouched(&ws, &csv, &["--input", "notes.txt"], 2);
    assert!(
        stderr.starts_with("error: input `notes.txt` is not a supported file type\n"),
        "{stderr}"
    );
    let (_, stderr) = runs_untouched(&ws, &csv, &["--input", "input/*.parquet"], 2);
    assert!(
        stderr.starts_with("error: input `input/*.parquet` does not exist"),
        "{stderr}"
    );
}

#[test]
fn an_empty_directory_fails_the_gate_and_keeps_the_published_marts() {
    let (ws, csv) = published();
    std::fs::create_dir_all(ws.path("empty")).unwrap();
    let (stdout, _) = runs_untouched(&ws, &csv, &["--input", "empty"], 1);
    let line = stdout
        .lines()
        .find(|l| l.contains(" events_not_empty "))
        .unwrap_or_default();
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>(),
        [
            "FAIL",
            "events_not_empty",
            "staging.events",
            "0",
            "rows",
            "fail:",
            "<",
            "1"
        ],
        "{stdout}"
    );
    assert!(stdout.contains("gate: FAILED (3 fail, 0 error)\n"), "{stdout}");
    assert!(
        stdout
            .contains("not published: the marts in `agg_result.db` and `output/top_users.csv` are unchanged"),
        "{stdout}"
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT status, published_db, published_csv, rows_raw FROM _sluice_runs ORDER BY started_at"
        ),
        vec!["passed|1|1|2000", "gate_failed|0|0|0"]
    );
    assert_eq!(
        ws.read("output/unpublished/top_users.csv"),
        "rank,user_id,total_amount,events,first_seen,last_seen\n"
    );
}

#[test]
fn a_header_only_file_fails_the_gate() {
    let (ws, csv) = published();
    ws.write(
        "only-header/events.csv",
        "event_id,user_id,event_time,region,sku,amount\n",
    );
    let (stdout, _) = runs_untouched(&ws, &csv, &["--input", "only-header"], 1);
    assert!(stdout.starts_with("sluice: 0 rows from 1 file;"), "{stdout}");
}

#[test]
fn a_missing_required_column_names_the_file_and_the_column() {
    let (ws, csv) = published();
    ws.write(
        "bad/events.csv",
        "event_id,user_id,event_time,region,sku\ne1,1,2026-11-19T10:00:00Z,eu,s\n",
    );
    let (_, stderr) = runs_untouched(&ws, &csv, &["--input", "bad"], 3);
    assert_eq!(
        stderr,
        "error: input file `bad/events.csv` has no column `amount` (its header: event_id, user_id, event_time, region, sku)\n\
         hint: source `events` needs the columns event_id, user_id, event_time, region, sku, amount; fix the file's header or move the file out of the input\n"
    );
}

#[test]
fn extra_columns_are_ignored_with_a_warning() {
    let ws = Workspace::new();
    ws.write(
        "input/events.csv",
        "channel,event_id,user_id,event_time,region,sku,amount,note\nweb,e1,1,2026-11-19T10:00:00Z,eu,s,1.25,x\n",
    );
    let (code, _, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("`input/events.csv`: extra columns ignored: channel, note"),
        "{stderr}"
    );
    assert_eq!(
        ws.read("output/top_users.csv"),
        "rank,user_id,total_amount,events,first_seen,last_seen\n1,1,1.25,1,2026-11-19T10:00:00Z,2026-11-19T10:00:00Z\n"
    );
}

#[test]
fn ragged_rows_and_bytes_that_are_not_utf8_are_quarantined_as_malformed() {
    let ws = Workspace::new();
    let mut data = b"event_id,user_id,event_time,region,sku,amount\n".to_vec();
    data.extend_from_slice(b"e1,1,2026-11-19T10:00:00Z,eu,s,1.00\n");
    data.extend_from_slice(b"e2,1,2026-11-19T10:00:00Z,eu,s,1.00,surplus\n");
    data.extend_from_slice(b"e3,1,2026-11-19T10:00:00Z,eu,s\xff\xfe,1.00\n");
    data.extend_from_slice(b"e4,1,2026-11-19T10:00:00Z\n");
    ws.write("input/events.csv", data);
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("(missing_amount 1, malformed_row 2)"), "{stdout}");
    let quarantine = ws.read("output/quarantine/events.csv");
    assert_eq!(
        quarantine,
        "event_id,user_id,event_time,region,sku,amount,_reason,_source_file,_line,_detail\n\
         e2,1,2026-11-19T10:00:00Z,eu,s,1.00,malformed_row,input/events.csv,3,\"expected 6 fields, found 7\"\n\
         e3,1,2026-11-19T10:00:00Z,eu,s\u{fffd}\u{fffd},1.00,malformed_row,input/events.csv,4,not valid UTF-8 (invalid bytes replaced)\n\
         e4,1,2026-11-19T10:00:00Z,,,,missing_amount,input/events.csv,5,\"expected 6 fields, found 3\"\n"
    );
}

#[test]
fn a_database_path_that_is_a_directory_says_how_to_fix_the_mount() {
    let (ws, csv) = published();
    std::fs::create_dir_all(ws.path("state/agg_result.db")).unwrap();
    let (_, stderr) = runs_untouched(&ws, &csv, &["--db", "state/agg_result.db"], 2);
    assert_eq!(
        stderr,
        "error: database path `state/agg_result.db` is a directory, not a file\n\
         hint: Docker creates a directory when the host file is missing: remove it and run `touch agg_result.db` on the host before `docker run`, or mount a directory and set SLUICE_DB\n"
    );
}

#[test]
fn an_empty_database_file_is_a_new_database() {
    let ws = Workspace::new();
    ws.generate("input/events.csv", 500, "");
    ws.write("agg_result.db", "");
    assert_eq!(ws.run(&[]).0, 0);
    assert_eq!(
        ws.query("agg_result.db", "SELECT count(*) FROM _sluice_runs"),
        vec!["1"]
    );
}

#[test]
fn a_file_that_is_not_a_database_is_a_runtime_error() {
    let ws = Workspace::new();
    ws.generate("input/events.csv", 500, "");
    ws.write(
        "agg_result.db",
        "this is not sqlite, it is a text file that is long enough to have a header",
    );
    let (code, _, stderr) = ws.run(&[]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.starts_with("error: `agg_result.db` is not a sluice database"),
        "{stderr}"
    );
}

#[test]
fn an_output_dir_that_cannot_be_created_is_a_runtime_error() {
    let (ws, csv) = published();
    ws.write("blocker", "a file, not a directory");
    let (_, stderr) = runs_untouched(&ws, &csv, &["--output-dir", "blocker/out"], 3);
    assert!(
        stderr.contains("error: cannot create directory `blocker/out`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
    // metrics.prom cannot be written there either: a warning, not a second error.
    assert!(
        stderr.contains("could not write `blocker/out/metrics.prom`"),
        "{stderr}"
    );
}

#[test]
fn a_second_concurrent_run_exits_3() {
    let (ws, csv) = published();
    let held = File::options()
        .read(true)
        .write(true)
        .open(ws.path("agg_result.db"))
        .unwrap();
    held.try_lock().unwrap();
    let (_, stderr) = runs_untouched(&ws, &csv, &[], 3);
    assert_eq!(
        stderr,
        "error: database `agg_result.db` is locked by another sluice run\nhint: wait for the other run to finish; sluice runs one at a time against a database\n"
    );
    drop(held);
    assert_eq!(ws.run(&[]).0, 0);
}

#[test]
fn bad_flags_are_usage_errors() {
    let ws = Workspace::new();
    for args in [
        &["run", "--lookback-days", "0"][..],
        &["run", "--memory-limit", "lots"],
        &["run", "--as-of", "yesterday"],
        &["generate", "--rows", "5", "--out", "x.csv", "--defects", "nope=1"],
    ] {
        let out = ws.sluice(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn no_publish_audits_but_leaves_the_published_results_alone() {
    let (ws, csv) = published();
    ws.generate_seeded("input/more.csv", 500, "", 8);
    let (stdout, _) = runs_untouched(&ws, &csv, &["--no-publish"], 0);
    assert!(stdout.contains("gate: passed"), "{stdout}");
    assert!(stdout.contains("not published"), "{stdout}");
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT status, published_db, rows_raw FROM _sluice_runs ORDER BY started_at"
        ),
        vec!["passed|1|2000", "passed|0|2500"]
    );
    assert!(
        ws.read("output/unpublished/top_users.csv")
            .starts_with("rank,user_id,")
    );
}

/// Docker makes an empty directory for a missing host folder: an empty or
/// missing checks directory must not publish ungated unless asked to.
#[test]
fn no_checks_is_an_error_unless_an_ungated_run_is_asked_for() {
    let (ws, csv) = published();
    // An empty input would replace good marts with empty ones.
    ws.write(
        "empty/events.csv",
        "event_id,user_id,event_time,region,sku,amount\n",
    );
    std::fs::create_dir_all(ws.path("ec")).unwrap();
    let (_, stderr) = runs_untouched(&ws, &csv, &["--input", "empty", "--checks-dir", "ec"], 2);
    assert_eq!(
        stderr,
        "error: no checks in `ec`: nothing would gate publishing\n\
         hint: add checks to `ec` (`sluice init` writes the default ones), name another directory with --checks-dir, \
         or pass --allow-ungated (SLUICE_ALLOW_UNGATED=true) to publish without a gate\n"
    );
    // A pipeline of its own with no checks directory at all: the same.
    ws.sluice(&["init", "own"]).assert().success();
    std::fs::remove_dir_all(ws.path("own/checks")).unwrap();
    let (_, stderr) = runs_untouched(&ws, &csv, &["--config", "own/sluice.yaml", "--input", "empty"], 2);
    assert!(stderr.starts_with("error: no checks in `own/checks`"), "{stderr}");
    // Asked for, it runs and says so.
    let (code, _, stderr) = ws.run(&["--input", "empty", "--checks-dir", "ec", "--allow-ungated"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("nothing gates publishing (--allow-ungated)"),
        "{stderr}"
    );
    assert_eq!(ws.query("agg_result.db", "SELECT count(*) FROM top_users"), ["0"]);
}

/// A FIFO among the inputs would block the run forever while it holds the
/// database lock: a directory's non-regular files are skipped with a
/// warning, and one named explicitly is refused.
#[test]
fn only_regular_files_are_inputs() {
    let (ws, csv) = published();
    let fifo = ws.path("input/pipe.csv");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let (_, stderr) = runs_untouched(&ws, &csv, &["--input", "input/pipe.csv"], 2);
    assert_eq!(
        stderr,
        "error: input `input/pipe.csv` is not a regular file\n\
         hint: sluice reads regular files (a FIFO or a device could block the run): write the data to a file first\n"
    );
    let (code, stdout, stderr) = ws.run(&["--input", "input"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains("`input/pipe.csv` is not a regular file: skipped"),
        "{stderr}"
    );
    assert!(stdout.contains("2000 rows from 1 file"), "{stdout}");
}

/// Which of two same-named columns is meant is ambiguous: an error naming
/// the column and the file, not the first one silently.
#[test]
fn a_required_column_twice_in_a_header_is_an_error() {
    let (ws, csv) = published();
    ws.write(
        "twice/events.csv",
        "event_id,user_id,event_time,region,sku,amount,amount\ne1,1,2026-11-19T10:00:00Z,eu,a,1.00,2.00\n",
    );
    let (_, stderr) = runs_untouched(&ws, &csv, &["--input", "twice"], 3);
    assert_eq!(
        stderr,
        "error: input file `twice/events.csv` has the column `amount` more than once\n\
         hint: rename or remove one of the `amount` columns in the file's header (which one is meant is ambiguous), or move the file out of the input\n"
    );
}

/// A run killed before its renames leaves temp files; the next run removes
/// its own kind of temp files and nothing else.
#[test]
fn temp_files_of_an_interrupted_run_are_removed_at_the_next_start() {
    let (ws, _) = published();
    let ours = [
        "output/.sluice-Ab12Cd.csv.tmp",
        "output/quarantine/events.csv.tmp4242",
        "data/staging/events.parquet.tmp17",
        "data/raw/events/events.parquet.tmp99",
        "data/.duckdb_tmp/duckdb_temp_storage_S32K-0.tmp",
    ];
    let theirs = ["output/notes.tmp", "output/a.tmp7x", "data/keep.parquet"];
    for file in ours.iter().chain(&theirs) {
        ws.write(file, "left behind");
    }
    let (code, stdout, stderr) = ws.run(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for file in ours {
        assert!(!ws.path(file).exists(), "{file} is still there");
    }
    for file in theirs {
        assert!(ws.path(file).exists(), "{file} was removed");
    }
}

/// An amount that fits DECIMAL(18,2) stages, however large; one that does
/// not is quarantined as bad_amount. Neither aborts the run.
#[test]
fn large_amounts_stage_or_are_quarantined_never_abort_the_run() {
    let ws = Workspace::new();
    ws.write(
        "input/events.csv",
        "event_id,user_id,event_time,region,sku,amount\n\
         x1,1,2026-11-19T10:00:00Z,eu,a,100000000000000.00\n\
         x2,2,2026-11-19T10:00:00Z,us,a,7.25\n\
         x3,3,2026-11-19T10:00:00Z,eu,a,12345678901234567890.00\n",
    );
    let (code, stdout, stderr) = ws.run_unchecked(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        ws.read("output/top_users.csv"),
        "rank,user_id,total_amount,events,first_seen,last_seen\n\
         1,1,100000000000000.00,1,2026-11-19T10:00:00Z,2026-11-19T10:00:00Z\n\
         2,2,7.25,1,2026-11-19T10:00:00Z,2026-11-19T10:00:00Z\n"
    );
    let quarantine = ws.read("output/quarantine/events.csv");
    assert!(
        quarantine.contains("x3,") && quarantine.contains("bad_amount"),
        "{quarantine}"
    );
}

/// Sums are exact to the cent up to the largest DECIMAL(18,2), in every
/// sink and in the checks: above 2^53 cents a REAL (or a DOUBLE) is not.
#[test]
fn sums_are_exact_to_the_cent_in_every_sink_and_check() {
    let ws = Workspace::new();
    ws.write(
        "input/events.csv",
        "event_id,user_id,event_time,region,sku,amount\n\
         x1,1,2026-11-19T10:00:00Z,eu,a,90071992547409.93\n\
         x2,2,2026-11-19T10:00:00Z,us,a,99999999999999.99\n\
         x3,3,2026-11-19T11:00:00Z,ap,a,4999999999999999.99\n\
         x4,3,2026-11-19T12:00:00Z,ap,a,4999999999999999.99\n\
         x5,4,2026-11-19T10:00:00Z,eu,a,0.01\n",
    );
    let select = ["--select", "revenue_reconciles"];
    let (code, stdout, stderr) = ws.run(&select);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("revenue_reconciles"), "{stdout}");
    assert_eq!(
        ws.read("output/top_users.csv"),
        "rank,user_id,total_amount,events,first_seen,last_seen\n\
         1,3,9999999999999999.98,2,2026-11-19T11:00:00Z,2026-11-19T12:00:00Z\n\
         2,2,99999999999999.99,1,2026-11-19T10:00:00Z,2026-11-19T10:00:00Z\n\
         3,1,90071992547409.93,1,2026-11-19T10:00:00Z,2026-11-19T10:00:00Z\n\
         4,4,0.01,1,2026-11-19T10:00:00Z,2026-11-19T10:00:00Z\n"
    );
    // SQLite: the REAL as the contract has it, the exact minor units beside it.
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT user_id, total_amount_minor FROM top_users ORDER BY rank"
        ),
        [
            "3|999999999999999998",
            "2|9999999999999999",
            "1|9007199254740993",
            "4|1"
        ]
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT region, revenue_minor FROM daily_region_revenue ORDER BY region"
        ),
        [
            "ap|999999999999999998",
            "eu|9007199254740994",
            "us|9999999999999999"
        ]
    );
    assert_eq!(
        ws.query(
            "agg_result.db",
            "SELECT table_name, column_name, scale FROM _sluice_money_columns ORDER BY 1, 2"
        ),
        ["daily_region_revenue|revenue|2", "top_users|total_amount|2"]
    );
    // The re-audit reads the exact amounts back.
    let out = ws
        .sluice(&["check", "--select", "revenue_reconciles"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("0.00"), "{stdout}");
}

/// A total beyond the largest DECIMAL(18,2) is an error naming the mart,
/// never a wrapped or rounded value; nothing is published.
#[test]
fn a_total_beyond_the_largest_decimal_is_an_error_naming_the_mart() {
    let (ws, csv) = published();
    ws.write(
        "input/events.csv",
        "event_id,user_id,event_time,region,sku,amount\n\
         x1,1,2026-11-19T10:00:00Z,eu,a,9999999999999999.99\n\
         x2,1,2026-11-19T11:00:00Z,eu,a,0.01\n",
    );
    let (_, stderr) = runs_untouched(&ws, &csv, &[], 3);
    assert!(
        stderr.contains("mart `top_users`: a sum of `total_amount` is beyond ±9999999999999999.99"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: "), "{stderr}");
}

/// 2^18 rows of 2^46 cents for one user sum to 2^64 cents: an i64 sum wraps
/// to exactly 0, a valid-looking total. It is caught, not published.
#[test]
fn a_sum_that_wraps_around_is_caught() {
    let (ws, csv) = published();
    let mut input = String::from("event_id,user_id,event_time,region,sku,amount\n");
    for i in 0..(1 << 18) {
        input.push_str(&format!("w{i},1,2026-11-19T10:00:00Z,eu,a,703687441776.64\n"));
    }
    ws.write("input/events.csv", input);
    let (_, stderr) = runs_untouched(&ws, &csv, &[], 3);
    assert!(stderr.contains("a sum of `total_amount` is beyond"), "{stderr}");
}

/// `sluice <args>` in the workspace, in a mount namespace of its own, after
/// `setup` (shell, in the workspace); `after` runs there too, once sluice
/// has exited. Read-only and full disks, without touching the machine's
/// mounts.
fn run_mounted(ws: &Workspace, setup: &str, args: &[&str], after: &str) -> (i32, String, String) {
    let script = format!("set -e; {setup}; set +e; \"$0\" \"$@\"; rc=$?; {after}; exit $rc");
    let mut cmd = std::process::Command::new("unshare");
    cmd.current_dir(ws.dir.path())
        .args(["--user", "--map-root-user", "--mount", "--propagation", "private"])
        .args(["sh", "-c", &script])
        .arg(assert_cmd::cargo::cargo_bin("sluice"))
        .args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("SLUICE_") {
            cmd.env_remove(key);
        }
    }
    let out = cmd
        .output()
        .expect("unshare (util-linux) runs sluice in a mount namespace");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("unshare:"),
        "unshare needs user namespaces: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// Shell: `dir` becomes a small tmpfs holding what it held, filled up to
/// 4 KiB free.
fn full_disk(dir: &str) -> String {
    format!(
        "mkdir -p {dir} && cp -a {dir} .saved-{dir} && mount -t tmpfs -o size=4m tmpfs {dir} && \
         cp -a .saved-{dir}/. {dir}/ && {{ dd if=/dev/zero of={dir}/.fill bs=64k 2>/dev/null || true; }} && \
         truncate -s -4K {dir}/.fill"
    )
}

/// Shell: `dir` becomes read-only, as a Docker `:ro` mount is.
fn read_only(dir: &str) -> String {
    format!("mkdir -p {dir} && mount --bind {dir} {dir} && mount -o remount,bind,ro {dir}")
}

fn run_args() -> Vec<&'static str> {
    vec!["run", "--as-of", crate::util::AS_OF]
}

/// A full output disk: nothing is published (the database keeps its marts,
/// the CSV its rows) and the hint says the disk is full.
#[test]
fn a_full_output_disk_publishes_nothing_and_says_so() {
    let (ws, csv) = published();
    ws.generate_seeded("input/events.csv", 2_000, "", 9);
    let before = marts(&ws);
    let (code, _, stderr) = run_mounted(
        &ws,
        &full_disk("output"),
        &run_args(),
        "cp output/top_users.csv csv-after",
    );
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("hint: ") && stderr.contains("is full"),
        "{stderr}"
    );
    assert_eq!(marts(&ws), before);
    assert_eq!(bytes(&ws.path("csv-after")), csv);
}

#[test]
fn a_full_data_disk_says_so() {
    let (ws, csv) = published();
    ws.generate_seeded("input/events.csv", 20_000, "", 9);
    let before = marts(&ws);
    let (code, _, stderr) = run_mounted(&ws, &full_disk("data"), &run_args(), "true");
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("hint: a disk is full"), "{stderr}");
    assert_eq!(marts(&ws), before);
    assert_eq!(bytes(&ws.path("output/top_users.csv")), csv);
}

#[test]
fn a_full_database_disk_says_so() {
    let ws = Workspace::new();
    ws.generate("input/events.csv", 2_000, "");
    let mut args = run_args();
    args.extend(["--db", "state/agg_result.db"]);
    let (code, _, stderr) = run_mounted(&ws, &full_disk("state"), &args, "true");
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("hint: the disk holding `state/agg_result.db` is full"),
        "{stderr}"
    );
}

#[test]
fn a_read_only_output_or_database_directory_says_so() {
    let (ws, csv) = published();
    let before = marts(&ws);
    let (code, _, stderr) = run_mounted(&ws, &read_only("output"), &run_args(), "true");
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("read-only file system"), "{stderr}");
    assert_eq!(marts(&ws), before);
    assert_eq!(bytes(&ws.path("output/top_users.csv")), csv);

    let mut args = run_args();
    args.extend(["--db", "state/agg_result.db"]);
    std::fs::create_dir_all(ws.path("state")).unwrap();
    std::fs::copy(ws.path("agg_result.db"), ws.path("state/agg_result.db")).unwrap();
    let (code, _, stderr) = run_mounted(&ws, &read_only("state"), &args, "true");
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("hint: `state/agg_result.db` is on a read-only file system"),
        "{stderr}"
    );
}

#[test]
fn a_fifo_as_the_database_is_a_usage_error() {
    let (ws, csv) = published();
    let made = std::process::Command::new("mkfifo")
        .arg(ws.path("pipe.db"))
        .status()
        .unwrap();
    assert!(made.success());
    let (_, stderr) = runs_untouched(&ws, &csv, &["--db", "pipe.db"], 2);
    assert_eq!(
        stderr,
        "error: database path `pipe.db` is not a regular file\n\
         hint: point --db (SLUICE_DB) at a regular file, or at a new path for sluice to create: SQLite cannot keep a database in a FIFO or a device\n"
    );
}

#[test]
fn a_symbolic_link_that_loops_is_named_as_one() {
    let (ws, csv) = published();
    std::os::unix::fs::symlink("loop.csv", ws.path("loop.csv")).unwrap();
    let (_, stderr) = runs_untouched(&ws, &csv, &["--input", "loop.csv"], 3);
    assert!(
        stderr.starts_with("error: cannot read input file `loop.csv`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: `loop.csv` is a symbolic link that loops"),
        "{stderr}"
    );
}

/// Whether the tests run as root (who reads and writes anything).
fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `sluice <args>` in the workspace as an unprivileged user: `nobody` when
/// the tests run as root.
fn run_unprivileged(ws: &Workspace, args: &[&str]) -> (i32, String, String) {
    let bin = assert_cmd::cargo::cargo_bin("sluice");
    let mut cmd = if is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin);
        c
    } else {
        std::process::Command::new(bin)
    };
    cmd.current_dir(ws.dir.path()).args(args);
    for key in leaked_env() {
        cmd.env_remove(key);
    }
    outcome(&cmd.output().expect("setpriv (util-linux) runs sluice as nobody"))
}

/// Opens the workspace to everyone (for the unprivileged user), except `keep`.
fn open_up(ws: &Workspace, keep: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    fn walk(dir: &Path, keep: &[PathBuf]) {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if keep.contains(&path) {
                continue;
            }
            if path.is_dir() {
                walk(&path, keep);
            } else {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
            }
        }
    }
    let keep: Vec<PathBuf> = keep.iter().map(|k| ws.path(k)).collect();
    walk(ws.dir.path(), &keep);
}

#[test]
fn an_unreadable_input_file_asks_for_read_access() {
    use std::os::unix::fs::PermissionsExt;
    let (ws, _) = published();
    ws.generate_seeded("input/secret.csv", 100, "", 9);
    open_up(&ws, &["input/secret.csv"]);
    std::fs::set_permissions(
        ws.path("input/secret.csv"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let mut args = run_args();
    args.extend(["--input", "input"]);
    let (code, _, stderr) = run_unprivileged(&ws, &args);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("`input/secret.csv`"), "{stderr}");
    assert!(
        stderr.contains("hint: make `input/secret.csv` readable for the user sluice runs as"),
        "{stderr}"
    );
}

#[test]
fn a_database_directory_the_user_cannot_write_asks_for_write_access() {
    use std::os::unix::fs::PermissionsExt;
    let (ws, _) = published();
    std::fs::create_dir_all(ws.path("state")).unwrap();
    std::fs::copy(ws.path("agg_result.db"), ws.path("state/agg_result.db")).unwrap();
    open_up(&ws, &["state"]);
    std::fs::set_permissions(ws.path("state"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        ws.path("state/agg_result.db"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let before = ws.query("state/agg_result.db", "SELECT count(*) FROM _sluice_runs");
    let mut args = run_args();
    args.extend(["--db", "state/agg_result.db"]);
    let (code, _, stderr) = run_unprivileged(&ws, &args);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("hint: make `state/agg_result.db` and its directory `state` writable"),
        "{stderr}"
    );
    assert_eq!(
        ws.query("state/agg_result.db", "SELECT count(*) FROM _sluice_runs"),
        before
    );
}
