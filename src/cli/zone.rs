//! `signet init`, `signet policy import`, `signet zone
//! add|list|status|remove|reload|diff|versions`: the database and what it
//! manages, and the journal of what each publication changed.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use signet::db::{Database, Event, JournalVersion};
use signet::manage::key_report;
use signet::manage::requests::{ZonePaths, add_zone};
use signet::zone::diff::{TextStyle, ZoneDiff};

use super::output::{print_keys, size, table, when_or};
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
        /// The next run's gate verifies every signature with crypto,
        /// taking none from its memo.
        #[arg(long)]
        full_verify: bool,
    },
    /// What a published version changed from the one before (the newest
    /// by default), from the journal, in IXFR order: old SOA, records
    /// removed, new SOA, records added.
    Diff(DiffArgs),
    /// The versions the zone's journal keeps: serials, when published,
    /// records removed and added, size.
    Versions {
        /// The zone (apex).
        name: String,
    },
}

/// Arguments of `signet zone diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The zone (apex).
    name: String,
    /// The version (its SOA serial) whose change to show.
    #[arg(long)]
    serial: Option<u32>,
    /// Two master-file sections (removed, then added) instead of lines
    /// prefixed `-` and `+`.
    #[arg(long)]
    sections: bool,
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
        ZoneCommand::Reload { name, full_verify } => reload(&db, ctx, &name, full_verify).await,
        ZoneCommand::Remove { name } => remove(&db, ctx, &name).await,
        ZoneCommand::Diff(args) => diff(&db, ctx, args).await,
        ZoneCommand::Versions { name } => versions(&db, ctx, &name).await,
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

async fn reload(db: &Database, ctx: &Context, name: &str, full_verify: bool) -> anyhow::Result<ExitCode> {
    let name = super::parse_origin(name)?;
    let what = if full_verify {
        db.request_full_verification(&name, ctx.now).await?;
        "reload with a full verification"
    } else {
        db.request_reload(&name, ctx.now).await?;
        "reload"
    };
    match db.service().await? {
        Some((pid, _)) => outln!("zone {name}: {what} asked; signet serve (pid {pid}) takes it up within seconds")?,
        None => {
            outln!("zone {name}: {what} noted, but signet serve is not running: sign it with `signet sign {name}`")?
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

async fn diff(db: &Database, ctx: &Context, args: DiffArgs) -> anyhow::Result<ExitCode> {
    let name = super::parse_origin(&args.name)?;
    let zone = db.zone(&name).await?;
    let Some((version, bytes)) = db.journal_diff(zone.id, args.serial).await? else {
        anyhow::bail!("{}", no_version(&zone.name, args.serial));
    };
    let diff = ZoneDiff::decode(&bytes)
        .with_context(|| format!("zone {}: the journal's version {}", zone.name, version.serial_to))?;
    if ctx.format == Format::Json {
        let (removed, added) = diff.lines();
        let out = serde_json::json!({"zone": zone.name, "version": version,
            "records": {"removed": removed, "added": added}});
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("; published {}, {} encoded", when_or(Some(version.published_at), "-"), size(version.bytes))?;
    let style = if args.sections { TextStyle::Sections } else { TextStyle::Prefixed };
    diff.write_text(style, &mut std::io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// Why `zone diff` has nothing to show.
fn no_version(zone: &str, serial: Option<u32>) -> String {
    match serial {
        Some(serial) => format!(
            "zone {zone}: the journal has no version with serial {serial}; `signet zone versions {zone}` lists those it keeps"
        ),
        None => format!(
            "zone {zone}: the journal is empty: nothing published yet, or the last publication started the journal afresh \
             (the version before it was unknown)"
        ),
    }
}

async fn versions(db: &Database, ctx: &Context, name: &str) -> anyhow::Result<ExitCode> {
    let zone = db.zone(&super::parse_origin(name)?).await?;
    let versions = db.journal(zone.id).await?;
    let summary = db.journal_summary(zone.id).await?;
    if ctx.format == Format::Json {
        let out = serde_json::json!({"zone": zone.name, "summary": summary, "versions": versions});
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    match summary.oldest_serial {
        Some(oldest) => outln!(
            "zone {}: {} version(s), {}; IXFR reaches back to serial {oldest}",
            zone.name,
            summary.versions,
            size(summary.bytes)
        )?,
        None => outln!("zone {}: the journal is empty", zone.name)?,
    }
    out!("{}", table(&version_rows(&versions)))?;
    Ok(ExitCode::SUCCESS)
}

/// The journal as a table, oldest first.
fn version_rows(versions: &[JournalVersion]) -> Vec<Vec<String>> {
    let mut rows = vec![["FROM", "TO", "PUBLISHED", "REMOVED", "ADDED", "SIZE"].map(String::from).to_vec()];
    for v in versions {
        rows.push(vec![
            v.serial_from.to_string(),
            v.serial_to.to_string(),
            when_or(Some(v.published_at), "-"),
            v.removed.to_string(),
            v.added.to_string(),
            size(v.bytes),
        ]);
    }
    rows
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
