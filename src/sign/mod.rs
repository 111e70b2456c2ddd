//! The signer: the unsigned zone in, the signed zone out, as master-file
//! text (`signet sign`) or as a zone in memory (the service). Sort and
//! prepare the records (`prepare`), make the NSEC or NSEC3 chain
//! (`denial`), sign every authoritative RRset with every key of its kind
//! (`rrsig`), on all cores, and put out the result in canonical order (the
//! NSEC3 chain last).
//!
//! What is made is not yet published: the gate (`manage::gate`) has the
//! verifier judge it first (the file read back, or the zone in memory).

pub(crate) mod changes;
pub(crate) mod denial;
pub(crate) mod prepare;
pub(crate) mod reuse;
pub(crate) mod rrsig;
pub(crate) mod serial;
pub(crate) mod zonemd;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

pub use changes::{Basis, sign_changes};
pub use denial::Nsec3Settings;
pub use prepare::check_input;
pub use rrsig::Window;

use crate::keys::{KeyError, PublishedKey, SigningKey};
use crate::policy::{DenialType, Policy, SerialScheme};
use crate::zone::content::Violation;
use crate::zone::tree::{ZoneNode, ZoneTree};
use crate::zone::writer::write_record;
use crate::zone::{NameRef, Node, RecordRef, Rtype, Zone, ZoneBuilder};
use reuse::Previous;
use rrsig::{RrsetToSign, canonical_records, sign_rrset};

/// Why a zone could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// No SOA at the apex, or more than one.
    #[error("no usable SOA record at the apex {apex}")]
    NoSoa {
        /// The apex.
        apex: String,
    },
    /// The input breaks zone content rules ([`crate::zone::content`]).
    #[error("{}", content_refusal(.0))]
    Content(Vec<Violation>),
    /// A record whose TTL is above the policy's `zone.max-ttl`: rollover
    /// timing relies on that bound.
    #[error("{owner}/{rtype}: TTL {ttl} exceeds the policy's zone.max-ttl ({max} s)")]
    TtlAboveMax {
        /// Owner.
        owner: String,
        /// Type.
        rtype: Rtype,
        /// Its TTL.
        ttl: u32,
        /// The policy's maximum.
        max: i64,
    },
    /// No key to sign the DNSKEY RRset, or none to sign the rest.
    #[error("no {0} key: the DNSKEY RRset needs a KSK or CSK, the zone a ZSK or CSK")]
    MissingRole(&'static str),
    /// Two names with one NSEC3 hash.
    #[error("NSEC3 hash collision between {first} and {second}: choose another salt")]
    Nsec3Collision {
        /// One name.
        first: String,
        /// The other.
        second: String,
    },
    /// The apex is too long for a hashed label under it.
    #[error("the apex {apex} leaves no room for an NSEC3 owner name (255 octets)")]
    ApexTooLongForNsec3 {
        /// The apex.
        apex: String,
    },
    /// A key failed to sign.
    #[error("{owner}/{rtype} (keytag={key_tag})")]
    Key {
        /// Owner of the RRset being signed.
        owner: String,
        /// Its type.
        rtype: Rtype,
        /// The key's tag.
        key_tag: u16,
        /// The key store's error.
        source: Box<KeyError>,
    },
    /// The system's random number generator failed (NSEC3 salt).
    #[error("no randomness for the NSEC3 salt")]
    NoRandomness,
    /// The caller asked the signer to stop (a service shutting down).
    #[error("stopped before the zone was signed in full")]
    Stopped,
    /// The output could not be written.
    #[error("writing the signed zone")]
    Write(#[from] std::io::Error),
}

/// A fresh NSEC3 salt of `len` octets.
pub fn random_salt(len: u8) -> Result<Vec<u8>, SignError> {
    use ring::rand::SecureRandom as _;
    let mut salt = vec![0; usize::from(len)];
    ring::rand::SystemRandom::new().fill(&mut salt).map_err(|_| SignError::NoRandomness)?;
    Ok(salt)
}

/// Violations listed in an error message, at most this many.
const VIOLATIONS_LISTED: usize = 100;

/// `the zone breaks content rules (N violations):` and one line each.
fn content_refusal(violations: &[Violation]) -> String {
    let count = violations.len();
    let mut text = format!("the zone breaks content rules ({count} violation{}):", if count == 1 { "" } else { "s" });
    for violation in violations.iter().take(VIOLATIONS_LISTED) {
        text.push_str(&format!("\n  {violation}"));
    }
    if violations.len() > VIOLATIONS_LISTED {
        text.push_str(&format!("\n  … and {} more", violations.len() - VIOLATIONS_LISTED));
    }
    text
}

/// A key that signs, with the tag of the DNSKEY it is published as.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The private key, in its store.
    pub key: &'a dyn SigningKey,
    /// Key tag of its DNSKEY.
    pub tag: u16,
}

