//! Audit: the seam between computing candidates and publishing them. The
//! checks run over every layer (`raw`, `staging`, mart candidates handed back
//! to DuckDB) and their results decide the gate. Nothing here changes data.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use duckdb::Connection;

use crate::checks::engine::{self, Audit, Context, Status};
use crate::checks::{self, Check, ConfigError};
use crate::error::{Error, Result};
use crate::handoff;
use crate::marts::Mart;

/// The gate: the audit and how strict the run is about warnings.
#[derive(Debug, Clone, Default)]
pub struct Gate {
    pub audit: Audit,
    pub fail_on_warn: bool,
}

impl Gate {
    /// No check failed or errored (and, with `--fail-on-warn`, none warned).
    pub fn passed(&self) -> bool {
        self.audit.outcomes.iter().all(|o| match o.status {
            Status::Pass => true,
            Status::Warn => !self.fail_on_warn,
            Status::Fail | Status::Error => false,
        })
    }
}

/// Reads the checks: `dir` when given (it must exist), else `checks/` when it
/// exists, else the default pipeline's checks built into the binary.
pub fn load_checks(dir: Option<&Path>) -> Result<Vec<Check>> {
    let chosen = dir.unwrap_or(Path::new("checks"));
    let files = checks::files_in(chosen).map_err(|e| Error::io("list directory", chosen, e))?;
    let texts: Vec<(String, String)> = match (files, dir) {
        (Some(files), _) => files
            .iter()
            .map(|f| {
                std::fs::read_to_string(f)
                    .map(|t| (f.display().to_string(), t))
                    .map_err(|e| Error::io("read", f, e))
            })
            .collect::<Result<_>>()?,
        (None, Some(dir)) => {
            return Err(Error::ChecksDirNotFound {
                path: dir.to_path_buf(),
            });
        }
        (None, None) => checks::DEFAULT_CHECKS
            .iter()
            .map(|(name, text)| (format!("<built-in>/{name}"), text.to_string()))
            .collect(),
    };
    checks::load(&texts).map_err(|errors: Vec<ConfigError>| Error::Checks { errors })
}

/// Hands the mart candidates to DuckDB and runs the checks.
pub fn audit(
    conn: &Connection,
    checks: &[Check],
    marts: &[Mart],
    as_of: DateTime<Utc>,
    window_start: DateTime<Utc>,
    failed_rows_dir: &Path,
) -> Result<Audit> {
    for mart in marts {
        handoff::register_frame(conn, "marts", mart.name, &mart.frame, mart.money)?;
    }
    let ctx = Context {
        conn,
        as_of,
        window_start,
        failed_rows_dir,
    };
    Ok(engine::run(&ctx, checks))
}

/// Where the reports of a run go.
pub fn report_paths(output_dir: &Path) -> [PathBuf; 2] {
    [
        output_dir.join("check_results.json"),
        output_dir.join("summary.md"),
    ]
}
