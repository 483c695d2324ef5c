//! The one error type of sluice. Each variant names who is at fault (the user's
//! paths and flags, the input data, or the run-time environment) so that the
//! process exit code and the hint printed to the user are decided in one place.

use std::path::{Path, PathBuf};

/// The exit codes of docs/contract.md ("Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Published, gate passed (warnings allowed).
    Success = 0,
    /// The quality gate failed.
    GateFailed = 1,
    /// Usage or configuration error: the user must change a flag or a path.
    Usage = 2,
    /// Run-time error: unreadable input, I/O, locked database.
    Runtime = 3,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A required column a file lacks (boxed: it keeps [`Error`] small).
#[derive(Debug)]
pub struct MissingColumn {
    pub path: PathBuf,
    pub column: String,
    /// The file's columns, as found.
    pub found: String,
    pub source_name: String,
    pub required: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("input `{}` does not exist", path.display())]
    InputNotFound { path: PathBuf },

    #[error("input `{}` is not a supported file type", path.display())]
    UnsupportedInput { path: PathBuf },

    #[error("source `{source_name}` reads none of the files it was given: {skipped}")]
    NoReadableInput { source_name: String, skipped: String },

    #[error("input `{}` is not a regular file", path.display())]
    NotAFile { path: PathBuf },

    #[error("source `{source_name}` needs the environment variable{} {}, which {} not set",
        if variables.len() == 1 { "" } else { "s" }, variables.join(" and "),
        if variables.len() == 1 { "is" } else { "are" })]
    MissingSecret {
        source_name: String,
        variables: Vec<String>,
    },

    #[error("--var `{name}` is not a variable of the pipeline ({})",
        if declared.is_empty() { "it declares none in `vars`".to_string() } else { format!("its `vars`: {}", declared.join(", ")) })]
    UnknownVar { name: String, declared: Vec<String> },

    #[error("cannot fetch `{url}`: {message}")]
    HttpTransport { url: String, message: String },

    #[error("`{url}` answered HTTP {status}: {excerpt}")]
    HttpStatus {
        url: String,
        status: u16,
        excerpt: String,
    },

    #[error("`{url}` still failed after {attempts} attempts (last: {last})")]
    HttpRetries {
        url: String,
        attempts: u32,
        last: String,
    },

    #[error("`{url}`: {why} asks for a wait of {wait}, longer than `retry.max_wait` ({max_wait})")]
    HttpWait {
        url: String,
        wait: String,
        max_wait: String,
        why: String,
    },

    #[error("page `{url}`: {problem}")]
    HttpPage { url: String, problem: String },

    #[error("source `{source_name}` stopped at `{url}`: {what}")]
    HttpLimit {
        source_name: String,
        url: String,
        what: String,
    },

    #[error("input file `{}` has the column `{column}` more than once", path.display())]
    DuplicateColumn { path: PathBuf, column: String },

    #[error("invalid input glob `{pattern}`: {message}")]
    BadGlob { pattern: String, message: String },

    #[error("input file `{}` has no column `{}` (its header: {})", .0.path.display(), .0.column, .0.found)]
    MissingColumn(Box<MissingColumn>),

    #[error("cannot read input file `{}`: {source}", path.display())]
    ReadInput {
        path: PathBuf,
        /// What the file was read as (`CSV`, `NDJSON`, `Parquet`).
        format: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("input file `{}` has columns that source `{source_name}` does not declare: {}", path.display(), columns.join(", "))]
    NewColumns {
        path: PathBuf,
        source_name: String,
        columns: Vec<String>,
    },

    #[error("database path `{}` is a directory, not a file", path.display())]
    DbIsDirectory { path: PathBuf },

    #[error("database path `{}` is not a regular file", path.display())]
    DbNotAFile { path: PathBuf },

    #[error("database `{}` is locked by another sluice run", path.display())]
    Locked { path: PathBuf },

    #[error("`{}` is not a sluice database: {source}", path.display())]
    CorruptDb {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("database `{}` was written by a newer sluice (schema version {version})", path.display())]
    DbTooNew { path: PathBuf, version: i64 },

    #[error("cannot {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("DuckDB failed while {context}: {source}")]
    Engine {
        context: String,
        #[source]
        source: crate::engine::EngineError,
    },

    #[error("Polars failed while {context}: {source}")]
    Polars {
        context: String,
        #[source]
        source: polars::error::PolarsError,
    },

    #[error("SQLite failed on `{}` while {context}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },

    #[error("the publish of run {run_id} stopped after its commit: cannot {action} `{}`: {source}", path.display())]
    PublishInterrupted {
        run_id: String,
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("mart `{mart}`: a sum of `{column}` is beyond ±{limit}, the largest total sluice keeps exact")]
    SumOverflow {
        mart: String,
        column: String,
        /// The largest total, with the column's decimals.
        limit: String,
    },

    #[error("cannot write CSV `{}`: {source}", path.display())]
    WriteCsv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },

    #[error("{} problem{} in the checks:\n{}", errors.len(), if errors.len() == 1 { "" } else { "s" },
        errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Checks { errors: Vec<crate::yaml::ConfigError> },

    #[error("{} problem{} in the pipeline:\n{}", errors.len(), if errors.len() == 1 { "" } else { "s" },
        errors.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Config { errors: Vec<crate::yaml::ConfigError> },

    #[error("`{file}`: {message}")]
    BadSql { file: String, message: String },

    #[error("staging model `{model}` keeps its rows across runs, and its current version `{}` is gone", path.display())]
    KeptModelLost { model: String, path: PathBuf },

    #[error("`{file}` did not create table `{table}`")]
    ModelNotCreated { file: String, table: String },

    #[error("pipeline file `{}` does not exist", path.display())]
    ConfigNotFound { path: PathBuf },

    #[error("--skip-ingest replays the raw layer, and source `{source_name}` has none at `{}`", path.display())]
    NoRawLayer { source_name: String, path: PathBuf },

    #[error("the raw layer of source `{source_name}` at `{}` has other columns than the source declares now (it has: {found})", path.display())]
    RawLayerChanged {
        source_name: String,
        path: PathBuf,
        found: String,
    },

    #[error("--skip-ingest would append the same rows to staging model `{model}` again")]
    ReplayAppends { model: String },

    #[error("`{}` line {line}: `{column}` is not a {expected}: `{value}`", path.display())]
    DataType {
        path: PathBuf,
        line: i64,
        column: String,
        expected: String,
        value: String,
    },

    #[error("object storage failed on `{url}`: {message}")]
    ObjectStore {
        url: String,
        /// `not_found`, `denied` or `other`, for the hint.
        kind: &'static str,
        message: String,
    },

    #[error("Delta table `{table}`: {context}: {message}")]
    Delta {
        table: String,
        context: String,
        message: String,
    },

    #[error("mart `{mart}` no longer has the columns of Delta table `{table}`: {changes}")]
    DeltaSchema {
        mart: String,
        table: String,
        changes: String,
    },

    #[error("input file `{}` changed since a published run read it", path.display())]
    ChangedInput { path: PathBuf },

    #[error("--input names files, and source `{source_name}` reads an HTTP API")]
    InputForHttpSource { source_name: String },

    #[error("--input names the files of one source, and the pipeline has {count}: {}", names.join(", "))]
    InputForManySources { count: usize, names: Vec<String> },

    #[error("`{}` already exists", path.display())]
    WouldOverwrite { path: PathBuf },

    #[error("--select matches no check: {}", selectors.join(", "))]
    UnknownSelector { selectors: Vec<String> },

    #[error("nothing has been published to `{}` yet", path.display())]
    NothingPublished { path: PathBuf },

    #[error("checks directory `{}` does not exist", path.display())]
    ChecksDirNotFound { path: PathBuf },

    #[error("no checks in `{}`: nothing would gate publishing", path.display())]
    NoChecks { path: PathBuf },

    #[error("bad --defects value `{value}`")]
    BadDefects {
        value: String,
        /// The defects `generate` knows.
        kinds: &'static [&'static str],
    },
}

