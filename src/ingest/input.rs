//! Where a source's bytes come from: the seam between sources and landing.
//! A kind of input (local files today; HTTP and object storage next)
//! resolves what a source names into [`Input`]s, each with a name, a size
//! when known, and a way to open it as a stream of its bytes as stored.
//! Landing hashes the stream as it reads it and does not care where the
//! bytes came from; only a Parquet file, which DuckDB reads itself, needs a
//! local file ([`Input::local_file`]).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::Source;
use crate::error::{Error, Result};
use crate::object::{self, Object};

/// One input of a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// A local file, and its size when it was listed.
    File { path: PathBuf, size: u64 },
    /// An object in S3-compatible storage.
    Object(Object),
}

/// A local file with an input's bytes: the file itself, or a downloaded
/// copy that is removed when this is dropped.
pub(crate) enum LocalFile<'a> {
    Borrowed(&'a Path),
    Downloaded(tempfile::TempPath),
}

impl LocalFile<'_> {
    pub(crate) fn path(&self) -> &Path {
        match self {
            LocalFile::Borrowed(path) => path,
            LocalFile::Downloaded(temp) => temp,
        }
    }
}

impl Input {
    /// What names the input in messages and in the run record (a path; a
    /// URL for a remote kind).
    pub(crate) fn name(&self) -> &Path {
        match self {
            Input::File { path, .. } => path,
            Input::Object(object) => &object.url,
        }
    }

    /// Its size in bytes as stored, when known before reading it.
    pub(crate) fn size(&self) -> Option<u64> {
        match self {
            Input::File { size, .. } => Some(*size),
            Input::Object(object) => Some(object.size),
        }
    }

    /// Its version as the store names it (an object's ETag), for the run record.
    pub(crate) fn etag(&self) -> Option<&str> {
        match self {
            Input::File { .. } => None,
            Input::Object(object) => object.etag.as_deref(),
        }
    }

    /// Its bytes as stored (compressed, if it is), from the start.
    pub(crate) fn open(&self) -> Result<Box<dyn Read + Send>> {
        match self {
            Input::File { path, .. } => {
                let file = File::open(path).map_err(|e| Error::io("open input file", path, e))?;
                Ok(Box::new(io::BufReader::with_capacity(1 << 20, file)))
            }
            Input::Object(object) => object.open(),
        }
    }

    /// A local file with its bytes, for readers that need a path (DuckDB's
    /// Parquet reader): the file itself, or a copy downloaded into `dir`.
    pub(crate) fn local_file(&self, dir: &Path) -> Result<LocalFile<'_>> {
        match self {
            Input::File { path, .. } => Ok(LocalFile::Borrowed(path)),
            Input::Object(object) => object.download(dir).map(LocalFile::Downloaded),
        }
    }
}

/// The inputs `source` reads, from the values of `--input` or the source's
/// `path`: sorted and de-duplicated.
pub(crate) fn resolve(inputs: &[String], source: &Source) -> Result<Vec<Input>> {
    let mut skipped = Vec::new();
    let (remote, local): (Vec<String>, Vec<String>) =
        inputs.iter().cloned().partition(|i| object::is_remote(i));
    let files = resolve_files(&local, source, &mut skipped)?;
    let mut objects = Vec::new();
    for url in &remote {
        let listed = object::list(url)?;
        if listed.is_empty() {
            return Err(Error::InputNotFound { path: url.into() });
        }
        for object in listed {
            if source.format_of(&object.url).is_some() {
                objects.push(object);
            } else {
                skipped.push(object.url);
            }
        }
    }
    objects.dedup_by(|a, b| a.url == b.url);
    if !skipped.is_empty() {
        let names: Vec<String> = skipped
            .iter()
            .take(5)
            .map(|p| format!("`{}`", p.display()))
            .collect();
        let more = skipped.len().saturating_sub(names.len());
        let listed = names.join(", ")
            + &if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
        // Only files whose kind it cannot tell: an empty directory is an empty input.
        if files.is_empty() && objects.is_empty() {
            return Err(Error::NoReadableInput {
                source_name: source.name.clone(),
                skipped: listed,
            });
        }
        tracing::warn!(
            "source `{}` skips {} file{} it does not read: {listed}",
            source.name,
            skipped.len(),
            if skipped.len() == 1 { "" } else { "s" }
        );
    }
    let files: Vec<Input> = files
        .into_iter()
        .map(|path| {
            let size = std::fs::metadata(&path)
                .map_err(|e| Error::io("read input file", &path, e))?
                .len();
            Ok(Input::File { path, size })
        })
        .collect::<Result<_>>()?;
    Ok(files
        .into_iter()
        .chain(objects.into_iter().map(Input::Object))
        .collect())
}

/// Local files: expands each `--input` value (file, directory or glob) into a
/// sorted, de-duplicated list of the files `source` reads. A file named
/// explicitly must be readable by it; directories and globs skip other files
/// (listed in `skipped`; hidden ones are not).
fn resolve_files(inputs: &[String], source: &Source, skipped: &mut Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    let supported = |p: &Path| source.format_of(p).is_some();
    let mut files = Vec::new();
    for input in inputs {
        if input.contains(['*', '?', '[']) {
            // As in a shell, `*` does not match hidden files.
            let options = glob::MatchOptions {
                require_literal_leading_dot: true,
                ..glob::MatchOptions::new()
            };
            let paths = glob::glob_with(input, options).map_err(|e| Error::BadGlob {
                pattern: input.clone(),
                message: e.to_string(),
            })?;
            let mut matched = 0;
            for path in paths.flatten() {
                if path.is_file() && supported(&path) {
                    files.push(path);
                    matched += 1;
                } else if path.is_file() {
                    skipped.push(path);
                }
            }
            if matched == 0 && skipped.is_empty() {
                return Err(Error::InputNotFound { path: input.into() });
            }
            continue;
        }
        let path = PathBuf::from(input);
        let meta = std::fs::metadata(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::InputNotFound { path: path.clone() },
            // A symbolic link that loops, a directory that cannot be entered.
            _ => Error::io("read input file", &path, e),
        })?;
        if meta.is_dir() {
            walk(&path, &supported, &mut files, skipped)?;
        } else if !meta.is_file() {
            // A FIFO or a device could block the run forever, holding the lock.
            return Err(Error::NotAFile { path });
        } else if supported(&path) {
            files.push(path);
        } else {
            return Err(Error::UnsupportedInput { path });
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Every supported file under `dir`, recursively (partitioned layouts such as
/// `input/2026/11/*.csv` are common); hidden files are skipped, and so is
/// what is not a regular file (a FIFO would block the run), with a warning.
fn walk(
    dir: &Path,
    supported: &dyn Fn(&Path) -> bool,
    files: &mut Vec<PathBuf>,
    skipped: &mut Vec<PathBuf>,
) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, supported, files, skipped)?;
        } else if !path.is_file() {
            tracing::warn!("`{}` is not a regular file: skipped", path.display());
        } else if supported(&path) {
            files.push(path);
        } else {
            skipped.push(path);
        }
    }
    Ok(())
}
