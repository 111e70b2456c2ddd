//! Serial-number arithmetic (RFC 1982) on 32-bit numbers: SOA serials and
//! the inception and expiration times of RRSIGs (RFC 4034 §3.1.5). A leaf:
//! it imports nothing, so that every stage can compare serials the same
//! way. (Knot's `contrib/serial.c` is the model: compare, add, move past.)

use std::cmp::Ordering;

/// The largest step RFC 1982 §3.1 allows an addition: 2^31 - 1.
pub const MAX_INCREMENT: u32 = (1 << 31) - 1;

/// Compares `a` with `b` in serial arithmetic (RFC 1982 §3.2). `None`
/// when they are exactly 2^31 apart: then neither is greater.
pub fn serial_cmp(a: u32, b: u32) -> Option<Ordering> {
    match a.wrapping_sub(b) {
        0 => Some(Ordering::Equal),
        d if d < 1 << 31 => Some(Ordering::Greater),
        d if d > 1 << 31 => Some(Ordering::Less),
        _ => None,
    }
}

/// `a > b` in serial arithmetic.
pub fn serial_gt(a: u32, b: u32) -> bool {
    serial_cmp(a, b) == Some(Ordering::Greater)
}

/// `serial + n` (RFC 1982 §3.1), `n` at most [`MAX_INCREMENT`]: `None` for
/// a larger step, whose result would not compare greater.
pub fn serial_add(serial: u32, n: u32) -> Option<u32> {
    (n <= MAX_INCREMENT).then(|| serial.wrapping_add(n))
}

/// `wanted` if it is past `last` in serial arithmetic, otherwise the
/// serial just after `last`: the serial a version takes so that
/// secondaries holding `last` transfer it.
pub fn serial_past(wanted: u32, last: u32) -> u32 {
    if serial_gt(wanted, last) { wanted } else { last.wrapping_add(1) }
}

/// Resolves a 32-bit RRSIG timestamp to the Unix time nearest `now`
/// (RFC 4034 §3.1.5: the timestamps are serial numbers).
pub fn resolve_serial_time(stamp: u32, now: i64) -> i64 {
    now + i64::from(stamp.wrapping_sub(now as u32) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_across_the_wrap() {
        assert!(serial_gt(1, u32::MAX) && !serial_gt(u32::MAX, 1));
        assert_eq!(serial_cmp(7, 7), Some(Ordering::Equal));
        assert_eq!(serial_cmp(0, 1 << 31), None, "2^31 apart: undefined");
        assert_eq!(serial_cmp(1 << 31, 0), None);
        assert_eq!(serial_cmp(5, 3), Some(Ordering::Greater));
        assert_eq!(serial_cmp(3, 5), Some(Ordering::Less));
    }

    #[test]
    fn adds_within_half_the_space() {
        assert_eq!(serial_add(u32::MAX, 1), Some(0));
        assert_eq!(serial_add(10, MAX_INCREMENT), Some(10u32.wrapping_add(MAX_INCREMENT)));
        assert_eq!(serial_add(10, MAX_INCREMENT + 1), None);
        assert!(serial_gt(serial_add(10, MAX_INCREMENT).unwrap_or(0), 10));
    }

    #[test]
    fn moves_past_the_last_serial() {
        assert_eq!(serial_past(9, 7), 9);
        assert_eq!(serial_past(7, 7), 8);
        assert_eq!(serial_past(3, 7), 8);
        assert_eq!(serial_past(5, u32::MAX), 5);
        assert_eq!(serial_past(u32::MAX, u32::MAX), 0);
    }

    #[test]
    fn timestamps_resolve_near_now() {
        let now = 5_000_000_000; // after 2106, past the 32-bit wrap
        assert_eq!(resolve_serial_time((now + 100) as u32, now), now + 100);
        assert_eq!(resolve_serial_time((now - 100) as u32, now), now - 100);
    }
}