/// Which keys the zone publishes and which sign what.
#[derive(Debug, Default)]
pub struct SigningKeys<'a> {
    /// The DNSKEY RRset.
    pub published: Vec<PublishedKey>,
    /// Keys that sign the DNSKEY, CDS and CDNSKEY RRsets.
    pub key_signers: Vec<Signer<'a>>,
    /// Keys that sign every other RRset.
    pub zone_signers: Vec<Signer<'a>>,
    /// Keys published as CDS and CDNSKEY (the DS set wanted at the parent).
    pub cds: Vec<PublishedKey>,
    /// Publish the CDS and CDNSKEY "delete" records (RFC 8078 §4) instead:
    /// the zone goes insecure.
    pub cds_delete: bool,
    /// No key at all, by intent: the zone is put out unsigned (a zone gone
    /// insecure), without DNSKEY, RRSIG, NSEC, NSEC3 or NSEC3PARAM.
    /// Without it, a zone with no signer is an error.
    pub unsigned: bool,
    /// The apex's key RRsets made and signed elsewhere (an offline KSK's
    /// response): published as they are, with their RRSIGs, in place of
    /// `published`, `cds` and the signatures of `key_signers` (which is
    /// then empty).
    pub presigned: Option<&'a PresignedKeys>,
}

/// The DNSKEY, CDS and CDNSKEY RRsets of the apex and their RRSIGs, as an
/// offline KSK signed them for one period ([`SigningKeys::presigned`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PresignedKeys {
    /// The DNSKEY, CDS and CDNSKEY records: type, TTL, RDATA.
    pub records: Vec<(Rtype, u32, Vec<u8>)>,
    /// The RRSIG RDATA over them.
    pub rrsigs: Vec<Vec<u8>>,
}

impl PresignedKeys {
    /// The RRSIGs over `rtype`.
    fn rrsigs_over(&self, rtype: Rtype) -> impl Iterator<Item = &[u8]> {
        self.rrsigs.iter().map(Vec::as_slice).filter(move |r| r.get(..2) == Some(&rtype.0.to_be_bytes()[..]))
    }
}

/// The RRSIG RDATA `signer` makes over one RRset of the apex (an offline
/// KSK signing the DNSKEY, CDS and CDNSKEY RRsets of a response's
/// period) valid over `window`.
pub fn sign_apex_rrset(
    apex: NameRef<'_>,
    rtype: Rtype,
    ttl: u32,
    rdatas: &[&[u8]],
    signer: &Signer<'_>,
    window: &Window,
) -> Result<Vec<u8>, SignError> {
    let rrset = RrsetToSign { owner: apex, rtype, ttl, rdatas: rdatas.to_vec() };
    sign_rrset(&rrset, &canonical_records(&rrset, 1), signer, apex, window)
}

/// Which denial of existence to make.
#[derive(Debug, Clone)]
pub enum Denial {
    /// NSEC.
    Nsec,
    /// NSEC3 with these settings.
    Nsec3(Nsec3Settings),
}

