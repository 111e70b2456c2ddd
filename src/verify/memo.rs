//! The gate's signature memo: SHA-256 digests of the exact verification
//! inputs of signatures the verifier judged valid, so that the gate of the
//! next publication can skip the public-key operation for a signature it
//! has already verified, byte for byte (ARCHITECTURE.md §6).
//!
//! Whether a signature verifies is a pure function of three byte strings:
//! the DNSKEY RDATA of the key, the RRSIG RDATA (signature included) and
//! the signed data (RRSIG prefix + canonical RRset). The digest covers all
//! three, each length-prefixed behind a domain-separation prefix, so a hit
//! means "these very bytes verified before": finding another input with a
//! digest in the memo is a SHA-256 second preimage. Everything that
//! depends on time or on the rest of the zone (validity window, coverage,
//! denial, trust) is not memoized and is checked on every run.
//!
//! The memo is only ever made by the verifier from its own verdicts
//! ([`super::verify_zone_with_memo`]); a stored one that does not read
//! back intact ([`SignatureMemo::from_bytes`]) is an error the caller
//! answers by verifying everything: damage can only cost a
//! re-verification, never accept a signature.

use ring::digest::{Context, SHA256};

use super::prefix_index::PrefixIndex;

/// One memo entry: the SHA-256 of one signature's verification input.
pub type MemoDigest = [u8; 32];

/// Domain separation for [`digest`]. The version moves whenever what the
/// verifier accepts could change for the same bytes (its crypto, the
/// algorithms it implements): memos made by an older verifier then miss.
const DOMAIN: &[u8] = b"signet gate memo v1\0";

/// The first bytes of a serialized memo.
const MAGIC: &[u8; 8] = b"SGNTMEMO";

/// The serialization's version.
const VERSION: u32 = 1;

/// Magic, version (u32) and entry count (u64), big-endian.
const HEADER_LEN: usize = MAGIC.len() + 4 + 8;

/// The trailing SHA-256 of everything before it.
const CHECKSUM_LEN: usize = 32;

/// Why stored memo bytes were not taken. Every variant means the same to
/// the caller: run with an empty memo and verify every signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoError {
    /// Fewer bytes than a header and a checksum.
    #[error("memo of {0} bytes is shorter than its header and checksum")]
    TooShort(usize),
    /// The first bytes are not the memo's magic.
    #[error("memo does not start with its magic number")]
    BadMagic,
    /// A serialization this signet does not read.
    #[error("memo format version {0} is unknown (this signet reads version {VERSION})")]
    UnknownVersion(u32),
    /// The header's count does not fit the length.
    #[error("memo header counts {count} entries, but {len} bytes hold a different number")]
    CountMismatch {
        /// Entries the header counts.
        count: u64,
        /// Bytes there are.
        len: usize,
    },
    /// The trailing checksum is not the SHA-256 of the rest.
    #[error("memo checksum does not match its contents")]
    Checksum,
    /// More entries than a memo holds (2^32 - 1).
    #[error("memo header counts {0} entries, more than a memo holds")]
    TooLarge(u64),
    /// Entries out of order or repeated.
    #[error("memo entry {0} is not greater than the one before it")]
    Unsorted(usize),
}

/// The SHA-256 of one signature's verification input: `dnskey_rdata` of
/// the key that verified it, the whole `rrsig_rdata` (signature included)
/// and `signed_data` as the verifier built it (RFC 4034 §3.1.8.1). Each
/// part is length-prefixed, so that no byte can move from one to another.
pub fn digest(dnskey_rdata: &[u8], rrsig_rdata: &[u8], signed_data: &[u8]) -> MemoDigest {
    let mut context = Context::new(&SHA256);
    context.update(DOMAIN);
    for part in [dnskey_rdata, rrsig_rdata, signed_data] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    }
    let mut out = [0; 32];
    out.copy_from_slice(context.finish().as_ref());
    out
}

/// A set of [`MemoDigest`]s, sorted and distinct, so that the
/// serialization is the entries as they lie; looked up through an index
/// by their leading bits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureMemo {
    digests: Vec<MemoDigest>,
    index: PrefixIndex,
}

impl SignatureMemo {
    /// The memo of these digests (in any order, repeats dropped). Only the
    /// verifier makes a memo from digests, of the signatures it found
    /// valid.
    pub(crate) fn from_digests(mut digests: Vec<MemoDigest>) -> SignatureMemo {
        use rayon::slice::ParallelSliceMut as _;
        digests.par_sort_unstable();
        digests.dedup();
        SignatureMemo::indexed(digests)
    }

    /// The memo of sorted, distinct `digests`, with its index.
    fn indexed(digests: Vec<MemoDigest>) -> SignatureMemo {
        let index = PrefixIndex::build(digests.len(), |i| digests[i].as_slice());
        SignatureMemo { digests, index }
    }

