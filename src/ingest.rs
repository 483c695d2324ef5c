//! Ingest (bronze): find the input files and land every row as text, exactly as
//! it arrived, in DuckDB's `raw.events` table and `data/raw/events/`.
//!
//! CSV is parsed here, in Rust, rather than by DuckDB's reader: a ragged row or
//! bytes that are not UTF-8 must become a quarantined row with a reason, while
//! DuckDB's sniffer would either abort the whole file or drop the row silently.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use duckdb::Connection;
use duckdb::arrow::array::{ArrayRef, Int64Builder, StringBuilder};
use duckdb::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use duckdb::arrow::record_batch::RecordBatch;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Columns the default pipeline needs, in the order they are landed.
pub const REQUIRED_COLUMNS: [&str; 6] = ["event_id", "user_id", "event_time", "region", "sku", "amount"];

/// The name of the default pipeline's only source.
pub const SOURCE: &str = "events";

const BATCH_ROWS: usize = 64 * 1024;

/// One input file and what was read from it (recorded as provenance).
#[derive(Debug, Clone)]
pub struct InputFile {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub rows: u64,
}

#[derive(Debug, Default)]
pub struct Ingested {
    pub files: Vec<InputFile>,
    pub rows: u64,
    /// Human warnings (extra columns ignored, files skipped), already logged.
    pub warnings: Vec<String>,
}

/// Expands each `--input` value (file, directory or glob) into a sorted,
/// de-duplicated list of CSV files.
pub fn resolve_inputs(inputs: &[String]) -> Result<Vec<PathBuf>> {
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
                if path.is_file() && is_supported(&path) {
                    files.push(path);
                    matched += 1;
                }
            }
            if matched == 0 {
                return Err(Error::InputNotFound { path: input.into() });
            }
            continue;
        }
        let path = PathBuf::from(input);
        let meta = std::fs::metadata(&path).map_err(|_| Error::InputNotFound { path: path.clone() })?;
        if meta.is_dir() {
            walk(&path, &mut files)?;
        } else if is_supported(&path) {
            files.push(path);
        } else {
            return Err(Error::UnsupportedInput { path });
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn is_supported(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Every supported file under `dir`, recursively (partitioned layouts such as
/// `input/2026/11/*.csv` are common); hidden files are skipped.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("list directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, files)?;
        } else if is_supported(&path) {
            files.push(path);
        }
    }
    Ok(())
}

/// The Arrow schema of `raw.events`: the required columns as text, then where
/// each row came from and, for a malformed row, what is wrong with it.
fn raw_schema() -> SchemaRef {
    let mut fields: Vec<Field> = REQUIRED_COLUMNS
        .iter()
        .map(|c| Field::new(*c, DataType::Utf8, true))
        .collect();
    fields.push(Field::new("_source_file", DataType::Utf8, false));
    fields.push(Field::new("_line", DataType::Int64, false));
    fields.push(Field::new("_malformed", DataType::Utf8, true));
    Arc::new(Schema::new(fields))
}

