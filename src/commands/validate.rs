//! `sluice validate`: the pipeline and the checks, every error in every file
//! at once, without reading data: the files against their schemas and each
//! other, then the run's path over empty inputs ([`crate::pipeline::compile`]).

use std::collections::BTreeSet;

use crate::cli::ValidateArgs;
use crate::config::Pipeline;
use crate::error::{ExitStatus, Result};

pub(super) fn run(args: &ValidateArgs) -> Result<ExitStatus> {
    let pipeline = Pipeline::load(args.config.as_deref())?;
    let (checks, _) = crate::audit::load_checks(args.checks_dir.as_deref(), &pipeline)?;
    crate::pipeline::compile(&pipeline, &checks)?;
    let files: BTreeSet<&str> = checks.iter().map(|c| c.file.as_str()).collect();
    let spec = &pipeline.spec;
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    println!(
        "ok: pipeline `{}` in {}: {}, {}, {}; {} in {}",
        spec.pipeline,
        pipeline.file,
        count(spec.sources.len(), "source"),
        count(spec.staging.len(), "staging model"),
        count(spec.marts.len(), "mart"),
        count(checks.len(), "check"),
        count(files.len(), "file")
    );
    Ok(ExitStatus::Success)
}
