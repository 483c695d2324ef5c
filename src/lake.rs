//! The lake: the raw and staging layers a run writes (`--data-dir`).
//!
//! Local (`data`, the default): the engine writes the layers in place and
//! each run replaces the last one's.
//!
//! In object storage (`s3://bucket/lake`): the engine works in a local
//! working copy (a temp directory), and a run's layers are uploaded under
//! `runs/<run_id>/` once it has audited them. S3 has no rename, so a layer
//! becomes visible only when its manifest, `manifests/<run_id>.json`, is
//! written after every file it lists: a reader (a later run, `sluice check`,
//! another engine) lists `manifests/` and never sees a half-written layer.
//! What a run needs of earlier runs (a kept model's version, the raw layer
//! `--skip-ingest` replays) is fetched through the manifests. The files of
//! runs cut off before their manifest are removed by the next run, and a
//! retention setting removes old runs' layers, manifest first.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::object::{self, Bucket};

/// The largest object S3's CopyObject copies in one request.
const MAX_COPY: u64 = 5 << 30;

/// Where the lake is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Local(PathBuf),
    /// `s3://bucket/prefix`, without a trailing slash.
    Remote(String),
}

impl Location {
    pub(crate) fn new(dir: &str) -> Location {
        match object::is_remote(dir) {
            true => Location::Remote(dir.trim_end_matches('/').to_string()),
            false => Location::Local(PathBuf::from(dir)),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(dir) => write!(f, "{}", dir.display()),
            Location::Remote(url) => f.write_str(url),
        }
    }
}

/// How long a lake in object storage keeps earlier runs' layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retain {
    /// The newest N runs' layers.
    Runs(usize),
    /// Layers written within this long.
    Age(Duration),
}

impl Retain {
    /// `10 runs`, `1 run`, or a duration (`30 days`, `12h`).
    pub(crate) fn parse(text: &str) -> std::result::Result<Retain, String> {
        let text = text.trim();
        if let Some(n) = text
            .strip_suffix("runs")
            .or_else(|| text.strip_suffix("run"))
            .map(str::trim)
        {
            return match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Retain::Runs(n)),
                _ => Err(format!(
                    "`{text}`: the number of runs to keep is a whole number from 1 (`10 runs`)"
                )),
            };
        }
        humantime::parse_duration(text).map(Retain::Age).map_err(|e| {
            format!(
                "`{text}` is neither a number of runs nor a duration ({e}); write e.g. `10 runs` or `30 days`"
            )
        })
    }
}

/// What a manifest says: the run's layer files, written before it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub run_id: String,
    /// The run's gate: `passed` or `gate_failed` (a failed run's layers are
    /// kept for inspection and `--skip-ingest`).
    pub status: String,
    pub written_at: DateTime<Utc>,
    pub files: Vec<LayerFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LayerFile {
    /// Relative to the run's directory: `raw/<source>/<source>.parquet`,
    /// `staging/<model>.parquet`.
    pub path: String,
    /// Where it is: `s3://bucket/lake/runs/<run_id>/<path>`.
    pub url: String,
    pub size: u64,
}

/// The lake a command works with.
pub(crate) struct Lake {
    /// Where the engine reads and writes the layers: the lake itself, or
    /// the working copy of one in object storage.
    pub dir: PathBuf,
    remote: Option<Remote>,
}

struct Remote {
    url: String,
    bucket: Bucket,
    /// The lake's key prefix, with its trailing slash (or empty).
    prefix: String,
    /// Removed when the lake is dropped.
    _work: tempfile::TempDir,
    /// Files fetched from earlier runs, by path in the working copy.
    fetched: Vec<Fetched>,
}

struct Fetched {
    path: String,
    key: String,
    /// Part of this run's layer as fetched (a replayed raw layer): copied
    /// on the server instead of uploaded. Otherwise only read (a kept
    /// model's earlier version).
    carried: bool,
}

