//! `sluice init`: writes the default pipeline out to edit.

use crate::cli::InitArgs;
use crate::error::{ExitStatus, Result};

pub(super) fn run(args: &InitArgs) -> Result<ExitStatus> {
    for path in crate::config::init(&args.dir)? {
        println!("wrote {}", path.display());
    }
    println!("next: edit sluice.yaml, then `sluice validate` and `sluice run`");
    Ok(ExitStatus::Success)
}
