//! `signet sign`: a zone under management (`signet sign ZONE`), or, with
//! `--policy`, an unsigned zone file signed one-shot with the keys given.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args;
use signet::keys::{KeyUri, Role};
use signet::manage::keys::GivenKey;
use signet::manage::{OneShot, OneShotOutcome, RunOptions, RunOutcome, run_zone, sign_once};
use signet::policy::Policy;
use signet::verify::read_anchor_file;

use super::progress::TerminalProgress;
use super::{Context, EXIT_REFUSED, Format, print_policy_warnings, refused_or};

/// Arguments of `signet sign`.
#[derive(Debug, Args)]
pub(super) struct SignArgs {
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
    /// Managed: the gate verifies every signature with crypto, taking none
    /// from its memo of the last publication.
    #[arg(long, conflicts_with = "policy")]
    full_verify: bool,
}

/// Runs `signet sign`: exit 0 published, 1 refused, 2 bad input.
pub(super) async fn run(args: SignArgs, ctx: &Context) -> anyhow::Result<ExitCode> {
    match (&args.policy, &args.origin, &args.output) {
        (Some(policy), Some(origin), Some(output)) => run_one_shot(&args, policy, origin, output, ctx),
        _ => run_managed(&args.target, args.full_verify, ctx).await,
    }
}

async fn run_managed(name: &str, full_verify: bool, ctx: &Context) -> anyhow::Result<ExitCode> {
    let db = ctx.open_db().await?;
    let name = super::parse_origin(name)?;
    let progress = TerminalProgress::new();
    let options = RunOptions {
        explicit_now: ctx.explicit_now,
        key_store: None,
        progress: &progress,
        purge: true,
        abandon: None,
        full_verify,
        previous: None,
        serving: None,
        lease: None,
    };
    let published = match run_zone(&db, &name, ctx.now, &options).await {
        Ok(RunOutcome::Published(published)) => published,
        Ok(RunOutcome::Refused(report)) => {
            out!("{}", report.to_text())?;
            eprintln!(
                "signet: the gate refused the signed zone of {name}: nothing was published, key states unchanged"
            );
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
        Err(e) => return refused_or(e),
    };
    let (step, stats, report) = (&published.step, &published.stats, &published.report);
    if ctx.format == Format::Json {
        let full = published.full_verification.as_ref().map(ToString::to_string);
        let out = serde_json::json!({"zone": name.to_string(), "stats": stats, "verified": report.stats,
            "full_verification": full, "transitions": step.transitions, "actions": step.actions,
            "waits": step.waits, "next": step.next});
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for t in &step.transitions {
        outln!("key {} {} {} → {}: {}", t.key, t.record.as_str(), t.from.as_str(), t.to.as_str(), t.why)?;
    }
    let memo = match &published.full_verification {
        None => format!(" ({} from its memo)", report.stats.rrsigs_from_memo),
        Some(_) => String::new(),
    };
    outln!(
        "signed {name} serial {}: {} RRSIGs made, {} kept, {} verified by the gate{memo}; next run due {}",
        stats.serial,
        stats.rrsigs,
        stats.rrsigs_kept,
        report.stats.rrsigs_verified,
        step.next.map_or("-".to_owned(), signet::time::format_time)
    )?;
    Ok(ExitCode::SUCCESS)
}

fn run_one_shot(
    args: &SignArgs,
    policy: &Path,
    origin: &str,
    output: &Path,
    ctx: &Context,
) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let origin = super::parse_origin(origin)?;
    let (policy_read, warnings) = Policy::from_file(policy)?;
    print_policy_warnings(policy, &warnings);
    let keys = args.keys.iter().map(|k| parse_key_arg(k)).collect::<anyhow::Result<Vec<_>>>()?;
    let trust_anchor = args.trust_anchor.as_deref().map(|path| read_anchor_file(path, &origin)).transpose()?;
    let job = OneShot {
        input: Path::new(&args.target),
        origin: &origin,
        policy: &policy_read,
        keys: &keys,
        output,
        trust_anchor,
        ds_out: args.ds_out.as_deref(),
        now: ctx.now,
    };
    let (stats, report) = match sign_once(&job, &TerminalProgress::new()) {
        Ok(OneShotOutcome::Published { stats, report }) => (stats, report),
        Ok(OneShotOutcome::Refused(report)) => {
            out!("{}", report.to_text())?;
            eprintln!("signet: the gate refused the signed zone: nothing was written to {}", output.display());
            return Ok(ExitCode::from(EXIT_REFUSED));
        }
        Err(e) => return refused_or(e),
    };
    let seconds = started.elapsed().as_secs_f64();
    match ctx.format {
        Format::Json => {
            let summary = serde_json::json!({
                "zone": origin.to_string(), "output": output, "stats": stats,
                "verified": report.stats, "seconds": seconds,
            });
            outln!("{}", serde_json::to_string_pretty(&summary)?)?;
        }
        Format::Text => {
            for finding in &report.findings {
                outln!("{}", finding.to_line())?;
            }
            outln!(
                "signed {origin} serial {}: {} RRSIGs made, {} verified by the gate; written to {} in {seconds:.2} s",
                stats.serial,
                stats.rrsigs,
                report.stats.rrsigs_verified,
                output.display()
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads `URI[ URI…]:ROLE`: one or more URIs of replicas of one key,
/// separated by spaces, then its role.
fn parse_key_arg(text: &str) -> anyhow::Result<GivenKey> {
    // Refused before any message below could echo the text with its PIN.
    signet::keys::uri::refuse_pin(text)?;
    let (uris, role) =
        text.rsplit_once(':').with_context(|| format!("--key {text:?}: expected URI:ROLE, e.g. file:zsk.pk8:zsk"))?;
    let role = Role::from_text(role).with_context(|| format!("--key {text:?}"))?;
    let replicas = uris.split_whitespace().map(KeyUri::parse).collect::<Result<Vec<_>, _>>()?;
    if replicas.is_empty() {
        bail!("--key {text:?}: no key URI before the role");
    }
    Ok(GivenKey { replicas, role })
}
