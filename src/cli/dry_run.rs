//! `signet dry-run`: rehearses a policy on a simulated clock with the
//! production code (see [`signet::dryrun::simulation`]), then prints the
//! event table, the per-key summary and the verdict, and draws the
//! timeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use signet::dryrun::ceremonies::CeremonyPlan;
use signet::dryrun::simulation::{Fault, PolicyChange, PolicyFile, Rehearsal, Rehearsed, Verdict, rehearse};
use signet::dryrun::{KeyInfo, svg};
use signet::keys::KeyUri;
use signet::rollover::Record;
use signet::time::{format_duration, format_minute, format_time, parse_time};

use super::output::table;
use super::{EXIT_REFUSED, Format};

/// Arguments of `signet dry-run`.
#[derive(Debug, Args)]
pub(super) struct DryRunArgs {
    /// The policy to rehearse.
    #[arg(long)]
    policy: PathBuf,
    /// The zone (apex).
    #[arg(long)]
    origin: String,
    /// The unsigned zone to sign (default: a small example zone whose
    /// largest TTL is the policy's max-ttl).
    #[arg(long)]
    zone: Option<PathBuf>,
    /// Start of the simulated time (RFC 3339 or Unix seconds).
    #[arg(long)]
    from: String,
    /// End of the simulated time.
    #[arg(long)]
    until: String,
    /// How long after the zone publishes CDS the parent publishes the DS
    /// set it names (default: the policy's parent registration-delay).
    #[arg(long)]
    ds_delay: Option<String>,
    /// Replace the policy at a time, e.g. `2027-06-01T00:00:00Z=new.toml`
    /// (an algorithm change is rehearsed this way). Repeatable.
    #[arg(long = "change-policy", value_name = "TIME=FILE")]
    change_policy: Vec<String>,
    /// Write every published version, the parent's DS and index.json here.
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Draw the timeline to this SVG file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Make keys in this key store instead of throw-away soft keys.
    #[arg(long)]
    key_store: Option<String>,
    /// Inject a fault, to see the safety check catch it.
    #[arg(long, value_enum)]
    fault: Option<FaultArg>,
    /// An offline-KSK policy: hold a ceremony (request, response, import)
    /// at the start and then every DURATION, e.g. `30d`; each request
    /// reaches one and a half intervals ahead.
    #[arg(long, value_name = "DURATION")]
    ceremony_every: Option<String>,
    /// Hold ceremony N (from 1) late by DURATION, e.g. `3=10d`. Repeatable.
    #[arg(long = "late-ceremony", value_name = "N=DURATION", requires = "ceremony_every")]
    late_ceremony: Vec<String>,
}

/// Faults a dry-run can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum FaultArg {
    /// The machine is told that zone signatures were published (and
    /// withdrawn) one max-ttl earlier than they were, so it takes the new
    /// ZSK's signatures for omnipresent and withdraws the old ZSK's DNSKEY
    /// one TTL early.
    EarlyZskWithdrawal,
    /// The machine is told that the parent stopped serving a DS one DS
    /// TTL plus the parent's propagation delay before it did, so it
    /// withdraws the key's DNSKEY (going insecure: every DNSKEY) while
    /// resolvers may still hold the DS.
    EarlyDsGone,
}