/// Everything a signing run needs besides the zone and keys.
#[derive(Debug, Clone)]
pub struct SignSettings {
    /// The time of signing (Unix seconds).
    pub now: i64,
    /// Validity of signatures over zone data.
    pub zone_window: Window,
    /// Validity of signatures over DNSKEY, CDS and CDNSKEY.
    pub key_window: Window,
    /// NSEC or NSEC3.
    pub denial: Denial,
    /// TTL of the DNSKEY RRset and CDS/CDNSKEY.
    pub dnskey_ttl: u32,
    /// The largest TTL allowed in the input.
    pub max_ttl: i64,
    /// SOA serial scheme.
    pub serial: SerialScheme,
    /// The serial last published, if known.
    pub last_serial: Option<u32>,
    /// CDS digest type.
    pub cds_digest: u8,
    /// A signature of the previous version with less validity left than
    /// this is made anew (refresh plus pre-refresh).
    pub renew_within: i64,
    /// The hash algorithms of the apex ZONEMD (RFC 8976 §5.3); empty for
    /// no ZONEMD.
    pub zonemd: Vec<u8>,
}

impl SignSettings {
    /// The settings a policy gives at `now`; `salt` is the NSEC3 salt to use
    /// (of the policy's length).
    pub fn from_policy(policy: &Policy, now: i64, salt: Vec<u8>) -> SignSettings {
        let s = &policy.signatures;
        let window = |validity: i64| Window {
            inception: now - s.inception_offset,
            expiration: now + validity,
            jitter: s.jitter,
        };
        let denial = match policy.denial.kind {
            DenialType::Nsec => Denial::Nsec,
            DenialType::Nsec3 => Denial::Nsec3(Nsec3Settings {
                iterations: policy.denial.iterations,
                salt,
                opt_out: policy.denial.opt_out,
            }),
        };
        SignSettings {
            now,
            zone_window: window(s.validity),
            key_window: window(s.dnskey_validity),
            denial,
            dnskey_ttl: policy.keys.dnskey_ttl as u32,
            max_ttl: policy.zone.max_ttl,
            serial: policy.zone.serial,
            last_serial: None,
            cds_digest: policy.parent.digest.number(),
            renew_within: s.renew_within(),
            zonemd: policy.zone.zonemd.iter().map(|hash| hash.number()).collect(),
        }
    }
}

impl SignSettings {
    /// What decides the records and signatures the signer makes for an
    /// RRset that did not change: the keys and which sign what, the
    /// denial settings, TTLs, and the validity windows relative to the
    /// time of signing. Two runs with one fingerprint would keep the same
    /// signatures of an unchanged RRset, which lets the change path
    /// ([`sign_changes`]) carry them over without looking. In memory only
    /// (the hash is not stable across builds).
    pub fn fingerprint(&self, keys: &SigningKeys<'_>) -> u64 {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        for window in [&self.zone_window, &self.key_window] {
            (self.now - window.inception, window.expiration - self.now, window.jitter).hash(&mut h);
        }
        format!("{:?} {:?} {:?}", self.denial, self.serial, self.zonemd).hash(&mut h);
        (self.dnskey_ttl, self.max_ttl, self.cds_digest, self.renew_within).hash(&mut h);
        for key in keys.published.iter().chain(&keys.cds) {
            key.rdata.hash(&mut h);
        }
        (keys.presigned, keys.cds_delete, keys.unsigned).hash(&mut h);
        for (kind, signers) in [(0u8, &keys.key_signers), (1, &keys.zone_signers)] {
            for signer in signers {
                (kind, signer.tag, signer.key.algorithm().number(), signer.key.public_key()).hash(&mut h);
            }
        }
        h.finish()
    }
}

/// What a signing run made.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SignStats {
    /// The SOA serial published.
    pub serial: u32,
    /// Owner names in the signed zone (NSEC3 owners included).
    pub names: u64,
    /// Records written.
    pub records: u64,
    /// RRSIGs made.
    pub rrsigs: u64,
    /// RRSIGs kept from the previous version.
    pub rrsigs_kept: u64,
    /// NSEC or NSEC3 records made.
    pub denial_records: u64,
    /// Input DNSSEC records dropped and made anew.
    pub dropped: u64,
}

