//! What `/proc/PID/stat` says of a process (Linux), parsed in one place:
//! the zone's signing lock judges the process it names by its state and
//! start time (`db/locks.rs`), the metrics report this process's CPU time
//! (`serve/metrics/process.rs`). Elsewhere than Linux nothing reads.

/// The Linux clock tick of the times in `/proc/PID/stat` (`USER_HZ`),
/// fixed at 100 by the kernel's user ABI on every architecture signet
/// builds for. Reading `sysconf(_SC_CLK_TCK)` would take `unsafe`;
/// Prometheus's Go client uses the same constant.
pub const USER_HZ: f64 = 100.0;

/// The fields of `/proc/PID/stat` that signet reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: R, S, D, … ; Z a zombie, X (x) dead.
    pub state: char,
    /// Field 14: user time, in clock ticks.
    pub utime: u64,
    /// Field 15: system time, in clock ticks.
    pub stime: u64,
    /// Field 22: the start time, in clock ticks since boot; with the pid,
    /// it names one process for good.
    pub started: i64,
}

impl ProcStat {
    /// The process `pid` (a number, or `self`), if `/proc` has it.
    pub fn read(pid: &str) -> Option<ProcStat> {
        ProcStat::parse(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    /// The text of a `/proc/PID/stat`. The command name (field 2) is in
    /// parentheses and may hold spaces and parentheses: the fields are
    /// counted from the last `)`.
    pub fn parse(stat: &str) -> Option<ProcStat> {
        let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
        let state = fields.next()?.chars().next()?;
        // Fields 4 to 13, then utime and stime.
        let mut fields = fields.skip(10);
        let utime = fields.next()?.parse().ok()?;
        let stime = fields.next()?.parse().ok()?;
        // Fields 16 to 21, then the start time.
        let started = fields.nth(6)?.parse().ok()?;
        Some(ProcStat { state, utime, stime, started })
    }

    /// User plus system time, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        self.utime.saturating_add(self.stime) as f64 / USER_HZ
    }

    /// Exited, not yet reaped by its parent (a zombie), or dying: it runs
    /// no code any more.
    pub fn has_exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_after_an_odd_command_name() {
        let line = "4242 (sig (net) x) Z 1 4242 4242 0 -1 4194560 10 0 0 0 1 2 0 0 20 0 1 0 987654 0 0";
        let stat = ProcStat::parse(line).expect("parses");
        assert_eq!((stat.state, stat.started), ('Z', 987_654));
        assert!(stat.has_exited());
        assert_eq!(ProcStat::parse("4242 (signet"), None);
        assert_eq!(ProcStat::parse(""), None);
    }
}
