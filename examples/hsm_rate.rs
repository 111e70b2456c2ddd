//! Measures one key's signing rate from one thread (one PKCS#11 session),
//! the figure the signing benchmark compares SoftHSM runs against.
//!
//!     cargo run --release --example hsm_rate -- 'pkcs11:token=signet;id=%01…'
//!
//! prints `sign uri=… per_sec=N`. The PIN comes as for `signet sign`.

use std::time::{Duration, Instant};

use signet::keys::{KeyUri, open_key};

fn main() {
    let Some(text) = std::env::args().nth(1) else {
        eprintln!("usage: hsm_rate KEY-URI");
        std::process::exit(2);
    };
    let key = KeyUri::parse(&text).and_then(|uri| open_key(&uri)).unwrap_or_else(|e| {
        eprintln!("hsm_rate: {e}");
        std::process::exit(2);
    });
    // A typical signed-data size: an RRSIG prefix and a two-record RRset.
    let data = vec![0x5a_u8; 120];
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < Duration::from_secs(2) {
        if let Err(e) = key.sign(&data) {
            eprintln!("hsm_rate: {e}");
            std::process::exit(1);
        }
        count += 1;
    }
    println!("sign uri={} per_sec={:.0}", key.uri(), count as f64 / started.elapsed().as_secs_f64());
}
