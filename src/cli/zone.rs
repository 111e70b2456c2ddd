//! `signet init`, `signet policy import`, `signet zone add|list|status`:
//! the database and what it manages.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use signet::db::{Database, Event};
use signet::manage::key_report;
use signet::manage::requests::{ZonePaths, add_zone};

use super::output::{print_keys, table, when_or};
use super::{Context, Format};

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
    /// Take a zone out of management (its history stays; its keys stay in
    /// their stores; its last output stays where it is).
    Remove {
        /// The zone (apex).
        name: String,
    },
    /// Ask `signet serve` to read the zone's input again now.
    Reload {
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
pub async fn init(ctx: &Context) -> anyhow::Result<ExitCode> {
    let db = Database::open(&ctx.db, true).await?;
    outln!("database {} ready", db.path().display())?;
    Ok(ExitCode::SUCCESS)
}

/// Runs a `signet zone` command.
pub async fn run(command: ZoneCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let db = ctx.open_db().await?;
    match command {
        ZoneCommand::Add(args) => add(&db, ctx, args).await,
        ZoneCommand::List => list(&db, ctx).await,
        ZoneCommand::Status { name } => status(&db, ctx, &name).await,
        ZoneCommand::Reload { name } => reload(&db, ctx, &name).await,
        ZoneCommand::Remove { name } => remove(&db, ctx, &name).await,
    }
}

async fn add(db: &Database, ctx: &Context, args: AddArgs) -> anyhow::Result<ExitCode> {
    let name = super::parse_origin(&args.name)?;
    let paths = ZonePaths { input: &args.input, output: &args.output };
    let (input, output) = add_zone(db, &name, &args.policy, &paths, ctx.now).await?;
    outln!(
        "zone {name} added: policy {}, {} → {}; sign it with: signet sign {name}",
        args.policy,
        input.display(),
        output.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn remove(db: &Database, ctx: &Context, name: &str) -> anyhow::Result<ExitCode> {
    let name = super::parse_origin(name)?;
    let uris = db.remove_zone(&name, ctx.now).await?;
    outln!(
        "zone {name} removed from management; its last signed output stays in place, and its keys in their stores:"
    )?;
    for uri in uris {
        outln!("  {uri}")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn reload(db: &Database, ctx: &Context, name: &str) -> anyhow::Result<ExitCode> {
    let name = super::parse_origin(name)?;
    db.request_reload(&name, ctx.now).await?;
    match db.service().await? {
        Some((pid, _)) => outln!("zone {name}: reload asked; signet serve (pid {pid}) takes it up within seconds")?,
        None => {
            outln!("zone {name}: reload noted, but signet serve is not running: sign it with `signet sign {name}`")?
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(db: &Database, ctx: &Context) -> anyhow::Result<ExitCode> {
    let zones = db.zones().await?;
    if ctx.format == Format::Json {
        let rows: Vec<_> = zones
            .iter()
            .map(|z| serde_json::json!({"zone": z.name, "policy": z.policy_name, "serial": z.last_serial, "last_run": z.last_run_at, "next_run": z.next_run_at, "output": z.output_path}))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![["ZONE", "POLICY", "SERIAL", "LAST SIGNED", "NEXT DUE", "OUTPUT"].map(String::from).to_vec()];
    for z in &zones {
        rows.push(vec![
            z.name.clone(),
            z.policy_name.clone(),
            z.last_serial.map_or("-".into(), |s| s.to_string()),
            when_or(z.last_run_at, "never"),
            when_or(z.next_run_at, "-"),
            z.output_path.clone(),
        ]);
    }
    out!("{}", table(&rows))?;
    Ok(ExitCode::SUCCESS)
}

async fn status(db: &Database, ctx: &Context, name: &str) -> anyhow::Result<ExitCode> {
    let snapshot = db.snapshot(&super::parse_origin(name)?).await?;
    let keys = key_report(&snapshot, ctx.now);
    let zone = &snapshot.zone;
    let runs = db.runs(zone.id, 5).await?;
    let events = db.events(zone.id, 20).await?;
    if ctx.format == Format::Json {
        let audit: Vec<_> = events.iter().map(audit_json).collect();
        let out = serde_json::json!({"zone": zone.name, "policy": zone.policy_name, "serial": zone.last_serial,
            "last_run": zone.last_run_at, "next_run": zone.next_run_at, "keys": keys, "runs": runs, "audit": audit});
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "zone {}  policy {}  serial {}",
        zone.name,
        zone.policy_name,
        zone.last_serial.map_or("-".into(), |s| s.to_string())
    )?;
    outln!("input {}  output {}", zone.input_path, zone.output_path)?;
    outln!("last signed {}  next due {}", when_or(zone.last_run_at, "never"), when_or(zone.next_run_at, "-"))?;
    outln!()?;
    print_keys(&keys)?;
    outln!("\nrecent runs:")?;
    let mut rows = vec![["AT", "RESULT", "SERIAL", "RRSIGS", "SECONDS", "MESSAGE"].map(String::from).to_vec()];
    for r in &runs {
        rows.push(vec![
            when_or(Some(r.at), "-"),
            r.result.clone(),
            r.serial.map_or("-".into(), |s| s.to_string()),
            r.rrsigs.to_string(),
            format!("{:.2}", r.seconds),
            r.message.clone().unwrap_or_default(),
        ]);
    }
    out!("{}", table(&rows))?;
    outln!("\naudit (newest last):")?;
    let mut rows = vec![["AT", "BY", "KEY", "EVENT"].map(String::from).to_vec()];
    for e in &events {
        rows.push(vec![
            when_or(Some(e.time), "-"),
            e.actor.as_str().to_owned(),
            e.key.map_or("-".into(), |k| k.to_string()),
            describe(e),
        ]);
    }
    out!("{}", table(&rows))?;
    Ok(ExitCode::SUCCESS)
}

/// An event in words: a transition as `record from → to: why`.
fn describe(e: &Event) -> String {
    match (e.record, e.from, e.to) {
        (Some(record), Some(from), Some(to)) => {
            format!("{} {} → {}: {}", record.as_str(), from.as_str(), to.as_str(), e.why)
        }
        _ => e.why.clone(),
    }
}

/// An event as `zone status --format json` has always shown audit rows.
fn audit_json(e: &Event) -> serde_json::Value {
    serde_json::json!({
        "at": e.time, "actor": e.actor, "event": e.kind, "key_id": e.key,
        "record": e.record.map(|r| r.as_str()), "from_state": e.from.map(|s| s.as_str()),
        "to_state": e.to.map(|s| s.as_str()), "message": describe(e),
    })
}