/// Nodes per parallel task, and per batch written before the next starts
/// (bounds the text held in memory).
const NODES_PER_TASK: usize = 256;
const NODES_PER_BATCH: usize = 64 * 1024;

/// Signs `unsigned` with `keys` and writes the signed zone to `out`. The
/// unsigned zone is dropped as soon as the zone to sign is prepared, so
/// that a large zone is not held twice.
pub fn sign_zone(
    unsigned: Zone,
    keys: &SigningKeys<'_>,
    settings: &SignSettings,
    out: &mut dyn Write,
) -> Result<SignStats, SignError> {
    let _span = tracing::info_span!("sign", zone = %unsigned.origin()).entered();
    let prepared = prepare_to_sign(&unsigned, keys, settings)?;
    drop(unsigned);
    sign_prepared_to_text(prepared, keys, settings, None, None, out)
}

/// [`sign_zone`], keeping the signatures of `previous` (the version last
/// published) that may be kept ([`reuse`]), and stopping with
/// [`SignError::Stopped`] once `stop` is set: looked at before every task
/// of a few hundred names, so that a service stopping is not held up by a
/// large zone (nor cut off in the middle of an HSM call).
pub fn sign_zone_until(
    unsigned: &Zone,
    keys: &SigningKeys<'_>,
    settings: &SignSettings,
    previous: Option<&Zone>,
    stop: Option<&AtomicBool>,
    out: &mut dyn Write,
) -> Result<SignStats, SignError> {
    let _span = tracing::info_span!("sign", zone = %unsigned.origin()).entered();
    let prepared = prepare_to_sign(unsigned, keys, settings)?;
    sign_prepared_to_text(prepared, keys, settings, previous, stop, out)
}

fn sign_prepared_to_text(
    prepared: prepare::Prepared,
    keys: &SigningKeys<'_>,
    settings: &SignSettings,
    previous: Option<&Zone>,
    stop: Option<&AtomicBool>,
    out: &mut dyn Write,
) -> Result<SignStats, SignError> {
    if !settings.zonemd.is_empty() {
        // The apex ZONEMD needs the whole signed zone first: signed in
        // memory, its digest filled in, then written (on all cores).
        let (signed, stats) = sign_prepared_in_memory(prepared, keys, settings, previous, stop)?;
        crate::zone::writer::write_zone(&signed, out)?;
        return Ok(stats);
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out);
    let stats = sign_prepared(&prepared, keys, settings, previous, stop, |text: String| {
        out.write_all(text.as_bytes()).map_err(SignError::Write)
    })?;
    out.flush()?;
    Ok(stats)
}

/// [`sign_zone_until`] into memory: the signed zone as an arena, without
/// text. What a service signs: the verifier then walks the very records
/// made here, and the service serves them.
pub fn sign_zone_in_memory(
    unsigned: &Zone,
    keys: &SigningKeys<'_>,
    settings: &SignSettings,
    previous: Option<&Zone>,
    stop: Option<&AtomicBool>,
) -> Result<(Zone, SignStats), SignError> {
    let _span = tracing::info_span!("sign", zone = %unsigned.origin()).entered();
    let prepared = prepare_to_sign(unsigned, keys, settings)?;
    sign_prepared_in_memory(prepared, keys, settings, previous, stop)
}

/// The prepared zone signed into an arena, its apex ZONEMD (if any)
/// filled in last.
fn sign_prepared_in_memory(
    prepared: prepare::Prepared,
    keys: &SigningKeys<'_>,
    settings: &SignSettings,
    previous: Option<&Zone>,
    stop: Option<&AtomicBool>,
) -> Result<(Zone, SignStats), SignError> {
    let mut signed = ZoneBuilder::with_room_of(&prepared.zone);
    let mut stats = sign_prepared(&prepared, keys, settings, previous, stop, |piece: ZoneBuilder| {
        signed.append(piece);
        Ok(())
    })?;
    drop(prepared);
    tracing::debug!("signed pieces made");
    let signed = signed.finish();
    tracing::debug!("signed zone in canonical order");
    // The nodes came in canonical order and the NSEC3 chain after them, in
    // order too: the sort is one merge of two stretches.
    let signed = zonemd::fill(signed, keys, settings, previous, &mut stats)?;
    Ok((signed, stats))
}

