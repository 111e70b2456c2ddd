//! The DNSSEC record formats (RFC 4034, RFC 5155) as typed views over
//! wire RDATA, and the arithmetic on them that the signer and the
//! verifier both need: key tags, DS digests, NSEC3 hashes, type bitmaps.
//!
//! Every `parse` returns `None` for RDATA that is not well formed; callers
//! report that as a malformed record.

use std::fmt;

use super::name::NameRef;
use super::rtype::Rtype;

/// DNSKEY flag: the key is a zone key (RFC 4034 §2.1.1).
pub const FLAG_ZONE: u16 = 0x0100;
/// DNSKEY flag: secure entry point (RFC 4034 §2.1.1).
pub const FLAG_SEP: u16 = 0x0001;
/// DNSKEY flag: revoked (RFC 5011 §2.1).
pub const FLAG_REVOKE: u16 = 0x0080;
/// NSEC3 flag: opt-out (RFC 5155 §3.1.2.1).
pub const NSEC3_OPT_OUT: u8 = 0x01;

/// A DNSSEC signing algorithm that signet's key stores can make and use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// RSA/SHA-256 (8), 2048 to 4096 bits.
    RsaSha256,
    /// ECDSA P-256 with SHA-256 (13).
    EcdsaP256Sha256,
    /// ECDSA P-384 with SHA-384 (14).
    EcdsaP384Sha384,
    /// Ed25519 (15).
    Ed25519,
}

impl Algorithm {
    /// Every algorithm, by number.
    pub const ALL: [Algorithm; 4] =
        [Algorithm::RsaSha256, Algorithm::EcdsaP256Sha256, Algorithm::EcdsaP384Sha384, Algorithm::Ed25519];

    /// The IANA algorithm number.
    pub fn number(self) -> u8 {
        match self {
            Algorithm::RsaSha256 => 8,
            Algorithm::EcdsaP256Sha256 => 13,
            Algorithm::EcdsaP384Sha384 => 14,
            Algorithm::Ed25519 => 15,
        }
    }

    /// The IANA mnemonic.
    pub fn mnemonic(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "RSASHA256",
            Algorithm::EcdsaP256Sha256 => "ECDSAP256SHA256",
            Algorithm::EcdsaP384Sha384 => "ECDSAP384SHA384",
            Algorithm::Ed25519 => "ED25519",
        }
    }

    /// The algorithm with this number, if signet signs with it.
    pub fn from_number(number: u8) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.number() == number)
    }

    /// Reads a mnemonic (any case) or a number.
    pub fn from_text(text: &str) -> Result<Algorithm, UnsupportedAlgorithm> {
        let found = match text.parse::<u8>() {
            Ok(number) => Algorithm::from_number(number),
            Err(_) => Algorithm::ALL.into_iter().find(|a| a.mnemonic().eq_ignore_ascii_case(text)),
        };
        found.ok_or_else(|| UnsupportedAlgorithm(text.to_owned()))
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.mnemonic(), self.number())
    }
}

/// What a key does in the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Key-signing key: signs the DNSKEY RRset, referred to by the DS.
    Ksk,
    /// Zone-signing key: signs everything else.
    Zsk,
    /// Combined signing key: both.
    Csk,
}

impl Role {
    /// DNSKEY flags: zone key, plus SEP for a KSK or CSK.
    pub fn dnskey_flags(self) -> u16 {
        match self {
            Role::Ksk | Role::Csk => FLAG_ZONE | FLAG_SEP,
            Role::Zsk => FLAG_ZONE,
        }
    }

    /// Does the key sign the DNSKEY RRset (and CDS/CDNSKEY)?
    pub fn signs_keys(self) -> bool {
        matches!(self, Role::Ksk | Role::Csk)
    }

    /// Does the key sign the zone's other RRsets?
    pub fn signs_zone(self) -> bool {
        matches!(self, Role::Zsk | Role::Csk)
    }

    /// `ksk`, `zsk` or `csk`.
    pub fn from_text(text: &str) -> Result<Role, UnknownRole> {
        match text.to_ascii_lowercase().as_str() {
            "ksk" => Ok(Role::Ksk),
            "zsk" => Ok(Role::Zsk),
            "csk" => Ok(Role::Csk),
            _ => Err(UnknownRole(text.to_owned())),
        }
    }

