//! `sluice generate`: deterministic synthetic events, with planted defects.

use chrono::Utc;

use crate::cli::GenerateArgs;
use crate::error::{ExitStatus, Result};
use crate::generate::{self, Planted};

pub(super) fn run(args: &GenerateArgs) -> Result<ExitStatus> {
    print!("{}", generate_file(args)?.summary());
    Ok(ExitStatus::Success)
}

/// Writes the file `args` describe; what was planted, for the summary.
pub(super) fn generate_file(args: &GenerateArgs) -> Result<Planted> {
    generate::generate(
        &args.out,
        &generate::Options {
            rows: args.rows,
            seed: args.seed,
            end: args.end.unwrap_or_else(Utc::now),
            days: args.days,
            defects: generate::parse_defects(&args.defects)?,
        },
    )
}
