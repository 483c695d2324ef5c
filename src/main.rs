//! Parse the command line, run one command, print the error chain once and
//! turn the outcome into the exit code of docs/contract.md ("Exit codes").

use std::process::ExitCode;

use clap::Parser;

use sluice::cli::{Cli, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = sluice::telemetry::init(cli.log_format);
    let status = match sluice::commands::run(&cli.command) {
        Ok(status) => status,
        Err(err) => {
            let status = err.exit_status();
            match cli.log_format {
                // Every line on stderr is JSON in this mode.
                LogFormat::Json => tracing::error!(hint = %err.hint(), exit_code = status as u8, "{err}"),
                LogFormat::Text => eprintln!("error: {err}\nhint: {}", err.hint()),
            }
            status
        }
    };
    telemetry.shutdown();
    ExitCode::from(status as u8)
}
