//! `signet policy check`: read a policy and say whether it can work.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use anyhow::Context as _;
use signet::policy::{DenialType, Policy, ksk_rollover_time, zsk_rollover_time};
use signet::time::format_duration;

/// `signet policy …`.
#[derive(Debug, Subcommand)]
pub(super) enum PolicyCommand {
    /// Check a policy file: exit 0 if it can work (warnings are printed),
    /// 2 with the field and the reason if not.
    Check {
        /// The policy (TOML).
        file: PathBuf,
    },
    /// Check a policy and store it in the database (replacing one of the
    /// same name: zones under it follow the new one, e.g. into an
    /// algorithm rollover).
    Import {
        /// The policy (TOML).
        file: PathBuf,
        /// Its name in the database (default: its `name`, or the file name).
        #[arg(long)]
        name: Option<String>,
    },
}

/// Runs a `signet policy` command.
pub(super) async fn run(command: PolicyCommand, ctx: &super::Context) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Import { file, name } => import(ctx, &file, name.as_deref()).await,
        PolicyCommand::Check { file } => {
            let (policy, warnings) = Policy::from_file(&file)?;
            super::print_policy_warnings(&file, &warnings);
            let k = &policy.keys;
            let denial = match (policy.denial.kind, policy.denial.opt_out) {
                (DenialType::Nsec, _) => "NSEC",
                (DenialType::Nsec3, false) => "NSEC3",
                (DenialType::Nsec3, true) => "NSEC3 opt-out",
            };
            let rollovers = if k.csk {
                format!(
                    "a CSK rollover takes {}",
                    format_duration(ksk_rollover_time(&policy).max(zsk_rollover_time(&policy)))
                )
            } else {
                format!(
                    "a ZSK rollover takes {}, a KSK rollover {}",
                    format_duration(zsk_rollover_time(&policy)),
                    format_duration(ksk_rollover_time(&policy))
                )
            };
            let keys = if k.csk { "CSK" } else { "KSK + ZSK" };
            outln!("{}: ok — {keys}, {}, {denial}; {rollovers} (RFC 7583)", file.display(), k.algorithm)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `signet policy import FILE [--name N]`: the text is read once, checked
/// and stored as read.
async fn import(ctx: &super::Context, file: &std::path::Path, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let source = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
    let (policy, warnings) = Policy::from_text(&source, file)?;
    super::print_policy_warnings(file, &warnings);
    let name = name.unwrap_or(&policy.name);
    let db = ctx.open_db().await?;
    db.import_policy(name, &source, ctx.now).await?;
    outln!("policy {name} imported from {}", file.display())?;
    Ok(ExitCode::SUCCESS)
}
