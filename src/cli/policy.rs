//! `signet policy check`: read a policy and say whether it can work.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::policy::{Policy, ksk_rollover_time, zsk_rollover_time};
use crate::time::format_duration;

/// `signet policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file: exit 0 if it can work (warnings are printed),
    /// 2 with the field and the reason if not.
    Check {
        /// The policy (TOML).
        file: PathBuf,
    },
}

/// Runs a `signet policy` command.
pub fn run(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Check { file } => {
            let (policy, warnings) = Policy::from_file(&file)?;
            super::print_policy_warnings(&file, &warnings);
            let k = &policy.keys;
            let roles = if k.csk { "CSK".to_owned() } else { "KSK + ZSK".to_owned() };
            println!(
                "{}: ok — {roles}, {}, {:?}{}; a ZSK rollover takes {}, a KSK rollover {} (RFC 7583)",
                file.display(),
                k.algorithm,
                policy.denial.kind,
                if policy.denial.opt_out { " opt-out" } else { "" },
                format_duration(zsk_rollover_time(&policy)),
                format_duration(ksk_rollover_time(&policy)),
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
