//! The parent, modelled as a registry that polls the child's CDS records
//! (RFC 7344, RFC 8078): when the zone publishes a CDS RRset that differs
//! from the DS RRset the parent has, the parent replaces its DS RRset with
//! it a fixed delay later, provided the zone still asks for the same set
//! then. A zone that stops publishing CDS asks for nothing; one that
//! publishes the CDS DELETE record asks for no DS at all. (With CDS off,
//! the dry-run plays the operator who submits the same set by hand.)

/// A change the parent made to its DS RRset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DsChange {
    /// DS RDATA now published that was not before.
    pub added: Vec<Vec<u8>>,
    /// DS RDATA no longer published.
    pub removed: Vec<Vec<u8>>,
}

/// What the zone asks the parent for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DsRequest {
    /// No change (no CDS published).
    Nothing,
    /// This DS RRset.
    Set(Vec<Vec<u8>>),
    /// No DS at all (CDS/CDNSKEY DELETE, RFC 8078 §4): the zone goes insecure.
    Delete,
}

/// The simulated parent.
#[derive(Debug, Clone)]
pub(crate) struct Parent {
    delay: i64,
    ds: Vec<Vec<u8>>,
    pending: Option<(Vec<Vec<u8>>, i64)>,
}

impl Parent {
    /// A parent with no DS for the zone, acting `delay` seconds after it
    /// sees a CDS RRset.
    pub(crate) fn new(delay: i64) -> Parent {
        Parent { delay, ds: Vec::new(), pending: None }
    }

    /// The DS RDATA the parent publishes, sorted.
    pub(crate) fn ds(&self) -> &[Vec<u8>] {
        &self.ds
    }

    /// At `at`, the zone asks for this DS RRset (its CDS records; or the
    /// operator's submission, which the parent treats the same way).
    pub(crate) fn asked(&mut self, request: &DsRequest, at: i64) {
        match request {
            DsRequest::Nothing => self.pending = None,
            DsRequest::Set(ds) if ds.is_empty() => self.pending = None,
            DsRequest::Set(ds) => {
                let mut wanted = ds.clone();
                wanted.sort();
                self.wants(wanted, at);
            }
            DsRequest::Delete => self.wants(Vec::new(), at),
        }
    }

    /// The parent will publish `wanted` (sorted) a delay after `at`,
    /// unless it publishes it already or has that change under way.
    fn wants(&mut self, wanted: Vec<Vec<u8>>, at: i64) {
        if wanted == self.ds {
            self.pending = None;
            return;
        }
        if self.pending.as_ref().is_none_or(|(set, _)| *set != wanted) {
            self.pending = Some((wanted, at + self.delay));
        }
    }

    /// When the parent next changes its DS RRset, if it will.
    pub(crate) fn due(&self) -> Option<i64> {
        self.pending.as_ref().map(|(_, due)| *due)
    }

    /// Makes the change that is due at `at`, if one is.
    pub(crate) fn act(&mut self, at: i64) -> Option<DsChange> {
        let (wanted, _) = self.pending.take_if(|(_, due)| *due <= at)?;
        let change = DsChange {
            added: wanted.iter().filter(|d| !self.ds.contains(d)).cloned().collect(),
            removed: self.ds.iter().filter(|d| !wanted.contains(d)).cloned().collect(),
        };
        self.ds = wanted;
        Some(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acts_on_a_steady_cds_after_the_delay() {
        let set = |names: &[&[u8]]| DsRequest::Set(names.iter().map(|n| n.to_vec()).collect());
        let mut parent = Parent::new(100);
        parent.asked(&set(&[b"a"]), 0);
        parent.asked(&set(&[b"a"]), 50);
        assert_eq!(parent.due(), Some(100), "the same request does not restart the clock");
        assert_eq!(parent.act(99), None);
        let change = parent.act(100).expect("due");
        assert_eq!(change.added, [b"a".to_vec()]);
        parent.asked(&set(&[b"a", b"b"]), 200);
        parent.asked(&set(&[b"b"]), 250);
        assert_eq!(parent.due(), Some(350), "a changed request starts again");
        let change = parent.act(400).expect("due");
        assert_eq!((change.added, change.removed), (vec![b"b".to_vec()], vec![b"a".to_vec()]));
        parent.asked(&set(&[b"c"]), 500);
        parent.asked(&DsRequest::Nothing, 510);
        assert_eq!(parent.due(), None, "a withdrawn request is dropped");
        parent.asked(&DsRequest::Delete, 600);
        let change = parent.act(700).expect("due");
        assert_eq!((change.added, change.removed), (vec![], vec![b"b".to_vec()]));
        assert!(parent.ds().is_empty(), "CDS DELETE: no DS at all");
    }
}
