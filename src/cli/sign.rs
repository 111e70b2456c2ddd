//! `signet sign`, one-shot: an unsigned zone file, a policy and keys in;
//! the signed zone out, through the gate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use ring::rand::{SecureRandom as _, SystemRandom};

use super::keyset::{open_and_prove, plan};
use super::managed::{RunOutcome, sign_managed};
use super::progress::TerminalProgress;
use super::verify::read_anchor;
use super::{Format, Managed, print_policy_warnings};
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
    /// A zone under management (its apex), or, with --policy, an unsigned
    /// zone file to sign one-shot.
    target: String,
    /// One-shot: the zone's origin (apex name).
    #[arg(long, requires = "policy")]
    origin: Option<String>,
    /// One-shot: the signing policy (TOML).
    #[arg(long, requires_all = ["origin", "keys", "output"])]
    policy: Option<PathBuf>,
    /// One-shot: a key and its role, `URI:ksk|zsk|csk`. Replicas of one
    /// key in several stores: `"URI URI:ROLE"`; each replica is proven.
    #[arg(long = "key", requires = "policy")]
    keys: Vec<String>,
    /// One-shot: where to write the signed zone (replaced atomically, only
    /// if the verifier passes it).
    #[arg(short, long, requires = "policy")]
    output: Option<PathBuf>,
    /// One-shot: the DS (or DNSKEY) records the parent publishes: the
    /// DNSKEY RRset must be signed by a key they name. Default: the DS of
    /// the KSKs given.
    #[arg(long, requires = "policy")]
    trust_anchor: Option<PathBuf>,
    /// One-shot: also write the DS records of the KSKs (or CSKs) to this file.
    #[arg(long, requires = "policy")]
    ds_out: Option<PathBuf>,
}

/// Runs `signet sign`: exit 0 published, 1 refused, 2 bad input.
pub async fn run(args: SignArgs, ctx: &Managed) -> anyhow::Result<ExitCode> {
    match (&args.policy, &args.origin, &args.output) {
        (Some(policy), Some(origin), Some(output)) => {
            let one_shot = OneShot { policy, origin, output, args: &args };
            run_one_shot(&one_shot, ctx)
        }
        _ => run_managed(&args.target, ctx).await,
    }
}

async fn run_managed(name: &str, ctx: &Managed) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let name = super::parse_origin(name)?.to_string().to_ascii_lowercase();
    match sign_managed(&store, &name, ctx.now, ctx.explicit_now).await? {
        RunOutcome::Published { step, stats, report } => {
            if ctx.format == Format::Json {
                let out = serde_json::json!({"zone": name, "stats": stats, "verified": report.stats,
                    "transitions": step.transitions, "actions": step.actions, "waits": step.waits, "next": step.next});
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for t in &step.transitions {
                    println!("key {} {} {} → {}: {}", t.key, t.record.as_str(), t.from.as_str(), t.to.as_str(), t.why);
                }
                println!(
                    "signed {name} serial {}: {} RRSIGs made, {} verified by the gate; next run due {}",
                    stats.serial,
                    stats.rrsigs,
                    report.stats.rrsigs_verified,
                    step.next.map_or("-".to_owned(), crate::time::format_time)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RunOutcome::Refused(report) => {
            print!("{}", report.to_text());
            eprintln!(
                "signet: the gate refused the signed zone of {name}: nothing was published, key states unchanged"
            );
            Ok(ExitCode::from(super::EXIT_REFUSED))
        }
    }
}

/// The one-shot arguments, checked present.
struct OneShot<'a> {
    policy: &'a Path,
    origin: &'a str,
    output: &'a Path,
    args: &'a SignArgs,
}

fn run_one_shot(one: &OneShot<'_>, ctx: &Managed) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let now = ctx.now;
    let origin = super::parse_origin(one.origin)?;
    let (policy, warnings) = Policy::from_file(one.policy)?;
    print_policy_warnings(one.policy, &warnings);
    let keys = open_and_prove(&one.args.keys)?;
    let plan = plan(&keys, policy.parent.cds);
    let unsigned = read_zone_file(Path::new(&one.args.target), &origin)?;
    let mut settings = SignSettings::from_policy(&policy, now, random_salt(policy.denial.salt_length)?);
    settings.last_serial = previous_serial(one.output, &origin);
    let digest = policy.parent.digest.number();
    let ksks: Vec<_> = keys.iter().filter(|k| k.role != Role::Zsk).map(|k| &k.published).collect();
    let trust_anchor = match &one.args.trust_anchor {
        Some(path) => read_anchor(path, &origin)?,
        None => ksks.iter().filter_map(|k| k.ds_rdata(origin.as_ref(), digest)).map(Anchor::Ds).collect(),
    };
    let options = VerifyOptions { now, min_validity: policy.signatures.refresh, trust_anchor: Some(trust_anchor) };
    let result = publish(one.output, &origin, &options, &TerminalProgress::new(), move |out| {
        Ok(sign_zone(unsigned, &plan, &settings, out)?)
    });
    let (stats, report) = match result {
        Ok(done) => done,
        Err(PublishError::Refused(report)) => {
            print!("{}", report.to_text());
            eprintln!("signet: the gate refused the signed zone: nothing was written to {}", one.output.display());
            return Ok(ExitCode::from(super::EXIT_REFUSED));
        }
        Err(e) => return Err(e).context(format!("nothing was written to {}", one.output.display())),
    };
    if let Some(path) = &one.args.ds_out {
        write_ds_file(path, &origin, &ksks, digest, policy.parent.ds_ttl as u32)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    match ctx.format {
        Format::Json => {
            let summary = serde_json::json!({
                "zone": origin.to_string(), "output": one.output, "stats": stats,
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
                one.output.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A fresh NSEC3 salt of `len` octets.
pub fn random_salt(len: u8) -> anyhow::Result<Vec<u8>> {
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
