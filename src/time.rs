//! Points in time as Unix seconds: reading `--now` values, printing UTC,
//! the civil calendar. (The 32-bit serial-number arithmetic of RRSIG
//! timestamps is `zone::serial`'s.)

use std::time::{SystemTime, UNIX_EPOCH};

/// The last second signet reads: 9999-12-31T23:59:59Z. RFC 3339 has
/// four-digit years, as has the YYYYMMDDHHmmSS form of RRSIG times (RFC
/// 4034 §3.2); the 32-bit RRSIG timestamps themselves are serial numbers
/// and resolve near any such time.
pub const MAX_TIME: i64 = 253_402_300_799;

/// A time given on the command line could not be read or is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Neither RFC 3339 nor Unix seconds.
    #[error("bad time {text:?}: expected RFC 3339 (2026-11-22T09:00:00Z) or Unix seconds")]
    Unreadable {
        /// The text as given.
        text: String,
    },
    /// Readable, but outside what signet (and RFC 3339) can express.
    #[error(
        "time {text:?} is out of range: signet takes times from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z \
         (Unix seconds 0 to {MAX_TIME}), the four-digit years of RFC 3339 and of RRSIG times"
    )]
    OutOfRange {
        /// The text as given.
        text: String,
    },
}

/// Reads RFC 3339 (`2026-11-22T09:00:00Z`) or Unix seconds, from 1970 to
/// the end of 9999 ([`MAX_TIME`]).
pub fn parse_time(text: &str) -> Result<i64, TimeError> {
    let out_of_range = || TimeError::OutOfRange { text: text.to_owned() };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only a number too large for an i64 fails to parse.
        return text.parse().ok().filter(|&t| t <= MAX_TIME).ok_or_else(out_of_range);
    }
    let time = humantime::parse_rfc3339_weak(text).map_err(|e| match e {
        humantime::TimestampError::OutOfRange => out_of_range(),
        _ => TimeError::Unreadable { text: text.to_owned() },
    })?;
    let seconds = time.duration_since(UNIX_EPOCH).map_err(|_| out_of_range())?.as_secs();
    i64::try_from(seconds).ok().filter(|&t| t <= MAX_TIME).ok_or_else(out_of_range)
}

/// The wall clock now.
pub fn wall_clock() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// `2026-11-22T09:00:00Z`. Any `i64` prints: a year past 9999 (a time
/// computed from one near [`MAX_TIME`]) as ISO 8601's expanded form,
/// `+10000-01-01T00:00:00Z`, one before year 0 as `-0001-…`.
pub fn format_time(unix: i64) -> String {
    let (date, hour, minute, second) = utc(unix);
    format!("{date}T{hour:02}:{minute:02}:{second:02}Z")
}

/// `2026-11-22 09:00Z`: a UTC date and minute, for tables and reports
/// (any `i64`, as [`format_time`]).
pub fn format_minute(unix: i64) -> String {
    let (date, hour, minute, _) = utc(unix);
    format!("{date} {hour:02}:{minute:02}Z")
}

/// The date (`2026-11-22`, the year expanded beyond 0000–9999), hour,
/// minute and second of Unix seconds.
fn utc(unix: i64) -> (String, i64, i64, i64) {
    let (days, rest) = (unix.div_euclid(86400), unix.rem_euclid(86400));
    let (year, month, day) = civil_from_days(days);
    let year = match year {
        0..=9999 => format!("{year:04}"),
        10000.. => format!("+{year}"),
        _ => format!("-{:04}", year.unsigned_abs()),
    };
    (format!("{year}-{month:02}-{day:02}"), rest / 3600, rest % 3600 / 60, rest % 60)
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
    fn times_stay_in_range() {
        let out_of_range = |text: &str| matches!(parse_time(text), Err(TimeError::OutOfRange { .. }));
        assert_eq!(parse_time("253402300799"), Ok(MAX_TIME));
        assert_eq!(parse_time("9999-12-31T23:59:59Z"), Ok(MAX_TIME));
        assert!(out_of_range("253402300800"));
        assert!(out_of_range("99999999999999"));
        assert!(out_of_range("99999999999999999999999"));
        assert!(out_of_range("1969-12-31T23:59:59Z"));
        assert!(parse_time("99999999999999").expect_err("too late").to_string().contains("9999-12-31T23:59:59Z"));
        assert_eq!(format_time(MAX_TIME), "9999-12-31T23:59:59Z");
        assert_eq!(format_time(MAX_TIME + 1), "+10000-01-01T00:00:00Z");
        assert_eq!(format_minute(MAX_TIME + 1 + 3900), "+10000-01-01 01:05Z");
        assert_eq!(format_minute(1_700_000_000), "2023-11-14 22:13Z");
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59Z");
        for t in [i64::MIN, i64::MIN + 1, -62_167_219_201, i64::MAX, 99_999_999_999_999] {
            assert!(format_time(t).ends_with('Z'), "{t}");
        }
        assert!(format_time(-62_167_219_201).starts_with("-0001-12-31"));
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
