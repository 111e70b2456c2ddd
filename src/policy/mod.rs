//! Signing policies: TOML files that say how a zone is signed and how its
//! keys roll. Parsing, defaults, and the checks that refuse a policy that
//! cannot work, each naming the field and the reason.
//!
//! Durations are written `"35d"`, `"12h"`, `"3600s"` (or a number of
//! seconds). Every section may be left out to take its defaults, which
//! follow RFC 6781, RFC 7583 and RFC 9276.

mod check;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use check::{MAX_PURGE_AFTER, Refusal, Unwise, Unworkable, Warning, ksk_rollover_time, zsk_rollover_time};

use crate::keys::{Algorithm, KeyUri};

/// A policy could not be read or would not work.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("{}", file.display())]
    Read {
        /// The policy file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A directory, device or pipe, which has no end to read to.
    #[error("{}: not a regular file (a directory, device or pipe)", file.display())]
    NotRegularFile {
        /// The policy file.
        file: PathBuf,
    },
    /// Larger than [`MAX_POLICY_BYTES`]: not a policy.
    #[error("{}: longer than 1 MiB: not a policy", file.display())]
    TooLong {
        /// The policy file.
        file: PathBuf,
    },
    /// TOML syntax, an unknown field, or a value of the wrong form. Shown
    /// by line and toml's message alone: toml's own text repeats the
    /// line of the file under a caret, over several lines.
    #[error("{}:{line}: {}", file.display(), error.message())]
    Syntax {
        /// The policy file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        error: Box<toml::de::Error>,
    },
    /// A field whose value cannot work.
    #[error("{}: {field}: {reason}", file.display())]
    Invalid {
        /// The policy file.
        file: PathBuf,
        /// The field, as `section.name`.
        field: String,
        /// Why it cannot work.
        reason: Unworkable,
    },
}

/// A whole policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Policy {
    /// A name for the policy (default: the file name without extension).
    #[serde(default)]
    pub name: String,
    /// The zone goes (or stays) unsigned, safely (RFC 6781 §4.3, RFC
    /// 8078): the DS is removed at the parent first (CDS/CDNSKEY DELETE
    /// published, the empty DS set submitted), and only once the parent
    /// is seen without it and its TTL and propagation delay have passed
    /// do the DNSKEYs and signatures go. The timing fields below still
    /// count: they are those the zone was signed under.
    #[serde(default)]
    pub insecure: bool,
    /// Keys and their lifetimes.
    #[serde(default)]
    pub keys: KeysPolicy,
    /// RRSIG validity and refresh.
    #[serde(default)]
    pub signatures: SignaturesPolicy,
    /// NSEC or NSEC3.
    #[serde(default)]
    pub denial: DenialPolicy,
    /// The zone's own timing.
    #[serde(default)]
    pub zone: ZonePolicy,
    /// The parent: DS timing and submission.
    #[serde(default)]
    pub parent: ParentPolicy,
    /// How many differences between published versions are kept.
    #[serde(default)]
    pub journal: JournalPolicy,
    /// The gate: how often it verifies without its memo.
    #[serde(default)]
    pub gate: GatePolicy,
}

/// `[keys]`: algorithm, sizes, lifetimes, DNSKEY TTL and safety margins.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeysPolicy {
    /// The algorithm, by mnemonic or number.
    #[serde(deserialize_with = "de::algorithm")]
    pub algorithm: Algorithm,
    /// Key size in bits (RSA only; default 2048).
    pub bits: Option<u32>,
    /// Sign with one combined key (CSK) instead of a KSK and a ZSK.
    pub csk: bool,
    /// KSK (or CSK) lifetime; 0 means unlimited.
    #[serde(deserialize_with = "de::duration")]
    pub ksk_lifetime: i64,
    /// ZSK lifetime; 0 means unlimited.
    #[serde(deserialize_with = "de::duration")]
    pub zsk_lifetime: i64,
    /// TTL of the DNSKEY RRset (and CDS/CDNSKEY).
    #[serde(deserialize_with = "de::duration")]
    pub dnskey_ttl: i64,
    /// Extra time a new key stays published before it is used (RFC 7583 §3.3.1).
    #[serde(deserialize_with = "de::duration")]
    pub publish_safety: i64,
    /// Extra time an old key stays published after it is retired (RFC 7583 §3.3.1).
    #[serde(deserialize_with = "de::duration")]
    pub retire_safety: i64,
    /// Where new keys are made: `pkcs11:token=…` or `file:DIR`.
    #[serde(default, deserialize_with = "de::key_store")]
    pub store: Option<KeyUri>,
    /// How long after its removal (hidden everywhere) a key is destroyed
    /// in its store; 0 means never, as BIND's `purge-keys`.
    #[serde(deserialize_with = "de::duration")]
    pub purge_after: i64,
    /// The KSK is kept offline (issue 27): the online signer holds only
    /// ZSKs and publishes the DNSKEY RRsets an offline KSK signed
    /// (`signet ksr`, `signet ksr sign`, `signet skr import`).
    pub offline_ksk: bool,
    /// With `offline-ksk`: how long before the imported responses run out
    /// `signet status`, `key list` and the metrics warn.
    #[serde(deserialize_with = "de::duration")]
    pub response_warning: i64,
}