impl Error {
    /// Shorthand for an I/O error on a path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub fn engine(context: impl Into<String>) -> impl FnOnce(crate::engine::EngineError) -> Self {
        let context = context.into();
        move |source| Error::Engine { context, source }
    }

    pub fn polars(context: impl Into<String>) -> impl FnOnce(polars::error::PolarsError) -> Self {
        let context = context.into();
        move |source| Error::Polars { context, source }
    }

    /// Who is at fault decides the exit code.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::InputNotFound { .. }
            | Error::UnsupportedInput { .. }
            | Error::NotAFile { .. }
            | Error::NoReadableInput { .. }
            | Error::MissingSecret { .. }
            | Error::UnknownVar { .. }
            | Error::BadGlob { .. }
            | Error::DbIsDirectory { .. }
            | Error::DbNotAFile { .. }
            | Error::BadDefects { .. }
            | Error::Checks { .. }
            | Error::Config { .. }
            | Error::ConfigNotFound { .. }
            | Error::ModelNotCreated { .. }
            | Error::BadSql { .. }
            | Error::InputForManySources { .. }
            | Error::InputForHttpSource { .. }
            | Error::NoRawLayer { .. }
            | Error::ChangedInput { .. }
            | Error::RawLayerChanged { .. }
            | Error::ReplayAppends { .. }
            | Error::WouldOverwrite { .. }
            | Error::ChecksDirNotFound { .. }
            | Error::NoChecks { .. }
            | Error::NothingPublished { .. }
            | Error::DeltaSchema { .. }
            | Error::UnknownSelector { .. } => ExitStatus::Usage,
            Error::MissingColumn(_)
            | Error::DuplicateColumn { .. }
            | Error::NewColumns { .. }
            | Error::DataType { .. }
            | Error::ReadInput { .. }
            | Error::HttpTransport { .. }
            | Error::ObjectStore { .. }
            | Error::Delta { .. }
            | Error::HttpStatus { .. }
            | Error::HttpRetries { .. }
            | Error::HttpWait { .. }
            | Error::HttpPage { .. }
            | Error::HttpLimit { .. }
            | Error::Locked { .. }
            | Error::CorruptDb { .. }
            | Error::DbTooNew { .. }
            | Error::Io { .. }
            | Error::Engine { .. }
            | Error::Polars { .. }
            | Error::Sqlite { .. }
            | Error::PublishInterrupted { .. }
            | Error::SumOverflow { .. }
            | Error::KeptModelLost { .. }
            | Error::WriteCsv { .. } => ExitStatus::Runtime,
        }
    }

    /// The fix, in one line: every error has one.
    pub fn hint(&self) -> String {
        match self {
            Error::InputNotFound { .. } => {
                "pass an existing file, directory or glob with --input (or SLUICE_INPUT); `sluice generate` writes sample data".into()
            }
            Error::UnsupportedInput { .. } => {
                "sluice reads `.csv`, `.csv.gz`, `.csv.zst`, `.ndjson`, `.jsonl` (also compressed) and `.parquet` files; set the source's `format` in sluice.yaml for other names".into()
            }
            Error::BadGlob { .. } => "quote the glob and check its brackets".into(),
            Error::NoReadableInput { source_name, .. } => format!(
                "sluice tells a file's format by its name (`.csv`, `.ndjson`, `.jsonl`, `.parquet`, with `.gz` or `.zst`): set `format` on source `{source_name}` in sluice.yaml to read these (`.json.gz` hits are `format: ndjson`)"
            ),
            Error::MissingSecret { variables, .. } => format!(
                "export {} in the environment (in GitHub Actions: `env:` from `secrets`), or set `auth.optional: true` to fetch without credentials",
                variables.join(" and ")
            ),
            Error::UnknownVar { .. } => {
                "declare the variable under `vars:` in sluice.yaml (with its default) and use it as `{name}` in a source's `http`".into()
            }
            Error::HttpTransport { .. } => {
                "check the URL and the network (sluice reaches what this machine reaches); a timeout is the source's `timeout`".into()
            }
            Error::HttpStatus { status: 401 | 403, .. } => {
                "the API refused the credentials: check the token in the environment variable that the source's `auth` names, and its scopes".into()
            }
            Error::HttpStatus { status: 404, .. } => {
                "check the URL and its variables (`--var`); some APIs answer 404 for what a token may not see".into()
            }
            Error::HttpStatus { .. } => {
                "the API rejected the request: check the source's URL, `params` and `headers` against its documentation".into()
            }
            Error::HttpRetries { .. } => {
                "the API or the network kept failing: run again later (nothing was published), or raise the source's `retry.attempts`".into()
            }
            Error::HttpWait { .. } => {
                "run again once the wait is over (nothing was published), or raise the source's `retry.max_wait`; a token raises most rate limits".into()
            }
            Error::HttpPage { .. } => {
                "check the source's `records` and `paginate` against what the API returns; nothing was published".into()
            }
            Error::HttpLimit { .. } => {
                "raise the source's `max_pages` or `max_time`, or ask for less per run (parameters, an incremental cursor); nothing was published".into()
            }
            Error::NotAFile { .. } => {
                "sluice reads regular files (a FIFO or a device could block the run): write the data to a file first".into()
            }
            Error::DuplicateColumn { column, .. } => format!(
                "rename or remove one of the `{column}` columns in the file's header (which one is meant is ambiguous), or move the file out of the input"
            ),
            Error::MissingColumn(m) => format!(
                "source `{}` needs the columns {}; fix the file's header or move the file out of the input",
                m.source_name,
                m.required.join(", ")
            ),
            Error::ReadInput { format, .. } => format!(
                "check that the file is complete and really {format}; move it out of the input to run without it"
            ),
            Error::NewColumns { source_name, .. } => format!(
                "declare the columns in source `{source_name}` of sluice.yaml, or set its `new_columns` to `warn` or `ignore`"
            ),
            Error::DbIsDirectory { path } => format!(
                "Docker creates a directory when the host file is missing: remove it and run `touch {}` on the host before `docker run`, or mount a directory and set SLUICE_DB",
                path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
            ),
            Error::DbNotAFile { .. } => {
                "point --db (SLUICE_DB) at a regular file, or at a new path for sluice to create: SQLite cannot keep a database in a FIFO or a device".into()
            }
            Error::Locked { .. } => {
                "wait for the other run to finish; sluice runs one at a time against a database".into()
            }
            Error::CorruptDb { .. } => {
                "point --db (SLUICE_DB) at a sluice database, or at a new path to start one".into()
            }
            Error::DbTooNew { .. } => "upgrade sluice, or point --db (SLUICE_DB) at another database".into(),
            Error::Io { action, path, source } => io_hint(action, path, source),
            Error::WriteCsv { path, source } => match source.kind() {
                csv::ErrorKind::Io(e) => io_hint("write", path, e),
                _ => "check that the path is writable and the disk is not full".into(),
            },
            Error::PublishInterrupted { path, .. } => format!(
                "the database holds the new run and its exports wait (files beside their targets, Delta commits in the run's record); make `{}` writable or reachable (and the disk not full), then run again: the next run finishes them first",
                path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")).display()
            ),
            Error::SumOverflow { mart, .. } => format!(
                "a money total is a DECIMAL(18, s) like the amounts (an integer sum at most 2^63-1): look for amounts far out of range in the input, or group `{mart}` more finely so that no group's total is this large"
            ),
            Error::Checks { .. } => {
                "fix the keys named above; `sluice schema checks` prints the JSON Schema of a checks file".into()
            }
            Error::Config { .. } => {
                "fix the keys named above; `sluice schema` prints the JSON Schema of sluice.yaml, `sluice init` writes a complete example".into()
            }
            Error::ConfigNotFound { .. } => {
                "pass an existing file with --config (or SLUICE_CONFIG), or leave it out for sluice.yaml or the default pipeline".into()
            }
            Error::DataType { .. } => {
                "the source's `schema_contract.data_type` is `freeze`: fix the value at the source, or set it to `discard_row` (quarantine such rows) or `discard_value` (land them without it)".into()
            }
            Error::ObjectStore { kind: "not_found", .. } => {
                "check the bucket and the prefix (`s3://bucket/prefix/`), and the region (AWS_REGION) the bucket is in".into()
            }
            Error::ObjectStore { kind: "denied", .. } => {
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and that they may list and read the bucket".into()
            }
            Error::ObjectStore { .. } => {
                "check AWS_ENDPOINT_URL (for MinIO or another S3-compatible store) and the network; nothing was published".into()
            }
            Error::Delta { table, .. } if table.starts_with("s3://") => {
                "check AWS_ENDPOINT_URL, the bucket and the credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), and that they may write to it; nothing new is visible in the table".into()
            }
            Error::Delta { .. } => {
                "check that the table's directory is writable and the disk is not full; nothing new is visible in the table".into()
            }
            Error::DeltaSchema { table, .. } => format!(
                "to publish the new columns as the next version of `{table}`, set `schema: evolve` on its export (`delta: {{path: ..., schema: evolve}}`); or publish to a new table, or bring the mart back to the table's columns"
            ),
            Error::ChangedInput { .. } => {
                "a landing directory read with `incremental: files` only grows: write new data to a new file, set `incremental: {files: {changed: read}}` to read changed files again, or run with --full-refresh".into()
            }
            Error::NoRawLayer { .. } => {
                "run once without --skip-ingest (or point --data-dir at the lake of an earlier run)".into()
            }
            Error::RawLayerChanged { .. } => {
                "the source's columns changed since that run landed its rows: run without --skip-ingest to read the source again".into()
            }
            Error::ReplayAppends { .. } => {
                "an `append` model keeps every run's rows: run without --skip-ingest (a `merge` model can replay)".into()
            }
            Error::InputForHttpSource { .. } => {
                "leave out --input (SLUICE_INPUT): the source's `http` says where its records come from".into()
            }
            Error::InputForManySources { .. } => {
                "set each source's `path` in sluice.yaml instead of --input (SLUICE_INPUT)".into()
            }
            Error::KeptModelLost { .. } => {
                "the lake lost the model's earlier rows (a new --data-dir?): point --data-dir at the lake of the earlier runs, or run once with --full-refresh to read every source from its start".into()
            }
            Error::BadSql { .. } => "fix the staging SQL; DuckDB's message above names the line and the object".into(),
            Error::ModelNotCreated { table, .. } => format!(
                "a staging script must create its table, e.g. `CREATE OR REPLACE TABLE {table} AS SELECT ... FROM raw.<source>`"
            ),
            Error::WouldOverwrite { .. } => "sluice init never overwrites: move the file away or pick another directory".into(),
            Error::UnknownSelector { .. } => {
                "--select takes a check name, a table (`staging.events`) or `tag:<tag>`; `sluice validate` lists the checks".into()
            }
            Error::NothingPublished { .. } => {
                "run `sluice run` first, or point --db (SLUICE_DB) at a published database".into()
            }
            Error::ChecksDirNotFound { .. } => {
                "pass an existing directory with --checks-dir (or SLUICE_CHECKS_DIR), or leave it out for the built-in checks".into()
            }
            Error::NoChecks { path } => format!(
                "add checks to `{}` (`sluice init` writes the default ones), name another directory with --checks-dir, or pass --allow-ungated (SLUICE_ALLOW_UNGATED=true) to publish without a gate",
                path.display()
            ),
            Error::BadDefects { kinds, .. } => format!(
                "use kind=rate pairs such as `null_user=0.01,dup_event=0.005`; kinds: all, {}",
                kinds.join(", ")
            ),
            Error::Sqlite { path, source, .. } => sqlite_hint(path, source),
            Error::Engine { source, .. } => engine_hint(source),
            Error::Polars { .. } => {
                "Polars' message above names the cause; if the mart's definition and its input look right, report it with both".into()
            }
        }
    }
}

