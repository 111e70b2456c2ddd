//! The checks that refuse a policy that cannot work, and the warnings for
//! one that works unwisely. Each names the field, as `section.name`.

use super::{DenialType, Policy};
use crate::time::format_duration;

/// Legal but unwise: said, not refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// The field, as `section.name`.
    pub field: String,
    /// Why it is unwise.
    pub reason: Unwise,
}

/// Why a legal value is unwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unwise {
    /// `zone.serial = "keep"`: the signer cannot move the serial.
    #[error(
        "keep publishes the unsigned zone's serial as it is: a run that would change the signed zone \
         (signatures refreshed, a rollover step, a policy change) while that serial has not moved \
         publishes nothing, and the published signatures age toward expiry until the unsigned zone \
         gets a greater serial; increment, unixtime or datecounter let signet move it"
    )]
    SerialKept,
    /// Extra NSEC3 iterations.
    #[error("{0} extra iterations cost resolvers and add no safety; RFC 9276 §3.1 says 0")]
    Iterations(u16),
    /// An NSEC3 salt.
    #[error("a salt adds no safety; RFC 9276 §3.1 says use none")]
    Salt,
}

/// The first field of a policy that cannot work, and why.
#[derive(Debug)]
pub struct Refusal {
    /// The field, as `section.name`.
    pub field: &'static str,
    /// Why its value cannot work.
    pub reason: Unworkable,
}

