//! The process's own health, from `/proc/self`: CPU time and resident
//! memory (Linux; elsewhere the two series are left out). Kept by hand:
//! prometheus-client has no process collector, and the crates that add
//! one bring a second metrics model along for two numbers.

use crate::procstat::ProcStat;

/// The process's CPU time and resident memory, from `/proc/self`.
#[derive(Debug, Default)]
pub(super) struct ProcessStats {
    pub(super) cpu_seconds: Option<f64>,
    pub(super) resident_bytes: Option<u64>,
}

impl ProcessStats {
    pub(super) fn read() -> ProcessStats {
        ProcessStats {
            cpu_seconds: ProcStat::read("self").map(|stat| stat.cpu_seconds()),
            resident_bytes: std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|status| resident_bytes_from_status(&status)),
        }
    }
}

/// User plus system time from the text of `/proc/<pid>/stat`.
#[cfg(test)]
fn cpu_seconds_from_stat(stat: &str) -> Option<f64> {
    ProcStat::parse(stat).map(|stat| stat.cpu_seconds())
}

/// The resident set size from the text of `/proc/<pid>/status` (`VmRSS`,
/// in kB). `statm` has the same number in pages, but the page size needs
/// `sysconf`, which would take `unsafe` (and pages are not 4 KiB on every
/// arm64 kernel).
fn resident_bytes_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_ascii_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => kib.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_parsing() {
        // A command name with spaces and parentheses.
        let stat = "4242 (sig) net (x)) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
                    250 75 0 0 20 0 3 0 123 456789 1234 18446744073709551615";
        assert_eq!(cpu_seconds_from_stat(stat), Some(3.25));
        assert_eq!(cpu_seconds_from_stat("4242 (x) S 1 2"), None);
        assert_eq!(cpu_seconds_from_stat(""), None);
        let status = "Name:\tsignet\nVmHWM:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(resident_bytes_from_status(status), Some(5120 * 1024));
        assert_eq!(resident_bytes_from_status("VmRSS:\t12\n"), None);
        assert_eq!(resident_bytes_from_status("Name:\tx\n"), None);
    }
}
