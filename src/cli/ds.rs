//! `signet ds show|seen|gone ZONE --keytag N`, `signet ds check ZONE`:
//! the DS flow with the parent. `show` prints the DS records to submit;
//! `seen` and `gone` tell the state machine what the parent now
//! publishes; `check` asks the parent's agents and records what they
//! all agree on.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use signet::keys::PublishedKey;
use signet::manage::parent::{check_round, has_agents, load_tsig_keys, submit_round, wanted_ds_now};
use signet::manage::report_ds;
use signet::manage::requests::key_by_tag;
use signet::zone::writer::write_record;
use signet::zone::{RecordRef, Rtype};

use super::{Context, Format};

/// `signet ds …`.
#[derive(Debug, Subcommand)]
pub(super) enum DsCommand {
    /// Print the DS records of a key, to submit to the parent.
    Show(DsArgs),
    /// The parent now publishes the key's DS.
    Seen(DsArgs),
    /// The parent no longer publishes the key's DS.
    Gone(DsArgs),
    /// Ask every parent agent (`signet zone parent-agent`) for the zone's
    /// DS now, and record `ds seen`/`ds gone` for each pending key they
    /// all agree on.
    Check {
        /// The zone (apex).
        zone: String,
    },
    /// Submit the DS set the zone wants at the parent now, by the policy's
    /// submit-command and to every `signet zone parent-update` server
    /// (`signet serve` does this by itself), unless it was submitted.
    Submit {
        /// The zone (apex).
        zone: String,
    },
}

/// Which key.
#[derive(Debug, Args)]
pub(super) struct DsArgs {
    /// The zone (apex).
    zone: String,
    /// The key tag of the KSK or CSK.
    #[arg(long)]
    keytag: u16,
}

/// Runs a `signet ds` command.
pub(super) async fn run(command: DsCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let db = ctx.open_db().await?;
    let (args, seen) = match &command {
        DsCommand::Show(args) => return show(&db, args, ctx).await,
        DsCommand::Seen(args) => (args, true),
        DsCommand::Gone(args) => (args, false),
        DsCommand::Check { zone } => return check(&db, zone, ctx).await,
        DsCommand::Submit { zone } => return submit(&db, zone, ctx).await,
    };
    let name = super::parse_origin(&args.zone)?;
    let message = report_ds(&db, &name, args.keytag, seen, ctx.now).await?;
    outln!("{message}; {}", super::output::taken_up_by(&db, &name).await)?;
    Ok(ExitCode::SUCCESS)
}

async fn show(db: &signet::db::Database, args: &DsArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let origin = super::parse_origin(&args.zone)?;
    let zone = db.zone(&origin).await?;
    let key = key_by_tag(db, &zone, args.keytag).await?;
    let published = PublishedKey::from_public(key.key.algorithm, key.dnskey.get(4..).unwrap_or_default(), key.key.role);
    let lines: Vec<String> = [2, 4]
        .into_iter()
        .filter_map(|digest| published.ds_rdata(origin.as_ref(), digest))
        .map(|rdata| {
            let mut line = String::new();
            let record = RecordRef { owner: origin.as_ref(), rtype: Rtype::DS, ttl: 3600, rdata: &rdata };
            write_record(record, 1, &mut line);
            line
        })
        .collect();
    if ctx.format == Format::Json {
        let out = serde_json::json!({"zone": zone.name, "keytag": key.key.tag, "ds": lines});
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
    } else {
        for line in lines {
            outln!("{line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn check(db: &signet::db::Database, zone: &str, ctx: &Context) -> anyhow::Result<ExitCode> {
    let origin = super::parse_origin(zone)?;
    let snapshot = db.snapshot(&origin).await?;
    if !has_agents(&db.remotes(snapshot.zone.id).await?) {
        anyhow::bail!("zone {} has no parent agent to ask (see: signet zone parent-agent add)", snapshot.zone.name);
    }
    let keys = load_tsig_keys(db).await?;
    let lookup = |name: &str| keys.get(name).cloned();
    let round = check_round(db, &snapshot, &lookup, ctx.now, true).await?;
    if ctx.format == Format::Json {
        let out = serde_json::json!({"zone": snapshot.zone.name, "answers": round.answers,
            "observed": round.observed, "waiting": round.waiting, "next_check": round.next_at});
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if round.answers.is_empty() {
        outln!("zone {}: no DS change is pending; nothing to ask", snapshot.zone.name)?;
    } else {
        outln!("answers: {}", round.answers)?;
    }
    for line in round.observed.iter().chain(&round.waiting) {
        outln!("{line}")?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn submit(db: &signet::db::Database, zone: &str, ctx: &Context) -> anyhow::Result<ExitCode> {
    let origin = super::parse_origin(zone)?;
    let snapshot = db.snapshot(&origin).await?;
    let keys = load_tsig_keys(db).await?;
    let lookup = |name: &str| keys.get(name).cloned();
    let pending = wanted_ds_now(db, &snapshot, &origin, ctx.now).await?.is_some();
    submit_round(db, &snapshot, &lookup, ctx.now).await?;
    match db.ds_submission(snapshot.zone.id).await? {
        Some(sub) if pending && sub.error.is_some() => {
            anyhow::bail!("DS submission failed: {}", sub.error.unwrap_or_default())
        }
        Some(sub) if pending => outln!("DS set submitted by {}:\n{}", sub.via.unwrap_or_default(), sub.wanted)?,
        _ if pending => {
            outln!("zone {}: nothing to submit the DS with (parent.submit-command, parent-update)", snapshot.zone.name)?
        }
        _ => outln!("zone {}: no DS change is pending", snapshot.zone.name)?,
    }
    Ok(ExitCode::SUCCESS)
}
