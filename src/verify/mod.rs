//! The full-zone verifier: every RRSIG, every denial record and the chain
//! of trust, checked the way a validating resolver would check them —
//! nothing sampled, nothing skipped.
//!
//! It reads only [`crate::zone`] and never the signer's code, so it can
//! judge zones that BIND, Knot or ldns made as well as signet's own.
//!
//! The checks, as numbered in the README (`signet verify`) and
//! ARCHITECTURE.md §1:
//! - 1, structure: the zone reader (owners, SOA), `crate::zone::tree`
//!   (cuts, glue, empty non-terminals) and the content rules (`content`,
//!   from [`crate::zone::content`]);
//! - 2, 3 and 6, signatures, coverage, RRset TTLs: `signatures`;
//! - 4, trust anchor and CDS/CDNSKEY: [`trust`];
//! - 5, NSEC/NSEC3: `denial`;
//! - 7, ZONEMD (RFC 8976): `zonemd`, beside the signature checks.
//!
//! The gate may hand in the [`memo`] of its previous verification: a
//! signature whose exact verification input is in it counts as verified
//! without the public-key operation. That is the only step it saves.

pub mod apex_keys;
pub(crate) mod content;
pub mod crypto;
pub(crate) mod denial;
pub mod findings;
pub(crate) mod keys;
pub mod memo;
mod prefix_index;
pub(crate) mod signatures;
pub mod trust;
pub(crate) mod unsigned;
mod zonemd;

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

pub use apex_keys::{ApexKeys, verify_apex_keys};
pub use findings::{Code, Finding, Severity};
use keys::KeySet;
pub use memo::{MemoError, SignatureMemo};
pub use trust::{Anchor, AnchorError, AnchorProblem, read_anchor_file};

use crate::zone::tree::ZoneTree;
use crate::zone::{NameRef, Zone};

/// What to verify against.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The time to judge signature validity at (Unix seconds).
    pub now: i64,
    /// Every RRSIG must stay valid at least this long after `now`.
    pub min_validity: i64,
    /// DS or DNSKEY records for the apex; without them, the DNSKEY RRset
    /// must be signed by a key with the SEP bit.
    pub trust_anchor: Option<Vec<Anchor>>,
    /// The memo of the gate's verification of the previous publication
    /// (read-only): an RRSIG whose exact verification input is in it
    /// counts as cryptographically verified without the public-key
    /// operation. Every other check still runs on it.
    pub memo: Option<Arc<SignatureMemo>>,
    /// Collect the memo of this verification for the next one: the
    /// digest of every RRSIG found valid. Off (as for `signet verify`), no
    /// digest is computed at all.
    pub collect_memo: bool,
    /// A zone without a DNSKEY RRset at its apex is acceptable (a zone
    /// gone insecure): it is then checked for structure and content, and
    /// must hold no DNSSEC record and have no trust anchor ([`unsigned`]).
    /// A zone with a DNSKEY RRset is verified in full either way.
    pub allow_unsigned: bool,
}

/// Counts of what was checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    /// Records in the zone.
    pub records: u64,
    /// Owner names (nodes).
    pub names: u64,
    /// RRsets.
    pub rrsets: u64,
    /// RRSIG records.
    pub rrsigs: u64,
    /// RRSIGs whose signature verified cryptographically (memo hits
    /// included).
    pub rrsigs_verified: u64,
    /// Of those, the RRSIGs whose exact verification input the gate's
    /// memo held: verified by an earlier gate, not again here.
    pub rrsigs_from_memo: u64,
    /// The earliest expiration of a valid RRSIG (Unix seconds): when the
    /// zone stops validating unless signed again.
    pub earliest_expiration: Option<i64>,
    /// Findings of severity error.
    pub errors: u64,
    /// Findings of severity warning.
    pub warnings: u64,
    /// Wall-clock seconds the verification took.
    pub seconds: f64,
}

/// The outcome of verifying a zone.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The zone's origin.
    pub zone: String,
    /// True when no finding is an error.
    pub valid: bool,
    /// Counts.
    pub stats: Stats,
    /// Everything found, errors first, then in zone order.
    pub findings: Vec<Finding>,
}

/// What every check needs to know.
#[derive(Debug)]
pub struct Context<'a> {
    /// The zone.
    pub zone: &'a Zone,
    /// Its apex.
    pub apex: NameRef<'a>,
    /// Its class.
    pub class: u16,
    /// The apex zone keys.
    pub keys: KeySet,
    /// Time of judgement.
    pub now: i64,
    /// Minimum remaining validity of every RRSIG.
    pub min_validity: i64,
    /// The previous verification's memo, if the caller gave one.
    pub memo: Option<&'a SignatureMemo>,
    /// Compute each valid RRSIG's memo digest, for the next memo.
    pub collect_memo: bool,
}