/// Why a field's value cannot work. Durations are shown as written in a
/// policy (`"35d"`).
#[derive(Debug, thiserror::Error)]
pub enum Unworkable {
    /// An offline KSK with a combined key: a CSK signs the zone, so it
    /// cannot be offline.
    #[error("a CSK signs the zone and cannot be kept offline; use a KSK and a ZSK (keys.csk = false)")]
    OfflineCsk,
    /// Going insecure with an offline KSK: the CDS/CDNSKEY DELETE must be
    /// signed by the KSK, which the online signer does not hold.
    #[error(
        "an offline KSK signs the CDS/CDNSKEY DELETE a zone going insecure publishes: \
         go insecure from a policy with keys.offline-ksk = false"
    )]
    OfflineInsecure,
    /// A key lifetime past [`MAX_LIFETIME`].
    #[error("{} exceeds the limit of {} (100 years; 0 means unlimited)", d(*.0), d(MAX_LIFETIME))]
    LifetimeBeyondLimit(i64),
    /// Any other duration past [`MAX_DURATION`].
    #[error(
        "{} exceeds the limit of {} (10 years): RRSIG times are 32-bit serial numbers (RFC 4034 §3.1.5), \
         so signature timers must stay well under 68 years",
        d(*.0),
        d(MAX_DURATION)
    )]
    DurationBeyondLimit(i64),
    /// A key size the algorithm does not take.
    #[error("{0}")]
    KeySize(Box<crate::keys::KeyError>),
    /// A signature validity under an hour.
    #[error("{} is too short to publish and re-sign a zone; use at least 1h", d(*.0))]
    ValidityTooShort(i64),
    /// Refresh not shorter than a validity.
    #[error("refresh ({}) must be shorter than {validity_field} ({})", d(*.refresh), d(*.validity))]
    RefreshNotShorter {
        /// `signatures.refresh`.
        refresh: i64,
        /// The validity field it is held to.
        validity_field: &'static str,
        /// Its value.
        validity: i64,
    },
    /// Jitter that would make fresh signatures due at once.
    #[error(
        "jitter ({}) must be shorter than {validity_field} minus refresh ({}), or fresh signatures would be due at once",
        d(*.jitter),
        d(*.margin)
    )]
    JitterTooLong {
        /// `signatures.jitter`.
        jitter: i64,
        /// The validity field it is held to.
        validity_field: &'static str,
        /// That validity minus the refresh.
        margin: i64,
    },
    /// An inception offset not shorter than a validity.
    #[error("inception offset ({}) must be shorter than {validity_field} ({})", d(*.offset), d(*.validity))]
    InceptionOffsetTooLong {
        /// `signatures.inception-offset`.
        offset: i64,
        /// The validity field it is held to.
        validity_field: &'static str,
        /// Its value.
        validity: i64,
    },
    /// A pre-refresh that would make fresh signatures due at once.
    #[error(
        "pre-refresh ({}) must be shorter than validity minus refresh minus jitter ({}), \
         or fresh signatures would be due at once",
        d(*.pre_refresh),
        d(*.slack)
    )]
    PreRefreshTooLong {
        /// `signatures.pre-refresh`.
        pre_refresh: i64,
        /// Validity minus refresh minus jitter.
        slack: i64,
    },
    /// A refresh margin that cached signatures would outlive.
    #[error(
        "refresh ({}) must exceed the longest TTL plus the propagation delay ({}), or cached signatures expire",
        d(*.refresh),
        d(*.cached)
    )]
    RefreshBelowCaching {
        /// `signatures.refresh`.
        refresh: i64,
        /// The longest TTL plus the propagation delay.
        cached: i64,
    },
    /// A key lifetime shorter than its rollover.
    #[error("{} is shorter than the rollover it needs ({}, {reference})", d(*.lifetime), d(*.rollover))]
    LifetimeBelowRollover {
        /// The lifetime.
        lifetime: i64,
        /// How long its rollover takes.
        rollover: i64,
        /// Where the rollover is described.
        reference: &'static str,
    },
    /// A TTL of 0.
    #[error("0s is not a usable TTL")]
    ZeroTtl,
    /// A DNSKEY TTL above the zone's largest.
    #[error("{} exceeds zone.max-ttl ({})", d(*.dnskey_ttl), d(*.max_ttl))]
    DnskeyTtlAboveMax {
        /// `keys.dnskey-ttl`.
        dnskey_ttl: i64,
        /// `zone.max-ttl`.
        max_ttl: i64,
    },
    /// Opt-out asked with NSEC.
    #[error("opt-out exists only with NSEC3")]
    OptOutWithNsec,
    /// More NSEC3 iterations than validators take.
    #[error("{0} iterations: validators treat NSEC3 above 100 as insecure or bogus (RFC 9276 §3.2)")]
    TooManyIterations(u16),
    /// `keys.purge-after` past [`MAX_PURGE_AFTER`].
    #[error("{} is longer than {}; to keep removed keys for ever, write 0", d(*.0), d(MAX_PURGE_AFTER))]
    PurgeTooLong(i64),
    /// More journal versions than [`MAX_JOURNAL_VERSIONS`].
    #[error("{0} is more than {MAX_JOURNAL_VERSIONS}; to keep no journal, write 0")]
    TooManyJournalVersions(u32),
    /// A journal larger than [`MAX_JOURNAL_SIZE`].
    #[error("{0} bytes is more than 1 TiB")]
    JournalTooLarge(u64),
    /// No pause between the parent's checks.
    #[error("0 would ask the parent's servers without pause; write e.g. \"1m\"")]
    NoCheckPause,
    /// The longest check interval under the first.
    #[error("{} is shorter than parent.check-interval-min ({})", d(*.interval), d(*.min))]
    CheckIntervalBelowMin {
        /// `parent.check-interval`.
        interval: i64,
        /// `parent.check-interval-min`.
        min: i64,
    },
    /// One ZONEMD hash listed twice (RFC 8976 §2: one record per scheme
    /// and hash algorithm).
    #[error("{0} is listed twice; a zone carries one ZONEMD per scheme and hash algorithm (RFC 8976 §2)")]
    ZonemdRepeated(&'static str),
    /// A submit command of white space.
    #[error("empty; leave the key out to submit no DS by command")]
    EmptySubmitCommand,
}

/// A duration as a policy writes it, for messages.
fn d(seconds: i64) -> String {
    format_duration(seconds)
}

fn refuse(field: &'static str, reason: Unworkable) -> Result<(), Refusal> {
    Err(Refusal { field, reason })
}