impl Lake {
    /// Opens the lake; one in object storage must answer (a missing bucket,
    /// denied access or an unreachable endpoint stops here, exit 3).
    pub(crate) fn open(location: &Location) -> Result<Lake> {
        match location {
            Location::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
                Ok(Lake {
                    dir: dir.clone(),
                    remote: None,
                })
            }
            Location::Remote(url) => {
                let (bucket, prefix) = object::locate(url)?;
                let prefix = match prefix.is_empty() {
                    true => prefix,
                    false => format!("{prefix}/"),
                };
                remove_abandoned_copies(&std::env::temp_dir());
                let work = tempfile::Builder::new()
                    .prefix(&format!("{WORK_PREFIX}{}-", std::process::id()))
                    .tempdir()
                    .map_err(|e| Error::io("create a temp directory in", std::env::temp_dir(), e))?;
                let lake = Lake {
                    dir: work.path().to_path_buf(),
                    remote: Some(Remote {
                        url: url.clone(),
                        bucket,
                        prefix,
                        _work: work,
                        fetched: Vec::new(),
                    }),
                };
                // Reaches the bucket now, so a wrong endpoint or bucket stops
                // the run before any data is read.
                lake.manifests()?;
                Ok(lake)
            }
        }
    }

    /// Where the layers are, for messages: the directory or the URL.
    pub(crate) fn location(&self) -> String {
        match &self.remote {
            Some(remote) => remote.url.clone(),
            None => self.dir.display().to_string(),
        }
    }

    /// Whether the lake is in object storage.
    pub(crate) fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Where a file of run `run_id`'s layer is: `path` (relative to the
    /// lake) in a local lake, its URL in object storage.
    pub(crate) fn show(&self, run_id: &str, path: &str) -> String {
        match &self.remote {
            Some(remote) => remote.bucket.url(&remote.key(run_id, path)),
            None => self.dir.join(path).display().to_string(),
        }
    }

    /// The run ids whose layers are complete (they have a manifest), oldest
    /// first; none for a local lake.
    pub(crate) fn manifests(&self) -> Result<Vec<String>> {
        let Some(remote) = &self.remote else {
            return Ok(Vec::new());
        };
        let mut ids: Vec<String> = remote
            .bucket
            .list_under(&format!("{}manifests", remote.prefix))?
            .into_iter()
            .filter_map(|(key, _)| {
                let name = key.rsplit('/').next()?;
                name.strip_suffix(".json").map(String::from)
            })
            .collect();
        // Run ids start with their start time: their order is the runs' order.
        ids.sort();
        Ok(ids)
    }

    /// Removes the files of runs cut off before their manifest (under the
    /// run lock no other run is writing): they are invisible, only space.
    /// Returns how many objects went.
    pub(crate) fn remove_unfinished(&self, current_run: &str) -> Result<usize> {
        let Some(remote) = &self.remote else {
            return Ok(0);
        };
        let complete: BTreeSet<String> = self.manifests()?.into_iter().collect();
        let mut removed = 0;
        for run in remote.bucket.dirs_under(&format!("{}runs", remote.prefix))? {
            if complete.contains(&run) || run.as_str() >= current_run {
                continue;
            }
            removed += remote.remove_files(&run)?;
        }
        Ok(removed)
    }

    /// Makes `path` (the version of kept model `model`, relative to the
    /// lake) that run `run_id` wrote available in [`Lake::dir`]; a version
    /// the lake no longer has stops the run.
    pub(crate) fn fetch_version(&mut self, model: &str, run_id: &str, path: &str) -> Result<()> {
        let Some(remote) = &mut self.remote else {
            return Ok(());
        };
        let manifest = read_manifest(remote, run_id)?;
        let Some(file) = manifest.iter().flat_map(|m| &m.files).find(|f| f.path == path) else {
            return Err(Error::KeptModelLost {
                model: model.to_string(),
                path: remote.bucket.url(&remote.key(run_id, path)).into(),
            });
        };
        remote.fetch(&self.dir, run_id, file, false)
    }

    /// Makes the raw layer of `source` that the newest complete run wrote
    /// available in [`Lake::dir`], for `--skip-ingest`; it is carried into
    /// this run's layer as it is. Returns its URL (none for a local lake).
    pub(crate) fn fetch_raw(&mut self, source: &str) -> Result<Option<String>> {
        let newest = self.manifests()?.pop();
        let Some(remote) = &mut self.remote else {
            return Ok(None);
        };
        let manifest = match newest {
            Some(run) => read_manifest(remote, &run)?,
            None => None,
        };
        let dir = format!("raw/{source}/");
        let files: Vec<LayerFile> = manifest
            .iter()
            .flat_map(|m| &m.files)
            .filter(|f| f.path.starts_with(&dir))
            .cloned()
            .collect();
        let (Some(manifest), Some(main)) = (
            &manifest,
            files.iter().find(|f| f.path == format!("{dir}{source}.parquet")),
        ) else {
            return Err(Error::NoRawLayer {
                source_name: source.to_string(),
                path: remote.url.clone().into(),
            });
        };
        let (run, url) = (manifest.run_id.clone(), main.url.clone());
        for file in &files {
            remote.fetch(&self.dir, &run, file, true)?;
        }
        Ok(Some(url))
    }

    /// Fetches the whole layer of run `run_id` into `dir`, for a re-audit;
    /// `false` when the run has no complete layer in the lake.
    pub(crate) fn fetch_layer(&self, run_id: &str, dir: &Path) -> Result<bool> {
        let Some(remote) = &self.remote else {
            return Ok(false);
        };
        let Some(manifest) = read_manifest(remote, run_id)? else {
            return Ok(false);
        };
        for file in &manifest.files {
            remote
                .bucket
                .download(&remote.key(run_id, &file.path), file.size, &dir.join(&file.path))?;
        }
        Ok(true)
    }

    /// Uploads run `run_id`'s layers from the working copy, then its
    /// manifest; a no-op for a local lake. Returns the manifest's URL.
    pub(crate) fn commit(&self, run_id: &str, status: &str) -> Result<Option<String>> {
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        let mut files = Vec::new();
        for layer in ["raw", "staging"] {
            for path in layer_files(&self.dir, &self.dir.join(layer))? {
                let key = remote.key(run_id, &path);
                let local = self.dir.join(&path);
                let size = std::fs::metadata(&local)
                    .map_err(|e| Error::io("read", &local, e))?
                    .len();
                match remote.fetched.iter().find(|f| f.path == path) {
                    // S3 copies objects of up to 5 GiB in one request; a
                    // larger one is uploaded from the working copy.
                    Some(f) if f.carried && size <= MAX_COPY => remote.bucket.copy(&f.key, &key)?,
                    Some(f) if !f.carried => continue,
                    _ => remote.bucket.upload(&key, &local)?,
                }
                crate::fault::point(&format!("lake {path}")).map_err(|e| Error::io("upload", &local, e))?;
                files.push(LayerFile {
                    url: remote.bucket.url(&key),
                    path,
                    size,
                });
            }
        }
        let manifest = Manifest {
            run_id: run_id.to_string(),
            status: status.to_string(),
            written_at: Utc::now(),
            files,
        };
        let key = remote.manifest_key(run_id);
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::ObjectStore {
            url: remote.bucket.url(&key),
            kind: "other",
            message: e.to_string(),
        })?;
        crate::fault::point("lake manifest").map_err(|e| Error::io("write the manifest of", &self.dir, e))?;
        remote.bucket.create(&key, json)?;
        Ok(Some(remote.bucket.url(&key)))
    }

    /// Removes the layers of runs `retain` no longer keeps, except those of
    /// the runs in `keep` (the last published run, the runs whose versions
    /// kept models go on from) and the newest layer. A layer goes manifest
    /// first, so a reader never finds a manifest whose files are gone.
    /// Returns the runs removed.
    pub(crate) fn apply_retention(
        &self,
        retain: Retain,
        keep: &[String],
        now: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        let Some(remote) = &self.remote else {
            return Ok(Vec::new());
        };
        let runs = self.manifests()?;
        let newest = runs.last().cloned();
        let mut removed = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            let kept = keep.contains(run) || Some(run) == newest.as_ref();
            let expired = match retain {
                Retain::Runs(n) => runs.len() - i > n,
                Retain::Age(age) => match read_manifest(remote, run)? {
                    Some(m) => {
                        now.signed_duration_since(m.written_at)
                            .to_std()
                            .unwrap_or_default()
                            > age
                    }
                    None => false,
                },
            };
            if expired && !kept {
                remote.bucket.delete(&[remote.manifest_key(run)])?;
                remote.remove_files(run)?;
                removed.push(run.clone());
            }
        }
        Ok(removed)
    }
}

