//! The lake in object storage (`--data-dir s3://…`, `lake:` in sluice.yaml)
//! against a standalone S3 server, and a partitioned staging layer.

use std::process::Command;

use crate::s3::{S3Server, SECRET};
use crate::util::{AS_OF, Workspace, outcome};

/// `sluice <args>` with the server's endpoint and credentials.
fn sluice(ws: &Workspace, s3: &S3Server, args: &[&str], fault: Option<&str>) -> (i32, String, String) {
    let mut cmd = ws.sluice(args);
    // The working copies go to the workspace, where the test sees them.
    cmd.env("TMPDIR", ws.write("tmp/.keep", "").parent().unwrap());
    for (key, value) in s3.vars() {
        cmd.env(key, value);
    }
    if let Some(fault) = fault {
        cmd.env("SLUICE_FAULT", fault);
    }
    outcome(&cmd.output().unwrap())
}

fn run(ws: &Workspace, s3: &S3Server, extra: &[&str], fault: Option<&str>) -> (i32, String, String) {
    let mut args = vec!["run", "--as-of", AS_OF];
    args.extend_from_slice(extra);
    sluice(ws, s3, &args, fault)
}

/// The run ids whose layers are visible: those with a manifest.
fn manifests(s3: &S3Server) -> Vec<String> {
    s3.objects("lake", "prod/manifests/")
        .into_iter()
        .map(|(key, _)| {
            key["prod/manifests/".len()..]
                .trim_end_matches(".json")
                .to_string()
        })
        .collect()
}

/// The run directories with any object in them.
fn run_dirs(s3: &S3Server) -> Vec<String> {
    let mut dirs: Vec<String> = s3
        .objects("lake", "prod/runs/")
        .into_iter()
        .filter_map(|(key, _)| key["prod/runs/".len()..].split('/').next().map(String::from))
        .collect();
    dirs.dedup();
    dirs
}

/// The working copies left in the workspace's TMPDIR.
fn working_copies(ws: &Workspace) -> usize {
    std::fs::read_dir(ws.path("tmp"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("sluice-lake-")
        })
        .count()
}

/// The default pipeline, its events kept across runs (`merge`), its lake
/// in the bucket `lake` keeping two runs.
fn workspace(s3: &S3Server) -> Workspace {
    let ws = Workspace::new();
    ws.sluice(&["init"]).assert().success();
    let config = ws.read("sluice.yaml").replace(
        "    sql: sql/staging/events.sql\n",
        "    sql: sql/staging/events.sql\n    write: merge\n    primary_key: [event_id]\n",
    ) + "\nlake:\n  path: s3://lake/prod/\n  retain: 2 runs\n";
    ws.write("sluice.yaml", config);
    s3.put("lake", &[]);
    ws
}

