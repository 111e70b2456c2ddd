//! `signet sign`, one-shot: an unsigned zone file, a policy and keys in;
//! the signed zone out, through the gate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use ring::rand::{SecureRandom as _, SystemRandom};

use super::keyset::{open_and_prove, plan};
use super::progress::TerminalProgress;
use super::verify::read_anchor;
use super::{Format, print_policy_warnings};
use crate::keys::Role;
use crate::policy::Policy;
use crate::publish::{PublishError, publish};
use crate::sign::{SignSettings, sign_zone};
use crate::verify::{Anchor, VerifyOptions};
use crate::zone::writer::write_record;
use crate::zone::{Name, RecordRef, Rtype, read_zone_file};

/// Arguments of `signet sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The unsigned zone file.
    zonefile: PathBuf,
    /// The zone's origin (apex name).
    #[arg(long)]
    origin: String,
    /// The signing policy (TOML).
    #[arg(long)]
    policy: PathBuf,
    /// A key and its role: `URI:ksk|zsk|csk`. Replicas of one key in
    /// several stores: `"URI URI:ROLE"`; each replica is proven.
    #[arg(long = "key", required = true)]
    keys: Vec<String>,
    /// Where to write the signed zone (replaced atomically, only if the
    /// verifier passes it).
    #[arg(short, long)]
    output: PathBuf,
    /// The DS (or DNSKEY) records the parent publishes: the DNSKEY RRset
    /// must be signed by a key they name. Default: the DS of the KSKs given.
    #[arg(long)]
    trust_anchor: Option<PathBuf>,
    /// Also write the DS records of the KSKs (or CSKs) to this file.
    #[arg(long)]
    ds_out: Option<PathBuf>,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Runs `signet sign`: exit 0 published, 1 the gate refused, 2 bad input.
pub fn run(args: SignArgs, now: Option<i64>) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let now = now.unwrap_or_else(crate::time::wall_clock);
    let origin = super::parse_origin(&args.origin)?;
    let (policy, warnings) = Policy::from_file(&args.policy)?;
    print_policy_warnings(&args.policy, &warnings);
    let keys = open_and_prove(&args.keys)?;
    let plan = plan(&keys, policy.parent.cds);
    let unsigned = read_zone_file(&args.zonefile, &origin)?;
    let mut settings = SignSettings::from_policy(&policy, now, random_salt(policy.denial.salt_length)?);
    settings.last_serial = previous_serial(&args.output, &origin);
    let digest = policy.parent.digest.number();
    let ksks: Vec<_> = keys.iter().filter(|k| k.role != Role::Zsk).map(|k| &k.published).collect();
    let trust_anchor = match &args.trust_anchor {
        Some(path) => read_anchor(path, &origin)?,
        None => ksks.iter().filter_map(|k| k.ds_rdata(origin.as_ref(), digest)).map(Anchor::Ds).collect(),
    };
    let options = VerifyOptions { now, min_validity: policy.signatures.refresh, trust_anchor: Some(trust_anchor) };
    let result = publish(&args.output, &origin, &options, &TerminalProgress::new(), move |out| {
        Ok(sign_zone(unsigned, &plan, &settings, out)?)
    });
    let (stats, report) = match result {
        Ok(done) => done,
        Err(PublishError::Refused(report)) => {
            print!("{}", report.to_text());
            eprintln!("signet: the gate refused the signed zone: nothing was written to {}", args.output.display());
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e).context(format!("nothing was written to {}", args.output.display())),
    };
    if let Some(path) = &args.ds_out {
        write_ds_file(path, &origin, &ksks, digest, policy.parent.ds_ttl as u32)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    match args.format {
        Format::Json => {
            let summary = serde_json::json!({
                "zone": origin.to_string(), "output": args.output, "stats": stats,
                "verified": report.stats, "seconds": seconds,
            });
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        Format::Text => {
            for finding in &report.findings {
                println!("{}", finding.to_line());
            }
            println!(
                "signed {origin} serial {}: {} RRSIGs made, {} verified by the gate; written to {} in {seconds:.2} s",
                stats.serial,
                stats.rrsigs,
                report.stats.rrsigs_verified,
                args.output.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn random_salt(len: u8) -> anyhow::Result<Vec<u8>> {
    let mut salt = vec![0; usize::from(len)];
    SystemRandom::new().fill(&mut salt).map_err(|_| anyhow::anyhow!("no randomness for the NSEC3 salt"))?;
    Ok(salt)
}

/// The serial of the zone published before at `path`, so that the new one
/// is greater: signet writes the SOA on the first line.
fn previous_serial(path: &Path, origin: &Name) -> Option<u32> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(path).ok()?;
    let first = std::io::BufReader::new(file).lines().next()?.ok()?;
    let zone = crate::zone::read_zone_str(&first, origin, path).ok()?;
    let soa = zone.records().find(|r| r.rtype == Rtype::SOA)?;
    crate::sign::prepare::soa_fields(soa.rdata).map(|(serial, _)| serial)
}

fn write_ds_file(
    path: &Path,
    origin: &Name,
    ksks: &[&crate::keys::PublishedKey],
    digest: u8,
    ttl: u32,
) -> anyhow::Result<()> {
    let mut text = String::new();
    for key in ksks {
        if let Some(ds) = key.ds_rdata(origin.as_ref(), digest) {
            write_record(RecordRef { owner: origin.as_ref(), rtype: Rtype::DS, ttl, rdata: &ds }, 1, &mut text);
            text.push('\n');
        }
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