impl Remote {
    /// The key of `path` of run `run_id`'s layer, as stored.
    fn key(&self, run_id: &str, path: &str) -> String {
        object_store::path::Path::from(format!("{}runs/{run_id}/{path}", self.prefix)).to_string()
    }

    fn manifest_key(&self, run_id: &str) -> String {
        format!("{}manifests/{run_id}.json", self.prefix)
    }

    fn fetch(&mut self, dir: &Path, run_id: &str, file: &LayerFile, carried: bool) -> Result<()> {
        let key = self.key(run_id, &file.path);
        self.bucket.download(&key, file.size, &dir.join(&file.path))?;
        self.fetched.push(Fetched {
            path: file.path.clone(),
            key,
            carried,
        });
        Ok(())
    }

    /// Removes every object of run `run_id`'s directory.
    fn remove_files(&self, run_id: &str) -> Result<usize> {
        let keys: Vec<String> = self
            .bucket
            .list_under(&format!("{}runs/{run_id}", self.prefix))?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        self.bucket.delete(&keys)?;
        Ok(keys.len())
    }
}

/// How a working copy's directory starts: `sluice-lake-<pid>-…`.
const WORK_PREFIX: &str = "sluice-lake-";

/// Removes the working copies in `dir` of processes that are gone (runs
/// killed before they could remove their own); nothing reads them again.
/// Only where `/proc` tells which processes live; errors are ignored (a
/// copy another user owns stays).
fn remove_abandoned_copies(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(WORK_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The manifest of run `run_id`, if its layer is complete.
fn read_manifest(remote: &Remote, run_id: &str) -> Result<Option<Manifest>> {
    let key = remote.manifest_key(run_id);
    let bytes = match remote.bucket.get(&key) {
        Err(Error::ObjectStore {
            kind: "not_found", ..
        }) => return Ok(None),
        other => other?,
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Error::ObjectStore {
            url: remote.bucket.url(&key),
            kind: "other",
            message: format!("not a sluice manifest: {e}"),
        })
}

/// The files under `dir` (recursively), as `/`-separated paths relative to
/// `root`, sorted; hidden and temp files (a write in flight) left out.
fn layer_files(root: &Path, dir: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| Error::io("read directory", dir, e))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with('.') || name.contains(".tmp") {
            continue;
        }
        if path.is_dir() {
            found.extend(layer_files(root, &path)?);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let parts: Vec<String> = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            found.push(parts.join("/"));
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_runs_or_a_duration() {
        assert_eq!(Retain::parse("10 runs"), Ok(Retain::Runs(10)));
        assert_eq!(Retain::parse(" 1 run"), Ok(Retain::Runs(1)));
        assert_eq!(
            Retain::parse("30 days"),
            Ok(Retain::Age(Duration::from_secs(30 * 86_400)))
        );
        assert!(Retain::parse("0 runs").unwrap_err().contains("from 1"));
        assert!(
            Retain::parse("a while")
                .unwrap_err()
                .contains("`10 runs` or `30 days`")
        );
    }

    #[test]
    fn a_location_is_a_directory_or_a_bucket() {
        assert_eq!(Location::new("data"), Location::Local(PathBuf::from("data")));
        assert_eq!(
            Location::new("s3://lake/prod/"),
            Location::Remote("s3://lake/prod".into())
        );
        assert_eq!(Location::new("s3://lake/prod/").to_string(), "s3://lake/prod");
    }

    #[test]
    fn only_the_working_copies_of_gone_processes_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        // u32::MAX is above any pid Linux gives out.
        for name in [
            format!("sluice-lake-{}-live", std::process::id()),
            format!("sluice-lake-{}-gone", u32::MAX),
            "sluice-lake-old-style".to_string(),
            format!("other-{}-x", u32::MAX),
        ] {
            std::fs::create_dir_all(tmp.path().join(name).join("raw")).unwrap();
        }
        remove_abandoned_copies(tmp.path());
        let mut left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                format!("other-{}-x", u32::MAX),
                format!("sluice-lake-{}-live", std::process::id()),
                "sluice-lake-old-style".to_string(),
            ]
        );
    }

    #[test]
    fn layer_files_leave_out_temp_and_hidden_files() {
        let root = tempfile::tempdir().unwrap();
        for file in [
            "raw/events/events.parquet",
            "raw/events/events.parquet.tmp123",
            "staging/events.parquet",
            "staging/kept/20261201T000000.000000Z-00001.parquet",
            ".duckdb_tmp/spill.bin",
        ] {
            let path = root.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        }
        assert_eq!(
            layer_files(root.path(), &root.path().join("raw")).unwrap(),
            ["raw/events/events.parquet"]
        );
        assert_eq!(
            layer_files(root.path(), &root.path().join("staging")).unwrap(),
            [
                "staging/events.parquet",
                "staging/kept/20261201T000000.000000Z-00001.parquet"
            ]
        );
    }
}