/// Each run's raw and staging layers go under `runs/<run_id>/` and become
/// visible through a manifest written after them; a kept model goes on from
/// the version in the bucket, `--skip-ingest` replays the newest raw layer
/// from it, `sluice check` re-audits the published run's layer, and
/// `retain: 2 runs` removes older layers. Nothing of the lake is local.
#[test]
fn a_lake_in_a_bucket_is_found_through_manifests_written_last() {
    let s3 = S3Server::start();
    let ws = workspace(&s3);
    ws.generate_seeded("input/day-1.csv", 1_000, "", 1);
    let (code, stdout, stderr) = run(&ws, &s3, &[], None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let first = manifests(&s3);
    assert_eq!(first.len(), 1, "{stderr}");
    let run1 = &first[0];
    assert!(
        stdout.contains(&format!(
            "-> `s3://lake/prod/runs/{run1}/staging/events/{run1}.parquet`"
        )),
        "{stdout}"
    );
    assert!(!ws.path("data").exists(), "the lake is not local");
    // The manifest lists every file of the layer, as stored.
    let objects = s3.objects("lake", &format!("prod/runs/{run1}/"));
    let manifest: serde_json::Value =
        serde_json::from_str(&s3.get("lake", &format!("prod/manifests/{run1}.json"))).unwrap();
    assert_eq!(manifest["run_id"], run1.as_str());
    assert_eq!(manifest["status"], "passed");
    let listed: Vec<(String, u64)> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let path = f["path"].as_str().unwrap();
            assert_eq!(f["url"], format!("s3://lake/prod/runs/{run1}/{path}"));
            (format!("prod/runs/{run1}/{path}"), f["size"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(listed, objects);
    let paths: Vec<String> = objects
        .iter()
        .map(|(k, _)| k.split_once(run1.as_str()).unwrap().1.to_string())
        .collect();
    assert_eq!(
        paths,
        [
            "/raw/events/events.parquet".to_string(),
            format!("/staging/events/{run1}.parquet")
        ]
    );

    // The merge goes on from the version in the bucket.
    ws.generate_seeded("day-2.csv", 500, "", 2);
    let (code, stdout, stderr) = run(&ws, &s3, &["--input", "day-2.csv"], None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let totals = ws.query(
        "agg_result.db",
        "SELECT rows_staged, rows_total FROM _sluice_run_models ORDER BY rowid",
    );
    assert_eq!(totals, ["1000|1000", "500|1500"]);
    let run2 = manifests(&s3).pop().unwrap();

    // --skip-ingest replays the newest raw layer from the bucket.
    let (code, stdout, stderr) = run(&ws, &s3, &["--skip-ingest"], None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("sluice: 500 rows from 1 file;"), "{stdout}");
    let inputs = ws.query(
        "agg_result.db",
        "SELECT path FROM _sluice_run_inputs WHERE run_id = (SELECT max(run_id) FROM _sluice_runs)",
    );
    assert_eq!(
        inputs,
        [format!("s3://lake/prod/runs/{run2}/raw/events/events.parquet")]
    );
    // Two runs kept: the first one's layer is gone, manifest and files.
    let kept = manifests(&s3);
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert_eq!(kept[0], run2);
    assert_eq!(run_dirs(&s3), kept);
    assert!(
        stderr.contains("removed the layers of 1 earlier runs"),
        "{stderr}"
    );

    // A re-audit reads the published run's layer from the bucket: the raw
    // and staging checks run, none is skipped.
    let (code, stdout, stderr) = sluice(&ws, &s3, &["check"], None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stdout.contains("skipped"), "{stdout}");
    assert!(stdout.contains("raw_event_id_present"), "{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
}

/// A run cut off while its layer is uploaded, or before its manifest, is
/// invisible: no manifest names it, the published results are the last
/// run's, and the next run removes its files.
#[test]
fn a_run_cut_off_before_its_manifest_leaves_no_visible_layer() {
    let s3 = S3Server::start();
    let ws = workspace(&s3);
    ws.generate_seeded("input/day-1.csv", 1_000, "", 1);
    let (code, stdout, stderr) = run(&ws, &s3, &[], None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let published = ws.query("agg_result.db", "SELECT * FROM daily_region_revenue");
    let before = manifests(&s3);
    ws.generate_seeded("input/day-2.csv", 500, "", 2);

    let (code, _, stderr) = run(&ws, &s3, &[], Some("lake raw/events/events.parquet"));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("fault injected"), "{stderr}");
    assert_eq!(manifests(&s3), before);
    assert_eq!(run_dirs(&s3).len(), 2, "the cut-off run left files");
    // The next run removes them, and is cut off itself before its manifest.
    let (code, _, stderr) = run(&ws, &s3, &[], Some("lake manifest:crash"));
    assert_eq!(code, -1, "killed: {stderr}");
    assert!(
        stderr.contains("removed the files of runs cut off before their manifest"),
        "{stderr}"
    );
    assert_eq!(manifests(&s3), before);
    let dirs = run_dirs(&s3);
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    assert_eq!(
        ws.query("agg_result.db", "SELECT * FROM daily_region_revenue"),
        published
    );
    assert_eq!(working_copies(&ws), 1, "the killed run's");

    let (code, stdout, stderr) = run(&ws, &s3, &[], None);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(working_copies(&ws), 0, "removed, and its own too");
    assert!(
        stderr.contains("removed the files of runs cut off before their manifest"),
        "{stderr}"
    );
    assert_eq!(run_dirs(&s3), manifests(&s3));
    assert_eq!(manifests(&s3).len(), 2);
}

/// A lake that cannot be reached stops the run before anything is read,
/// naming the URL and the fix; so does replaying a lake with no layer.
#[test]
fn an_unreachable_lake_stops_the_run_with_the_url() {
    let s3 = S3Server::start();
    let ws = workspace(&s3);
    ws.generate("input/day-1.csv", 100, "");
    let (code, _, stderr) = run(&ws, &s3, &["--data-dir", "s3://no-such-bucket/lake"], None);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("error: object storage failed on `s3://no-such-bucket/"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: check the bucket"), "{stderr}");
    let (code, _, stderr) = run(&ws, &s3, &["--skip-ingest"], None);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("source `events` has none at `s3://lake/prod`"),
        "{stderr}"
    );
}

/// `partition_by` writes the staging layer as one directory per value,
/// each file with every column; other readers and `sluice check` read it.
#[test]
fn a_partitioned_staging_layer_is_one_directory_per_value() {
    let ws = Workspace::new();
    ws.sluice(&["init"]).assert().success();
    let config = ws.read("sluice.yaml").replace(
        "    sql: sql/staging/events.sql\n",
        "    sql: sql/staging/events.sql\n    partition_by: [region]\n",
    );
    ws.write("sluice.yaml", config);
    ws.generate("input/events.csv", 2_000, "");
    let (code, stdout, stderr) = ws.run(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("-> `data/staging/events/`"), "{stdout}");
    assert!(!ws.path("data/staging/events.parquet").exists());
    let mut regions: Vec<String> = std::fs::read_dir(ws.path("data/staging/events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    regions.sort();
    assert!(
        regions.len() > 1 && regions.iter().all(|r| r.starts_with("region=")),
        "{regions:?}"
    );
    // Read by pyarrow: every row, every column (the region too) in each file.
    let script = "import pyarrow.dataset as ds, sys\n\
                  d = ds.dataset(sys.argv[1], format='parquet')\n\
                  print(d.count_rows(), 'region' in d.schema.names)\n";
    let out = Command::new("python3")
        .args([
            "-c",
            script,
            &ws.path("data/staging/events").display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let staged = ws.query("agg_result.db", "SELECT rows_staged FROM _sluice_run_models");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{} True", staged[0])
    );
    let (code, stdout, stderr) = outcome(&ws.sluice(&["check"]).output().unwrap());
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stdout.contains("skipped"), "{stdout}");

    // Kept models are one file per version.
    let config = ws.read("sluice.yaml").replace(
        "    partition_by: [region]\n",
        "    partition_by: [region]\n    write: append\n",
    );
    ws.write("sluice.yaml", config);
    let (code, _, stderr) = ws.run(&[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`partition_by` is for a `write: replace` model"),
        "{stderr}"
    );
}
