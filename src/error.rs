//! The one error type of sluice. Each variant names who is at fault (the user's
//! paths and flags, the input data, or the run-time environment) so that the
//! process exit code and the hint printed to the user are decided in one place.

use std::path::PathBuf;

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

    #[error("input `{}` is not a regular file", path.display())]
    NotAFile { path: PathBuf },

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

    #[error("`{file}` did not create table `{table}`")]
    ModelNotCreated { file: String, table: String },

    #[error("pipeline file `{}` does not exist", path.display())]
    ConfigNotFound { path: PathBuf },

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
            | Error::BadGlob { .. }
            | Error::DbIsDirectory { .. }
            | Error::BadDefects { .. }
            | Error::Checks { .. }
            | Error::Config { .. }
            | Error::ConfigNotFound { .. }
            | Error::ModelNotCreated { .. }
            | Error::BadSql { .. }
            | Error::InputForManySources { .. }
            | Error::WouldOverwrite { .. }
            | Error::ChecksDirNotFound { .. }
            | Error::NoChecks { .. }
            | Error::NothingPublished { .. }
            | Error::UnknownSelector { .. } => ExitStatus::Usage,
            Error::MissingColumn(_)
            | Error::DuplicateColumn { .. }
            | Error::NewColumns { .. }
            | Error::ReadInput { .. }
            | Error::Locked { .. }
            | Error::CorruptDb { .. }
            | Error::DbTooNew { .. }
            | Error::Io { .. }
            | Error::Engine { .. }
            | Error::Polars { .. }
            | Error::Sqlite { .. }
            | Error::WriteCsv { .. } => ExitStatus::Runtime,
        }
    }

    /// The fix, in one line, where sluice knows it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Error::InputNotFound { .. } => {
                "pass an existing file, directory or glob with --input (or SLUICE_INPUT); `sluice generate` writes sample data".into()
            }
            Error::UnsupportedInput { .. } => {
                "sluice reads `.csv`, `.csv.gz`, `.csv.zst`, `.ndjson`, `.jsonl` (also compressed) and `.parquet` files; set the source's `format` in sluice.yaml for other names".into()
            }
            Error::BadGlob { .. } => "quote the glob and check its brackets".into(),
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
            Error::Locked { .. } => {
                "wait for the other run to finish; sluice runs one at a time against a database".into()
            }
            Error::CorruptDb { .. } => {
                "point --db (SLUICE_DB) at a sluice database, or at a new path to start one".into()
            }
            Error::DbTooNew { .. } => "upgrade sluice, or point --db (SLUICE_DB) at another database".into(),
            Error::Io { .. } | Error::WriteCsv { .. } => {
                "check that the path is writable and the disk is not full".into()
            }
            Error::Checks { .. } => {
                "fix the keys named above; `sluice schema checks` prints the JSON Schema of a checks file".into()
            }
            Error::Config { .. } => {
                "fix the keys named above; `sluice schema` prints the JSON Schema of sluice.yaml, `sluice init` writes a complete example".into()
            }
            Error::ConfigNotFound { .. } => {
                "pass an existing file with --config (or SLUICE_CONFIG), or leave it out for sluice.yaml or the default pipeline".into()
            }
            Error::InputForManySources { .. } => {
                "set each source's `path` in sluice.yaml instead of --input (SLUICE_INPUT)".into()
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
            Error::Engine { .. } | Error::Polars { .. } | Error::Sqlite { .. } => return None,
        })
    }
}
