//! `signet init`, `signet policy import`, `signet zone add|list|status`:
//! the database and what it manages.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::table::{table, when};
use super::{Format, Managed};
use crate::policy::Policy;
use crate::store::{NewZone, Store};

/// `signet zone …`.
#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// Put a zone under signet's management.
    Add(AddArgs),
    /// The zones, their policies and when each is next due.
    List,
    /// One zone: its keys, recent runs and audit trail.
    Status {
        /// The zone (apex).
        name: String,
    },
}

/// Arguments of `signet zone add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The zone (apex).
    name: String,
    /// The policy (imported with `signet policy import`).
    #[arg(long)]
    policy: String,
    /// The unsigned zone file.
    #[arg(long)]
    input: PathBuf,
    /// Where the signed zone is published.
    #[arg(long)]
    output: PathBuf,
}

/// `signet init`: makes the database (mode 0600) and its schema.
pub async fn init(ctx: &Managed) -> anyhow::Result<ExitCode> {
    let store = Store::open(&ctx.db, true).await?;
    println!("database {} ready", store.path().display());
    Ok(ExitCode::SUCCESS)
}

/// `signet policy import FILE [--name N]`.
pub async fn import_policy(ctx: &Managed, file: &std::path::Path, name: Option<&str>) -> anyhow::Result<ExitCode> {
    let (policy, warnings) = Policy::from_file(file)?;
    super::print_policy_warnings(file, &warnings);
    let source = std::fs::read_to_string(file).with_context(|| file.display().to_string())?;
    let name = name.unwrap_or(&policy.name);
    let store = ctx.store().await?;
    store.import_policy(name, &source, ctx.now).await?;
    println!("policy {name} imported from {}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// Runs a `signet zone` command.
pub async fn run(command: ZoneCommand, ctx: &Managed) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match command {
        ZoneCommand::Add(args) => add(&store, ctx, args).await,
        ZoneCommand::List => list(&store, ctx).await,
        ZoneCommand::Status { name } => status(&store, ctx, &name).await,
    }
}

async fn add(store: &Store, ctx: &Managed, args: AddArgs) -> anyhow::Result<ExitCode> {
    let name = super::parse_origin(&args.name)?.to_string().to_ascii_lowercase();
    let policy_row = store.policy(&args.policy).await?;
    let (policy, _) = Policy::from_text(&policy_row.source, std::path::Path::new(&args.policy))?;
    let salt = super::sign::random_salt(policy.denial.salt_length)?;
    let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone()).display().to_string();
    let (input, output) = (absolute(&args.input), absolute(&args.output));
    let zone = NewZone { name: &name, policy: &args.policy, input: &input, output: &output, salt: &salt };
    store.add_zone(&zone, ctx.now).await?;
    println!("zone {name} added: policy {}, {input} → {output}; sign it with: signet sign {name}", args.policy);
    Ok(ExitCode::SUCCESS)
}

async fn list(store: &Store, ctx: &Managed) -> anyhow::Result<ExitCode> {
    let zones = store.zones().await?;
    if ctx.format == Format::Json {
        let rows: Vec<_> = zones
            .iter()
            .map(|z| serde_json::json!({"zone": z.name, "policy": z.policy_name, "serial": z.last_serial, "last_run": z.last_run_at, "next_run": z.next_run_at, "output": z.output_path}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![["ZONE", "POLICY", "SERIAL", "LAST SIGNED", "NEXT DUE", "OUTPUT"].map(String::from).to_vec()];
    for z in &zones {
        rows.push(vec![
            z.name.clone(),
            z.policy_name.clone(),
            z.last_serial.map_or("-".into(), |s| s.to_string()),
            z.last_run_at.map_or("never".into(), when),
            z.next_run_at.map_or("-".into(), when),
            z.output_path.clone(),
        ]);
    }
    print!("{}", table(&rows));
    Ok(ExitCode::SUCCESS)
}

async fn status(store: &Store, ctx: &Managed, name: &str) -> anyhow::Result<ExitCode> {
    let name = super::parse_origin(name)?.to_string().to_ascii_lowercase();
    let zone = store.zone(&name).await?;
    let runs = store.runs(zone.id, 5).await?;
    let audit = store.audit(zone.id, 20).await?;
    if ctx.format == Format::Json {
        let keys = super::key::key_report(store, ctx, &zone).await?;
        let out = serde_json::json!({"zone": zone.name, "policy": zone.policy_name, "serial": zone.last_serial,
            "last_run": zone.last_run_at, "next_run": zone.next_run_at, "keys": keys, "runs": runs, "audit": audit});
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "zone {}  policy {}  serial {}",
        zone.name,
        zone.policy_name,
        zone.last_serial.map_or("-".into(), |s| s.to_string())
    );
    println!("input {}  output {}", zone.input_path, zone.output_path);
    println!(
        "last signed {}  next due {}",
        zone.last_run_at.map_or("never".into(), when),
        zone.next_run_at.map_or("-".into(), when)
    );
    println!();
    super::key::print_keys(store, ctx, &zone).await?;
    println!("\nrecent runs:");
    let mut rows = vec![["AT", "RESULT", "SERIAL", "RRSIGS", "SECONDS", "MESSAGE"].map(String::from).to_vec()];
    for r in &runs {
        rows.push(vec![
            when(r.at),
            r.result.clone(),
            r.serial.map_or("-".into(), |s| s.to_string()),
            r.rrsigs.to_string(),
            format!("{:.2}", r.seconds),
            r.message.clone().unwrap_or_default(),
        ]);
    }
    print!("{}", table(&rows));
    println!("\naudit (newest last):");
    let mut rows = vec![["AT", "BY", "KEY", "EVENT"].map(String::from).to_vec()];
    for a in &audit {
        rows.push(vec![when(a.at), a.actor.clone(), a.key_id.map_or("-".into(), |k| k.to_string()), a.message.clone()]);
    }
    print!("{}", table(&rows));
    Ok(ExitCode::SUCCESS)
}
