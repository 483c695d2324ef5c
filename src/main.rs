//! Parse the command line, run one command, print the error chain once and
//! turn the outcome into the exit code of docs/contract.md ("Exit codes").

use std::process::ExitCode;

use clap::Parser;

use sluice::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = sluice::telemetry::init(cli.log_format);
    let status = match sluice::commands::run(&cli.command) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("error: {err}");
            eprintln!("hint: {}", err.hint());
            err.exit_status()
        }
    };
    telemetry.shutdown();
    ExitCode::from(status as u8)
}
