//! `signet tsig add|list|remove`: the TSIG keys transfers and NOTIFY are
//! signed with. The database names each key's secret file; the secret
//! never leaves it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use signet::manage::transfers::{key_name, register_tsig_key};

use super::output::table;
use super::{Context, Format};

/// `signet tsig …`.
#[derive(Debug, Subcommand)]
pub(super) enum TsigCommand {
    /// Register a key: its name and the file that holds its secret
    /// (`tsig-keygen -a hmac-sha256 NAME` output, Knot's `keymgr -t`
    /// output, or one line of base64), readable by its owner only.
    Add {
        /// The key's name, as the peers know it.
        name: String,
        /// The file holding the secret.
        #[arg(long)]
        secret_file: PathBuf,
    },
    /// The keys registered and their files.
    List,
    /// Remove a key no zone uses.
    Remove {
        /// The key's name.
        name: String,
    },
}

/// Runs a `signet tsig` command.
pub(super) async fn run(command: TsigCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let db = ctx.open_db().await?;
    match command {
        TsigCommand::Add { name, secret_file } => {
            let (name, path) = register_tsig_key(&db, &name, &secret_file, ctx.now).await?;
            outln!("TSIG key {name} (hmac-sha256) added; its secret stays in {}", path.display())?;
        }
        TsigCommand::List => {
            let keys = db.tsig_keys().await?;
            if ctx.format == Format::Json {
                let rows: Vec<_> = keys
                    .iter()
                    .map(
                        |k| serde_json::json!({"name": k.name, "algorithm": k.algorithm, "secret_file": k.secret_path}),
                    )
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&rows)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = vec![["NAME", "ALGORITHM", "SECRET FILE"].map(String::from).to_vec()];
            rows.extend(keys.into_iter().map(|k| vec![k.name, k.algorithm, k.secret_path]));
            out!("{}", table(&rows))?;
        }
        TsigCommand::Remove { name } => {
            let name = key_name(&name)?;
            db.remove_tsig_key(&name, ctx.now).await?;
            outln!("TSIG key {name} removed")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