/// The zone to sign, checked to have signers of both kinds.
fn prepare_to_sign(
    unsigned: &Zone,
    keys: &SigningKeys<'_>,
    settings: &SignSettings,
) -> Result<prepare::Prepared, SignError> {
    check_signers(keys)?;
    prepare::prepare(unsigned, keys, settings)
}

/// Are there signers of both kinds?
fn check_signers(keys: &SigningKeys<'_>) -> Result<(), SignError> {
    if keys.unsigned {
        return Ok(());
    }
    if keys.key_signers.is_empty() && keys.presigned.is_none() {
        return Err(SignError::MissingRole("key-signing"));
    }
    if keys.zone_signers.is_empty() {
        return Err(SignError::MissingRole("zone-signing"));
    }
    Ok(())
}

/// Signs the prepared zone on all cores and hands the output to `emit`
/// piece by piece, in canonical order (the NSEC3 chain last).
fn sign_prepared<S: Sink>(
    prepared: &prepare::Prepared,
    keys: &SigningKeys<'_>,
    settings: &SignSettings,
    previous: Option<&Zone>,
    stop: Option<&AtomicBool>,
    mut emit: impl FnMut(S) -> Result<(), SignError>,
) -> Result<SignStats, SignError> {
    let zone = &prepared.zone;
    tracing::debug!("zone prepared");
    let tree = ZoneTree::build(zone);
    tracing::debug!(names = tree.nodes.len(), "its tree built");
    // An unsigned zone keeps no signature and has no chain.
    let unsigned = keys.unsigned;
    let previous = previous.filter(|_| !unsigned).map(|old| Previous::new(old, settings.now, settings.renew_within));
    let run = Run { zone, keys, settings, denial_ttl: prepared.denial_ttl, previous: previous.as_ref(), stop };
    let mut stats = SignStats { serial: prepared.serial, dropped: prepared.dropped as u64, ..SignStats::default() };
    let nsec_next = (!unsigned && matches!(settings.denial, Denial::Nsec)).then(|| denial::nsec_next(&tree));
    for (b, batch) in tree.nodes.chunks(NODES_PER_BATCH).enumerate() {
        let first = b * NODES_PER_BATCH;
        let pieces: Vec<(S, SignStats)> = batch
            .par_chunks(NODES_PER_TASK)
            .enumerate()
            .map(|(t, task)| {
                let start = first + t * NODES_PER_TASK;
                run.nodes_out(&tree, start, task, nsec_next.as_deref())
            })
            .collect::<Result<_, _>>()?;
        for (piece, counts) in pieces {
            emit(piece)?;
            stats.add(&counts);
        }
    }
    if let Denial::Nsec3(nsec3) = &settings.denial
        && !unsigned
    {
        let chain = denial::nsec3_chain(&tree, zone.origin(), nsec3)?;
        let pieces: Vec<(S, SignStats)> =
            chain.par_chunks(NODES_PER_TASK).map(|task| run.nsec3_out(task)).collect::<Result<_, _>>()?;
        for (piece, counts) in pieces {
            emit(piece)?;
            stats.add(&counts);
        }
    }
    tracing::debug!(rrsigs = stats.rrsigs, records = stats.records, serial = stats.serial, "zone signed");
    Ok(stats)
}

/// Where the signer puts the records of one task: master-file text, or a
/// piece of the arena of the zone in memory.
trait Sink: Send + Sized {
    /// An empty piece for about `nodes` names of `zone`.
    fn for_nodes(zone: &Zone, nodes: usize) -> Self;
    /// Adds one record.
    fn record(&mut self, record: RecordRef<'_>, class: u16);
}

impl Sink for String {
    fn for_nodes(_zone: &Zone, nodes: usize) -> String {
        String::with_capacity(nodes * 256)
    }

