//! The `signet` binary: everything happens in [`signet::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    signet::cli::main()
}