    /// `ksk`, `zsk` or `csk`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ksk => "ksk",
            Role::Zsk => "zsk",
            Role::Csk => "csk",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An algorithm signet does not sign with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported algorithm {0:?}: signet signs with RSASHA256 (8), ECDSAP256SHA256 (13), ECDSAP384SHA384 (14), ED25519 (15)"
)]
pub struct UnsupportedAlgorithm(pub String);

/// A role other than ksk, zsk, csk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown key role {0:?}: expected ksk, zsk or csk")]
pub struct UnknownRole(pub String);

/// An RRSIG record (RFC 4034 §3.1).
#[derive(Debug, Clone, Copy)]
pub struct Rrsig<'a> {
    /// Type covered.
    pub type_covered: Rtype,
    /// Algorithm number.
    pub algorithm: u8,
    /// Labels field.
    pub labels: u8,
    /// Original TTL.
    pub original_ttl: u32,
    /// Expiration, seconds since the epoch modulo 2^32.
    pub expiration: u32,
    /// Inception, seconds since the epoch modulo 2^32.
    pub inception: u32,
    /// Key tag.
    pub key_tag: u16,
    /// Signer's name.
    pub signer: NameRef<'a>,
    /// Signature bytes.
    pub signature: &'a [u8],
    /// The RDATA up to and including the signer's name: the first part of
    /// the signed data (RFC 4034 §3.1.8.1).
    pub signed_prefix: &'a [u8],
}

impl<'a> Rrsig<'a> {
    /// Reads RRSIG RDATA.
    pub fn parse(rdata: &'a [u8]) -> Option<Rrsig<'a>> {
        let fixed = rdata.get(..18)?;
        let (signer, signature) = NameRef::parse_prefix(&rdata[18..])?;
        Some(Rrsig {
            type_covered: Rtype(u16_at(fixed, 0)),
            algorithm: fixed[2],
            labels: fixed[3],
            original_ttl: u32_at(fixed, 4),
            expiration: u32_at(fixed, 8),
            inception: u32_at(fixed, 12),
            key_tag: u16_at(fixed, 16),
            signer,
            signature,
            signed_prefix: &rdata[..rdata.len() - signature.len()],
        })
    }
}

/// A DNSKEY (or CDNSKEY) record (RFC 4034 §2.1).
#[derive(Debug, Clone, Copy)]
pub struct Dnskey<'a> {
    /// Flags.
    pub flags: u16,
    /// Protocol; 3 for DNSSEC.
    pub protocol: u8,
    /// Algorithm number.
    pub algorithm: u8,
    /// Public key in the algorithm's DNSKEY format.
    pub public_key: &'a [u8],
}

impl<'a> Dnskey<'a> {
    /// Reads DNSKEY RDATA.
    pub fn parse(rdata: &'a [u8]) -> Option<Dnskey<'a>> {
        let fixed = rdata.get(..4)?;
        Some(Dnskey { flags: u16_at(fixed, 0), protocol: fixed[2], algorithm: fixed[3], public_key: &rdata[4..] })
    }

    /// A CDNSKEY "delete" record (RFC 8078 §4: algorithm 0).
    pub fn is_delete(&self) -> bool {
        self.algorithm == 0
    }

    /// Zone-key bit set and protocol 3: may sign zone data.
    pub fn is_zone_key(&self) -> bool {
        self.flags & FLAG_ZONE != 0 && self.protocol == 3
    }

    /// Secure-entry-point bit set.
    pub fn is_sep(&self) -> bool {
        self.flags & FLAG_SEP != 0
    }

    /// Revoked bit set.
    pub fn is_revoked(&self) -> bool {
        self.flags & FLAG_REVOKE != 0
    }
}

/// A DS (or CDS) record (RFC 4034 §5.1).
#[derive(Debug, Clone, Copy)]
pub struct Ds<'a> {
    /// Key tag of the DNSKEY it refers to.
    pub key_tag: u16,
    /// Algorithm of that DNSKEY.
    pub algorithm: u8,
    /// Digest type (1 SHA-1, 2 SHA-256, 4 SHA-384).
    pub digest_type: u8,
    /// Digest.
    pub digest: &'a [u8],
}

