//! `signet key generate`: make a key in a store and print its URI,
//! DNSKEY and DS.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Format;
use crate::keys::{Algorithm, KeyUri, PublishedKey, Role, generate_key, proof::prove};
use crate::zone::writer::write_record;
use crate::zone::{RecordRef, Rtype};

/// `signet key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a key pair in a key store; print its URI, DNSKEY and DS.
    Generate(GenerateArgs),
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
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Runs a `signet key` command.
pub fn run(command: KeyCommand, now: Option<i64>) -> anyhow::Result<ExitCode> {
    match command {
        KeyCommand::Generate(args) => generate(args, now),
    }
}

fn generate(args: GenerateArgs, now: Option<i64>) -> anyhow::Result<ExitCode> {
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
    match args.format {
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
