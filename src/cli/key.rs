//! `signet key generate`: make a key in a store and print its URI,
//! DNSKEY and DS.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use signet::keys::{Algorithm, KeyUri, PublishedKey, Role, generate_key, proof::prove};
use signet::manage::offline::{cover_todo, response_cover};
use signet::manage::report::ParentView;
use signet::manage::{key_report, request_rollover};
use signet::zone::writer::write_record;
use signet::zone::{RecordRef, Rtype};

use super::output::print_keys;
use super::{Context, Format};

/// `signet key …`.
#[derive(Debug, Subcommand)]
pub(super) enum KeyCommand {
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
pub(super) struct RolloverArgs {
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
pub(super) struct GenerateArgs {
    /// The key store: `pkcs11:token=LABEL[?module-path=…&pin-source=…]` or `file:DIR`.
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
pub(super) async fn run(command: KeyCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::Generate(args) => generate(args, ctx),
        KeyCommand::List { zone } => list(ctx, zone.as_deref()).await,
        KeyCommand::Rollover(args) => rollover(ctx, args).await,
    }
}

fn generate(args: GenerateArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    let now = ctx.explicit_now.then_some(ctx.now);
    let format = ctx.format;
    let origin = super::parse_origin(&args.origin)?;
    let key_store = KeyUri::parse(&args.store)?;
    let algorithm = Algorithm::from_text(&args.algorithm)?;
    let role = Role::from_text(&args.role)?;
    let now = now.unwrap_or_else(signet::time::wall_clock);
    let label = args.label.clone().unwrap_or_else(|| {
        let zone = origin.to_string();
        format!("{}-{role}-{now}", zone.trim_end_matches('.'))
    });
    let key = generate_key(&key_store, algorithm, args.bits, &label)?;
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
            outln!("{}", serde_json::to_string_pretty(&out)?)?;
        }
        Format::Text => {
            outln!("; {role} {algorithm}, key tag {}", published.tag)?;
            outln!("; uri {}", key.uri())?;
            outln!("{dnskey}")?;
            for ds in ds {
                outln!("{ds}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn rollover(ctx: &Context, args: RolloverArgs) -> anyhow::Result<ExitCode> {
    let db = ctx.open_db().await?;
    let name = super::parse_origin(&args.zone)?;
    let role = if args.ksk {
        Role::Ksk
    } else if args.zsk {
        Role::Zsk
    } else {
        Role::Csk
    };
    for message in request_rollover(&db, &name, role, args.emergency, ctx.now).await? {
        outln!("{message}; {}", super::output::taken_up_by(&db, &name).await)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(ctx: &Context, zone: Option<&str>) -> anyhow::Result<ExitCode> {
    let db = ctx.open_db().await?;
    let names = match zone {
        Some(name) => vec![super::parse_origin(name)?],
        None => db.zones().await?.iter().map(|z| super::parse_origin(&z.name)).collect::<anyhow::Result<_>>()?,
    };
    let mut reports = Vec::new();
    for name in &names {
        let snapshot = db.snapshot(name).await?;
        let parent = ParentView::read(&db, &snapshot).await?;
        let warning = snapshot.policy.keys.response_warning;
        let cover =
            if snapshot.policy.keys.offline_ksk { response_cover(&db, snapshot.zone.id, warning).await? } else { None };
        let offline = cover_todo(&snapshot, cover, ctx.now);
        reports.push((snapshot.zone.name.clone(), key_report(&snapshot, ctx.now, &parent), cover, offline));
    }
    if ctx.format == Format::Json {
        let out: Vec<_> = reports
            .iter()
            .map(|(zone, keys, cover, todo)| {
                serde_json::json!({"zone": zone, "keys": keys, "offline": cover, "offline_todo": todo})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for (zone, keys, _, todo) in &reports {
        outln!("zone {zone}")?;
        print_keys(keys)?;
        if let Some(todo) = todo {
            outln!("  TODO {todo}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
