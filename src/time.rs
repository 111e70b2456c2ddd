//! Points in time as Unix seconds: reading `--now` values, printing UTC,
//! and the 32-bit serial-number arithmetic of RRSIG timestamps.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A time given on the command line could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad time {text:?}: expected RFC 3339 (2026-11-22T09:00:00Z) or Unix seconds")]
pub struct TimeError {
    /// The text as given.
    pub text: String,
}

/// Reads RFC 3339 (`2026-11-22T09:00:00Z`) or Unix seconds.
pub fn parse_time(text: &str) -> Result<i64, TimeError> {
    let error = || TimeError { text: text.to_owned() };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| error());
    }
    let time = humantime::parse_rfc3339_weak(text).map_err(|_| error())?;
    let seconds = time.duration_since(UNIX_EPOCH).map_err(|_| error())?.as_secs();
    i64::try_from(seconds).map_err(|_| error())
}

/// The wall clock now.
pub fn wall_clock() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `2026-11-22T09:00:00Z`.
pub fn format_time(unix: i64) -> String {
    let seconds = u64::try_from(unix).unwrap_or(0);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string()
}

/// `2026-11-22 09:00Z`: a UTC date and minute, for tables and reports.
pub fn format_minute(unix: i64) -> String {
    let full = format_time(unix);
    match (full.get(..10), full.get(11..16)) {
        (Some(date), Some(minute)) => format!("{date} {minute}Z"),
        _ => full,
    }
}

/// Resolves a 32-bit RRSIG timestamp to the Unix time nearest `now`
/// (RFC 4034 §3.1.5: serial-number arithmetic, RFC 1982).
pub fn resolve_serial_time(stamp: u32, now: i64) -> i64 {
    now + i64::from(stamp.wrapping_sub(now as u32) as i32)
}

/// A human duration: `3d 4h`, `45m`, `12s`.
pub fn format_duration(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    let (d, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    let text = match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m{}", if sec > 0 { format!(" {sec}s") } else { String::new() }),
        (0, _, _) => format!("{h}h{}", if m > 0 { format!(" {m}m") } else { String::new() }),
        _ => format!("{d}d{}", if h > 0 { format!(" {h}h") } else { String::new() }),
    };
    format!("{sign}{text}")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (the inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_prints() {
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000));
        assert!(parse_time("yesterday").is_err());
        assert_eq!(format_time(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(format_duration(3 * 86400 + 4 * 3600 + 5), "3d 4h");
        assert_eq!(format_duration(90), "1m 30s");
    }

    #[test]
    fn serial_arithmetic_wraps() {
        let now = 5_000_000_000; // after 2106, past the 32-bit wrap
        assert_eq!(resolve_serial_time((now + 100) as u32, now), now + 100);
        assert_eq!(resolve_serial_time((now - 100) as u32, now), now - 100);
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 11, 22), 20_779);
        for days in [0, 20_779, 20_454, -1, 11_016] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