    /// Was this exact verification input verified before?
    pub fn contains(&self, digest: &MemoDigest) -> bool {
        self.index.position(&self.digests, digest, |d| d.as_slice()).is_ok()
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// No entry.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// The stored form: magic, version, entry count, the sorted entries,
    /// then the SHA-256 of all that.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.digests.len() * 32 + CHECKSUM_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&(self.digests.len() as u64).to_be_bytes());
        for digest in &self.digests {
            out.extend_from_slice(digest);
        }
        let checksum = ring::digest::digest(&SHA256, &out);
        out.extend_from_slice(checksum.as_ref());
        out
    }

    /// Reads [`SignatureMemo::to_bytes`]'s form back; anything malformed
    /// is an error, never a partial memo.
    pub fn from_bytes(bytes: &[u8]) -> Result<SignatureMemo, MemoError> {
        if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
            return Err(MemoError::TooShort(bytes.len()));
        }
        let (header, rest) = bytes.split_at(HEADER_LEN);
        if &header[..MAGIC.len()] != MAGIC {
            return Err(MemoError::BadMagic);
        }
        let version = be_number(&header[8..12]) as u32;
        if version != VERSION {
            return Err(MemoError::UnknownVersion(version));
        }
        let count = be_number(&header[12..20]);
        if count > u64::from(u32::MAX) {
            return Err(MemoError::TooLarge(count));
        }
        let entries_len = rest.len() - CHECKSUM_LEN;
        if !entries_len.is_multiple_of(32) || (entries_len / 32) as u64 != count {
            return Err(MemoError::CountMismatch { count, len: bytes.len() });
        }
        let (body, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if ring::digest::digest(&SHA256, body).as_ref() != checksum {
            return Err(MemoError::Checksum);
        }
        let digests: Vec<MemoDigest> = rest[..entries_len].chunks_exact(32).map(entry).collect();
        if let Some(at) = digests.windows(2).position(|w| w[0] >= w[1]) {
            return Err(MemoError::Unsorted(at + 1));
        }
        Ok(SignatureMemo::indexed(digests))
    }
}

/// A big-endian number of up to eight bytes.
fn be_number(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |n, &b| n << 8 | u64::from(b))
}