impl<'a> Ds<'a> {
    /// Reads DS RDATA.
    pub fn parse(rdata: &'a [u8]) -> Option<Ds<'a>> {
        let fixed = rdata.get(..4)?;
        Some(Ds { key_tag: u16_at(fixed, 0), algorithm: fixed[2], digest_type: fixed[3], digest: &rdata[4..] })
    }

    /// A CDS "delete" record (RFC 8078 §4: algorithm 0): remove every DS.
    pub fn is_delete(&self) -> bool {
        self.algorithm == 0
    }
}

/// An NSEC record (RFC 4034 §4.1).
#[derive(Debug, Clone, Copy)]
pub struct Nsec<'a> {
    /// Next owner name.
    pub next: NameRef<'a>,
    /// Type bitmap.
    pub types: TypeBitmap<'a>,
}

impl<'a> Nsec<'a> {
    /// Reads NSEC RDATA.
    pub fn parse(rdata: &'a [u8]) -> Option<Nsec<'a>> {
        let (next, rest) = NameRef::parse_prefix(rdata)?;
        Some(Nsec { next, types: TypeBitmap::parse(rest)? })
    }
}

/// NSEC3 hash parameters, shared by NSEC3 and NSEC3PARAM (RFC 5155).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nsec3Params<'a> {
    /// Hash algorithm; 1 is SHA-1.
    pub hash_algorithm: u8,
    /// Iterations.
    pub iterations: u16,
    /// Salt.
    pub salt: &'a [u8],
}

/// An NSEC3 record (RFC 5155 §3).
#[derive(Debug, Clone, Copy)]
pub struct Nsec3<'a> {
    /// Hash parameters.
    pub params: Nsec3Params<'a>,
    /// Flags (opt-out is bit 0).
    pub flags: u8,
    /// Next hashed owner name, raw (not base32).
    pub next_hashed: &'a [u8],
    /// Type bitmap.
    pub types: TypeBitmap<'a>,
}

impl<'a> Nsec3<'a> {
    /// Reads NSEC3 RDATA.
    pub fn parse(rdata: &'a [u8]) -> Option<Nsec3<'a>> {
        let (params, flags, rest) = parse_nsec3_params(rdata)?;
        let hash_len = *rest.first()? as usize;
        let next_hashed = rest.get(1..1 + hash_len)?;
        let types = TypeBitmap::parse(&rest[1 + hash_len..])?;
        Some(Nsec3 { params, flags, next_hashed, types })
    }

    /// Opt-out flag set.
    pub fn opt_out(&self) -> bool {
        self.flags & NSEC3_OPT_OUT != 0
    }
}

/// An NSEC3PARAM record (RFC 5155 §4).
#[derive(Debug, Clone, Copy)]
pub struct Nsec3Param<'a> {
    /// Hash parameters.
    pub params: Nsec3Params<'a>,
    /// Flags (must be 0 in zone data).
    pub flags: u8,
}

impl<'a> Nsec3Param<'a> {
    /// Reads NSEC3PARAM RDATA.
    pub fn parse(rdata: &'a [u8]) -> Option<Nsec3Param<'a>> {
        let (params, flags, rest) = parse_nsec3_params(rdata)?;
        rest.is_empty().then_some(Nsec3Param { params, flags })
    }
}

fn parse_nsec3_params(rdata: &[u8]) -> Option<(Nsec3Params<'_>, u8, &[u8])> {
    let fixed = rdata.get(..5)?;
    let salt_len = fixed[4] as usize;
    let salt = rdata.get(5..5 + salt_len)?;
    let params = Nsec3Params { hash_algorithm: fixed[0], iterations: u16_at(fixed, 2), salt };
    Some((params, fixed[1], &rdata[5 + salt_len..]))
}

/// A type bitmap as in NSEC and NSEC3 (RFC 4034 §4.1.2), checked when
/// parsed: windows ascending, lengths 1..=32, no trailing zero octet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeBitmap<'a>(&'a [u8]);

impl<'a> TypeBitmap<'a> {
    /// Checks and wraps bitmap bytes.
    pub fn parse(bytes: &'a [u8]) -> Option<TypeBitmap<'a>> {
        let mut rest = bytes;
        let mut last_window = None;
        while !rest.is_empty() {
            let (window, len) = (rest[0], *rest.get(1)? as usize);
            if last_window.is_some_and(|last| window <= last) || !(1..=32).contains(&len) {
                return None;
            }
            let block = rest.get(2..2 + len)?;
            if block[len - 1] == 0 {
                return None;
            }
            last_window = Some(window);
            rest = &rest[2 + len..];
        }
        Some(TypeBitmap(bytes))
    }

    /// The types in the bitmap, ascending.
    pub fn types(self) -> impl Iterator<Item = Rtype> + 'a {
        let mut windows = Vec::new();
        let mut rest = self.0;
        while rest.len() >= 2 {
            let len = rest[1] as usize;
            windows.push((rest[0], &rest[2..2 + len]));
            rest = &rest[2 + len..];
        }
        windows.into_iter().flat_map(|(window, block)| {
            block.iter().enumerate().flat_map(move |(octet, &bits)| {
                (0..8u16)
                    .filter(move |bit| bits & (0x80 >> bit) != 0)
                    .map(move |bit| Rtype(u16::from(window) << 8 | (octet as u16) << 3 | bit))
            })
        })
    }

