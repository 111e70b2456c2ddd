//! A child zone's neighbours in an end-to-end test, each on its own
//! loopback address: Knot as the parent registry (signing `test.`-like
//! zones itself, taking the child's DS by UPDATE with TSIG from signet
//! serve's address only), NSD as the child's secondary, and a validating
//! Unbound that trusts the parent's KSK.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use super::dns_servers::{
    Server, Tsig, UnboundConfig, delegating_parent_text, free_addr, knot_ksk, knotd_signing_parent_at,
    nsd_secondary_of, random_base, soa_serial, unbound_resolver,
};
use super::serve::{Serve, wait_for};

/// How long the first transfer to NSD, or the parent's first key, may take.
const SETTLE: Duration = Duration::from_secs(90);

/// Knot up as the parent of `zone`; the addresses serve and NSD are to
/// listen on.
pub struct KnotParent {
    pub knot: Server,
    pub tsig: Tsig,
    /// Where signet serve listens (the only address Knot takes UPDATE from).
    pub serve_addr: SocketAddr,
    /// Where NSD listens ([`KnotParent::nsd`]).
    pub nsd_addr: SocketAddr,
    parent: String,
    zone: String,
}

impl KnotParent {
    /// Knot signing `parent`, which delegates `zone` (every record with
    /// `ttl`), in `dir/knot`.
    pub fn start(dir: &Path, parent: &str, zone: &str, ttl: u32) -> KnotParent {
        let at = random_base();
        let (serve_addr, knot_addr, nsd_addr) = (free_addr(at(1)), free_addr(at(2)), free_addr(at(3)));
        let tsig = Tsig::generate("registry");
        let text = delegating_parent_text(parent, zone, ttl);
        let knot = knotd_signing_parent_at(knot_addr, &dir.join("knot"), parent, &text, &[serve_addr.ip()], &tsig);
        KnotParent { knot, tsig, serve_addr, nsd_addr, parent: parent.to_owned(), zone: zone.to_owned() }
    }

    /// Tells signet (through `ok`, a command on its database) the TSIG key
    /// and to send the zone's DS to Knot by UPDATE.
    pub fn register_updates(&self, dir: &Path, ok: impl Fn(&[&str]) -> Output) {
        let secret = dir.join("registry.key");
        self.tsig.write_secret_file(&secret);
        ok(&["tsig", "add", &self.tsig.name, "--secret-file", secret.to_str().expect("utf-8")]);
        let knot = self.knot.addr().to_string();
        ok(&["zone", "parent-update", "add", &self.zone, &knot, "--tsig", &self.tsig.name]);
    }

    /// NSD in `dir/nsd` as the secondary of `serve`, once it serves the zone.
    pub fn nsd(&self, dir: &Path, serve: &Serve) -> Server {
        let nsd = nsd_secondary_of(self.nsd_addr, &dir.join("nsd"), &[(&self.zone, self.serve_addr)], None);
        wait_for(SETTLE, || soa_serial(nsd.addr(), &self.zone))
            .unwrap_or_else(|w| panic!("NSD serves nothing after {w:?}\n{}", serve.tail()));
        nsd
    }

    /// Unbound in `dir` trusting the parent's KSK, reaching the parent at
    /// Knot and the zone at `nsd`, with `extra` `server:` lines.
    pub fn resolver(&self, dir: &Path, nsd: &Server, extra: &str) -> Server {
        let anchor = wait_for(SETTLE, || knot_ksk(self.knot.addr(), &self.parent)).expect("Knot's KSK");
        let config = UnboundConfig {
            stubs: vec![(self.parent.clone(), self.knot.addr()), (self.zone.clone(), nsd.addr())],
            trust_anchors: vec![anchor],
            extra: extra.to_owned(),
        };
        unbound_resolver(dir, &config)
    }
}
