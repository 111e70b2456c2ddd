//! An index over sorted keys by their leading bits, for the verifier's
//! lookups by digest or hash (the gate's memo, the NSEC3 chain): SHA
//! outputs are uniform, so a key's top bits pick a bucket of a few
//! entries, and a lookup is one or two cache misses where a binary search
//! over a million entries takes twenty. Keys are not trusted to be
//! uniform (a zone's NSEC3 owners are whatever the file says): a crowded
//! bucket is still searched correctly, only more slowly.

use std::ops::Range;

/// Bucket `b` (the top `bits` bits of a key's first four bytes) holds the
/// sorted keys `starts[b]..starts[b + 1]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PrefixIndex {
    starts: Vec<u32>,
    bits: u32,
}

impl PrefixIndex {
    /// The index of `len` keys sorted in byte order, key `i` beginning
    /// with the bytes `leading(i)` (any length; shorter keys count as
    /// padded with zeros, which keeps the order).
    pub(crate) fn build<'k>(len: usize, leading: impl Fn(usize) -> &'k [u8]) -> PrefixIndex {
        if len == 0 {
            return PrefixIndex::default();
        }
        // About four keys per bucket; at most 2^24 buckets (64 MiB).
        let bits = (len / 4).max(1).ilog2().min(24);
        let mut starts = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0;
        for bucket in 0..1u32 << bits {
            while at < len && bucket_of(leading(at), bits) < bucket {
                at += 1;
            }
            starts.push(at as u32);
        }
        starts.push(len as u32);
        PrefixIndex { starts, bits }
    }

    /// Where `key` is among the sorted `keys` this index was built over
    /// (`key_of` gives each one's bytes), or where it would go: a binary
    /// search of `key`'s bucket only.
    pub(crate) fn position<T>(&self, keys: &[T], key: &[u8], key_of: impl Fn(&T) -> &[u8]) -> Result<usize, usize> {
        let bucket = self.bucket(key);
        let start = bucket.start;
        keys[bucket].binary_search_by(|k| key_of(k).cmp(key)).map(|i| start + i).map_err(|i| start + i)
    }

    /// The positions of the keys that share `key`'s bucket: where `key`
    /// is, if anywhere, or where it would go. Empty for an empty index.
    fn bucket(&self, key: &[u8]) -> Range<usize> {
        let bucket = bucket_of(key, self.bits) as usize;
        match (self.starts.get(bucket), self.starts.get(bucket + 1)) {
            (Some(&start), Some(&end)) => start as usize..end as usize,
            _ => 0..0,
        }
    }
}

/// The top `bits` bits (at most 24) of a key's first four bytes.
fn bucket_of(key: &[u8], bits: u32) -> u32 {
    let mut top = [0u8; 4];
    let n = key.len().min(4);
    top[..n].copy_from_slice(&key[..n]);
    u32::from_be_bytes(top).checked_shr(32 - bits).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_a_binary_search_finds() {
        let mut keys: Vec<Vec<u8>> =
            (0u32..5000).map(|i| (i.wrapping_mul(2_654_435_761)).to_be_bytes().to_vec()).collect();
        // Short, empty and crowded keys too.
        keys.extend([vec![], vec![0x80], vec![0x80, 0], vec![0xff; 7]]);
        keys.extend((0u8..50).map(|i| vec![0, 0, 0, 0, i]));
        keys.sort();
        keys.dedup();
        let index = PrefixIndex::build(keys.len(), |i| keys[i].as_slice());
        let probes = keys.iter().cloned().chain((0u32..3000).map(|i| (i * 7919).to_be_bytes()[..3].to_vec()));
        for probe in probes {
            assert_eq!(index.position(&keys, &probe, |k| k.as_slice()), keys.binary_search(&probe), "{probe:?}");
        }
        let empty = PrefixIndex::build(0, |_| &[]);
        assert_eq!(empty.position(&[] as &[Vec<u8>], b"abcd", |k| k.as_slice()), Err(0));
    }
}