    /// Is `rtype` in the bitmap?
    pub fn contains(self, rtype: Rtype) -> bool {
        self.types().any(|t| t == rtype)
    }

    /// The raw bytes.
    pub fn bytes(self) -> &'a [u8] {
        self.0
    }
}

/// Encodes types (any order, duplicates allowed) as a type bitmap.
pub fn encode_type_bitmap(types: impl IntoIterator<Item = Rtype>, out: &mut Vec<u8>) {
    let mut types: Vec<u16> = types.into_iter().map(|t| t.0).collect();
    types.sort_unstable();
    types.dedup();
    for window_types in types.chunk_by(|a, b| a >> 8 == b >> 8) {
        let window = (window_types[0] >> 8) as u8;
        let mut block = [0u8; 32];
        let mut len = 0;
        for &t in window_types {
            let low = (t & 0xff) as usize;
            block[low / 8] |= 0x80 >> (low % 8);
            len = low / 8 + 1;
        }
        out.push(window);
        out.push(len as u8);
        out.extend_from_slice(&block[..len]);
    }
}

/// The key tag of DNSKEY RDATA (RFC 4034 Appendix B; algorithm 1 keys,
/// long obsolete, use another formula and are not supported).
pub fn key_tag(dnskey_rdata: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for (i, &byte) in dnskey_rdata.iter().enumerate() {
        acc += if i % 2 == 0 { u32::from(byte) << 8 } else { u32::from(byte) };
    }
    acc += (acc >> 16) & 0xffff;
    (acc & 0xffff) as u16
}

/// The DS digest of a DNSKEY (RFC 4034 §5.1.4): digest of the lowercased
/// owner name in wire form followed by the DNSKEY RDATA. `None` for a
/// digest type we do not know.
pub fn ds_digest(owner: NameRef<'_>, dnskey_rdata: &[u8], digest_type: u8) -> Option<Vec<u8>> {
    use ring::digest;
    let algorithm = match digest_type {
        1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
        2 => &digest::SHA256,
        4 => &digest::SHA384,
        _ => return None,
    };
    let mut ctx = digest::Context::new(algorithm);
    ctx.update(&owner.wire().to_ascii_lowercase());
    ctx.update(dnskey_rdata);
    Some(ctx.finish().as_ref().to_vec())
}

/// The hash an NSEC3 owner stands for: its first label, base32hex
/// (either case), decoded to the 20 bytes of SHA-1, the only NSEC3 hash
/// (RFC 5155 §11). `None` for a label that does not decode so.
pub fn nsec3_owner_hash(owner: NameRef<'_>) -> Option<[u8; 20]> {
    let label = owner.labels().next()?;
    let hash = data_encoding::BASE32HEX_NOPAD.decode(&label.to_ascii_uppercase()).ok()?;
    hash.try_into().ok()
}