/// `[signatures]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct SignaturesPolicy {
    /// Validity of RRSIGs over zone data.
    #[serde(deserialize_with = "de::duration")]
    pub validity: i64,
    /// Validity of RRSIGs over the DNSKEY, CDS and CDNSKEY RRsets.
    #[serde(deserialize_with = "de::duration")]
    pub dnskey_validity: i64,
    /// An RRSIG is made anew when less than this much validity is left;
    /// nothing published may have less.
    #[serde(deserialize_with = "de::duration")]
    pub refresh: i64,
    /// Expirations are spread over this much (earlier), so that re-signing
    /// does not all fall due at once.
    #[serde(deserialize_with = "de::duration")]
    pub jitter: i64,
    /// Inception is set this far in the past, for resolvers whose clocks lag.
    #[serde(deserialize_with = "de::duration")]
    pub inception_offset: i64,
    /// A signature that would fall due for refresh within this much more
    /// time is made anew with those that are due, so that refreshing
    /// comes in runs of a useful size (Knot's `rrsig-pre-refresh`).
    /// Unset: an hour, or half the slack left by validity, refresh and
    /// jitter if that is less ([`SignaturesPolicy::pre_refresh`]).
    #[serde(default, rename = "pre-refresh", deserialize_with = "de::optional_duration")]
    pub pre_refresh_setting: Option<i64>,
}

impl SignaturesPolicy {
    /// What a refresh leaves of the shorter validity before the
    /// earliest jittered expiration comes due again.
    pub fn refresh_slack(&self) -> i64 {
        self.validity.min(self.dnskey_validity) - self.refresh - self.jitter
    }

    /// The pre-refresh in force: the setting, or by default an hour (as
    /// Knot), at most half the slack so that a fresh signature is never
    /// due at once.
    pub fn pre_refresh(&self) -> i64 {
        self.pre_refresh_setting.unwrap_or_else(|| HOUR.min(self.refresh_slack() / 2).max(0))
    }

    /// A signature with less validity left than this is made anew.
    pub fn renew_within(&self) -> i64 {
        self.refresh + self.pre_refresh()
    }
}

/// Which denial of existence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DenialType {
    /// NSEC (RFC 4034).
    Nsec,
    /// NSEC3 (RFC 5155).
    Nsec3,
}

/// `[denial]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct DenialPolicy {
    /// `nsec` or `nsec3`.
    #[serde(rename = "type")]
    pub kind: DenialType,
    /// NSEC3 opt-out: insecure delegations get no NSEC3.
    pub opt_out: bool,
    /// NSEC3 extra iterations (RFC 9276: 0).
    pub iterations: u16,
    /// NSEC3 salt length in octets (RFC 9276: 0).
    pub salt_length: u8,
}

/// How the SOA serial moves at each signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SerialScheme {
    /// As in the unsigned zone.
    Keep,
    /// One more than the unsigned zone's.
    Increment,
    /// The Unix time (or one more than the last, if that is not greater).
    Unixtime,
    /// YYYYMMDDnn.
    Datecounter,
}

/// `[zone]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ZonePolicy {
    /// Time for a new version of the zone to reach every name server.
    #[serde(deserialize_with = "de::duration")]
    pub propagation_delay: i64,
    /// The largest TTL in the zone; a record with more is refused.
    #[serde(deserialize_with = "de::duration")]
    pub max_ttl: i64,
    /// SOA serial scheme.
    pub serial: SerialScheme,
    /// The ZONEMD digests (RFC 8976, scheme SIMPLE) to publish at the
    /// apex: `["sha384"]`, `["sha384", "sha512"]`; empty for none.
    pub zonemd: Vec<ZonemdHash>,
}

/// A ZONEMD hash algorithm (RFC 8976 §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZonemdHash {
    /// SHA-384 (1).
    Sha384,
    /// SHA-512 (2).
    Sha512,
}

impl ZonemdHash {
    /// The ZONEMD hash algorithm number.
    pub fn number(self) -> u8 {
        match self {
            ZonemdHash::Sha384 => crate::zone::zonemd::HASH_SHA384,
            ZonemdHash::Sha512 => crate::zone::zonemd::HASH_SHA512,
        }
    }
}

/// DS digest types signet publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigestType {
    /// SHA-256 (2).
    Sha256,
    /// SHA-384 (4).
    Sha384,
}