/// The rehearsal the arguments ask for, checked.
fn rehearsal(args: &DryRunArgs) -> anyhow::Result<Rehearsal> {
    let origin = super::parse_origin(&args.origin)?;
    let time = |flag: &str, text: &str| parse_time(text).with_context(|| format!("--{flag} {text:?}"));
    let (from, until) = (time("from", &args.from)?, time("until", &args.until)?);
    if until <= from {
        bail!("--until {} is not after --from {}", args.until, args.from);
    }
    let policy = read_policy(&args.policy)?;
    let mut changes = Vec::new();
    for change in &args.change_policy {
        let (at, file) =
            change.split_once('=').with_context(|| format!("--change-policy {change:?}: expected TIME=FILE"))?;
        let at = time("change-policy", at)?;
        if at <= from || at > until {
            bail!("--change-policy {change:?}: the time is not within --from … --until");
        }
        changes.push(PolicyChange { at, file: read_policy(Path::new(file))? });
    }
    changes.sort_by_key(|c| c.at);
    let ds_delay = match &args.ds_delay {
        Some(text) => humantime::parse_duration(text)
            .map(|d| d.as_secs() as i64)
            .with_context(|| format!("--ds-delay {text:?}"))?,
        None => policy.policy.parent.registration_delay,
    };
    let key_store = args.key_store.as_deref().map(KeyUri::parse).transpose().context("--key-store")?;
    let ceremonies = ceremonies(args)?;
    if ceremonies.is_some() != policy.policy.keys.offline_ksk {
        bail!(
            "--ceremony-every is for a policy that keeps the KSK offline (keys.offline-ksk), and such a policy needs it"
        );
    }
    Ok(Rehearsal {
        origin,
        policy,
        changes,
        from,
        until,
        ds_delay: ds_delay.max(1),
        zone: args.zone.clone(),
        key_store,
        fault: args.fault.map(|fault| match fault {
            FaultArg::EarlyZskWithdrawal => Fault::EarlyZskWithdrawal,
            FaultArg::EarlyDsGone => Fault::EarlyDsGone,
        }),
        trace: args.trace.clone(),
        ceremonies,
    })
}

/// The ceremonies `--ceremony-every` and `--late-ceremony` ask for.
fn ceremonies(args: &DryRunArgs) -> anyhow::Result<Option<CeremonyPlan>> {
    let duration = |flag: &str, text: &str| {
        humantime::parse_duration(text).map(|d| d.as_secs() as i64).with_context(|| format!("--{flag} {text:?}"))
    };
    let Some(every) = &args.ceremony_every else { return Ok(None) };
    let every = duration("ceremony-every", every)?;
    if every <= 0 {
        bail!("--ceremony-every must be longer than 0");
    }
    let mut late = Vec::new();
    for text in &args.late_ceremony {
        let (n, by) = text.split_once('=').with_context(|| format!("--late-ceremony {text:?}: expected N=DURATION"))?;
        let n: usize = n.parse().with_context(|| format!("--late-ceremony {text:?}: N is a ceremony number"))?;
        if n < 2 {
            bail!("--late-ceremony {text:?}: the first ceremony opens the rehearsal; a later one may be late");
        }
        late.push((n, duration("late-ceremony", by)?));
    }
    Ok(Some(CeremonyPlan { every, late }))
}

fn read_policy(file: &Path) -> anyhow::Result<PolicyFile> {
    let (policy, warnings) = PolicyFile::read(file)?;
    super::print_policy_warnings(file, &warnings);
    Ok(policy)
}

/// Runs `signet dry-run`.
pub(super) async fn run(args: DryRunArgs, format: Format) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let wanted = rehearsal(&args)?;
    if !wanted.fault_applies() {
        bail!(
            "--fault early-zsk-withdrawal does not apply: every policy of this rehearsal uses a CSK, and the fault moves zone signatures between ZSKs"
        );
    }
    let rehearsed = rehearse(wanted).await?;
    if let Some(file) = &args.svg {
        let title = format!(
            "signet dry-run: {} for {} ({} to {})",
            rehearsed.policy,
            rehearsed.zone,
            &format_time(rehearsed.from)[..10],
            &format_time(rehearsed.until)[..10]
        );
        let end = rehearsed.verdict.end(rehearsed.until).max(rehearsed.from + 1);
        let drawing = svg::timeline(&title, &rehearsed.key_infos(), &rehearsed.events, rehearsed.from, end);
        std::fs::write(file, drawing).with_context(|| format!("--svg {}", file.display()))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    match format {
        Format::Json => outln!("{}", serde_json::to_string_pretty(&Report { rehearsed: &rehearsed, seconds })?)?,
        Format::Text => print_text(&rehearsed, seconds)?,
    }
    Ok(match rehearsed.verdict {
        Verdict::Safe => ExitCode::SUCCESS,
        Verdict::Unsafe(_) | Verdict::Refused { .. } | Verdict::Uncovered { .. } => ExitCode::from(EXIT_REFUSED),
    })
}