/// Checks a parsed policy: the [`Refusal`] of the first field that cannot
/// work, else the warnings.
pub(super) fn check(policy: &Policy) -> Result<Vec<Warning>, Refusal> {
    check_bounds(policy)?;
    crate::keys::check_bits(policy.keys.algorithm, policy.keys.bits)
        .map_err(|e| Refusal { field: "keys.bits", reason: Unworkable::KeySize(Box::new(e)) })?;
    check_signatures(policy)?;
    check_lifetimes(policy)?;
    check_ttls(policy)?;
    check_purge(policy)?;
    check_journal(policy)?;
    check_parent(policy)?;
    check_zonemd(policy)?;
    let mut warnings = denial_warnings(policy)?;
    warnings.extend(serial_warning(policy));
    Ok(warnings)
}

/// Each ZONEMD hash algorithm at most once.
fn check_zonemd(policy: &Policy) -> Result<(), Refusal> {
    let hashes = &policy.zone.zonemd;
    match hashes.iter().enumerate().find(|(i, h)| hashes[..*i].contains(h)) {
        Some((_, super::ZonemdHash::Sha384)) => refuse("zone.zonemd", Unworkable::ZonemdRepeated("sha384")),
        Some((_, super::ZonemdHash::Sha512)) => refuse("zone.zonemd", Unworkable::ZonemdRepeated("sha512")),
        None => Ok(()),
    }
}

/// `keep` is legal, but it hands the serial to whoever edits the unsigned
/// zone: one serial names one version, so the signer cannot move it.
fn serial_warning(policy: &Policy) -> Option<Warning> {
    (policy.zone.serial == super::SerialScheme::Keep)
        .then(|| Warning { field: "zone.serial".to_owned(), reason: Unwise::SerialKept })
}

/// The longest `keys.purge-after` taken: 100 years (of 365.25 days, as
/// `"100y"` reads). Longer is "never", which is written 0; the bound keeps
/// a removal time plus it far from overflow.
pub const MAX_PURGE_AFTER: i64 = 100 * 31_557_600;

fn check_purge(policy: &Policy) -> Result<(), Refusal> {
    let purge = policy.keys.purge_after;
    if purge > MAX_PURGE_AFTER {
        refuse("keys.purge-after", Unworkable::PurgeTooLong(purge))?;
    }
    Ok(())
}

/// The most versions a zone's journal may keep: every publication lists
/// and prunes the zone's rows, and a secondary more than this many
/// versions behind is better served the whole zone.
const MAX_JOURNAL_VERSIONS: u32 = 100_000;

/// The parent's checks need a first interval and a longest one that is
/// not shorter; a submit command must be something to run.
fn check_parent(policy: &Policy) -> Result<(), Refusal> {
    let p = &policy.parent;
    if p.check_interval_min == 0 {
        refuse("parent.check-interval-min", Unworkable::NoCheckPause)?;
    }
    if p.check_interval < p.check_interval_min {
        refuse(
            "parent.check-interval",
            Unworkable::CheckIntervalBelowMin { interval: p.check_interval, min: p.check_interval_min },
        )?;
    }
    if p.submit_command.as_deref().is_some_and(|c| c.trim().is_empty()) {
        refuse("parent.submit-command", Unworkable::EmptySubmitCommand)?;
    }
    Ok(())
}

/// The most bytes a zone's journal may keep (1 TiB): far above any
/// sane journal, and far from overflowing the sums kept in the database.
const MAX_JOURNAL_SIZE: u64 = 1 << 40;

fn check_journal(policy: &Policy) -> Result<(), Refusal> {
    let journal = &policy.journal;
    if journal.max_versions > MAX_JOURNAL_VERSIONS {
        refuse("journal.max-versions", Unworkable::TooManyJournalVersions(journal.max_versions))?;
    }
    if journal.max_size > MAX_JOURNAL_SIZE {
        refuse("journal.max-size", Unworkable::JournalTooLarge(journal.max_size))?;
    }
    Ok(())
}