    fn record(&mut self, record: RecordRef<'_>, class: u16) {
        write_record(record, class, self);
        self.push('\n');
    }
}

impl Sink for ZoneBuilder {
    fn for_nodes(zone: &Zone, nodes: usize) -> ZoneBuilder {
        ZoneBuilder::with_capacity_for_text(zone.origin().to_owned(), zone.class(), nodes * 256)
    }

    fn record(&mut self, record: RecordRef<'_>, _class: u16) {
        self.push(record.owner, record.rtype, record.ttl, record.rdata);
    }
}

impl SignStats {
    fn add(&mut self, other: &SignStats) {
        self.names += other.names;
        self.records += other.records;
        self.rrsigs += other.rrsigs;
        self.rrsigs_kept += other.rrsigs_kept;
        self.denial_records += other.denial_records;
    }
}

/// One signing run's shared state.
struct Run<'a> {
    zone: &'a Zone,
    keys: &'a SigningKeys<'a>,
    settings: &'a SignSettings,
    denial_ttl: u32,
    previous: Option<&'a Previous<'a>>,
    stop: Option<&'a AtomicBool>,
}

impl Run<'_> {
    fn check_stop(&self) -> Result<(), SignError> {
        match self.stop {
            Some(stop) if stop.load(Ordering::Relaxed) => Err(SignError::Stopped),
            _ => Ok(()),
        }
    }

    /// The nodes `task` (starting at index `start`), each with its RRSIGs
    /// and NSEC.
    fn nodes_out<S: Sink>(
        &self,
        tree: &ZoneTree<'_>,
        start: usize,
        task: &[ZoneNode<'_>],
        nsec_next: Option<&[Option<u32>]>,
    ) -> Result<(S, SignStats), SignError> {
        self.check_stop()?;
        let mut out = S::for_nodes(self.zone, task.len());
        let mut stats = SignStats::default();
        let mut previous = self.previous.zip(task.first()).map(|(p, first)| p.cursor(first.node.name()));
        for (i, zn) in task.iter().enumerate() {
            stats.names += 1;
            let old = previous.as_mut().and_then(|cursor| cursor.find(zn.node.name()));
            self.node_out(zn, old.as_ref(), &mut out, &mut stats)?;
            if let Some(Some(next)) = nsec_next.map(|n| n[start + i]) {
                let rdata = denial::nsec_rdata(zn, tree.nodes[next as usize].node.name());
                self.denial_out(zn.node.name(), Rtype::NSEC, &rdata, old.as_ref(), &mut out, &mut stats)?;
            }
        }
        Ok((out, stats))
    }

    /// A node's RRsets (the SOA first, for readers that want it first),
    /// each followed by its RRSIGs when it is authoritative.
    fn node_out(
        &self,
        zn: &ZoneNode<'_>,
        old: Option<&Node<'_>>,
        out: &mut impl Sink,
        stats: &mut SignStats,
    ) -> Result<(), SignError> {
        let rrsets = zn.node.rrsets();
        let (soa, rest): (Vec<_>, Vec<_>) = rrsets.partition(|set| set.rtype() == Rtype::SOA);
        for rrset in soa.into_iter().chain(rest) {
            let to_sign = RrsetToSign {
                owner: rrset.owner(),
                rtype: rrset.rtype(),
                ttl: rrset.ttl(),
                rdatas: rrset.rdatas().collect(),
            };
            // The apex ZONEMD is signed once its digest is known (`zonemd::fill`).
            let sign = zn.role.signs(rrset.rtype())
                && !zonemd::is_apex_zonemd(rrset.owner(), rrset.rtype(), self.zone.origin());
            self.rrset_out(&to_sign, old, sign, out, stats)?;
        }
        Ok(())
    }

    /// The NSEC3 records of `task`, each with its RRSIGs.
    fn nsec3_out<S: Sink>(&self, task: &[denial::Nsec3Record]) -> Result<(S, SignStats), SignError> {
        self.check_stop()?;
        let mut out = S::for_nodes(self.zone, task.len() * 2);
        let mut stats = SignStats::default();
        let mut previous = self.previous.zip(task.first()).map(|(p, first)| p.cursor(first.owner.as_ref()));
        for record in task {
            let old = previous.as_mut().and_then(|cursor| cursor.find(record.owner.as_ref()));
            self.denial_out(record.owner.as_ref(), Rtype::NSEC3, &record.rdata, old.as_ref(), &mut out, &mut stats)?;
            stats.names += 1;
        }
        Ok((out, stats))
    }

    /// An NSEC or NSEC3 record with its RRSIGs (those of the previous
    /// version's node `old` kept where they may be).
    fn denial_out(
        &self,
        owner: NameRef<'_>,
        rtype: Rtype,
        rdata: &[u8],
        old: Option<&Node<'_>>,
        out: &mut impl Sink,
        stats: &mut SignStats,
    ) -> Result<(), SignError> {
        let rrset = RrsetToSign { owner, rtype, ttl: self.denial_ttl, rdatas: vec![rdata] };
        self.rrset_out(&rrset, old, true, out, stats)?;
        stats.denial_records += 1;
        Ok(())
    }

    /// Writes an RRset's records and, if `sign`, its RRSIGs: those of
    /// the previous version's node `old` that may be kept, the others
    /// made anew.
    fn rrset_out(
        &self,
        rrset: &RrsetToSign<'_>,
        old: Option<&Node<'_>>,
        sign: bool,
        out: &mut impl Sink,
        stats: &mut SignStats,
    ) -> Result<(), SignError> {
        let class = self.zone.class();
        for rdata in &rrset.rdatas {
            out.record(RecordRef { owner: rrset.owner, rtype: rrset.rtype, ttl: rrset.ttl, rdata }, class);
            stats.records += 1;
        }
        if !sign {
            return Ok(());
        }
        let apex = self.zone.origin();
        if let Some(presigned) = self.keys.presigned.filter(|_| self.signs_with_ksk(rrset.owner, rrset.rtype)) {
            for rdata in presigned.rrsigs_over(rrset.rtype) {
                out.record(RecordRef { owner: rrset.owner, rtype: Rtype::RRSIG, ttl: rrset.ttl, rdata }, class);
                stats.records += 1;
            }
            return Ok(());
        }
        let (signers, window) = if self.signs_with_ksk(rrset.owner, rrset.rtype) {
            (&self.keys.key_signers, &self.settings.key_window)
        } else {
            (&self.keys.zone_signers, &self.settings.zone_window)
        };
        let previous = self.previous.zip(old);
        let candidates = previous.map(|(p, old)| p.signatures_over(old, rrset, class)).unwrap_or_default();
        // The canonical form, made only when a signature is to be made.
        let mut records = None;
        for signer in signers {
            let kept = previous.and_then(|(p, _)| p.keep(&candidates, rrset, signer, window));
            let made;
            let rdata = match kept {
                Some(kept) => {
                    stats.rrsigs_kept += 1;
                    kept
                }
                None => {
                    let records = records.get_or_insert_with(|| canonical_records(rrset, class));
                    made = sign_rrset(rrset, records, signer, apex, window)?;
                    stats.rrsigs += 1;
                    &made[..]
                }
            };
            out.record(RecordRef { owner: rrset.owner, rtype: Rtype::RRSIG, ttl: rrset.ttl, rdata }, class);
            stats.records += 1;
        }
        Ok(())
    }

    /// The DNSKEY RRset and the CDS/CDNSKEY RRsets at the apex are signed
    /// by the key-signing keys (RFC 7344 §4.1: CDS by a key the DS names).
    fn signs_with_ksk(&self, owner: NameRef<'_>, rtype: Rtype) -> bool {
        matches!(rtype, Rtype::DNSKEY | Rtype::CDS | Rtype::CDNSKEY) && owner.eq_ignore_case(self.zone.origin())
    }
}
