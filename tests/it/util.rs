//! A small harness: a temp workspace, the binary, and readers for its outputs.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

/// A temp directory that is the working directory of every command run in it.
pub(crate) struct Workspace {
    pub dir: tempfile::TempDir,
}

/// The `--as-of` and `--end` every deterministic test uses.
pub(crate) const AS_OF: &str = "2026-11-20T12:00:00Z";

impl Workspace {
    pub(crate) fn new() -> Self {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `sluice <args>` in the workspace, with no SLUICE_* variables leaking in.
    pub(crate) fn sluice(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("sluice").expect("the sluice binary is built");
        cmd.current_dir(self.dir.path()).args(args);
        for key in leaked_env() {
            cmd.env_remove(key);
        }
        cmd
    }

    pub(crate) fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("create dir");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }

    /// `sluice generate` into `rel` with the fixed end timestamp and seed 7.
    pub(crate) fn generate(&self, rel: &str, rows: u64, defects: &str) -> String {
        self.generate_seeded(rel, rows, defects, 7)
    }

    /// As [`Workspace::generate`], with a seed of its own (event ids differ between seeds).
    pub(crate) fn generate_seeded(&self, rel: &str, rows: u64, defects: &str, seed: u64) -> String {
        let (rows, seed) = (rows.to_string(), seed.to_string());
        let args = [
            "generate",
            "--rows",
            &rows,
            "--out",
            rel,
            "--end",
            AS_OF,
            "--seed",
            &seed,
            "--defects",
            defects,
        ];
        let out = self.sluice(&args).assert().success();
        String::from_utf8_lossy(&out.get_output().stdout).into_owned()
    }

    /// Runs the pipeline with the fixed `--as-of`; returns (exit code, stdout, stderr).
    pub(crate) fn run(&self, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec!["run", "--as-of", AS_OF];
        args.extend_from_slice(extra);
        outcome(&self.sluice(&args).output().expect("run sluice"))
    }

    /// [`Workspace::run`] with no checks at all, for tests about something else.
    pub(crate) fn run_unchecked(&self, extra: &[&str]) -> (i32, String, String) {
        std::fs::create_dir_all(self.path("no-checks")).expect("create dir");
        let mut args = vec!["--checks-dir", "no-checks", "--allow-ungated"];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    /// Rows of a SQLite query as text, one `|`-joined string per row.
    pub(crate) fn query(&self, db: &str, sql: &str) -> Vec<String> {
        let conn = rusqlite::Connection::open(self.path(db)).expect("open db");
        let mut stmt = conn.prepare(sql).expect("prepare");
        let n = stmt.column_count();
        stmt.query_map([], |row| {
            Ok((0..n)
                .map(|i| match row.get_ref(i).expect("cell") {
                    rusqlite::types::ValueRef::Null => "NULL".to_string(),
                    rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                    rusqlite::types::ValueRef::Real(v) => format!("{v:.2}"),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                    rusqlite::types::ValueRef::Blob(_) => "BLOB".to_string(),
                })
                .collect::<Vec<_>>()
                .join("|"))
        })
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }
}

/// The variables of the test's environment that must not reach sluice:
/// the caller's own `SLUICE_*` settings and `GITHUB_SHA`.
pub(crate) fn leaked_env() -> Vec<String> {
    std::env::vars()
        .map(|(key, _)| key)
        .filter(|key| key.starts_with("SLUICE_") || key == "GITHUB_SHA")
        .collect()
}

/// (exit code, or -1 when killed; stdout; stderr) of a finished command.
pub(crate) fn outcome(out: &std::process::Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Bytes of a file, for "unchanged" assertions.
pub(crate) fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

/// A workspace with one published run on clean generated data (as of
/// [`AS_OF`]), and the bytes of the published CSV.
pub(crate) fn published() -> (Workspace, Vec<u8>) {
    let ws = Workspace::new();
    ws.generate("input/events.csv", 2_000, "");
    let (code, stdout, stderr) = ws.run(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let csv = bytes(&ws.path("output/top_users.csv"));
    (ws, csv)
}

/// Every row of the published marts, for "unchanged" assertions.
pub(crate) fn marts(ws: &Workspace) -> Vec<String> {
    let mut rows = ws.query("agg_result.db", "SELECT * FROM top_users ORDER BY rank");
    rows.extend(ws.query(
        "agg_result.db",
        "SELECT * FROM daily_region_revenue ORDER BY rowid",
    ));
    rows
}

/// Copies the tree `from` to `to`.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Copies `tests/fixtures/<name>` into the workspace under `to`.
pub(crate) fn fixture(ws: &Workspace, name: &str, to: &str) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    copy_dir(&from, &ws.path(to));
}

/// A gzipped copy of a file beside it (`<file>.gz`).
pub(crate) fn gzip(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    let out = PathBuf::from(name);
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&out).unwrap(),
        flate2::Compression::default(),
    );
    std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut gz).unwrap();
    gz.finish().unwrap();
    out
}