impl DigestType {
    /// The DS digest type number.
    pub fn number(self) -> u8 {
        match self {
            DigestType::Sha256 => 2,
            DigestType::Sha384 => 4,
        }
    }
}

/// `[parent]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ParentPolicy {
    /// TTL of the DS RRset at the parent.
    #[serde(deserialize_with = "de::duration")]
    pub ds_ttl: i64,
    /// Time for a DS change to reach every parent name server.
    #[serde(deserialize_with = "de::duration")]
    pub propagation_delay: i64,
    /// Time the registry takes to act on a submitted DS.
    #[serde(deserialize_with = "de::duration")]
    pub registration_delay: i64,
    /// Digest of the DS (and CDS) records.
    pub digest: DigestType,
    /// Publish CDS and CDNSKEY while a DS change is wanted (RFC 7344, RFC 8078).
    pub cds: bool,
    /// A command run (`/bin/sh -c`) with the wanted DS set and its
    /// DNSKEYs on stdin whenever the DS set wanted at the parent changes,
    /// as OpenDNSSEC's DelegationSignerSubmitCommand.
    pub submit_command: Option<String>,
    /// While a DS change is pending, the parent's servers are asked at
    /// once, then after this, twice this, … (see `check-interval`).
    #[serde(deserialize_with = "de::duration")]
    pub check_interval_min: i64,
    /// The longest wait between two checks of the parent.
    #[serde(deserialize_with = "de::duration")]
    pub check_interval: i64,
    /// A KSK's (or CSK's) DNSKEY and DNSKEY signature stay published until
    /// its DS is gone from the parent, for registries that refuse a DS
    /// without a matching DNSKEY at the child.
    pub wait_ds_gone_before_dnskey_removal: bool,
}

/// `[journal]`: the differences between published versions that the
/// database keeps per zone (`signet zone diff`, and IXFR, which can serve
/// a secondary incrementally only from a serial the journal still
/// reaches; older ones get the whole zone). The oldest go first when
/// either bound is passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct JournalPolicy {
    /// At most this many versions; 0 keeps no journal at all.
    pub max_versions: u32,
    /// At most this many bytes of encoded differences (`"256MiB"`, or a
    /// number of bytes); 0 keeps no journal at all.
    #[serde(deserialize_with = "de::size")]
    pub max_size: u64,
}

/// `[gate]`: the gate's signature memo (README, "The gate's memo").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct GatePolicy {
    /// How long after its last full verification the gate may go on
    /// taking signatures from its memo; after it, a run verifies every
    /// signature with crypto again (a verifier bug carried in the memo
    /// lives at most this long). 0: every run is full, no memo is kept.
    #[serde(deserialize_with = "de::duration")]
    pub full_verification_interval: i64,
}

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86400;

impl Default for KeysPolicy {
    fn default() -> Self {
        KeysPolicy {
            algorithm: Algorithm::EcdsaP256Sha256,
            bits: None,
            csk: false,
            ksk_lifetime: 0,
            zsk_lifetime: 90 * DAY,
            dnskey_ttl: HOUR,
            publish_safety: HOUR,
            retire_safety: HOUR,
            store: None,
            purge_after: 90 * DAY,
            offline_ksk: false,
            response_warning: 14 * DAY,
        }
    }
}

impl Default for SignaturesPolicy {
    fn default() -> Self {
        SignaturesPolicy {
            validity: 14 * DAY,
            dnskey_validity: 14 * DAY,
            refresh: 5 * DAY,
            jitter: 12 * HOUR,
            inception_offset: HOUR,
            pre_refresh_setting: None,
        }
    }
}

impl Default for DenialPolicy {
    fn default() -> Self {
        DenialPolicy { kind: DenialType::Nsec3, opt_out: false, iterations: 0, salt_length: 0 }
    }
}

impl Default for ZonePolicy {
    fn default() -> Self {
        ZonePolicy { propagation_delay: 5 * 60, max_ttl: DAY, serial: SerialScheme::Unixtime, zonemd: Vec::new() }
    }
}

impl Default for ParentPolicy {
    fn default() -> Self {
        ParentPolicy {
            ds_ttl: DAY,
            propagation_delay: HOUR,
            registration_delay: DAY,
            digest: DigestType::Sha256,
            cds: true,
            submit_command: None,
            check_interval_min: MINUTE,
            check_interval: HOUR,
            wait_ds_gone_before_dnskey_removal: false,
        }
    }
}

impl Default for JournalPolicy {
    fn default() -> Self {
        JournalPolicy { max_versions: 100, max_size: 256 << 20 }
    }
}

impl Default for GatePolicy {
    fn default() -> Self {
        GatePolicy { full_verification_interval: DAY }
    }
}

