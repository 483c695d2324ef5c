//! `sluice check`: re-audits what is published and prints the checks' table.

use crate::checks::report;
use crate::cli::CheckArgs;
use crate::config::Pipeline;
use crate::error::{ExitStatus, Result};
use crate::format::iso_seconds;
use crate::recheck::{self, Recheck};
use crate::settings::CheckSettings;

pub(super) fn run(args: &CheckArgs) -> Result<ExitStatus> {
    let pipeline = Pipeline::load(args.places.config.as_deref())?;
    let recheck = recheck::run(&CheckSettings::new(args, &pipeline), &pipeline)?;
    print!("{}", summary(&recheck));
    Ok(if recheck.gate.passed() {
        ExitStatus::Success
    } else {
        ExitStatus::GateFailed
    })
}

/// What a re-audit found, as printed.
fn summary(r: &Recheck) -> String {
    let mut s = format!(
        "sluice check: published run {} as of {}\n",
        r.run_id,
        iso_seconds(r.as_of)
    );
    for (mart, table, version) in &r.from_delta {
        s += &format!("marts.{mart} from Delta `{table}` version {version}\n");
    }
    if !r.skipped.is_empty() {
        s += &format!(
            "skipped {} checks whose tables are not available: {}\n",
            r.skipped.len(),
            r.skipped.join(", ")
        );
    }
    s += &report::table(&r.gate.audit);
    s += if r.gate.passed() {
        "gate: passed\n"
    } else {
        "gate: FAILED\n"
    };
    s
}
