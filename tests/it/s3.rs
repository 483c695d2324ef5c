//! Sources in S3-compatible storage, against a standalone S3 server (PyPI
//! moto's `moto_server`) that each test starts on 127.0.0.1.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::util::{Workspace, outcome};

/// The secret key the tests use: it must never show.
pub(crate) const SECRET: &str = "s3cr3t-k3y-never-shown";

pub(crate) struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    pub(crate) fn start() -> S3Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server runs (ci/test.sh installs moto[server])");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        S3Server { child, port }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The endpoint and credentials, as `AWS_*` variables.
    pub(crate) fn vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
        ]
    }

    /// Creates `bucket` (if needed) and uploads each local file to its key.
    pub(crate) fn put(&self, bucket: &str, objects: &[(&str, std::path::PathBuf)]) {
        let script = format!(
            "import boto3, sys\n\
             s3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='x', region_name='us-east-1')\n\
             try:\n    s3.create_bucket(Bucket='{bucket}')\nexcept s3.exceptions.BucketAlreadyOwnedByYou:\n    pass\n\
             for key, path in zip(sys.argv[1::2], sys.argv[2::2]):\n    s3.upload_file(path, '{bucket}', key)\n",
            self.endpoint()
        );
        let mut args = vec!["-c".to_string(), script];
        for (key, path) in objects {
            args.push(key.to_string());
            args.push(path.display().to_string());
        }
        let out = Command::new("python3").args(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl S3Server {
    /// Every object in `bucket` under `prefix`: key and size, by key.
    pub(crate) fn objects(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let listing = self.python(&format!(
            "p = s3.get_paginator('list_objects_v2')\n\
             for page in p.paginate(Bucket='{bucket}', Prefix='{prefix}'):\n\
             \x20   for o in page.get('Contents', []):\n\
             \x20       print(o['Key'], o['Size'])\n"
        ));
        let mut found: Vec<(String, u64)> = listing
            .lines()
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(key, size)| (key.to_string(), size.parse().unwrap()))
            .collect();
        found.sort();
        found
    }

    /// The object's text.
    pub(crate) fn get(&self, bucket: &str, key: &str) -> String {
        self.python(&format!(
            "import sys\nsys.stdout.write(s3.get_object(Bucket='{bucket}', Key='{key}')['Body'].read().decode())\n"
        ))
    }

    /// Runs a Python script with `s3`, a boto3 client of this server; its stdout.
    fn python(&self, script: &str) -> String {
        let script = format!(
            "import boto3\n\
             s3 = boto3.client('s3', endpoint_url='{}', aws_access_key_id='test', aws_secret_access_key='x', region_name='us-east-1')\n{script}",
            self.endpoint()
        );
        let out = Command::new("python3").args(["-c", &script]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice run` with the server's endpoint and credentials in the environment.
fn run(ws: &Workspace, s3: &S3Server, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["run", "--as-of", crate::util::AS_OF];
    all.extend_from_slice(args);
    let mut cmd = ws.sluice(&all);
    for (key, value) in s3.vars() {
        cmd.env(key, value);
    }
    outcome(&cmd.output().unwrap())
}

/// A prefix is read like a directory: every format sluice reads, compressed
/// text too, streamed and hashed as stored, each object in the run record
/// with its ETag; what it cannot read is skipped with a warning.
#[test]
fn an_s3_prefix_is_read_like_a_directory() {
    let ws = Workspace::new();
    let s3 = S3Server::start();
    ws.generate_seeded("local/day-1.csv", 1_000, "", 1);
    ws.generate_seeded("local/day-2.ndjson", 500, "", 2);
    // A Parquet file of the same columns: the raw layer of a local run.
    ws.generate_seeded("first/events.csv", 300, "", 3);
    let (code, stdout, stderr) = ws.run(&["--input", "first"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    s3.put(
        "lake",
        &[
            (
                "landing/day-1.csv.gz",
                crate::util::gzip(&ws.path("local/day-1.csv")),
            ),
            ("landing/2026/day-2.ndjson", ws.path("local/day-2.ndjson")),
            (
                "landing/2026/part.parquet",
                ws.path("data/raw/events/events.parquet"),
            ),
            ("landing/README.txt", ws.write("local/readme.txt", "not data")),
            ("elsewhere/day-9.csv", ws.path("local/day-1.csv")),
        ],
    );
    std::fs::remove_file(ws.path("agg_result.db")).unwrap();
    let (code, stdout, stderr) = run(&ws, &s3, &["--input", "s3://lake/landing/"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("sluice: 1800 rows from 3 files;"), "{stdout}");
    assert!(
        stderr.contains("source `events` skips 1 file it does not read: `s3://lake/landing/README.txt`"),
        "{stderr}"
    );
    let inputs = ws.query(
        "agg_result.db",
        "SELECT path, rows, length(sha256), length(etag) > 0 FROM _sluice_run_inputs ORDER BY path",
    );
    assert_eq!(
        inputs,
        [
            "s3://lake/landing/2026/day-2.ndjson|500|64|1",
            "s3://lake/landing/2026/part.parquet|300|64|1",
            "s3://lake/landing/day-1.csv.gz|1000|64|1",
        ]
    );
    // The digest is of the object as stored: the gzip, not the CSV in it.
    let gz = std::fs::read(ws.path("local/day-1.csv.gz")).unwrap();
    let digest = ws.query(
        "agg_result.db",
        "SELECT sha256 FROM _sluice_run_inputs WHERE path LIKE '%day-1.csv.gz'",
    );
    assert_eq!(digest, [sluice::format::hex(&Sha256::digest(&gz))]);
    // A glob picks some of them; the same rows as a local run of them.
    let (code, stdout, stderr) = run(&ws, &s3, &["--input", "s3://lake/landing/*.csv.gz"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("sluice: 1000 rows from 1 file;"), "{stdout}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
}

/// A bucket that does not exist, a prefix with nothing under it and an
/// endpoint that does not answer each stop the run with the URL and the fix.
#[test]
fn object_storage_faults_name_the_url_and_the_fix() {
    let ws = Workspace::new();
    let s3 = S3Server::start();
    s3.put("lake", &[("landing/a.csv", ws.write("a.csv", "event_id\n"))]);
    let (code, _, stderr) = run(&ws, &s3, &["--input", "s3://nobucket/landing/"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("error: object storage failed on `s3://nobucket/landing/`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: check the bucket and the prefix"),
        "{stderr}"
    );
    let (code, _, stderr) = run(&ws, &s3, &["--input", "s3://lake/nothing/"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: input `s3://lake/nothing/` does not exist"),
        "{stderr}"
    );
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = ws
        .sluice(&["run", "--input", "s3://lake/landing/"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}"))
        .output()
        .unwrap();
    let (code, stdout, stderr) = outcome(&out);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("error: object storage failed on `s3://lake/landing/`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: check AWS_ENDPOINT_URL"), "{stderr}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
}
