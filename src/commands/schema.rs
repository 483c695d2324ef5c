//! `sluice schema`: the JSON Schema of `sluice.yaml` or of a checks file.

use crate::cli::{SchemaArgs, SchemaKind};
use crate::error::{ExitStatus, Result};

pub(super) fn run(args: &SchemaArgs) -> Result<ExitStatus> {
    let schema = match args.what {
        SchemaKind::Config => crate::config::schema(),
        SchemaKind::Checks => crate::checks::spec::schema(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&schema).expect("JSON values serialise")
    );
    Ok(ExitStatus::Success)
}
