//! `signet init`, `signet policy import`, `signet zone
//! add|list|status|remove|reload|diff|versions|review|approve|reject`:
//! the database and what it manages, the journal of what each
//! publication changed, and the review of versions before they are
//! published.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use signet::db::RemoteRole;
use signet::db::{Database, Event, JournalVersion, Review, ReviewHook, Verdict};
use signet::manage::report::ParentView;
use signet::manage::requests::{ZonePaths, add_zone};
use signet::manage::transfers;
use signet::manage::{dnssec_state, key_report};
use signet::zone::diff::{TextStyle, ZoneDiff};

use super::output::{print_keys, size, table, when_or};
use super::{Context, Format};

/// `signet zone …`.
#[derive(Debug, Subcommand)]
pub(super) enum ZoneCommand {
    /// Put a zone under signet's management.
    Add(AddArgs),
    /// The zones, their policies and when each is next due.
    List,
    /// One zone: its keys, recent runs and audit trail.
    Status {
        /// The zone (apex).
        name: String,
        /// How many of the newest audit rows to show (0: all).
        #[arg(long, default_value_t = 20)]
        audit: u32,
    },
    /// Take a zone out of management (its history stays; its keys stay in
    /// their stores; its last output stays where it is).
    Remove {
        /// The zone (apex).
        name: String,
    },
    /// Put the zone under another imported policy; its next run follows
    /// it (a policy with `insecure = true` takes the zone to unsigned
    /// safely, one without takes it back to signed).
    SetPolicy {
        /// The zone (apex).
        name: String,
        /// The policy's name in the database (`signet policy import`).
        policy: String,
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
    /// Change where the zone's input comes from: a file, or primaries
    /// it is transferred from.
    SetInput(SetInputArgs),
    /// The secondaries `signet serve --listen` notifies after every
    /// publication and lets transfer the zone.
    #[command(subcommand)]
    Secondary(SecondaryCommand),
    /// More clients allowed to transfer the zone (not notified).
    #[command(subcommand)]
    Acl(AclCommand),
    /// The parent's authoritative servers, asked for the zone's DS while
    /// a DS change is pending (`signet serve`, `signet ds check`).
    #[command(subcommand)]
    ParentAgent(super::parent::AgentCommand),
    /// Resolvers that find the parent's servers, or must validate the
    /// DS answer.
    #[command(subcommand)]
    ParentResolver(super::parent::ResolverCommand),
    /// Servers the zone's DS RRset is set at by RFC 2136 UPDATE.
    #[command(subcommand)]
    ParentUpdate(super::parent::UpdateCommand),
    /// The command every verified version of the zone is offered to
    /// before it is published (`-- PROGRAM ARGS…`), or none (`--none`).
    /// Its exit status decides: 0 publishes, 75 waits for `signet zone
    /// approve|reject`, anything else rejects.
    Review(ReviewArgs),
    /// Publish the version whose review waits (the hook exited 75).
    Approve(DecisionArgs),
    /// Do not publish the version whose review waits; it stays rejected
    /// until the zone's content changes.
    Reject(DecisionArgs),
    /// The address the zone's NOTIFYs leave from (over serve's
    /// `notify-source` and its listen address).
    NotifySource(SourceArgs),
    /// The address the zone's SOA queries, transfers in, parent checks
    /// and UPDATEs leave from (over serve's `transfer-source` and its
    /// listen address).
    TransferSource(SourceArgs),
}

/// Arguments of `signet zone review`.
#[derive(Debug, Args)]
pub(super) struct ReviewArgs {
    /// The zone (apex).
    name: String,
    /// How long the hook may run before it is killed and the version
    /// counts as rejected.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    timeout: std::time::Duration,
    /// Remove the zone's review hook (a review waiting is superseded).
    #[arg(long, conflicts_with = "command")]
    none: bool,
    /// The program and its arguments, after `--` (no shell).
    #[arg(last = true, required_unless_present = "none")]
    command: Vec<String>,
}

/// Arguments of `signet zone approve|reject`.
#[derive(Debug, Args)]
pub(super) struct DecisionArgs {
    /// The zone (apex).
    name: String,
    /// The serial of the version whose review waits.
    serial: u32,
    /// Why, for the audit trail.
    #[arg(long)]
    reason: Option<String>,
}

/// Arguments of `signet zone notify-source|transfer-source`.
#[derive(Debug, Args)]
pub(super) struct SourceArgs {
    /// The zone (apex).
    name: String,
    /// At most one IPv4 and one IPv6 address, no port; none: back to
    /// serve's setting (or its listen address, or the kernel's choice).
    addresses: Vec<String>,
}

/// Where a zone's input comes from.
#[derive(Debug, Args)]
pub(super) struct InputArgs {
    /// The unsigned zone file; with --primary, where the last complete
    /// copy transferred is kept (default: the output's path + .unsigned).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Transfer the input from this primary (ADDR[:PORT], port 53 by
    /// default; repeatable, tried in order): AXFR, then IXFR on its
    /// NOTIFY and on the SOA timers, under `signet serve`.
    #[arg(long)]
    primary: Vec<String>,
    /// The TSIG key (see `signet tsig add`) that signs the transfers and
    /// NOTIFYs with the primaries.
    #[arg(long, requires = "primary")]
    tsig: Option<String>,
}

impl InputArgs {
    /// The input file and the primaries; `output` names the default copy.
    fn resolve(&self, output: &std::path::Path) -> anyhow::Result<(PathBuf, Vec<signet::db::Remote>)> {
        let primaries = transfers::primaries(&self.primary, self.tsig.as_deref())?;
        match (&self.input, primaries.is_empty()) {
            (Some(input), _) => Ok((input.clone(), primaries)),
            (None, false) => Ok((transfers::default_copy(output), primaries)),
            (None, true) => anyhow::bail!("give the input: --input FILE, or --primary ADDR[:PORT]"),
        }
    }
}

/// Arguments of `signet zone set-input`.
#[derive(Debug, Args)]
pub(super) struct SetInputArgs {
    /// The zone (apex).
    name: String,
    #[command(flatten)]
    input: InputArgs,
}

/// `signet zone secondary …`.
#[derive(Debug, Subcommand)]
pub(super) enum SecondaryCommand {
    /// Add (or change) a secondary.
    Add {
        /// The zone (apex).
        name: String,
        /// Its address (ADDR[:PORT]); it may transfer from this IP address.
        address: String,
        /// The TSIG key its NOTIFYs are signed with and its transfers
        /// must be.
        #[arg(long)]
        tsig: Option<String>,
        /// Let it transfer, but do not send it NOTIFY.
        #[arg(long)]
        no_notify: bool,
    },
    /// Remove a secondary.
    Remove {
        /// The zone (apex).
        name: String,
        /// Its address as added.
        address: String,
    },
}

/// `signet zone acl …`.
#[derive(Debug, Subcommand)]
pub(super) enum AclCommand {
    /// Allow transfers from a network, with a key, or both.
    Add {
        /// The zone (apex).
        name: String,
        /// ADDR or ADDR/LEN (none: any address, with --tsig).
        prefix: Option<String>,
        /// The TSIG key the client must sign with.
        #[arg(long)]
        tsig: Option<String>,
    },
    /// Remove an entry.
    Remove {
        /// The zone (apex).
        name: String,
        /// The entry's ADDR or ADDR/LEN as added (none: the key-only entry).
        prefix: Option<String>,
    },
}

/// Arguments of `signet zone diff`.
#[derive(Debug, Args)]
pub(super) struct DiffArgs {
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
pub(super) struct AddArgs {
    /// The zone (apex).
    name: String,
    /// The policy (imported with `signet policy import`).
    #[arg(long)]
    policy: String,
    #[command(flatten)]
    input: InputArgs,
    /// Where the signed zone is published.
    #[arg(long, required_unless_present = "ksk_side")]
    output: Option<PathBuf>,
    /// The zone's offline KSK side (a policy with keys.offline-ksk): this
    /// database holds its KSKs and signs the online signer's requests
    /// (`signet ksr sign`); it has no input and publishes no zone.
    #[arg(long, conflicts_with_all = ["output", "input", "primary"])]
    ksk_side: bool,
}

/// `signet init`: makes the database (mode 0600) and its schema.
pub(super) async fn init(ctx: &Context) -> anyhow::Result<ExitCode> {
    let db = Database::open(&ctx.db, true).await?;
    outln!("database {} ready", db.location())?;
    Ok(ExitCode::SUCCESS)
}

/// Runs a `signet zone` command.
pub(super) async fn run(command: ZoneCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let db = ctx.open_db().await?;
    match command {
        ZoneCommand::Add(args) => add(&db, ctx, args).await,
        ZoneCommand::List => list(&db, ctx).await,
        ZoneCommand::Status { name, audit } => status(&db, ctx, &name, audit).await,
        ZoneCommand::Reload { name, full_verify } => reload(&db, ctx, &name, full_verify).await,
        ZoneCommand::Remove { name } => remove(&db, ctx, &name).await,
        ZoneCommand::SetPolicy { name, policy } => set_policy(&db, ctx, &name, &policy).await,
        ZoneCommand::Diff(args) => diff(&db, ctx, args).await,
        ZoneCommand::Versions { name } => versions(&db, ctx, &name).await,
        ZoneCommand::SetInput(args) => set_input(&db, ctx, args).await,
        ZoneCommand::Secondary(command) => secondary(&db, ctx, command).await,
        ZoneCommand::Acl(command) => acl(&db, ctx, command).await,
        ZoneCommand::ParentAgent(command) => super::parent::agent(&db, ctx, command).await,
        ZoneCommand::ParentResolver(command) => super::parent::resolver(&db, ctx, command).await,
        ZoneCommand::ParentUpdate(command) => super::parent::update(&db, ctx, command).await,
        ZoneCommand::Review(args) => review(&db, ctx, args).await,
        ZoneCommand::Approve(args) => decide(&db, ctx, args, Verdict::Approved).await,
        ZoneCommand::Reject(args) => decide(&db, ctx, args, Verdict::Rejected).await,
        ZoneCommand::NotifySource(args) => source(&db, ctx, RemoteRole::NotifySource, args).await,
        ZoneCommand::TransferSource(args) => source(&db, ctx, RemoteRole::TransferSource, args).await,
    }
}

async fn review(db: &Database, ctx: &Context, args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let zone = db.zone(&super::parse_origin(&args.name)?).await?;
    if args.none {
        db.set_review_hook(zone.id, None, ctx.now).await?;
        outln!("zone {}: no review hook: verified versions are published without review", zone.name)?;
        return Ok(ExitCode::SUCCESS);
    }
    let timeout = i64::try_from(args.timeout.as_secs()).unwrap_or(i64::MAX).max(1);
    db.set_review_hook(zone.id, Some((&args.command, timeout)), ctx.now).await?;
    outln!(
        "zone {}: every verified version is offered to `{}` (timeout {}) before it is published",
        zone.name,
        args.command.join(" "),
        signet::time::format_duration(timeout)
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn decide(db: &Database, ctx: &Context, args: DecisionArgs, verdict: Verdict) -> anyhow::Result<ExitCode> {
    let zone = db.zone(&super::parse_origin(&args.name)?).await?;
    let review = db.decide_review(zone.id, &zone.name, args.serial, verdict, args.reason.as_deref(), ctx.now).await?;
    let what = match verdict {
        Verdict::Approved => "approved: it is published at the next run",
        _ => "rejected: it is not published, and stays rejected until the zone's content changes",
    };
    outln!("zone {}: serial {} {what}", zone.name, review.serial)?;
    match db.service().await? {
        Some((pid, _)) => outln!("signet serve (pid {pid}) takes the decision up within seconds")?,
        None if verdict == Verdict::Approved => {
            outln!("signet serve is not running: publish it with `signet sign {}`", zone.name)?
        }
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// The review hook and the last review, as `zone status` shows them.
fn print_review(hook: Option<&ReviewHook>, last: Option<&Review>, zone: &str) -> std::io::Result<()> {
    match hook {
        Some(hook) => outln!("review hook {} (timeout {} s)", hook.command.join(" "), hook.timeout)?,
        None => outln!("review hook none")?,
    }
    if let Some(review) = last {
        outln!("last review {}", describe_review(review, zone))?;
    }
    Ok(())
}

/// A review in words, with the commands to decide one that waits.
pub(super) fn describe_review(review: &Review, zone: &str) -> String {
    let when = when_or(review.decided_at.or(Some(review.offered_at)), "-");
    let by = review.decided_by.map(|d| format!(" by the {}", d.as_str())).unwrap_or_default();
    let reason = review.reason.as_deref().filter(|r| !r.is_empty()).map(|r| format!(": {r}")).unwrap_or_default();
    match review.verdict {
        Verdict::Pending => format!(
            "serial {} WAITS FOR AN OPERATOR since {when}{reason}; decide with: signet zone approve {zone} {} | signet zone reject {zone} {} [--reason TEXT]",
            review.serial, review.serial, review.serial
        ),
        Verdict::Rejected | Verdict::TimedOut | Verdict::Crashed => format!(
            "serial {} {}{by} {when}{reason}; to publish it all the same: signet zone approve {zone} {}",
            review.serial, review.verdict, review.serial
        ),
        verdict => format!("serial {} {verdict}{by} {when}{reason}", review.serial),
    }
}

async fn source(db: &Database, ctx: &Context, role: RemoteRole, args: SourceArgs) -> anyhow::Result<ExitCode> {
    let zone = db.zone(&super::parse_origin(&args.name)?).await?;
    let ips = signet::xfr::source::parse_sources(&args.addresses).with_context(|| role.as_str())?;
    let addresses: Vec<String> = ips.iter().map(ToString::to_string).collect();
    db.set_sources(zone.id, role, &addresses, ctx.now).await?;
    match addresses.as_slice() {
        [] => outln!(
            "zone {}: {} unset: serve's setting, else its listen address, else the kernel's choice",
            zone.name,
            role.as_str()
        )?,
        _ => outln!("zone {}: {} {}", zone.name, role.as_str(), addresses.join(" "))?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_input(db: &Database, ctx: &Context, args: SetInputArgs) -> anyhow::Result<ExitCode> {
    let name = super::parse_origin(&args.name)?;
    let zone = db.zone(&name).await?;
    let (input, primaries) = args.input.resolve(std::path::Path::new(&zone.output_path))?;
    let input = std::path::absolute(&input).unwrap_or(input);
    if signet::manage::requests::same_file(&input, std::path::Path::new(&zone.output_path)) {
        anyhow::bail!("the input {} is the zone's output", input.display());
    }
    db.set_input(zone.id, &input.display().to_string(), &primaries, ctx.now).await?;
    match primaries.len() {
        0 => outln!("zone {name}: input is the file {}", input.display())?,
        n => outln!("zone {name}: input transferred from {n} primary(ies), the copy kept in {}", input.display())?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn secondary(db: &Database, ctx: &Context, command: SecondaryCommand) -> anyhow::Result<ExitCode> {
    match command {
        SecondaryCommand::Add { name, address, tsig, no_notify } => {
            let zone = db.zone(&super::parse_origin(&name)?).await?;
            let remote = transfers::secondary(&address, tsig.as_deref(), !no_notify)?;
            db.add_remote(zone.id, &remote, ctx.now).await?;
            outln!("zone {}: secondary {} added", zone.name, remote.address.unwrap_or_default())?;
        }
        SecondaryCommand::Remove { name, address } => {
            let zone = db.zone(&super::parse_origin(&name)?).await?;
            let remote = transfers::secondary(&address, None, true)?;
            if !db.remove_remote(zone.id, RemoteRole::Secondary, remote.address.as_deref(), ctx.now).await? {
                anyhow::bail!("zone {} has no secondary {address}", zone.name);
            }
            outln!("zone {}: secondary {address} removed", zone.name)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn acl(db: &Database, ctx: &Context, command: AclCommand) -> anyhow::Result<ExitCode> {
    match command {
        AclCommand::Add { name, prefix, tsig } => {
            let zone = db.zone(&super::parse_origin(&name)?).await?;
            let entry = transfers::acl_entry(prefix.as_deref(), tsig.as_deref())?;
            db.add_remote(zone.id, &entry, ctx.now).await?;
            outln!(
                "zone {}: transfers allowed to {}",
                zone.name,
                entry.address.as_deref().unwrap_or("any address with the key")
            )?;
        }
        AclCommand::Remove { name, prefix } => {
            let zone = db.zone(&super::parse_origin(&name)?).await?;
            let address = match prefix.as_deref() {
                Some(prefix) => transfers::acl_entry(Some(prefix), None)?.address,
                None => None,
            };
            if !db.remove_remote(zone.id, RemoteRole::Acl, address.as_deref(), ctx.now).await? {
                anyhow::bail!("zone {} has no such access-list entry", zone.name);
            }
            outln!("zone {}: access-list entry removed", zone.name)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn add(db: &Database, ctx: &Context, args: AddArgs) -> anyhow::Result<ExitCode> {
    let name = super::parse_origin(&args.name)?;
    let Some(output_path) = &args.output else {
        signet::manage::offline::add_ksk_side(db, &name, &args.policy, ctx.now).await?;
        outln!(
            "zone {name} added as its offline KSK side: policy {}; sign requests with: signet ksr sign {name} FILE",
            args.policy
        )?;
        return Ok(ExitCode::SUCCESS);
    };
    let (input, remotes) = args.input.resolve(output_path)?;
    let paths = ZonePaths { input: &input, output: output_path, remotes: &remotes };
    let (input, output) = add_zone(db, &name, &args.policy, &paths, ctx.now).await?;
    let next = match remotes.len() {
        0 => format!("sign it with: signet sign {name}"),
        _ => "signet serve transfers it from the primary, keeps the copy there, and signs it".to_owned(),
    };
    outln!("zone {name} added: policy {}, {} → {}; {next}", args.policy, input.display(), output.display())?;
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

async fn set_policy(db: &Database, ctx: &Context, name: &str, policy: &str) -> anyhow::Result<ExitCode> {
    let name = super::parse_origin(name)?;
    let old = db.set_zone_policy(&name, policy, ctx.now).await?;
    outln!("zone {name}: policy {old} → {policy}; the next run follows it")?;
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

async fn status(db: &Database, ctx: &Context, name: &str, audit: u32) -> anyhow::Result<ExitCode> {
    let snapshot = db.snapshot(&super::parse_origin(name)?).await?;
    let keys = key_report(&snapshot, ctx.now, &ParentView::read(db, &snapshot).await?);
    let zone = &snapshot.zone;
    let runs = db.runs(zone.id, 5).await?;
    let limit = if audit == 0 { i64::MAX } else { i64::from(audit) };
    let events = db.events(zone.id, limit).await?;
    let hook = db.review_hook(zone.id).await?;
    let reviews = db.reviews(zone.id, 5).await?;
    if ctx.format == Format::Json {
        let audit: Vec<_> = events.iter().map(audit_json).collect();
        let out = serde_json::json!({"zone": zone.name, "policy": zone.policy_name, "dnssec": dnssec_state(&snapshot), "serial": zone.last_serial,
            "last_run": zone.last_run_at, "next_run": zone.next_run_at, "keys": keys, "runs": runs, "audit": audit,
            "review_hook": hook, "reviews": reviews});
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
    outln!("dnssec {}", dnssec_state(&snapshot))?;
    print_review(hook.as_ref(), reviews.first(), &zone.name)?;
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
