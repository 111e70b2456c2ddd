//! SOA serial schemes: the policy's choice of the next serial. The
//! arithmetic (RFC 1982) is `zone::serial`'s.

use crate::policy::SerialScheme;
use crate::zone::rdata::format_rrsig_time;
use crate::zone::serial::serial_past;

/// The serial to publish, given the unsigned zone's serial, the last
/// serial published (if known) and the time. Under every scheme but
/// `keep` the result is greater than `last` in serial arithmetic, so
/// secondaries take it; `keep` publishes the input's serial as it is, and
/// the gate then publishes only a version that moves past `last` or is
/// the very one published (`manage::gate::Predecessor`).
pub(crate) fn next_serial(scheme: SerialScheme, input: u32, last: Option<u32>, now: i64) -> u32 {
    let wanted = match scheme {
        SerialScheme::Keep => input,
        SerialScheme::Increment => last.unwrap_or(input).wrapping_add(1),
        SerialScheme::Unixtime => now as u32,
        SerialScheme::Datecounter => {
            let date: u32 = format_rrsig_time(now as u32)[..8].parse().unwrap_or(0);
            date.wrapping_mul(100)
        }
    };
    match last {
        Some(last) if scheme != SerialScheme::Keep => serial_past(wanted, last),
        _ => wanted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let now = 1_795_000_000; // 2026-11-18
        assert_eq!(next_serial(SerialScheme::Keep, 7, None, now), 7);
        assert_eq!(next_serial(SerialScheme::Increment, 7, None, now), 8);
        assert_eq!(next_serial(SerialScheme::Increment, 7, Some(20), now), 21);
        assert_eq!(next_serial(SerialScheme::Increment, u32::MAX, None, now), 0);
        assert_eq!(next_serial(SerialScheme::Unixtime, 7, None, now), now as u32);
        assert_eq!(next_serial(SerialScheme::Unixtime, 7, Some(now as u32), now), now as u32 + 1);
        assert_eq!(next_serial(SerialScheme::Datecounter, 7, None, now), 2026111800);
        assert_eq!(next_serial(SerialScheme::Datecounter, 7, Some(2026111805), now), 2026111806);
    }
}
