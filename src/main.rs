//! The `signet` binary: the command line in `cli/`, on top of the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
