//! `signet key generate`: make a key in a store and print its URI,
//! DNSKEY and DS.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::table::{table, when};
use super::{Format, Managed};
use crate::keys::{Algorithm, KeyUri, PublishedKey, Role, generate_key, proof::prove};
use crate::rollover::{Observation, Record, advance};
use crate::store::{Store, ZoneRow};
use crate::zone::writer::write_record;
use crate::zone::{RecordRef, Rtype};

/// `signet key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a key pair in a key store; print its URI, DNSKEY and DS.
    Generate(GenerateArgs),
    /// The keys of a zone (or of every zone): role, algorithm, tag, the
    /// four record states, when each next changes, what to do now.
    List {
        /// The zone (apex); every zone if left out.
        zone: Option<String>,
    },
    /// Start a rollover now.
    Rollover(RolloverArgs),
}

/// Arguments of `signet key rollover`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("role").required(true).args(["ksk", "zsk", "csk"])))]
pub struct RolloverArgs {
    /// The zone (apex).
    zone: String,
    /// Roll the KSK.
    #[arg(long)]
    ksk: bool,
    /// Roll the ZSK.
    #[arg(long)]
    zsk: bool,
    /// Roll the CSK.
    #[arg(long)]
    csk: bool,
    /// The key is compromised: replace it as fast as the safety rules allow.
    #[arg(long)]
    emergency: bool,
}

/// Arguments of `signet key generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The store: `pkcs11:token=LABEL[?module-path=…&pin-source=…]` or `file:DIR`.
    #[arg(long)]
    store: String,
    /// Algorithm: RSASHA256, ECDSAP256SHA256, ECDSAP384SHA384, ED25519 (or 8, 13, 14, 15).
    #[arg(long)]
    algorithm: String,
    /// Key size in bits (RSA: 2048 to 4096).
    #[arg(long)]
    bits: Option<u32>,
    /// ksk, zsk or csk (sets the DNSKEY flags).
    #[arg(long)]
    role: String,
    /// The zone the key is for (owner of the DNSKEY and DS).
    #[arg(long)]
    origin: String,
    /// A label for the key in the store (default: zone, role and time).
    #[arg(long)]
    label: Option<String>,
    /// TTL printed on the DNSKEY and DS.
    #[arg(long, default_value_t = 3600)]
    ttl: u32,
}

/// Runs a `signet key` command.
pub async fn run(command: KeyCommand, ctx: &Managed) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::Generate(args) => generate(args, ctx),
        KeyCommand::List { zone } => list(ctx, zone.as_deref()).await,
        KeyCommand::Rollover(args) => rollover(ctx, args).await,
    }
}