/// The longest a signature timer or any other duration may be: ten years
/// (3660 days, BIND's limit for its signature validity). RRSIG times are
/// 32-bit serial numbers (RFC 4034 §3.1.5, RFC 1982): a signature's
/// inception and expiration are only unambiguous within 2^31 s (68 years)
/// of the validator's clock, so validity plus inception offset must stay
/// well under that; ten years each keeps their sum under a third of it,
/// and no TTL, propagation delay or safety margin is sane beyond it either.
const MAX_DURATION: i64 = 3660 * 86400;

/// The longest key lifetime (0 means unlimited): a hundred years, as for
/// `keys.purge-after`, far beyond any rollover plan, and small enough
/// that no time arithmetic on it can overflow.
const MAX_LIFETIME: i64 = MAX_PURGE_AFTER;

/// Every duration within its limit, so that no time arithmetic overflows.
fn check_bounds(policy: &Policy) -> Result<(), Refusal> {
    let (k, s, z, p, g) = (&policy.keys, &policy.signatures, &policy.zone, &policy.parent, &policy.gate);
    let lifetimes = [("keys.ksk-lifetime", k.ksk_lifetime), ("keys.zsk-lifetime", k.zsk_lifetime)];
    let others = [
        ("keys.dnskey-ttl", k.dnskey_ttl),
        ("keys.publish-safety", k.publish_safety),
        ("keys.retire-safety", k.retire_safety),
        ("signatures.validity", s.validity),
        ("signatures.dnskey-validity", s.dnskey_validity),
        ("signatures.refresh", s.refresh),
        ("signatures.jitter", s.jitter),
        ("signatures.inception-offset", s.inception_offset),
        ("signatures.pre-refresh", s.pre_refresh_setting.unwrap_or(0)),
        ("zone.propagation-delay", z.propagation_delay),
        ("zone.max-ttl", z.max_ttl),
        ("parent.ds-ttl", p.ds_ttl),
        ("parent.propagation-delay", p.propagation_delay),
        ("parent.registration-delay", p.registration_delay),
        ("parent.check-interval-min", p.check_interval_min),
        ("parent.check-interval", p.check_interval),
        ("gate.full-verification-interval", g.full_verification_interval),
    ];
    for (field, value) in lifetimes {
        if value > MAX_LIFETIME {
            refuse(field, Unworkable::LifetimeBeyondLimit(value))?;
        }
    }
    for (field, value) in others {
        if value > MAX_DURATION {
            refuse(field, Unworkable::DurationBeyondLimit(value))?;
        }
    }
    Ok(())
}

fn check_signatures(policy: &Policy) -> Result<(), Refusal> {
    let s = &policy.signatures;
    for (field, validity) in [("signatures.validity", s.validity), ("signatures.dnskey-validity", s.dnskey_validity)] {
        if validity < 3600 {
            refuse(field, Unworkable::ValidityTooShort(validity))?;
        }
        if s.refresh >= validity {
            refuse(
                "signatures.refresh",
                Unworkable::RefreshNotShorter { refresh: s.refresh, validity_field: field, validity },
            )?;
        }
        if s.jitter >= validity - s.refresh {
            refuse(
                "signatures.jitter",
                Unworkable::JitterTooLong { jitter: s.jitter, validity_field: field, margin: validity - s.refresh },
            )?;
        }
        if s.inception_offset >= validity {
            refuse(
                "signatures.inception-offset",
                Unworkable::InceptionOffsetTooLong { offset: s.inception_offset, validity_field: field, validity },
            )?;
        }
    }
    if let Some(pre_refresh) = s.pre_refresh_setting
        && pre_refresh >= s.refresh_slack()
    {
        refuse("signatures.pre-refresh", Unworkable::PreRefreshTooLong { pre_refresh, slack: s.refresh_slack() })?;
    }
    // A signature cached by a resolver must not expire in its cache: the
    // refresh margin must cover the longest TTL and the propagation delay.
    let cached = policy.zone.max_ttl.max(policy.keys.dnskey_ttl) + policy.zone.propagation_delay;
    if s.refresh <= cached {
        refuse("signatures.refresh", Unworkable::RefreshBelowCaching { refresh: s.refresh, cached })?;
    }
    Ok(())
}