/// The NSEC3 hash of `name` (RFC 5155 §5): SHA-1 of the lowercased wire
/// name and salt, iterated. `None` for a hash algorithm other than SHA-1.
pub fn nsec3_hash(name: NameRef<'_>, params: &Nsec3Params<'_>) -> Option<[u8; 20]> {
    use sha1::{Digest, Sha1};
    if params.hash_algorithm != 1 {
        return None;
    }
    // The lowercased name on the stack: a zone's names are hashed by the
    // million, by the signer and again by the gate (and with the `sha1`
    // crate, which uses the CPU's SHA instructions where ring does not).
    let wire = name.wire();
    let mut lowercase = [0u8; 255];
    let lowercase = &mut lowercase[..wire.len().min(255)];
    lowercase.copy_from_slice(&wire[..lowercase.len()]);
    lowercase.make_ascii_lowercase();
    let mut hash: [u8; 20] = Sha1::new().chain_update(&*lowercase).chain_update(params.salt).finalize().into();
    for _ in 0..params.iterations {
        hash = Sha1::new().chain_update(hash).chain_update(params.salt).finalize().into();
    }
    Some(hash)
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([bytes[at], bytes[at + 1]])
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Does DS RDATA name this DNSKEY RDATA? `None` for an unknown digest.
pub fn ds_matches(apex: NameRef<'_>, ds_rdata: &[u8], dnskey_rdata: &[u8]) -> Option<bool> {
    let ds = Ds::parse(ds_rdata)?;
    let key = Dnskey::parse(dnskey_rdata)?;
    if ds.key_tag != key_tag(dnskey_rdata) || ds.algorithm != key.algorithm {
        return Some(false);
    }
    ds_digest(apex, dnskey_rdata, ds.digest_type).map(|digest| digest == ds.digest)
}

/// SOA serial and MINIMUM: after the two names, five 32-bit fields.
pub fn soa_fields(rdata: &[u8]) -> Option<(u32, u32)> {
    let at = soa_serial_offset(rdata)?;
    let field = |i: usize| rdata.get(at + 4 * i..at + 4 * i + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
    Some((field(0)?, field(4)?))
}

pub fn soa_serial_offset(rdata: &[u8]) -> Option<usize> {
    let (_, rest) = NameRef::parse_prefix(rdata)?;
    let (_, rest) = NameRef::parse_prefix(rest)?;
    (rest.len() == 20).then_some(rdata.len() - 20)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::name::Name;

    #[test]
    fn bitmap_round_trip() {
        let types = [Rtype::A, Rtype::MX, Rtype::RRSIG, Rtype::NSEC, Rtype::CAA, Rtype(1234)];
        let mut bytes = Vec::new();
        encode_type_bitmap(types.iter().rev().copied(), &mut bytes);
        let bitmap = TypeBitmap::parse(&bytes).expect("valid bitmap");
        assert_eq!(bitmap.types().collect::<Vec<_>>(), types);
        assert!(bitmap.contains(Rtype::CAA) && !bitmap.contains(Rtype::AAAA));
        // RFC 4034 §4.3 example: A MX RRSIG NSEC TYPE1234.
        let mut rfc = Vec::new();
        encode_type_bitmap([Rtype::A, Rtype::MX, Rtype::RRSIG, Rtype::NSEC, Rtype(1234)], &mut rfc);
        let mut expected = vec![0x00, 0x06, 0x40, 0x01, 0x00, 0x00, 0x00, 0x03, 0x04, 0x1b];
        expected.extend_from_slice(&[0; 26]);
        expected.push(0x20);
        assert_eq!(rfc, expected);
        assert!(TypeBitmap::parse(&[0, 1, 0]).is_none(), "trailing zero octet");
        assert!(TypeBitmap::parse(&[1, 1, 1, 0, 1, 1]).is_none(), "windows out of order");
    }

    /// The RFC 5155 Appendix A example hashes.
    #[test]
    fn nsec3_hash_matches_rfc5155() {
        let salt = [0xaa, 0xbb, 0xcc, 0xdd];
        let params = Nsec3Params { hash_algorithm: 1, iterations: 12, salt: &salt };
        let cases = [
            ("example.", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
            ("a.example.", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
            ("*.w.example.", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
        ];
        for (name, expected) in cases {
            let name = Name::from_text(name, None).expect("valid");
            let hash = nsec3_hash(name.as_ref(), &params).expect("sha-1");
            assert_eq!(data_encoding::BASE32HEX_NOPAD.encode(&hash).to_ascii_lowercase(), expected);
        }
    }

    /// RFC 4034 §5.4 example: DNSKEY of dskey.example.com. and its DS.
    #[test]
    fn key_tag_and_ds_match_rfc4034() {
        let key = data_encoding::BASE64.decode(b"AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==").expect("base64");
        let mut rdata = vec![0x01, 0x00, 3, 5];
        rdata.extend_from_slice(&key);
        assert_eq!(key_tag(&rdata), 60485);
        let owner = Name::from_text("dskey.example.com.", None).expect("valid");
        let digest = ds_digest(owner.as_ref(), &rdata, 1).expect("sha-1");
        assert_eq!(data_encoding::HEXUPPER.encode(&digest), "2BB183AF5F22588179A53B0A98631FAD1A292118");
    }
}