impl Context<'_> {
    /// Are memo digests needed at all (to look up, or to collect)?
    pub fn wants_digests(&self) -> bool {
        self.memo.is_some() || self.collect_memo
    }
}

/// Told how far the signature checks have got (they take most of the
/// time), so that a terminal can show progress. Called from worker
/// threads.
pub trait Progress: Sync + std::fmt::Debug {
    /// `done` of `total` names checked.
    fn advance(&self, done: u64, total: u64);

    /// Has the caller given up on this verification (a service stopping)?
    /// Once true the signature checks skip what is left, and
    /// [`verify_file`] returns [`GateError::Stopped`]: a verification cut
    /// short never makes a [`VerifiedZone`].
    fn stop_requested(&self) -> bool {
        false
    }
}

/// A `Progress` that ignores everything.
#[derive(Debug)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _done: u64, _total: u64) {}
}

/// Verifies a whole zone.
pub fn verify_zone(zone: &Zone, options: &VerifyOptions) -> Report {
    verify_zone_with_progress(zone, options, &NoProgress)
}

/// Verifies a whole zone, reporting progress.
pub fn verify_zone_with_progress(zone: &Zone, options: &VerifyOptions, progress: &dyn Progress) -> Report {
    verify_zone_with_memo(zone, options, progress).report
}

/// A verification's report and, if [`VerifyOptions::collect_memo`], the
/// memo of its valid signatures for the next verification.
#[derive(Debug)]
pub struct Verification {
    /// What was found.
    pub report: Report,
    /// The digests of every RRSIG found valid (crypto or memo), whatever
    /// the verdict on the zone.
    pub memo: Option<SignatureMemo>,
}

/// Verifies a whole zone, reporting progress, using and collecting the
/// memo as `options` say.
pub fn verify_zone_with_memo(zone: &Zone, options: &VerifyOptions, progress: &dyn Progress) -> Verification {
    let started = Instant::now();
    let _span = tracing::info_span!("verify", zone = %zone.origin()).entered();
    let mut findings = Vec::new();
    // The tree is one sequential pass; the content rules run beside it.
    let (tree, ()) = rayon::join(|| ZoneTree::build(zone), || content::check(zone, &mut findings));
    tracing::debug!(
        names = tree.nodes.len(),
        seconds = started.elapsed().as_secs_f64(),
        "zone structure and content checked"
    );
    if options.allow_unsigned && unsigned::is_unsigned(zone) {
        unsigned::check(zone, options.trust_anchor.as_deref(), &mut findings);
        zonemd::check(zone, &mut findings);
        let report = finish_report(zone, tree.nodes.len(), findings, Default::default(), started);
        return Verification { report, memo: options.collect_memo.then(SignatureMemo::default) };
    }
    let keys = KeySet::from_apex(zone, &mut findings);
    let ctx = Context {
        zone,
        apex: zone.origin(),
        class: zone.class(),
        keys,
        now: options.now,
        min_validity: options.min_validity,
        memo: options.memo.as_deref(),
        collect_memo: options.collect_memo,
    };
    trust::check(&ctx, options.trust_anchor.as_deref(), &mut findings);
    // The ZONEMD digest is one hash stream: it runs beside the signature
    // checks, which take the other core(s).
    let mut zonemd_findings = Vec::new();
    let (mut signatures, ()) = rayon::join(
        || signatures::check_all(&ctx, &tree.nodes, progress),
        || zonemd::check(zone, &mut zonemd_findings),
    );
    findings.extend(zonemd_findings);
    let memo = options.collect_memo.then(|| signatures.take_memo());
    findings.extend(signatures.findings);
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "signatures checked");
    denial::check(zone, &tree, &mut findings);
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "denial checked");
    let counts = Stats {
        rrsets: signatures.rrsets,
        rrsigs: signatures.rrsigs,
        rrsigs_verified: signatures.rrsigs_verified,
        rrsigs_from_memo: signatures.rrsigs_from_memo,
        earliest_expiration: signatures.earliest_expiration,
        ..Stats::default()
    };
    let report = finish_report(zone, tree.nodes.len(), findings, counts, started);
    Verification { report, memo }
}

/// The report: findings errors first, `counts` of the signature checks
/// completed with the zone's size, the verdict and the time taken.
fn finish_report(zone: &Zone, names: usize, mut findings: Vec<Finding>, counts: Stats, started: Instant) -> Report {
    findings.sort_by_key(|f| f.severity);
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count() as u64;
    let stats = Stats {
        records: zone.len() as u64,
        names: names as u64,
        errors,
        warnings: findings.len() as u64 - errors,
        seconds: started.elapsed().as_secs_f64(),
        ..counts
    };
    tracing::debug!(
        errors,
        rrsigs_verified = stats.rrsigs_verified,
        rrsigs_from_memo = stats.rrsigs_from_memo,
        "verification done"
    );
    Report { zone: zone.origin().to_string(), valid: errors == 0, stats, findings }
}