/// One entry from its 32 bytes.
fn entry(bytes: &[u8]) -> MemoDigest {
    let mut digest = [0; 32];
    digest.copy_from_slice(bytes);
    digest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: u32) -> SignatureMemo {
        let digests = (0..n).map(|i| digest(b"key", &i.to_be_bytes(), b"data")).collect();
        SignatureMemo::from_digests(digests)
    }

    /// Recomputes the trailing checksum, as someone editing the stored
    /// memo on purpose would.
    fn reseal(bytes: &mut [u8]) {
        let at = bytes.len() - CHECKSUM_LEN;
        let checksum = ring::digest::digest(&SHA256, &bytes[..at]);
        bytes[at..].copy_from_slice(checksum.as_ref());
    }

    #[test]
    fn round_trip() {
        let memo = sample(1000);
        assert_eq!(memo.len(), 1000);
        let bytes = memo.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 1000 * 32 + CHECKSUM_LEN);
        let back = SignatureMemo::from_bytes(&bytes).expect("reads back");
        assert_eq!(back, memo);
        assert!(back.contains(&digest(b"key", &7u32.to_be_bytes(), b"data")));
        assert!(!back.contains(&digest(b"key", &1000u32.to_be_bytes(), b"data")));
        let empty = SignatureMemo::default();
        assert_eq!(SignatureMemo::from_bytes(&empty.to_bytes()).expect("empty"), empty);
    }

    #[test]
    fn lookups_find_every_entry_and_nothing_else() {
        for n in [0, 1, 7, 8, 9, 33, 1000, 100_000] {
            let memo = sample(n);
            let back = SignatureMemo::from_bytes(&memo.to_bytes()).expect("reads back");
            for i in 0..n {
                assert!(back.contains(&digest(b"key", &i.to_be_bytes(), b"data")), "n={n}, entry {i}");
                assert!(!back.contains(&digest(b"other", &i.to_be_bytes(), b"data")), "n={n}, probe {i}");
            }
        }
        // Entries that all share their leading bits (as someone writing
        // them on purpose could make) are found all the same.
        let skewed: Vec<MemoDigest> = (0..100u8)
            .map(|i| {
                let mut d = [0; 32];
                d[31] = i;
                d
            })
            .collect();
        let memo = SignatureMemo::from_digests(skewed.clone());
        assert!(skewed.iter().all(|d| memo.contains(d)));
        assert!(!memo.contains(&[0xff; 32]) && !memo.contains(&[0; 32].map(|_| 1)));
    }

    #[test]
    fn repeats_are_dropped_and_order_does_not_matter() {
        let a = digest(b"k", b"r", b"d");
        let b = digest(b"k", b"r", b"e");
        let memo = SignatureMemo::from_digests(vec![b, a, b, a]);
        assert_eq!(memo, SignatureMemo::from_digests(vec![a, b]));
        assert_eq!(memo.len(), 2);
    }

    #[test]
    fn every_part_and_its_boundary_counts() {
        let base = digest(b"key", b"rrsig", b"data");
        assert_ne!(base, digest(b"kex", b"rrsig", b"data"));
        assert_ne!(base, digest(b"key", b"rrsih", b"data"));
        assert_ne!(base, digest(b"key", b"rrsig", b"datb"));
        // A byte moved from one part to the next is another input.
        assert_ne!(base, digest(b"ke", b"yrrsig", b"data"));
        assert_ne!(base, digest(b"key", b"rrsigd", b"ata"));
    }

    #[test]
    fn a_tampered_entry_only_misses() {
        let memo = sample(100);
        let target = memo.digests[40];
        let mut bytes = memo.to_bytes();
        // The last byte of entry 40: the order stays (entries differ
        // earlier), and the checksum is made to match again.
        let at = HEADER_LEN + 40 * 32 + 31;
        bytes[at] ^= 0x01;
        reseal(&mut bytes);
        let tampered = SignatureMemo::from_bytes(&bytes).expect("a consistent file reads");
        assert!(!tampered.contains(&target), "the original input is no longer remembered");
        assert_eq!(tampered.len(), 100);
        for (i, d) in memo.digests.iter().enumerate() {
            assert_eq!(tampered.contains(d), i != 40, "entry {i}");
        }
    }

    #[test]
    fn a_flipped_entry_byte_breaks_the_checksum() {
        let mut bytes = sample(10).to_bytes();
        bytes[HEADER_LEN + 3 * 32 + 5] ^= 0x80;
        assert_eq!(SignatureMemo::from_bytes(&bytes), Err(MemoError::Checksum));
    }

    #[test]
    fn damage_to_header_count_or_checksum_is_an_error() {
        let good = sample(10).to_bytes();
        let damaged = |at: usize| {
            let mut bytes = good.clone();
            bytes[at] ^= 0x01;
            SignatureMemo::from_bytes(&bytes)
        };
        assert_eq!(damaged(0), Err(MemoError::BadMagic));
        assert_eq!(damaged(11), Err(MemoError::UnknownVersion(VERSION ^ 1)));
        assert!(matches!(damaged(19), Err(MemoError::CountMismatch { count: 11, .. })));
        assert_eq!(damaged(good.len() - 1), Err(MemoError::Checksum));
        assert_eq!(damaged(good.len() - CHECKSUM_LEN), Err(MemoError::Checksum));
        assert!(matches!(SignatureMemo::from_bytes(&good[..good.len() - 1]), Err(MemoError::CountMismatch { .. })));
        assert!(matches!(SignatureMemo::from_bytes(&good[..40]), Err(MemoError::TooShort(40))));
        assert!(matches!(SignatureMemo::from_bytes(b""), Err(MemoError::TooShort(0))));
        let mut huge = good.clone();
        huge[12..20].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(SignatureMemo::from_bytes(&huge), Err(MemoError::TooLarge(u64::MAX)));
    }

    #[test]
    fn a_consistently_shortened_memo_only_misses() {
        // Header and length agree (one entry dropped, count lowered,
        // resealed): it reads, with one entry fewer, which only misses.
        let memo = sample(10);
        let mut bytes = memo.to_bytes();
        bytes.drain(HEADER_LEN..HEADER_LEN + 32);
        bytes[19] = 9;
        reseal(&mut bytes);
        let fewer = SignatureMemo::from_bytes(&bytes).expect("reads");
        assert_eq!(fewer.len(), 9);
        assert!(!fewer.contains(&memo.digests[0]));
    }

    #[test]
    fn unsorted_or_repeated_entries_are_an_error() {
        let memo = sample(10);
        let mut swapped = memo.to_bytes();
        let (a, b) = (HEADER_LEN + 2 * 32, HEADER_LEN + 3 * 32);
        let first: Vec<u8> = swapped[a..b].to_vec();
        swapped.copy_within(b..b + 32, a);
        swapped[b..b + 32].copy_from_slice(&first);
        reseal(&mut swapped);
        assert_eq!(SignatureMemo::from_bytes(&swapped), Err(MemoError::Unsorted(3)));
        let mut repeated = memo.to_bytes();
        repeated.copy_within(a..b, b);
        reseal(&mut repeated);
        assert_eq!(SignatureMemo::from_bytes(&repeated), Err(MemoError::Unsorted(3)));
    }
}
