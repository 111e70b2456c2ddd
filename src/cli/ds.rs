//! `signet ds show|seen|gone ZONE --keytag N`: the DS flow with the
//! parent. `show` prints the DS records to submit; `seen` and `gone`
//! tell the state machine what the parent now publishes.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{Format, Managed};
use crate::keys::PublishedKey;
use crate::rollover::Observation;
use crate::store::{Store, StoredKey, ZoneRow};
use crate::zone::writer::write_record;
use crate::zone::{RecordRef, Rtype};

/// `signet ds …`.
#[derive(Debug, Subcommand)]
pub enum DsCommand {
    /// Print the DS records of a key, to submit to the parent.
    Show(DsArgs),
    /// The parent now publishes the key's DS.
    Seen(DsArgs),
    /// The parent no longer publishes the key's DS.
    Gone(DsArgs),
}

/// Which key.
#[derive(Debug, Args)]
pub struct DsArgs {
    /// The zone (apex).
    zone: String,
    /// The key tag of the KSK or CSK.
    #[arg(long)]
    keytag: u16,
}

/// Runs a `signet ds` command.
pub async fn run(command: DsCommand, ctx: &Managed) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let (args, kind) = match &command {
        DsCommand::Show(a) => (a, "show"),
        DsCommand::Seen(a) => (a, "seen"),
        DsCommand::Gone(a) => (a, "gone"),
    };
    let name = super::parse_origin(&args.zone)?.to_string().to_ascii_lowercase();
    let zone = store.zone(&name).await?;
    let key = find_key(&store, &zone, args.keytag).await?;
    match kind {
        "show" => show(&zone, &key, ctx),
        _ => {
            let id = key.key.id;
            let (observation, what) = if kind == "seen" {
                (Observation::DsSeen { key: id }, "publishes")
            } else {
                (Observation::DsGone { key: id }, "no longer publishes")
            };
            let message = format!("operator: the parent {what} the DS of key tag {}", args.keytag);
            store.observe(zone.id, &observation, ctx.now, &message).await?;
            println!("{message}; the next `signet sign {}` takes it in", zone.name);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn find_key(store: &Store, zone: &ZoneRow, tag: u16) -> anyhow::Result<StoredKey> {
    let keys: Vec<StoredKey> =
        store.keys(zone.id).await?.into_iter().filter(|k| k.key.tag == tag && k.key.role.signs_keys()).collect();
    match keys.len() {
        1 => Ok(keys.into_iter().next().ok_or_else(|| anyhow::anyhow!("no key"))?),
        0 => anyhow::bail!(
            "zone {} has no KSK or CSK with key tag {tag} (see: signet key list {})",
            zone.name,
            zone.name
        ),
        n => anyhow::bail!("zone {} has {n} KSKs with key tag {tag}; they cannot be told apart by tag", zone.name),
    }
}

fn show(zone: &ZoneRow, key: &StoredKey, ctx: &Managed) -> anyhow::Result<ExitCode> {
    let origin = super::parse_origin(&zone.name)?;
    let published = PublishedKey::from_public(key.key.algorithm, key.dnskey.get(4..).unwrap_or_default(), key.key.role);
    let lines: Vec<String> = [2, 4]
        .into_iter()
        .filter_map(|digest| published.ds_rdata(origin.as_ref(), digest))
        .map(|rdata| {
            let mut line = String::new();
            write_record(
                RecordRef { owner: origin.as_ref(), rtype: Rtype::DS, ttl: 3600, rdata: &rdata },
                1,
                &mut line,
            );
            line
        })
        .collect();
    if ctx.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"zone": zone.name, "keytag": key.key.tag, "ds": lines}))?
        );
    } else {
        for line in lines {
            println!("{line}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
