//! `signet verify`: the full-zone verifier on a zone file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use signet::verify::{VerifyOptions, read_anchor_file, verify_zone_with_progress};
use signet::zone::read_zone_file;

use super::Format;
use super::progress::TerminalProgress;

/// Arguments of `signet verify`.
#[derive(Debug, Args)]
pub(super) struct VerifyArgs {
    /// The signed zone file.
    zonefile: PathBuf,
    /// The zone's origin (apex name).
    #[arg(long)]
    origin: String,
    /// A file of DS or DNSKEY records for the apex that the DNSKEY RRset
    /// must be signed by (the parent's DS). Without it, a key with the
    /// SEP bit must sign the DNSKEY RRset.
    #[arg(long)]
    trust_anchor: Option<PathBuf>,
    /// Every RRSIG must remain valid at least this long (e.g. 2d, 12h).
    #[arg(long, value_parser = humantime::parse_duration)]
    min_validity: Option<std::time::Duration>,
    /// A zone without a DNSKEY RRset is acceptable (a zone gone
    /// insecure): it must then hold no DNSSEC record at all.
    #[arg(long)]
    allow_unsigned: bool,
}

/// Runs `signet verify`: exit 0 valid, 1 errors found, 2 unreadable input.
pub(super) fn run(args: VerifyArgs, now: Option<i64>, format: Format) -> anyhow::Result<ExitCode> {
    let origin = super::parse_origin(&args.origin)?;
    let trust_anchor = args.trust_anchor.as_deref().map(|path| read_anchor_file(path, &origin)).transpose()?;
    let started = std::time::Instant::now();
    let zone = read_zone_file(&args.zonefile, &origin)?;
    tracing::info!(records = zone.len(), seconds = started.elapsed().as_secs_f64(), "zone read");
    let options = VerifyOptions {
        now: now.unwrap_or_else(signet::time::wall_clock),
        min_validity: args.min_validity.map_or(0, |d| d.as_secs() as i64),
        trust_anchor,
        allow_unsigned: args.allow_unsigned,
        ..VerifyOptions::default()
    };
    let report = verify_zone_with_progress(&zone, &options, &TerminalProgress::new());
    match format {
        Format::Text => out!("{}", report.to_text())?,
        Format::Json => outln!("{}", serde_json::to_string_pretty(&report)?)?,
    }
    Ok(if report.valid { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