/// Whether an [`Error::Io`] action reads (the rest write).
fn reads(action: &str) -> bool {
    matches!(
        action,
        "open input file" | "read input file" | "read" | "list directory"
    )
}

/// The directory a path is in, for "the disk holding ..." hints.
fn dir_of(path: &Path) -> String {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .display()
        .to_string()
}

/// Linux's "too many levels of symbolic links".
const ELOOP: i32 = 40;

/// The fix for an I/O error on `path`, by what the system said.
fn io_hint(action: &str, path: &Path, source: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let path_text = path.display();
    match source.kind() {
        K::StorageFull | K::QuotaExceeded => format!(
            "the disk holding `{}` is full: free space there (or point sluice at another directory) and run again; what was published stays as it was",
            dir_of(path)
        ),
        K::ReadOnlyFilesystem => {
            format!("`{path_text}` is on a read-only file system (a Docker `:ro` mount?): mount it writable")
        }
        K::PermissionDenied if reads(action) => {
            format!("make `{path_text}` readable for the user sluice runs as, or move it out of the input")
        }
        K::PermissionDenied => format!(
            "make `{path_text}` writable for the user sluice runs as (in Docker, `--user $(id -u):$(id -g)` runs as the owner of a mounted directory)"
        ),
        // ELOOP (`ErrorKind::FilesystemLoop` is not stable yet).
        _ if source.raw_os_error() == Some(ELOOP) => {
            format!("`{path_text}` is a symbolic link that loops: point it at a real file or remove it")
        }
        K::NotFound if reads(action) => {
            format!("`{path_text}` went away while sluice read it: run again once it is in place")
        }
        K::IsADirectory | K::NotADirectory => {
            format!(
                "a directory stands where sluice expects a file, or the other way round, in `{path_text}`: move it away"
            )
        }
        _ if reads(action) => format!("check that `{path_text}` is readable and complete"),
        _ => format!(
            "check that `{}` is writable and its disk is not full",
            dir_of(path)
        ),
    }
}