/// RFC 7583 §3.3.1 (ZSK pre-publish): the new DNSKEY must be published
/// for its TTL plus propagation and safety before it signs, and the old
/// key stays until the signatures it made have expired from caches.
pub fn zsk_rollover_time(policy: &Policy) -> i64 {
    let k = &policy.keys;
    let z = &policy.zone;
    (k.dnskey_ttl + z.propagation_delay + k.publish_safety) + (z.max_ttl + z.propagation_delay + k.retire_safety)
}

/// RFC 7583 §3.3.2 (KSK double-DS/double-KSK): publish the new DNSKEY,
/// have the DS registered and propagated, then wait out the old DS.
pub fn ksk_rollover_time(policy: &Policy) -> i64 {
    let k = &policy.keys;
    let p = &policy.parent;
    (k.dnskey_ttl + policy.zone.propagation_delay + k.publish_safety)
        + (p.registration_delay + p.propagation_delay + p.ds_ttl + k.retire_safety)
}

fn check_lifetimes(policy: &Policy) -> Result<(), Refusal> {
    let k = &policy.keys;
    if k.offline_ksk && k.csk {
        refuse("keys.offline-ksk", Unworkable::OfflineCsk)?;
    }
    if k.offline_ksk && policy.insecure {
        refuse("insecure", Unworkable::OfflineInsecure)?;
    }
    let zsk = zsk_rollover_time(policy);
    let ksk = ksk_rollover_time(policy);
    let (ksk_field, ksk_need) = if k.csk { ("keys.ksk-lifetime", ksk.max(zsk)) } else { ("keys.ksk-lifetime", ksk) };
    if k.ksk_lifetime != 0 && k.ksk_lifetime <= ksk_need {
        refuse(
            ksk_field,
            Unworkable::LifetimeBelowRollover { lifetime: k.ksk_lifetime, rollover: ksk_need, reference: "RFC 7583" },
        )?;
    }
    if !k.csk && k.zsk_lifetime != 0 && k.zsk_lifetime <= zsk {
        refuse(
            "keys.zsk-lifetime",
            Unworkable::LifetimeBelowRollover {
                lifetime: k.zsk_lifetime, rollover: zsk, reference: "RFC 7583 §3.3.1"
            },
        )?;
    }
    Ok(())
}

fn check_ttls(policy: &Policy) -> Result<(), Refusal> {
    for (field, ttl) in [
        ("keys.dnskey-ttl", policy.keys.dnskey_ttl),
        ("zone.max-ttl", policy.zone.max_ttl),
        ("parent.ds-ttl", policy.parent.ds_ttl),
    ] {
        if ttl == 0 {
            refuse(field, Unworkable::ZeroTtl)?;
        }
    }
    if policy.keys.dnskey_ttl > policy.zone.max_ttl {
        refuse(
            "keys.dnskey-ttl",
            Unworkable::DnskeyTtlAboveMax { dnskey_ttl: policy.keys.dnskey_ttl, max_ttl: policy.zone.max_ttl },
        )?;
    }
    Ok(())
}

fn denial_warnings(policy: &Policy) -> Result<Vec<Warning>, Refusal> {
    let n = &policy.denial;
    let mut warnings = Vec::new();
    if n.kind == DenialType::Nsec {
        if n.opt_out {
            refuse("denial.opt-out", Unworkable::OptOutWithNsec)?;
        }
        return Ok(warnings);
    }
    if n.iterations > 100 {
        refuse("denial.iterations", Unworkable::TooManyIterations(n.iterations))?;
    }
    if n.iterations > 0 {
        warnings.push(Warning { field: "denial.iterations".to_owned(), reason: Unwise::Iterations(n.iterations) });
    }
    if n.salt_length > 0 {
        warnings.push(Warning { field: "denial.salt-length".to_owned(), reason: Unwise::Salt });
    }
    Ok(warnings)
}