fn generate(args: GenerateArgs, ctx: &Managed) -> anyhow::Result<ExitCode> {
    let now = ctx.explicit_now.then_some(ctx.now);
    let format = ctx.format;
    let origin = super::parse_origin(&args.origin)?;
    let store = KeyUri::parse(&args.store)?;
    let algorithm = Algorithm::from_text(&args.algorithm)?;
    let role = Role::from_text(&args.role)?;
    let now = now.unwrap_or_else(crate::time::wall_clock);
    let label = args.label.clone().unwrap_or_else(|| {
        let zone = origin.to_string();
        format!("{}-{role}-{now}", zone.trim_end_matches('.'))
    });
    let key = generate_key(&store, algorithm, args.bits, &label)?;
    let published = PublishedKey::new(key.as_ref(), role);
    prove(key.as_ref(), &published)?;
    let line = |rtype: Rtype, rdata: &[u8]| {
        let mut text = String::new();
        write_record(RecordRef { owner: origin.as_ref(), rtype, ttl: args.ttl, rdata }, 1, &mut text);
        text
    };
    let dnskey = line(Rtype::DNSKEY, &published.rdata);
    let ds: Vec<String> = [2, 4]
        .into_iter()
        .filter_map(|digest| published.ds_rdata(origin.as_ref(), digest))
        .map(|rdata| line(Rtype::DS, &rdata))
        .collect();
    match format {
        Format::Json => {
            let out = serde_json::json!({
                "uri": key.uri().to_string(), "key_tag": published.tag, "algorithm": algorithm.number(),
                "role": role.as_str(), "dnskey": dnskey, "ds": ds,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Format::Text => {
            println!("; {role} {algorithm}, key tag {}", published.tag);
            println!("; uri {}", key.uri());
            println!("{dnskey}");
            for ds in ds {
                println!("{ds}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn rollover(ctx: &Managed, args: RolloverArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let name = super::parse_origin(&args.zone)?.to_string().to_ascii_lowercase();
    let zone = store.zone(&name).await?;
    let role = if args.ksk {
        Role::Ksk
    } else if args.zsk {
        Role::Zsk
    } else {
        Role::Csk
    };
    if !args.emergency {
        let message = format!("operator: rollover of the {role} requested");
        store.observe(zone.id, &Observation::Rollover { role }, ctx.now, &message).await?;
        println!("{message}; the next `signet sign {name}` starts it");
        return Ok(ExitCode::SUCCESS);
    }
    let keys = store.keys(zone.id).await?;
    let active: Vec<_> = keys
        .iter()
        .filter(|k| k.key.role == role && k.key.goal == crate::rollover::Goal::Omnipresent && !k.key.compromised)
        .collect();
    if active.is_empty() {
        anyhow::bail!("zone {name} has no active {role} to replace");
    }
    for key in active {
        let message = format!("operator: {role} key tag {} declared compromised: emergency rollover", key.key.tag);
        store.observe(zone.id, &Observation::Compromised { key: key.key.id }, ctx.now, &message).await?;
        println!("{message}; the next `signet sign {name}` starts it");
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(ctx: &Managed, zone: Option<&str>) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let zones = match zone {
        Some(name) => vec![store.zone(&super::parse_origin(name)?.to_string().to_ascii_lowercase()).await?],
        None => store.zones().await?,
    };
    if ctx.format == Format::Json {
        let mut out = Vec::new();
        for zone in &zones {
            out.push(serde_json::json!({"zone": zone.name, "keys": key_report(&store, ctx, zone).await?}));
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    for zone in &zones {
        println!("zone {}", zone.name);
        print_keys(&store, ctx, zone).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One key's line of `key list`, as data.
#[derive(Debug, serde::Serialize)]
pub struct KeyLine {
    id: i64,
    role: &'static str,
    algorithm: u8,
    keytag: u16,
    goal: &'static str,
    states: std::collections::BTreeMap<&'static str, String>,
    since: std::collections::BTreeMap<&'static str, i64>,
    next: std::collections::BTreeMap<&'static str, String>,
    todo: Vec<String>,
    uri: String,
}

/// Every key of the zone with its states, what each record waits for
/// (from a dry step of the machine at `now`), and what the operator must do.
pub async fn key_report(store: &Store, ctx: &Managed, zone: &ZoneRow) -> anyhow::Result<Vec<KeyLine>> {
    let stored = store.keys(zone.id).await?;
    let policy_row = store.policy_by_id(zone.policy_id).await?;
    let (policy, _) = crate::policy::Policy::from_text(&policy_row.source, std::path::Path::new(&policy_row.name))?;
    let keys: Vec<_> = stored.iter().map(|s| s.key.clone()).collect();
    let pending: Vec<Observation> = store.pending_observations(zone.id).await?.into_iter().map(|(_, o)| o).collect();
    let dry = advance(&keys, &policy, ctx.now, &pending);
    let mut lines = Vec::new();
    for s in &stored {
        let key = &s.key;
        let mut states = std::collections::BTreeMap::new();
        let mut since = std::collections::BTreeMap::new();
        let mut next = std::collections::BTreeMap::new();
        for record in Record::ALL.into_iter().filter(|r| key.affects(*r)) {
            states.insert(record.as_str(), key.state(record).as_str().to_owned());
            since.insert(record.as_str(), key.record(record).since);
            let due = dry.transitions.iter().find(|t| t.key == key.id && t.record == record);
            let wait = dry.waits.iter().find(|w| w.key == key.id && w.record == record);
            let text = match (due, wait) {
                (Some(t), _) => format!("→ {} now (next signet sign)", t.to.as_str()),
                (None, Some(w)) => match w.until {
                    Some(until) => format!("{} ({})", when(until), w.reason),
                    None => w.reason.clone(),
                },
                (None, None) => "-".to_owned(),
            };
            next.insert(record.as_str(), text);
        }
        lines.push(KeyLine {
            id: key.id,
            role: key.role.as_str(),
            algorithm: key.algorithm.number(),
            keytag: key.tag,
            goal: key.goal.as_str(),
            states,
            since,
            next,
            todo: todo(zone, key),
            uri: s.uri.clone(),
        });
    }
    Ok(lines)
}

/// What the operator must do now for a key.
fn todo(zone: &ZoneRow, key: &crate::rollover::Key) -> Vec<String> {
    let tag = key.tag;
    match key.ds_pending {
        Some(true) => vec![
            format!("submit this DS to the parent: signet ds show {} --keytag {tag}", zone.name),
            format!("when the parent publishes it, confirm with: signet ds seen {} --keytag {tag}", zone.name),
        ],
        Some(false) => vec![
            format!("ask the parent to remove the DS of key tag {tag}"),
            format!("when it is gone, confirm with: signet ds gone {} --keytag {tag}", zone.name),
        ],
        None => Vec::new(),
    }
}

/// `key list` for one zone, as a table.
pub async fn print_keys(store: &Store, ctx: &Managed, zone: &ZoneRow) -> anyhow::Result<()> {
    let lines = key_report(store, ctx, zone).await?;
    let mut rows =
        vec![["ID", "ROLE", "ALG", "TAG", "GOAL", "DNSKEY", "KRRSIG", "ZRRSIG", "DS"].map(String::from).to_vec()];
    for line in &lines {
        let cell = |record: &str| match (line.states.get(record), line.since.get(record)) {
            (Some(state), Some(since)) => format!("{state} {}", when(*since)),
            _ => "-".to_owned(),
        };
        rows.push(vec![
            line.id.to_string(),
            line.role.to_owned(),
            line.algorithm.to_string(),
            line.keytag.to_string(),
            line.goal.to_owned(),
            cell("dnskey"),
            cell("krrsig"),
            cell("zrrsig"),
            cell("ds"),
        ]);
    }
    print!("{}", table(&rows));
    for line in &lines {
        for (record, next) in &line.next {
            if next != "-" {
                println!("  key {} ({} {}) {record}: next {next}", line.id, line.role, line.keytag);
            }
        }
        for todo in &line.todo {
            println!("  key {} ({} {}): TODO {todo}", line.id, line.role, line.keytag);
        }
    }
    Ok(())
}
