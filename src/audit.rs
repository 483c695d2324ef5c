//! Audit: the seam between computing candidates and publishing them. The
//! checks run over every layer (`raw`, `staging`, mart candidates handed back
//! to DuckDB) and their results decide the gate. Nothing here changes data.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::checks::engine::{self, Audit, Context, History, Status};
pub(crate) use crate::checks::engine::{KeptRows, test_kept_rows};
use crate::checks::{self, Check, ConfigError, report};
use crate::config::Pipeline;
use crate::engine::DuckDb;
use crate::error::{Error, Result};
use crate::settings::CheckSelection;

/// The gate: the audit and how strict the run is about warnings.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gate {
    pub audit: Audit,
    pub fail_on_warn: bool,
}

impl Gate {
    /// No check failed or errored (and, with `--fail-on-warn`, none warned).
    pub(crate) fn passed(&self) -> bool {
        self.audit.outcomes.iter().all(|o| match o.status {
            Status::Pass => true,
            Status::Warn => !self.fail_on_warn,
            Status::Fail | Status::Error => false,
        })
    }
}

/// Reads the checks: `dir` when given (it must exist); else the directory
/// sluice.yaml names (it must exist); else `checks/` beside sluice.yaml (or,
/// for the built-in pipeline, in the working directory) when it exists; else,
/// for the built-in pipeline only, the checks built into the binary. Returns
/// them with the directory they were looked for in.
pub(crate) fn load_checks(dir: Option<&Path>, pipeline: &Pipeline) -> Result<(Vec<Check>, PathBuf)> {
    let required = dir
        .map(Path::to_path_buf)
        .or_else(|| pipeline.spec.checks.as_ref().and(pipeline.checks_dir()));
    let chosen = required
        .clone()
        .or_else(|| pipeline.checks_dir())
        .unwrap_or_else(|| PathBuf::from("checks"));
    let files = checks::files_in(&chosen).map_err(|e| Error::io("list directory", &chosen, e))?;
    let texts: Vec<(String, String)> = match (files, required) {
        (Some(files), _) => files
            .iter()
            .map(|f| {
                std::fs::read_to_string(f)
                    .map(|t| (f.display().to_string(), t))
                    .map_err(|e| Error::io("read", f, e))
            })
            .collect::<Result<_>>()?,
        (None, Some(dir)) => return Err(Error::ChecksDirNotFound { path: dir }),
        (None, None) if pipeline.is_built_in() => crate::config::built_in_checks(),
        (None, None) => Vec::new(),
    };
    let checks = checks::load(&texts).map_err(|errors: Vec<ConfigError>| Error::Checks { errors })?;
    Ok((checks, chosen))
}

/// Runs the checks (the mart candidates are in DuckDB as `marts.<name>`:
/// [`crate::marts::build`] handed them back); `kept` is what
/// [`engine::test_kept_rows`] found after staging.
pub(crate) fn audit(
    engine: &DuckDb,
    checks: &[Check],
    as_of: DateTime<Utc>,
    window_start: DateTime<Utc>,
    failed_rows_dir: &Path,
    history: &History,
    kept: &KeptRows,
) -> Result<Audit> {
    let ctx = Context {
        engine,
        as_of,
        window_start,
        failed_rows_dir,
        history,
        kept: Some(kept),
    };
    Ok(engine::run(&ctx, checks))
}

/// Writes the reports of an audit: `check_results.json`, `summary.md` and
/// `junit.xml` in `output_dir`; under GitHub Actions (`GITHUB_ACTIONS=true`)
/// also appends the summary to `$GITHUB_STEP_SUMMARY` and prints annotations.
pub(crate) fn write_reports(
    gate: &Gate,
    output_dir: &Path,
    run_id: &str,
    as_of: &str,
    published: bool,
) -> Result<()> {
    let passed = gate.passed();
    let summary = report::markdown(&gate.audit, as_of, passed, published);
    let files: [(&str, String); 3] = [
        (
            "check_results.json",
            report::json(&gate.audit, run_id, as_of, passed, published),
        ),
        ("summary.md", summary.clone()),
        ("junit.xml", report::junit(&gate.audit)),
    ];
    for (name, text) in files {
        let path = output_dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
    }
    if std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true") {
        print!("{}", report::annotations(&gate.audit));
        if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").map(PathBuf::from) {
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, summary.as_bytes()));
            appended.map_err(|e| Error::io("append to", &path, e))?;
        }
    }
    Ok(())
}

/// The checks a run uses: loaded, validated and narrowed by `--select`. No
/// checks at all (an empty or missing directory: Docker makes an empty one
/// for a missing host folder) is an error unless an ungated run was asked for.
pub(crate) fn selected_checks(selection: &CheckSelection, pipeline: &Pipeline) -> Result<Vec<Check>> {
    let (all, dir) = load_checks(selection.dir.as_deref(), pipeline)?;
    if all.is_empty() {
        if !selection.allow_ungated {
            return Err(Error::NoChecks { path: dir });
        }
        tracing::warn!(
            "no checks in `{}`: nothing gates publishing (--allow-ungated)",
            dir.display()
        );
    }
    checks::select(all, &selection.select).map_err(|selectors| Error::UnknownSelector { selectors })
}
