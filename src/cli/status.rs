//! `signet status [ZONE]`: each zone as an operator on call needs it,
//! from the database (whether or not `signet serve` runs).

use std::process::ExitCode;

use signet::manage::{ZoneStatus, zone_statuses};
use signet::time::{format_duration, format_minute};

use super::output::size;

use super::{Context, Format};

/// Prints the status of every zone, or of `zone`.
pub(super) async fn run(zone: Option<String>, ctx: &Context) -> anyhow::Result<ExitCode> {
    let db = ctx.open_db().await?;
    let name = zone.as_deref().map(super::parse_origin).transpose()?;
    let statuses = zone_statuses(&db, name.as_ref(), ctx.now).await?;
    if ctx.format == Format::Json {
        outln!("{}", serde_json::to_string_pretty(&statuses)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    match statuses.first().and_then(|s| s.service) {
        Some(service) => outln!("signet serve: running, pid {} since {}", service.pid, format_minute(service.since))?,
        None if statuses.is_empty() => outln!("no zones under management")?,
        None => outln!("signet serve: not running")?,
    }
    for status in &statuses {
        outln!()?;
        print_zone(status, ctx.now)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_zone(s: &ZoneStatus, now: i64) -> std::io::Result<()> {
    let serial = |serial: Option<i64>| serial.map_or("-".to_owned(), |s| s.to_string());
    let when = |at: i64| format!("{} ({})", format_minute(at), relative(at, now));
    outln!("zone {}  policy {}", s.zone, s.policy)?;
    outln!("  dnssec       {}", s.dnssec)?;
    outln!("  input        {}  serial {}", s.input, serial(s.input_serial))?;
    outln!("  published    {}  serial {}", s.output, serial(s.published_serial))?;
    if let Some(lease) = &s.lease {
        let state = if lease.live { "held by" } else { "expired, last held by" };
        outln!("  lease        {state} {} (fencing {}) since {}", lease.holder, lease.fencing, when(lease.since))?;
    }
    match &s.last_run {
        Some(run) => {
            outln!("  last run     {}: {} in {:.2} s: {}", when(run.at), run.result, run.seconds, run.message)?
        }
        None => outln!("  last run     never")?,
    }
    match &s.next_wake {
        Some(wake) => outln!("  next wake    {}: {}", when(wake.at), wake.why)?,
        None => outln!("  next wake    -")?,
    }
    match s.signatures_expire_at {
        Some(at) if s.signatures_expiring => {
            outln!("  signatures   expire {}: WITHIN THE REFRESH MARGIN, the zone must be signed again", when(at))?
        }
        Some(at) => outln!("  signatures   earliest expiry {}", when(at))?,
        None => outln!("  signatures   -")?,
    }
    match &s.offline {
        Some(cover) if s.responses_running_out => outln!(
            "  offline KSK  responses run out {}: A CEREMONY IS DUE (last period from {})",
            when(cover.expires),
            when(cover.last_start)
        )?,
        Some(cover) => outln!(
            "  offline KSK  responses reach {} (last period from {}); warning from {}",
            when(cover.expires),
            when(cover.last_start),
            when(cover.warn_from)
        )?,
        None => {}
    }
    print_gate(s, now)?;
    if let Some(hook) = &s.review_hook {
        outln!("  review hook  {} (timeout {} s)", hook.command.join(" "), hook.timeout)?;
    }
    if let Some(review) = &s.last_review {
        outln!("  review       {}", super::zone::describe_review(review, &s.zone))?;
    }
    match &s.last_failure {
        Some(f) if s.consecutive_failures > 0 => outln!(
            "  FAILING      {} run(s) in a row; last {}: {}: {}",
            s.consecutive_failures,
            when(f.at),
            f.result,
            f.message
        )?,
        Some(f) => outln!("  last failure {}: {}: {}", when(f.at), f.result, f.message)?,
        None => {}
    }
    let journal = &s.journal;
    match (journal.oldest_serial, journal.newest_serial) {
        (Some(oldest), Some(newest)) => outln!(
            "  journal      {} version(s), {}: serial {oldest} → {newest}",
            journal.versions,
            size(journal.bytes)
        )?,
        _ => outln!("  journal      empty")?,
    }
    print_transfers(s, now)?;
    print_parent(s, now)?;
    for todo in &s.todo {
        outln!("  TODO         {todo}")?;
    }
    Ok(())
}

/// The transfer in from the primaries, and each secondary.
fn print_transfers(s: &ZoneStatus, now: i64) -> std::io::Result<()> {
    let when = |at: i64| format!("{} ({})", format_minute(at), relative(at, now));
    let serial = |serial: Option<i64>| serial.map_or("-".to_owned(), |s| s.to_string());
    if let Some(t) = &s.transfer_in {
        let key = t.tsig_key.as_deref().map(|k| format!(", TSIG {k}")).unwrap_or_default();
        let checked = t.checked_at.map_or("never".to_owned(), when);
        outln!(
            "  primaries    {}{key}: serial {} (asked {checked})",
            t.primaries.join(", "),
            serial(t.primary_serial)
        )?;
        if let Some(last) = &t.last_transfer {
            let kind = last.kind.as_deref().unwrap_or("-");
            outln!(
                "  transfer in  {} serial {} {kind}, {} records",
                when(last.at),
                serial(last.serial),
                last.records.unwrap_or(0)
            )?;
        }
        if let Some(error) = &t.last_error {
            outln!("  TRANSFER IN FAILED {}: {}", when(error.at), error.message)?;
        }
    }
    for secondary in &s.secondaries {
        let acked = match (secondary.notified_serial, secondary.notify_acked_at) {
            (Some(n), Some(at)) => format!("NOTIFY for {n} acknowledged {}", when(at)),
            _ if secondary.notify => "no NOTIFY acknowledged".to_owned(),
            _ => "not notified".to_owned(),
        };
        let transfer = match &secondary.last_transfer {
            Some(t) => format!("{} of {} {}", t.kind.as_deref().unwrap_or("-"), serial(t.serial), when(t.at)),
            None => "no transfer".to_owned(),
        };
        let behind = match secondary.versions_behind {
            Some(0) => "; up to date".to_owned(),
            Some(n) => format!("; {n} version(s) behind"),
            None => String::new(),
        };
        outln!("  secondary    {}: {acked}; {transfer}{behind}", secondary.address)?;
        if let Some(notify) = &secondary.last_notify
            && let Some(error) = &notify.error
        {
            let answered = notify.answered.as_deref().unwrap_or("no answer");
            let at = notify.at.map(when).unwrap_or_default();
            outln!("  NOTIFY FAILED {at}: {answered}: {error}")?;
        }
    }
    if !s.notify_source.is_empty() || !s.transfer_source.is_empty() {
        let show = |ips: &[String]| if ips.is_empty() { "serve's".to_owned() } else { ips.join(" ") };
        outln!(
            "  sources      notify-source {}, transfer-source {}",
            show(&s.notify_source),
            show(&s.transfer_source)
        )?;
    }
    Ok(())
}

/// The parent's servers, what its check waits for, the last submission.
fn print_parent(s: &ZoneStatus, now: i64) -> std::io::Result<()> {
    let Some(parent) = &s.parent else { return Ok(()) };
    let when = |at: i64| format!("{} ({})", format_minute(at), relative(at, now));
    if !parent.servers.is_empty() {
        outln!("  parent       {}", parent.servers.join(", "))?;
    }
    for wait in &parent.waiting {
        let c = &wait.check;
        let next = c.next_at.map(|at| format!("; next check {}", when(at))).unwrap_or_default();
        outln!(
            "  DS check     key tag {}: waits for ds {} since {}, {} check(s){next}",
            wait.keytag,
            c.want,
            when(c.since),
            c.checks
        )?;
        if let Some(answers) = &c.answers {
            outln!("               last answers: {answers}")?;
        }
    }
    if let Some(sub) = &parent.submission {
        let via = sub.via.as_deref().unwrap_or("-");
        match (&sub.error, sub.submitted_at) {
            (Some(error), _) => outln!("  DS SUBMIT FAILED ({via}, {} attempt(s)): {error}", sub.attempts)?,
            (None, Some(at)) => outln!("  DS submitted {} by {via}: {}", when(at), sub.wanted)?,
            (None, None) => {}
        }
    }
    Ok(())
}

/// The gate's memo and its full verifications.
fn print_gate(s: &ZoneStatus, now: i64) -> std::io::Result<()> {
    let when = |at: i64| format!("{} ({})", format_minute(at), relative(at, now));
    match &s.gate_memo {
        Some(memo) => outln!(
            "  gate memo    {} signatures, of serial {} ({})",
            memo.entries,
            memo.serial.map_or("-".to_owned(), |s| s.to_string()),
            format_minute(memo.made_at)
        )?,
        None => outln!("  gate memo    none: the next run verifies every signature")?,
    }
    let last = s.last_full_verification.map_or("never".to_owned(), when);
    let next = match (s.full_verification_requested, s.full_verification_due) {
        (Some(at), _) => format!("asked for {}: the next run", when(at)),
        (None, Some(due)) if due <= now => "the next run".to_owned(),
        (None, Some(due)) => format!("due {}", when(due)),
        (None, None) => "every run (gate.full-verification-interval = 0)".to_owned(),
    };
    outln!("  full verify  last {last}; next {next}")
}

/// `in 3h 5m` or `5m ago`.
fn relative(at: i64, now: i64) -> String {
    match at.cmp(&now) {
        std::cmp::Ordering::Greater => format!("in {}", format_duration(at - now)),
        std::cmp::Ordering::Equal => "now".to_owned(),
        std::cmp::Ordering::Less => format!("{} ago", format_duration(now - at)),
    }
}
