//! Measures the signing rate of keys in a PKCS#11 token, one signing
//! thread (so one session) unless told otherwise.
//!
//!     eval "$(hsm/make-token.sh /tmp/signet-hsm)"
//!     SIGNET_PKCS11_PIN=1234 cargo run --release --example pkcs11_rate -- [TOKEN] [PROBES] [THREADS]
//!
//! makes a throwaway ECDSAP256SHA256 and RSASHA256-2048 key in the token
//! (default `signet`; they stay there), signs PROBES probes (default 2000)
//! with each, checks every signature against the DNSKEY, and prints
//! `pkcs11 sign alg=13 threads=1 probes=2000 per_sec=N`.

use std::time::Instant;

use signet::keys::{Algorithm, KeyUri, SigningKey, generate_key};
use signet::verify::crypto::PublicKey;

fn main() {
    let mut args = std::env::args().skip(1);
    let token = args.next().unwrap_or_else(|| "signet".to_owned());
    let probes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1).max(1);
    let store = KeyUri::parse(&format!("pkcs11:token={token}")).expect("store URI");
    for algorithm in [Algorithm::EcdsaP256Sha256, Algorithm::RsaSha256] {
        let key = generate_key(&store, algorithm, None, "rate-probe").unwrap_or_else(|e| {
            eprintln!("pkcs11_rate: {e}");
            std::process::exit(1);
        });
        let per_sec = measure(key.as_ref(), probes, threads);
        println!("pkcs11 sign alg={} threads={threads} probes={probes} per_sec={per_sec:.0}", algorithm.number());
    }
}

/// Signs `probes` probes from `threads` threads; returns signatures per
/// second (signing only: the checks come afterwards).
fn measure(key: &dyn SigningKey, probes: usize, threads: usize) -> f64 {
    let probe = |n: usize| format!("signet rate probe {n:08}").into_bytes();
    let started = Instant::now();
    let signatures: Vec<Vec<u8>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..probes).step_by(threads).map(|n| (n, key.sign(&probe(n)).expect("sign"))).collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<_> = workers.into_iter().flat_map(|w| w.join().expect("signing thread")).collect();
        all.sort_by_key(|(n, _)| *n);
        all.into_iter().map(|(_, s)| s).collect()
    });
    let per_sec = probes as f64 / started.elapsed().as_secs_f64();
    let public = PublicKey::from_dnskey(key.algorithm().number(), key.public_key()).expect("DNSKEY");
    for (n, signature) in signatures.iter().enumerate() {
        public.verify(&probe(n), signature).expect("every signature verifies");
    }
    per_sec
}