/// Lands every input file in `raw.events` and writes `data/raw/events/events.parquet`.
pub fn land(
    conn: &Connection,
    files: &[PathBuf],
    raw_dir: &Path,
    ingested_at: &str,
    progress: &indicatif::ProgressBar,
) -> Result<Ingested> {
    let mut columns = REQUIRED_COLUMNS.map(|c| format!("{c} VARCHAR")).join(", ");
    columns.push_str(", _source_file VARCHAR NOT NULL, _line BIGINT NOT NULL, _malformed VARCHAR");
    conn.execute_batch(&format!(
        "CREATE SCHEMA IF NOT EXISTS raw; CREATE OR REPLACE TABLE raw.{SOURCE} ({columns});"
    ))
    .map_err(Error::duckdb(format!("creating raw.{SOURCE}")))?;

    let mut out = Ingested::default();
    {
        let mut appender = conn
            .appender_to_db(SOURCE, "raw")
            .map_err(Error::duckdb("opening the raw appender"))?;
        for path in files {
            let (bytes_before, rows_before) = (progress.position(), out.rows);
            let file = read_csv(
                path,
                &mut |batch, bytes, rows| {
                    progress.set_position(bytes_before + bytes);
                    progress.set_message(format!("{} rows", rows_before + rows));
                    appender
                        .append_record_batch(batch)
                        .map_err(Error::duckdb(format!("landing rows of `{}`", path.display())))
                },
                &mut out.warnings,
            )?;
            out.rows += file.rows;
            out.files.push(file);
        }
        appender.flush().map_err(Error::duckdb("flushing raw rows"))?;
    }

    let dir = raw_dir.join(SOURCE);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create directory", &dir, e))?;
    let target = dir.join(format!("{SOURCE}.parquet"));
    crate::stage::copy_atomically(
        conn,
        &format!("SELECT *, TIMESTAMP '{ingested_at}' AS _ingested_at FROM raw.{SOURCE}"),
        &target,
        "FORMAT parquet",
    )?;
    Ok(out)
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hashes what passes through it, so each file is read once.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Reads one CSV file into Arrow batches of text and hands each to `sink`.
fn read_csv(
    path: &Path,
    sink: &mut dyn FnMut(RecordBatch, u64, u64) -> Result<()>,
    warnings: &mut Vec<String>,
) -> Result<InputFile> {
    let file = File::open(path).map_err(|e| Error::io("open input file", path, e))?;
    let hashing = HashingReader {
        inner: io::BufReader::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        bytes: 0,
    };
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(hashing);
    let read_err = |source| Error::ReadInput {
        path: path.to_path_buf(),
        source,
    };

    let header: Vec<String> = reader
        .byte_headers()
        .map_err(read_err)?
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim()
                .trim_start_matches('\u{feff}')
                .to_string()
        })
        .collect();
    let mut index = [0usize; REQUIRED_COLUMNS.len()];
    for (slot, column) in index.iter_mut().zip(REQUIRED_COLUMNS) {
        *slot = header
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| Error::MissingColumn {
                path: path.to_path_buf(),
                column: column.to_string(),
                found: if header.iter().all(String::is_empty) {
                    "empty".to_string()
                } else {
                    header.join(", ")
                },
            })?;
    }
    let extra: Vec<&str> = header
        .iter()
        .filter(|h| !REQUIRED_COLUMNS.contains(&h.as_str()))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        let warning = format!(
            "`{}`: extra columns ignored: {}",
            path.display(),
            extra.join(", ")
        );
        tracing::warn!("{warning}");
        warnings.push(warning);
    }

    let source_file = path.display().to_string();
    let mut batch = BatchBuilder::new();
    let mut record = csv::ByteRecord::new();
    let mut rows = 0u64;
    while reader.read_byte_record(&mut record).map_err(read_err)? {
        rows += 1;
        let line = record.position().map_or(0, |p| p.line()) as i64;
        let malformed = if record.len() != header.len() {
            Some(format!(
                "expected {} fields, found {}",
                header.len(),
                record.len()
            ))
        } else if record.iter().any(|f| std::str::from_utf8(f).is_err()) {
            Some("not valid UTF-8 (invalid bytes replaced)".to_string())
        } else {
            None
        };
        for (builder, &i) in batch.columns.iter_mut().zip(&index) {
            match record.get(i) {
                Some(field) => builder.append_value(String::from_utf8_lossy(field)),
                None => builder.append_null(),
            }
        }
        batch.source_file.append_value(&source_file);
        batch.line.append_value(line);
        batch.malformed.append_option(malformed);
        batch.len += 1;
        if batch.len == BATCH_ROWS {
            sink(batch.finish(), reader.get_ref().bytes, rows)?;
        }
    }
    if batch.len > 0 {
        sink(batch.finish(), reader.get_ref().bytes, rows)?;
    }
    let hashing = reader.into_inner();
    Ok(InputFile {
        path: path.to_path_buf(),
        size: hashing.bytes,
        sha256: hex(&hashing.hasher.finalize()),
        rows,
    })
}

struct BatchBuilder {
    columns: Vec<StringBuilder>,
    source_file: StringBuilder,
    line: Int64Builder,
    malformed: StringBuilder,
    len: usize,
}

impl BatchBuilder {
    fn new() -> Self {
        BatchBuilder {
            columns: REQUIRED_COLUMNS.iter().map(|_| StringBuilder::new()).collect(),
            source_file: StringBuilder::new(),
            line: Int64Builder::new(),
            malformed: StringBuilder::new(),
            len: 0,
        }
    }

    fn finish(&mut self) -> RecordBatch {
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|b| Arc::new(b.finish()) as ArrayRef)
            .collect();
        arrays.push(Arc::new(self.source_file.finish()));
        arrays.push(Arc::new(self.line.finish()));
        arrays.push(Arc::new(self.malformed.finish()));
        self.len = 0;
        RecordBatch::try_new(raw_schema(), arrays).expect("arrays match raw_schema by construction")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_resolve_from_files_dirs_and_globs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("2026/11")).unwrap();
        for f in ["a.csv", "b.CSV", "notes.txt", ".hidden.csv", "2026/11/c.csv"] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        let s = |p: &Path| p.display().to_string();
        let all = resolve_inputs(&[s(root)]).unwrap();
        assert_eq!(
            all,
            vec![root.join("2026/11/c.csv"), root.join("a.csv"), root.join("b.CSV")]
        );
        let globbed = resolve_inputs(&[format!("{}/*.csv", s(root)), s(&root.join("a.csv"))]).unwrap();
        assert_eq!(globbed, vec![root.join("a.csv")]);
        assert!(matches!(
            resolve_inputs(&[s(&root.join("nope"))]),
            Err(Error::InputNotFound { .. })
        ));
        assert!(matches!(
            resolve_inputs(&[s(&root.join("notes.txt"))]),
            Err(Error::UnsupportedInput { .. })
        ));
        assert!(matches!(
            resolve_inputs(&[format!("{}/*.parquet", s(root))]),
            Err(Error::InputNotFound { .. })
        ));
    }
}
