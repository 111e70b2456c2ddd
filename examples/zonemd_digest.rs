//! Times the ZONEMD digest (RFC 8976, SIMPLE) of a zone file alone: the
//! zone read, then `zone::zonemd::digests` for SHA-384, for SHA-512, and
//! for both in one pass, each the best of three.
//!
//!     cargo run --release --example zonemd_digest -- ZONEFILE ORIGIN
//!
//! prints `read records=… seconds=…`, then `digest hash=… seconds=…`.

use std::time::Instant;

use signet::zone::zonemd::{HASH_SHA384, HASH_SHA512, digests};
use signet::zone::{Name, read_zone_file};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(origin)) = (args.next(), args.next()) else {
        eprintln!("usage: zonemd_digest ZONEFILE ORIGIN");
        std::process::exit(2);
    };
    let origin = Name::from_text(&origin, None).expect("a valid origin");
    let started = Instant::now();
    let zone = read_zone_file(std::path::Path::new(&path), &origin).expect("the zone reads");
    println!("read records={} seconds={:.2}", zone.len(), started.elapsed().as_secs_f64());
    for (name, hashes) in
        [("sha384", &[HASH_SHA384][..]), ("sha512", &[HASH_SHA512]), ("both", &[HASH_SHA384, HASH_SHA512])]
    {
        let best = (0..3)
            .map(|_| {
                let started = Instant::now();
                let made = digests(&zone, hashes);
                assert_eq!(made.len(), hashes.len());
                started.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        println!("digest hash={name} seconds={best:.3}");
    }
}
