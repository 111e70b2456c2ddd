//! A publication's entry in the journal: the published version's
//! difference from the version published before it, encoded for
//! [`crate::db::Database::commit_run`], which stores it in the
//! publication's own transaction.
//!
//! No entry (None) means the journal starts again at this version: the
//! versions before it can no longer be served as IXFR, and a secondary at
//! an older serial gets the whole zone (AXFR, as RFC 1995 §4 allows). That
//! happens when the version before is unknown (the first publication, or
//! a previous output that could not be read), when the policy keeps no
//! journal, and when the difference is too large to keep (larger than
//! `journal.max-size`, or than one database value may be).

use crate::db::JournalEntry;
use crate::policy::JournalPolicy;
use crate::zone::Zone;
use crate::zone::diff::ZoneDiff;

/// The largest difference kept, whatever the policy says: SQLite refuses a
/// value over 1,000,000,000 bytes (SQLITE_MAX_LENGTH), and the commit of a
/// publication must not fail on its journal.
pub const MAX_DIFF_BYTES: usize = 512 << 20;

/// The journal entry for publishing `published` after `previous` (the
/// version published before, as read back from the output; None if it is
/// unknown): None when no difference is to be kept (see the module).
pub fn diff_for_commit(previous: Option<&Zone>, published: &Zone, bounds: &JournalPolicy) -> Option<JournalEntry> {
    let previous = previous?;
    if bounds.max_versions == 0 || bounds.max_size == 0 {
        return None;
    }
    let started = std::time::Instant::now();
    let diff =
        ZoneDiff::between(previous, published).inspect_err(|e| tracing::warn!("journal starts again: {e}")).ok()?;
    if diff.old_serial() == diff.new_serial() {
        tracing::warn!(serial = diff.new_serial(), "journal starts again: the serial did not move");
        return None;
    }
    let len = diff.encoded_len();
    let limit = MAX_DIFF_BYTES.min(usize::try_from(bounds.max_size).unwrap_or(usize::MAX));
    if len > limit {
        tracing::info!(bytes = len, limit, "journal starts again: the difference is larger than the journal keeps");
        return None;
    }
    let encoded = diff.encode().inspect_err(|e| tracing::warn!("journal starts again: {e}")).ok()?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        removed = encoded.removed,
        added = encoded.added,
        bytes = len,
        "difference from the version before"
    );
    Some(JournalEntry { diff: encoded, bounds: *bounds })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::zone::{Name, read_zone_str};

    fn zone(serial: u32, extra: &str) -> Zone {
        let text = format!(
            "example. 3600 IN SOA ns.example. admin.example. {serial} 7200 3600 1209600 300\n\
             example. 3600 IN NS ns.example.\nns.example. 3600 IN A 192.0.2.53\n{extra}"
        );
        let origin = Name::from_text("example.", None).expect("origin");
        read_zone_str(&text, &origin, Path::new("t.zone")).expect("reads")
    }

    #[test]
    fn a_known_previous_version_gives_its_difference() {
        let (old, new) = (zone(1, ""), zone(2, "a.example. 300 IN A 192.0.2.1\n"));
        let entry = diff_for_commit(Some(&old), &new, &JournalPolicy::default()).expect("an entry");
        assert_eq!((entry.diff.old_serial, entry.diff.new_serial), (1, 2));
        assert_eq!((entry.diff.removed, entry.diff.added), (1, 2));
        assert_eq!(entry.bounds, JournalPolicy::default());
        let decoded = ZoneDiff::decode(&entry.diff.bytes).expect("decodes");
        assert_eq!(decoded.added_len(), 2);
    }

    #[test]
    fn no_entry_restarts_the_chain() {
        let (old, new) = (zone(1, ""), zone(2, "a.example. 300 IN A 192.0.2.1\n"));
        let default = JournalPolicy::default();
        assert!(diff_for_commit(None, &new, &default).is_none(), "previous version unknown");
        let off = JournalPolicy { max_versions: 0, ..default };
        assert!(diff_for_commit(Some(&old), &new, &off).is_none(), "no journal kept");
        let tiny = JournalPolicy { max_size: 64, ..default };
        assert!(diff_for_commit(Some(&old), &new, &tiny).is_none(), "larger than the journal");
        assert!(diff_for_commit(Some(&new), &new, &default).is_none(), "the serial did not move");
        let other = read_zone_str(
            "other. 3600 IN SOA ns.other. a.other. 1 2 3 4 5\n",
            &Name::from_text("other.", None).expect("name"),
            Path::new("o.zone"),
        )
        .expect("reads");
        assert!(diff_for_commit(Some(&other), &new, &default).is_none(), "another zone");
    }
}