impl Report {
    /// The text form: one line per finding, then the summary line.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for finding in &self.findings {
            text.push_str(&finding.to_line());
            text.push('\n');
        }
        text.push_str(&self.summary_line());
        text.push('\n');
        text
    }

    /// `zone example.: valid; 1234 RRsets, 567 RRSIGs verified of 570, 0 errors, 0 warnings, 0.12 s`,
    /// with `(N from the gate's memo)` after the RRSIGs when the memo held some.
    pub fn summary_line(&self) -> String {
        let s = &self.stats;
        let verdict = if self.valid { "valid" } else { "INVALID" };
        let memo = match s.rrsigs_from_memo {
            0 => String::new(),
            n => format!(" ({n} from the gate's memo)"),
        };
        format!(
            "zone {}: {verdict}; {} RRsets, {} RRSIGs verified of {}{memo}, {} errors, {} warnings, {:.2} s",
            self.zone, s.rrsets, s.rrsigs_verified, s.rrsigs, s.errors, s.warnings, s.seconds
        )
    }
}

/// Proof that a zone file was read and passed the verifier with no
/// error. Only [`verify_file`] makes one, and `publish::install` installs
/// nothing else: skipping the gate does not compile.
#[derive(Debug)]
pub struct VerifiedZone {
    path: std::path::PathBuf,
    report: Report,
    memo: Option<SignatureMemo>,
    zone: Arc<Zone>,
}

impl VerifiedZone {
    /// The file whose bytes were verified.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The verifier's report (warnings only).
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The memo this verification collected, for the gate of the next
    /// publication (once: taken out, not cloned, as it may be large).
    pub fn take_memo(&mut self) -> Option<SignatureMemo> {
        self.memo.take()
    }

    /// The zone as read back and verified: exactly the bytes that are
    /// published (a managed run records its difference from the version
    /// before).
    pub fn zone(&self) -> &Arc<Zone> {
        &self.zone
    }
}

/// Proof that a zone held in memory passed the verifier with no error:
/// the version a service serves by zone transfer. Only [`verify_version`]
/// makes one, and the zone inside can no longer change: what is served
/// is exactly what was verified, record for record and byte for byte.
#[derive(Debug)]
pub struct VerifiedVersion {
    zone: Arc<Zone>,
    report: Report,
    memo: Option<Arc<SignatureMemo>>,
}

impl VerifiedVersion {
    /// The verified zone (shared, read-only).
    pub fn zone(&self) -> &Arc<Zone> {
        &self.zone
    }

    /// The verifier's report (warnings only).
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The memo this verification collected: every signature of this
    /// version, for the gate of its file and of the next publication.
    pub fn memo(&self) -> Option<&Arc<SignatureMemo>> {
        self.memo.as_ref()
    }
}

/// Verifies all of `zone`, held in memory; a zone that passes comes back
/// as a [`VerifiedVersion`], one that fails is dropped.
pub fn verify_version(
    zone: Zone,
    options: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<VerifiedVersion, GateError> {
    let Verification { report, memo } = verify_zone_with_memo(&zone, options, progress);
    if progress.stop_requested() {
        return Err(GateError::Stopped);
    }
    if report.valid {
        Ok(VerifiedVersion { zone: Arc::new(zone), report, memo: memo.map(Arc::new) })
    } else {
        Err(GateError::Refused(Box::new(report)))
    }
}

/// Why a zone file did not pass the gate.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The file could not be read back (names file and line).
    #[error(transparent)]
    Read(#[from] crate::zone::ReadError),
    /// The verifier found errors.
    #[error("the verifier refused the zone: {}", .0.summary_line())]
    Refused(Box<Report>),
    /// The caller stopped the verification ([`Progress::stop_requested`]):
    /// no verdict.
    #[error("verification stopped before it was complete")]
    Stopped,
}

/// Reads the zone file at `path` and verifies all of it; a zone that
/// passes comes back in the [`VerifiedZone`], one that fails is dropped.
pub fn verify_file(
    path: &std::path::Path,
    origin: &crate::zone::Name,
    options: &VerifyOptions,
    progress: &dyn Progress,
) -> Result<VerifiedZone, GateError> {
    let zone = crate::zone::read_zone_file(path, origin)?;
    let Verification { report, memo } = verify_zone_with_memo(&zone, options, progress);
    // Asked after every check has run: a stop at any point before means
    // some signatures were skipped, and that is no verdict.
    if progress.stop_requested() {
        return Err(GateError::Stopped);
    }
    if report.valid {
        Ok(VerifiedZone { path: path.to_owned(), report, memo, zone: Arc::new(zone) })
    } else {
        Err(GateError::Refused(Box::new(report)))
    }
}
