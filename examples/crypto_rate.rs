//! Measures ring's single-core rate for the DNSSEC algorithms, the floor
//! that the benchmark scripts compare signet against.
//!
//!     cargo run --release --example crypto_rate -- 13
//!
//! prints `verify alg=13 per_sec=N` and `sign alg=13 per_sec=N`.

use std::time::{Duration, Instant};

use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use signet::verify::crypto::PublicKey;

/// Signs data, returning the signature.
type Signer = dyn Fn(&[u8]) -> Vec<u8>;

/// Runs `op` repeatedly for about a second; returns operations per second.
fn rate(mut op: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < Duration::from_secs(1) {
        for _ in 0..64 {
            op();
        }
        count += 64;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let algorithm: u8 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(13);
    let rng = SystemRandom::new();
    // A typical signed-data size: an RRSIG prefix and a two-record RRset.
    let data = vec![0x5a_u8; 120];
    let (public, sign): (Vec<u8>, Box<Signer>) = match algorithm {
        13 => {
            let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("keygen");
            let pair = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("key");
            let public = pair.public_key().as_ref()[1..].to_vec();
            (public, Box::new(move |d| pair.sign(&SystemRandom::new(), d).expect("sign").as_ref().to_vec()))
        }
        15 => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("keygen");
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key");
            let public = pair.public_key().as_ref().to_vec();
            (public, Box::new(move |d| pair.sign(d).as_ref().to_vec()))
        }
        other => {
            eprintln!("crypto_rate: algorithm {other} not measured (13 and 15 are)");
            std::process::exit(2);
        }
    };
    let signature = sign(&data);
    let key = PublicKey::from_dnskey(algorithm, &public).expect("public key");
    let verify_rate = rate(|| key.verify(&data, &signature).expect("verifies"));
    let sign_rate = rate(|| {
        sign(&data);
    });
    println!("verify alg={algorithm} per_sec={verify_rate:.0}");
    println!("sign alg={algorithm} per_sec={sign_rate:.0}");
}
