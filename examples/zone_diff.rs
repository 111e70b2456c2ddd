//! Measures `ZoneDiff::between` (and the journal's encoding) on two
//! versions of a zone, the figure docs/benchmarks.md gives beside a full sign.
//!
//!     cargo run --release --example zone_diff -- OLD NEW ORIGIN
//!
//! prints the records of each version, the wall time of each step (of
//! `between`, the median of five runs), the
//! records removed and added, the encoding's size, and the process's
//! resident memory before and after the diff (VmRSS) and its peak (VmHWM),
//! and the time to commit the encoded diff with a publication into a
//! scratch database.

use std::path::Path;
use std::time::Instant;

use signet::db::{Database, DbLocation, JournalEntry, NewZone, RunCommit, RunRecord, RunResult};
use signet::policy::JournalPolicy;
use signet::zone::diff::{EncodedDiff, ZoneDiff};
use signet::zone::{Name, read_zone_file};

/// How many times `between` is timed.
const RUNS: usize = 5;

/// A `/proc/self/status` figure in MiB (`VmRSS`, `VmHWM`).
fn memory(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [old, new, origin] = args.as_slice() else {
        return Err("usage: zone_diff OLD NEW ORIGIN".into());
    };
    let origin = Name::from_text(origin, None)?;
    let started = Instant::now();
    let old = read_zone_file(Path::new(old), &origin)?;
    let new = read_zone_file(Path::new(new), &origin)?;
    println!("read: {:.2} s, {} and {} records", started.elapsed().as_secs_f64(), old.len(), new.len());
    let rss_before = memory("VmRSS:");
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let diff = ZoneDiff::between(&old, &new)?;
        times.push(started.elapsed().as_secs_f64());
        drop(diff);
    }
    times.sort_by(f64::total_cmp);
    let diff = ZoneDiff::between(&old, &new)?;
    let rss_after = memory("VmRSS:");
    let between =
        format!("median {:.3} s of {RUNS} (min {:.3}, max {:.3})", times[RUNS / 2], times[0], times[RUNS - 1]);
    println!(
        "between: {between}, {} removed, {} added, serial {} -> {}; RSS {rss_before:.0} -> {rss_after:.0} MiB",
        diff.removed_len(),
        diff.added_len(),
        diff.old_serial(),
        diff.new_serial()
    );
    let started = Instant::now();
    let encoded = diff.encode()?;
    println!("encode: {:.3} s, {} bytes", started.elapsed().as_secs_f64(), encoded.bytes.len());
    let started = Instant::now();
    let decoded = ZoneDiff::decode(&encoded.bytes)?;
    println!(
        "decode: {:.3} s, {} + {} records",
        started.elapsed().as_secs_f64(),
        decoded.removed_len(),
        decoded.added_len()
    );
    drop(decoded);
    let started = Instant::now();
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(commit(&origin, encoded))?;
    println!("commit into a scratch database: {:.3} s", started.elapsed().as_secs_f64());
    println!("peak RSS (VmHWM): {:.0} MiB", memory("VmHWM:"));
    Ok(())
}

/// Commits a publication with `diff` into a new database, as a managed
/// run does (one transaction, full sync).
async fn commit(origin: &Name, diff: EncodedDiff) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = Database::open(&DbLocation::File(dir.path().join("signet.db")), true).await?;
    db.import_policy("p", "", 0).await?;
    let zone = NewZone { name: origin, policy: "p", input: "in", output: "out", salt: &[], remotes: &[] };
    let id = db.add_zone(&zone, 0).await?;
    let run = RunRecord { serial: Some(diff.new_serial), result: RunResult::Published, ..RunRecord::default() };
    let diff = Some(JournalEntry { diff, bounds: JournalPolicy::default() });
    let commit = RunCommit { diff, ..RunCommit::publication(run) };
    db.commit_run(id, &commit).await?;
    Ok(())
}
