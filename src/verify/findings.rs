//! Findings: what the verifier says about a zone, one line each.

use serde::Serialize;

use crate::zone::{NameRef, Rtype};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A validating resolver may fail (or the zone breaks a MUST).
    Error,
    /// Legal but unwise, or a SHOULD that is not met.
    Warning,
}

/// What a finding is about, as a stable code for scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// The zone has no DNSKEY RRset at the apex or no usable zone key.
    NoZoneKeys,
    /// RDATA of a DNSSEC record that cannot be parsed.
    MalformedRecord,
    /// An RRSIG whose signature is malformed or does not verify.
    BogusSignature,
    /// An RRSIG made with an algorithm the verifier cannot check.
    UnsupportedAlgorithm,
    /// An RRSIG whose key tag and algorithm match no zone key.
    UnknownKey,
    /// An RRSIG whose signer is not the apex.
    WrongSigner,
    /// An RRSIG whose labels field does not fit its owner.
    WrongLabels,
    /// An RRSIG whose original TTL differs from the RRset's TTL.
    OriginalTtlMismatch,
    /// An RRSIG whose own TTL differs from the RRset's TTL.
    RrsigTtlMismatch,
    /// An RRSIG past its expiration.
    SignatureExpired,
    /// An RRSIG before its inception.
    SignatureNotYetValid,
    /// An RRSIG that expires sooner than the required minimum validity.
    SignatureExpiresSoon,
    /// An RRSIG covering a type that has no RRset at its owner.
    OrphanSignature,
    /// An RRSIG over data that is not authoritative (glue, occluded data,
    /// a delegation's NS).
    SignatureOverNonAuthoritative,
    /// An authoritative RRset without a valid RRSIG for some algorithm.
    MissingSignature,
    /// Records of one RRset with different TTLs.
    TtlInconsistent,
    /// The DNSKEY RRset is not signed by a key the trust anchor names.
    Untrusted,
    /// A trust anchor (DS) that matches no key in the DNSKEY RRset.
    AnchorWithoutKey,
    /// A CDS or CDNSKEY that matches no key in the DNSKEY RRset.
    CdsMismatch,
    /// Neither NSEC nor NSEC3 (with NSEC3PARAM) in a signed zone.
    NoDenial,
    /// An authoritative name without its NSEC record.
    MissingNsec,
    /// An NSEC whose next name is not the next name in the zone.
    BrokenNsecChain,
    /// An NSEC or NSEC3 whose type bitmap does not list exactly the types
    /// present.
    WrongBitmap,
    /// An NSEC or NSEC3 where none belongs (glue, occluded data, no name).
    OrphanDenial,
    /// More than one NSEC or NSEC3 for one name.
    DuplicateDenial,
    /// NSEC3PARAM missing, malformed, or not matching the NSEC3 chain.
    #[serde(rename = "nsec3param-mismatch")]
    Nsec3ParamMismatch,
    /// A name (or empty non-terminal) without its NSEC3 and not covered
    /// by an opt-out span.
    MissingNsec3,
    /// An NSEC3 whose next hashed name is not the next hash in the chain.
    BrokenNsec3Chain,
    /// NSEC and NSEC3 both present, or other mixed denial.
    MixedDenial,
    /// A DNSSEC record in a zone put out unsigned (no DNSKEY at the
    /// apex), or a DS for a zone that is unsigned.
    UnsignedWithDnssec,
    /// An apex ZONEMD whose digest does not match the zone (RFC 8976 §4).
    ZonemdMismatch,
    /// An apex ZONEMD whose serial is not the SOA serial.
    ZonemdSerialMismatch,
    /// Two apex ZONEMD records of one scheme and hash algorithm.
    ZonemdDuplicate,
    /// An apex ZONEMD of a scheme or hash algorithm the verifier does not
    /// support (a warning, RFC 8976 §4).
    ZonemdUnsupported,
    /// ZONEMD records at the apex, none of them of a supported scheme and
    /// hash: the digest could not be verified (a warning).
    ZonemdUnverified,
    /// A ZONEMD below the apex (a warning: zone data, it verifies nothing).
    ZonemdNotAtApex,
    /// A zone content rule broken: the rule's own code
    /// ([`crate::zone::content::Rule::code`], e.g. `cname-and-other-data`).
    #[serde(untagged)]
    Content(crate::zone::content::Rule),
}

/// One thing the verifier found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// Stable code.
    pub code: Code,
    /// Owner name of the record concerned.
    pub owner: String,
    /// Type of the RRset concerned.
    pub rtype: String,
    /// Key tag, where a key is concerned.
    pub keytag: Option<u16>,
    /// What is wrong, in a resolver operator's words.
    pub message: String,
}

impl Finding {
    /// An error about `owner`/`rtype`.
    pub fn error(code: Code, owner: NameRef<'_>, rtype: Rtype, message: impl Into<String>) -> Finding {
        Finding::new(Severity::Error, code, owner, rtype, message)
    }

    /// A warning about `owner`/`rtype`.
    pub fn warning(code: Code, owner: NameRef<'_>, rtype: Rtype, message: impl Into<String>) -> Finding {
        Finding::new(Severity::Warning, code, owner, rtype, message)
    }

    fn new(severity: Severity, code: Code, owner: NameRef<'_>, rtype: Rtype, message: impl Into<String>) -> Finding {
        Finding {
            severity,
            code,
            owner: owner.to_string(),
            rtype: rtype.to_string(),
            keytag: None,
            message: message.into(),
        }
    }

    /// The same finding, naming a key tag.
    pub fn with_keytag(mut self, keytag: u16) -> Finding {
        self.keytag = Some(keytag);
        self
    }

    /// The one-line text form:
    /// `error  owner/TYPE  code  message`.
    pub fn to_line(&self) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let code = serde_json::to_value(self.code).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        format!("{severity:<7} {}/{}  {code}  {}", self.owner, self.rtype, self.message)
    }
}
