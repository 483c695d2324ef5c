//! The commands: one module each, holding its printing; `main` parses the
//! command line and hands the command here.

mod check;
mod generate;
mod init;
mod run;
mod schema;
mod validate;

use crate::cli::Command;
use crate::error::{ExitStatus, Result};

/// Runs one command; its outcome is the process's exit status.
pub fn run(command: &Command) -> Result<ExitStatus> {
    match command {
        Command::Run(args) => run::run(args),
        Command::Demo(args) => run::demo(args),
        Command::Check(args) => check::run(args),
        Command::Validate(args) => validate::run(args),
        Command::Init(args) => init::run(args),
        Command::Schema(args) => schema::run(args),
        Command::Generate(args) => generate::run(args),
    }
}
