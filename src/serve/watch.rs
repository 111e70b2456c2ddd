//! Watching a zone's input file by polling: cheap (one `stat` per poll),
//! and it works where inotify does not (NFS, a file replaced by rename,
//! a symlink switched to another file, a directory that is recreated).
//!
//! A change is reported only once it has settled: the file's stamp (size,
//! mtime, inode, device) differs from the last one reported and was the
//! same at two polls in a row. A file still being written keeps changing
//! and is not reported yet. The content digest, which tells an edit from
//! a `touch`, is the zone task's business ([`super::zone_task`]).

use std::path::{Path, PathBuf};

pub(crate) use crate::publish::Stamp;

/// One input file, polled.
#[derive(Debug)]
pub(super) struct InputWatch {
    path: PathBuf,
    /// The stamp last reported (or seen at the start).
    settled: Option<Stamp>,
    /// The stamp of the previous poll.
    previous: Option<Stamp>,
}

impl InputWatch {
    /// Starts watching `path` as it is now.
    pub(super) fn new(path: &Path) -> InputWatch {
        let now = Stamp::of(path);
        InputWatch { path: path.to_owned(), settled: now, previous: now }
    }

    /// The file watched.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Looks at the file: true when it changed since the last report and
    /// has stayed the same since the previous poll.
    pub(super) fn poll(&mut self) -> bool {
        let now = Stamp::of(&self.path);
        if now != self.previous {
            self.previous = now;
            return false;
        }
        if now != self.settled {
            self.settled = now;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_reported_once_it_has_settled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("zone");
        std::fs::write(&path, "a").expect("write");
        let mut watch = InputWatch::new(&path);
        assert!(!watch.poll(), "nothing changed");
        std::fs::write(&path, "ab").expect("write");
        assert!(!watch.poll(), "changing: not yet");
        assert!(watch.poll(), "settled: reported");
        assert!(!watch.poll(), "reported once");
        let new = dir.path().join("zone.new");
        std::fs::write(&new, "ab").expect("write");
        std::fs::rename(&new, &path).expect("rename");
        assert!(!watch.poll());
        assert!(watch.poll(), "a rename in place (another inode) is a change");
        std::fs::remove_file(&path).expect("remove");
        assert!(!watch.poll());
        assert!(watch.poll(), "a vanished file is a change (the run reports it)");
    }
}
