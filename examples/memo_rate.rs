//! Measures what the gate's memo costs and saves on a signed zone: the
//! verification without a memo (as `signet verify`), with the memo being
//! collected (a full gate), and with the memo of that verification (a
//! gate after an unchanged re-publication); then the memo's own costs,
//! a lookup (hit and miss), serialization and reading back.
//!
//!     cargo run --release --example memo_rate -- ZONEFILE ORIGIN [NOW]
//!
//! Each verification runs three times; the medians are printed.

use std::sync::Arc;
use std::time::Instant;

use signet::verify::memo::digest;
use signet::verify::{NoProgress, SignatureMemo, VerifyOptions, verify_zone_with_memo};
use signet::zone::Name;

/// CPU seconds this process has used (user + system, /proc/self/stat):
/// steadier than wall time on a machine shared with other work.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 (11 and 12 after the name).
    (ticks(11) + ticks(12)) / 100.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(origin)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: memo_rate ZONEFILE ORIGIN [NOW]");
        std::process::exit(2);
    };
    let origin = Name::from_text(origin, None).expect("origin");
    let started = Instant::now();
    let zone = signet::read_zone_file(std::path::Path::new(file), &origin).expect("zone");
    println!("read {} records in {:.2} s", zone.len(), started.elapsed().as_secs_f64());
    let now = args.get(3).and_then(|n| n.parse().ok()).unwrap_or_else(signet::time::wall_clock);
    let base = VerifyOptions { now, ..VerifyOptions::default() };
    let mut memo = None;
    for (label, collect, with_memo) in [
        ("plain (signet verify)", false, false),
        ("full gate, collecting", true, false),
        ("gate with memo", true, true),
    ] {
        let (mut seconds, mut cpu) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let cpu_before = cpu_seconds();
            let options = VerifyOptions {
                collect_memo: collect,
                memo: if with_memo { memo.clone().map(Arc::new) } else { None },
                ..base.clone()
            };
            let verdict = verify_zone_with_memo(&zone, &options, &NoProgress);
            assert!(verdict.report.valid, "{}", verdict.report.to_text());
            seconds.push(verdict.report.stats.seconds);
            cpu.push(cpu_seconds() - cpu_before);
            if collect && !with_memo {
                memo = verdict.memo;
            }
            if with_memo && seconds.len() == 1 {
                let s = &verdict.report.stats;
                println!("  {} of {} RRSIGs from the memo", s.rrsigs_from_memo, s.rrsigs_verified);
            }
        }
        println!(
            "{label:<24} median {:.3} s wall, {:.2} s CPU  (wall {:.3?})",
            median(seconds.clone()),
            median(cpu),
            seconds
        );
    }
    let memo = memo.expect("collected");
    memo_costs(&memo);
}

/// Lookup, serialization and reading back of `memo`.
fn memo_costs(memo: &SignatureMemo) {
    let n = memo.len();
    let bytes = memo.to_bytes();
    let probes: Vec<[u8; 32]> = (0..n as u64).map(|i| digest(b"probe", &i.to_be_bytes(), b"")).collect();
    let started = Instant::now();
    let misses = probes.iter().filter(|p| memo.contains(p)).count();
    let miss_ns = started.elapsed().as_nanos() as f64 / n as f64;
    let members = SignatureMemo::from_bytes(&bytes).expect("reads back");
    let entries: Vec<[u8; 32]> = bytes[20..20 + n * 32].chunks_exact(32).map(|c| c.try_into().expect("32")).collect();
    let started = Instant::now();
    // In a scattered order, as the zone's RRSIGs come (a stride by a prime).
    let hits = (0..n).filter(|i| members.contains(&entries[(i * 1_000_003) % n])).count();
    let hit_ns = started.elapsed().as_nanos() as f64 / n as f64;
    assert_eq!((hits, misses), (n, 0));
    let data = vec![0x5a_u8; 150];
    let started = Instant::now();
    for i in 0..n as u64 {
        std::hint::black_box(digest(&[1; 68], &i.to_be_bytes(), &data));
    }
    let digest_ns = started.elapsed().as_nanos() as f64 / n as f64;
    let started = Instant::now();
    let bytes = memo.to_bytes();
    let to_bytes = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let back = SignatureMemo::from_bytes(&bytes).expect("reads back");
    let from_bytes = started.elapsed().as_secs_f64();
    assert_eq!(back.len(), n);
    println!("memo: {n} entries, {} bytes", bytes.len());
    println!("lookup: hit {hit_ns:.0} ns, miss {miss_ns:.0} ns; digest of a 150-byte input {digest_ns:.0} ns");
    println!("to_bytes {:.1} ms, from_bytes {:.1} ms", to_bytes * 1e3, from_bytes * 1e3);
}