impl Policy {
    /// Reads and checks a policy file. Warnings (legal but unwise) come
    /// back beside the policy; anything that cannot work is an error.
    pub fn from_file(path: &Path) -> Result<(Policy, Vec<Warning>), PolicyError> {
        let text = read_text(path)?;
        Policy::from_text(&text, path)
    }

    /// Reads and checks policy text; `source` names it in errors.
    pub fn from_text(text: &str, source: &Path) -> Result<(Policy, Vec<Warning>), PolicyError> {
        let mut policy: Policy = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            PolicyError::Syntax { file: source.to_owned(), line, error: Box::new(e) }
        })?;
        if policy.name.is_empty() {
            policy.name = source.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        }
        let warnings = check::check(&policy).map_err(|Refusal { field, reason }| PolicyError::Invalid {
            file: source.to_owned(),
            field: field.to_owned(),
            reason,
        })?;
        Ok((policy, warnings))
    }
}

/// The largest policy file read: a policy is a few hundred bytes.
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// Reads a policy file: a regular file (a device such as `/dev/zero` has
/// no end) of at most [`MAX_POLICY_BYTES`].
fn read_text(path: &Path) -> Result<String, PolicyError> {
    use std::io::Read as _;
    let file = path.to_owned();
    let cannot = |source| PolicyError::Read { file: path.to_owned(), source };
    let opened = std::fs::File::open(path).map_err(cannot)?;
    if !opened.metadata().map_err(cannot)?.is_file() {
        return Err(PolicyError::NotRegularFile { file });
    }
    let mut text = String::new();
    opened.take(MAX_POLICY_BYTES + 1).read_to_string(&mut text).map_err(cannot)?;
    if text.len() as u64 > MAX_POLICY_BYTES {
        return Err(PolicyError::TooLong { file });
    }
    Ok(text)
}

/// Deserializers for the policy's value forms.
mod de {
    use serde::{Deserialize, Deserializer, de::Error};

    use crate::keys::{Algorithm, KeyUri};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Number(i64),
    }

    /// `"35d"`, `"12h"`, `"90m"`, `"3600s"`, `"1w"` or a number of seconds.
    pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match TextOrNumber::deserialize(d)? {
            TextOrNumber::Number(n) if n >= 0 => Ok(n),
            TextOrNumber::Number(n) => Err(D::Error::custom(format!("a duration cannot be negative ({n})"))),
            TextOrNumber::Text(text) => {
                let parsed = humantime::parse_duration(&text).map_err(|e| e.to_string());
                parsed.and_then(|d| i64::try_from(d.as_secs()).map_err(|_| "too long".to_owned())).map_err(|e| {
                    D::Error::custom(format!("bad duration {text:?} ({e}); write e.g. \"35d\", \"12h\", \"3600s\""))
                })
            }
        }
    }

    /// An optional [`duration`].
    pub(super) fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        duration(d).map(Some)
    }

    /// `"256MiB"`, `"1GiB"`, `"64KiB"` (binary units; `K`, `M`, `G`, `T`
    /// alone mean the same), `"1000B"`, or a number of bytes.
    pub(super) fn size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match TextOrNumber::deserialize(d)? {
            TextOrNumber::Number(n) => {
                u64::try_from(n).map_err(|_| D::Error::custom(format!("a size cannot be negative ({n})")))
            }
            TextOrNumber::Text(text) => parse_size(&text).ok_or_else(|| {
                D::Error::custom(format!("bad size {text:?}; write e.g. \"256MiB\", \"1GiB\" or a number of bytes"))
            }),
        }
    }

    fn parse_size(text: &str) -> Option<u64> {
        let text = text.trim();
        let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
        let number: u64 = text[..digits].parse().ok()?;
        let shift = match text[digits..].trim() {
            "" | "B" => 0,
            "K" | "KiB" => 10,
            "M" | "MiB" => 20,
            "G" | "GiB" => 30,
            "T" | "TiB" => 40,
            _ => return None,
        };
        number.checked_mul(1 << shift)
    }

    /// A mnemonic such as `"ECDSAP256SHA256"` or a number.
    pub(super) fn algorithm<'de, D: Deserializer<'de>>(d: D) -> Result<Algorithm, D::Error> {
        let text = match TextOrNumber::deserialize(d)? {
            TextOrNumber::Text(text) => text,
            TextOrNumber::Number(n) => n.to_string(),
        };
        Algorithm::from_text(&text).map_err(D::Error::custom)
    }

    /// A key store URI.
    pub(super) fn key_store<'de, D: Deserializer<'de>>(d: D) -> Result<Option<KeyUri>, D::Error> {
        let text = String::deserialize(d)?;
        // The field is named: a refused URI (one holding a PIN, say) must
        // be found without its text, which the message may not show.
        KeyUri::parse(&text).map(Some).map_err(|e| D::Error::custom(format!("keys.store: {e}")))
    }
}