/// Each policy change: the rollovers it started, with their cause, or
/// that it started none; and when the keys it kept are due for successors.
fn print_policy_changes(report: &Rehearsed, label: &dyn Fn(Option<i64>) -> String) -> std::io::Result<()> {
    let at = |t: Option<i64>| t.map_or_else(|| "never (unlimited lifetime)".to_owned(), format_minute);
    for change in &report.policy_changes {
        let started = if change.started.is_empty() { "started no rollover" } else { "started:" };
        outln!("\npolicy change at {} to {}: {started}", format_minute(change.at), change.policy)?;
        for key in &change.started {
            let replacing = key.predecessor.map(|p| format!(" replacing {}", label(Some(p)))).unwrap_or_default();
            outln!("  {}{replacing}: {}", label(Some(key.key)), key.cause)?;
        }
        for key in &change.kept {
            outln!(
                "  {} kept: successor due {} (under the policy before: {})",
                label(Some(key.key)),
                at(key.successor_due),
                at(key.successor_due_before)
            )?;
        }
    }
    Ok(())
}

/// Everything the run found, as printed in JSON.
#[derive(Debug, serde::Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    rehearsed: &'a Rehearsed,
    seconds: f64,
}

fn print_text(report: &Rehearsed, seconds: f64) -> std::io::Result<()> {
    let keys: BTreeMap<i64, KeyInfo> = report.key_infos().into_iter().map(|k| (k.id, k)).collect();
    outln!(
        "dry-run of policy {} for {}, {} to {}; the parent publishes a DS {} after the CDS asks for it\n",
        report.policy,
        report.zone,
        format_time(report.from),
        format_time(report.until),
        format_duration(report.ds_delay)
    )?;
    let label = |id: Option<i64>| id.and_then(|id| keys.get(&id)).map_or_else(|| "-".to_owned(), KeyInfo::label);
    let mut rows = vec![["TIME", "KEY", "RECORD", "FROM → TO", "WHY"].map(String::from).to_vec()];
    for e in &report.events {
        let change = match (e.from, e.to) {
            (Some(from), Some(to)) => format!("{} → {}", from.as_str(), to.as_str()),
            _ => "-".to_owned(),
        };
        let record = e.record.map_or("-", Record::as_str).to_owned();
        rows.push(vec![format_minute(e.time), label(e.key), record, change, e.why.clone()]);
    }
    out!("{}", table(&rows))?;
    let mut rows = vec![
        ["KEY", "ID", "CREATED", "PUBLISHED", "ACTIVE", "RETIRED", "WITHDRAWN", "REMOVED", "DS SEEN", "DS GONE"]
            .map(String::from)
            .to_vec(),
    ];
    let at = |t: Option<i64>| t.map_or_else(|| "-".to_owned(), format_minute);
    for k in &report.keys {
        rows.push(vec![
            k.key.label(),
            k.key.id.to_string(),
            at(k.created),
            at(k.published),
            at(k.active),
            at(k.retired),
            at(k.withdrawn),
            at(k.removed),
            at(k.ds_seen),
            at(k.ds_gone),
        ]);
    }
    outln!("\nkeys:")?;
    out!("{}", table(&rows))?;
    print_policy_changes(report, &label)?;
    outln!()?;
    match &report.verdict {
        Verdict::Safe => outln!(
            "safe: {} versions published, each through the gate; at {} instants, {} combinations of cached DS, DNSKEY and signed RRsets checked, and every one validates ({:.1} s)",
            report.versions,
            report.instants,
            report.combinations,
            seconds
        )?,
        Verdict::Unsafe(u) => outln!(
            "UNSAFE at {}: a resolver may hold the DS RRset the parent published at {} ({}), the DNSKEY RRset of serial {} and data of serial {}: {}",
            format_time(u.at),
            format_time(u.ds_published),
            if u.ds.is_empty() { "empty".to_owned() } else { u.ds.join(", ") },
            u.dnskey_serial,
            u.data_serial,
            u.reason
        )?,
        Verdict::Uncovered { at, reason } => {
            outln!("UNCOVERED at {}: the offline KSK's responses ran out; {reason}", format_time(*at))?
        }
        Verdict::Refused { at, findings } => {
            outln!("REFUSED at {}: the gate would not publish the version signed then:", format_time(*at))?;
            for f in findings {
                outln!("  {f}")?;
            }
        }
    }
    Ok(())
}