/// The fix for a SQLite error on the database `path`, by its code.
fn sqlite_hint(path: &Path, source: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    let dir = dir_of(path);
    let db = path.display();
    match source.sqlite_error_code() {
        Some(C::DiskFull) => format!(
            "the disk holding `{db}` is full: free space in `{dir}` and run again; the database keeps the last publish"
        ),
        Some(C::ReadOnly | C::CannotOpen | C::PermissionDenied) => format!(
            "make `{db}` and its directory `{dir}` writable for the user sluice runs as: SQLite writes a journal beside the database (a Docker `:ro` mount cannot hold it)"
        ),
        Some(C::SystemIoFailure) => format!(
            "check that `{db}` is a regular file on a working local disk (not a FIFO or a device), and that the disk is not full"
        ),
        Some(C::DatabaseCorrupt | C::NotADatabase) => {
            "point --db (SLUICE_DB) at a sluice database, or at a new path to start one".into()
        }
        Some(C::DatabaseBusy | C::DatabaseLocked) => {
            format!("another program holds `{db}` open for writing: close it and run again")
        }
        _ => format!("SQLite's message above names the cause; `{db}` keeps the last publish"),
    }
}

/// The fix for an engine (DuckDB) error, by its class and message.
fn engine_hint(e: &crate::engine::EngineError) -> String {
    use crate::engine::ErrorClass as C;
    let says = |texts: &[&str]| texts.iter().any(|t| e.message.contains(t));
    match e.class {
        _ if says(&["No space left on device", "disk is full", "Disk full", "not enough space"]) => {
            "a disk is full: free space where the file named above is (DuckDB also spills to `.duckdb_tmp` in --data-dir) and run again; what was published stays as it was".into()
        }
        _ if says(&["Read-only file system"]) => {
            "the file named above is on a read-only file system (a Docker `:ro` mount?): mount --data-dir and --output-dir writable".into()
        }
        _ if says(&["Permission denied"]) => {
            "make the directory of the file named above writable for the user sluice runs as (in Docker, `--user $(id -u):$(id -g)`)".into()
        }
        C::Resources => {
            "raise --memory-limit (SLUICE_MEMORY_LIMIT), give the container more memory, or leave room on --data-dir for DuckDB to spill".into()
        }
        C::Io => "check that --data-dir and --output-dir are writable and their disks are not full; DuckDB's message above names the file".into(),
        C::Syntax | C::Binding => "fix the SQL named above; DuckDB's message names the line and the object".into(),
        C::Data => "a value in the data does not fit; DuckDB's message above names it".into(),
        C::Other => "DuckDB's message above names the cause; if it is not about your data or SQL, report it".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Error as IoError, ErrorKind as K};

    use super::*;

    fn io(action: &'static str, kind: K) -> String {
        Error::io(action, "out/top_users.csv", IoError::from(kind)).hint()
    }

    #[test]
    fn an_io_hint_fits_the_cause_and_the_direction() {
        assert!(io("write", K::StorageFull).starts_with("the disk holding `out` is full"));
        assert!(io("write", K::QuotaExceeded).starts_with("the disk holding `out` is full"));
        assert!(io("replace", K::ReadOnlyFilesystem).contains("read-only file system"));
        assert!(io("write", K::PermissionDenied).starts_with("make `out/top_users.csv` writable"));
        assert!(io("open input file", K::PermissionDenied).starts_with("make `out/top_users.csv` readable"));
        let looping = Error::io("read input file", "in.csv", IoError::from_raw_os_error(ELOOP)).hint();
        assert!(looping.contains("symbolic link that loops"), "{looping}");
        assert!(io("read input file", K::NotFound).contains("went away"));
        assert!(io("create directory", K::NotADirectory).contains("a directory stands where"));
        assert!(io("read", K::InvalidData).starts_with("check that `out/top_users.csv` is readable"));
        assert!(io("write", K::InvalidData).starts_with("check that `out` is writable"));
    }

    #[test]
    fn a_sqlite_hint_fits_its_code() {
        let hint = |code: i32| {
            Error::Sqlite {
                path: "state/agg_result.db".into(),
                context: "committing the publish",
                source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None),
            }
            .hint()
        };
        assert!(
            hint(rusqlite::ffi::SQLITE_FULL).starts_with("the disk holding `state/agg_result.db` is full")
        );
        for code in [
            rusqlite::ffi::SQLITE_READONLY,
            rusqlite::ffi::SQLITE_CANTOPEN,
            rusqlite::ffi::SQLITE_PERM,
        ] {
            assert!(hint(code).contains("its directory `state` writable"), "{code}");
        }
        assert!(hint(rusqlite::ffi::SQLITE_IOERR).contains("not a FIFO"));
        assert!(hint(rusqlite::ffi::SQLITE_NOTADB).contains("point --db"));
        assert!(hint(rusqlite::ffi::SQLITE_BUSY).contains("another program"));
        assert!(hint(rusqlite::ffi::SQLITE_MISMATCH).contains("SQLite's message above"));
    }

    #[test]
    fn an_engine_hint_fits_its_class() {
        let hint = |message: &str| Error::engine("landing")(crate::engine::EngineError::new(message)).hint();
        assert!(
            hint("IO Error: Could not write file \"x\": No space left on device")
                .starts_with("a disk is full")
        );
        assert!(hint("Out of Memory Error: failed to allocate").starts_with("raise --memory-limit"));
        assert!(hint("IO Error: Cannot open file \"x\": Permission denied").contains("writable"));
        assert!(hint("IO Error: Cannot open file \"x\": Read-only file system").contains("read-only"));
        assert!(hint("IO Error: Cannot open file \"x\": Input/output error").contains("writable"));
        assert!(hint("Conversion Error: bad value").contains("does not fit"));
    }
}
