//! The text of a Key Signing Request and of a Signed Key Response, as
//! Knot DNS's `keymgr` writes and reads them (`generate-ksr`, `sign-ksr`,
//! `import-skr`), so that either side of the exchange may be Knot:
//!
//! ```text
//! ;; KeySigningRequest 1.0 1796511766 (2026-12-05T23:02:46Z) =========
//! example. 3600 IN DNSKEY 256 3 13 …
//! ;; KeySigningRequest 1.0 1799103766 (2027-01-04T23:02:46Z) =========
//! …
//! ;; KeySigningRequest 1.0 generated at 2026-12-05T23:02:46Z by signet 0.1.0
//! ```
//!
//! Each header opens a period, at the Unix time it names, that lasts until
//! the next header; the last header opens the period that covers the time
//! after the request's end, until the next response takes over. A
//! response has the same shape (`SignedKeyResponse`); each of its periods
//! holds the DNSKEY RRset, the CDNSKEY and CDS RRsets when the KSK side
//! publishes them, and the RRSIGs over them.

use std::path::{Path, PathBuf};

use crate::time::format_time;
use crate::zone::writer::write_record;
use crate::zone::{Name, ReadError, RecordRef, Rtype, read_records_str};

/// The only version of the format there is.
const VERSION: &str = "1.0";

/// A request or a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A Key Signing Request: the ZSKs, period by period.
    Request,
    /// A Signed Key Response: the key RRsets and their signatures.
    Response,
}

impl Kind {
    /// The word of its header lines.
    pub fn tag(self) -> &'static str {
        match self {
            Kind::Request => "KeySigningRequest",
            Kind::Response => "SignedKeyResponse",
        }
    }

    fn other(self) -> Kind {
        match self {
            Kind::Request => Kind::Response,
            Kind::Response => Kind::Request,
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Request => "key signing request",
            Kind::Response => "signed key response",
        })
    }
}

/// One record of a period, with the line it was read from (0 when made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its type.
    pub rtype: Rtype,
    /// Its TTL.
    pub ttl: u32,
    /// Its RDATA, wire form.
    pub rdata: Vec<u8>,
    /// The line it was read from.
    pub line: usize,
}

/// One period: from `start` to the next period's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// When it starts (Unix seconds).
    pub start: i64,
    /// The line of its header (0 when made).
    pub line: usize,
    /// Its records, all owned by the zone's apex.
    pub records: Vec<Record>,
}

impl Period {
    /// The RDATA of its records of one type.
    pub fn rdatas(&self, rtype: Rtype) -> impl Iterator<Item = &[u8]> {
        self.records.iter().filter(move |r| r.rtype == rtype).map(|r| r.rdata.as_slice())
    }
}

/// A whole request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Which.
    pub kind: Kind,
    /// The zone, whose apex owns every record.
    pub zone: Name,
    /// The periods, in the order of the text.
    pub periods: Vec<Period>,
}

/// A request or response that cannot be read, by file and line.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Its records are not master-file text.
    #[error(transparent)]
    Records(#[from] ReadError),
    /// A line of the format is wrong.
    #[error("{}:{line}: {problem}", file.display())]
    Line {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        problem: LineProblem,
    },
    /// No period at all.
    #[error("{}: no `;; {} {VERSION} <time>` header: not a {kind}", file.display(), kind.tag())]
    Empty {
        /// The file.
        file: PathBuf,
        /// What was expected.
        kind: Kind,
    },
}

/// What is wrong with one line.
#[derive(Debug, thiserror::Error)]
pub enum LineProblem {
    /// A header of the other kind.
    #[error("a {found} header where a {expected} was expected")]
    WrongKind {
        /// What the header says.
        found: Kind,
        /// What the caller reads.
        expected: Kind,
    },
    /// Another version of the format.
    #[error("version {0} of the format; only {VERSION} is known")]
    Version(String),
    /// The header's time is not a Unix time.
    #[error("header time {0:?} is not a Unix time")]
    Time(String),
    /// A record before the first header.
    #[error("a record before the first period's header")]
    BeforeHeader,
    /// A record of another owner than the zone's apex.
    #[error("{owner} {rtype}: not owned by the zone's apex {zone}")]
    Owner {
        /// Its owner.
        owner: String,
        /// Its type.
        rtype: Rtype,
        /// The zone.
        zone: String,
    },
}

/// Reads a request or response for `zone` from `text`; `file` names it
/// in errors. Only the form is checked here ([`super::check`] judges
/// the content).
pub fn parse(text: &str, kind: Kind, zone: &Name, file: &Path) -> Result<Document, FormatError> {
    let line_error = |line, problem| FormatError::Line { file: file.to_owned(), line, problem };
    let mut periods: Vec<Period> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if let Some(start) = header(line, kind).map_err(|p| line_error(i + 1, p))? {
            periods.push(Period { start, line: i + 1, records: Vec::new() });
        }
    }
    if periods.is_empty() {
        return Err(FormatError::Empty { file: file.to_owned(), kind });
    }
    for record in read_records_str(text, zone, file)? {
        if !record.owner.as_ref().eq_ignore_case(zone.as_ref()) {
            let owner = record.owner.to_string();
            let problem = LineProblem::Owner { owner, rtype: record.rtype, zone: zone.to_string() };
            return Err(line_error(record.line, problem));
        }
        let Some(period) = periods.iter_mut().rev().find(|p| p.line < record.line) else {
            return Err(line_error(record.line, LineProblem::BeforeHeader));
        };
        period.records.push(Record { rtype: record.rtype, ttl: record.ttl, rdata: record.rdata, line: record.line });
    }
    Ok(Document { kind, zone: zone.clone(), periods })
}

/// A header line's period start; `None` for the closing line and any
/// other line.
fn header(line: &str, kind: Kind) -> Result<Option<i64>, LineProblem> {
    let Some(rest) = line.trim_start().strip_prefix(";;") else { return Ok(None) };
    let mut words = rest.split_whitespace();
    let tag = words.next().unwrap_or_default();
    if tag == kind.other().tag() {
        return Err(LineProblem::WrongKind { found: kind.other(), expected: kind });
    }
    if tag != kind.tag() {
        return Ok(None);
    }
    let version = words.next().unwrap_or_default();
    if version != VERSION {
        return Err(LineProblem::Version(version.to_owned()));
    }
    match words.next() {
        Some("generated") => Ok(None),
        Some(time) => match time.parse::<i64>() {
            Ok(start) if start >= 0 => Ok(Some(start)),
            _ => Err(LineProblem::Time(time.to_owned())),
        },
        None => Err(LineProblem::Time(String::new())),
    }
}

/// The text of a request or response, made at `now`: each period's
/// header and records, then the closing line.
pub fn write(document: &Document, now: i64) -> String {
    let tag = document.kind.tag();
    let mut out = String::new();
    for period in &document.periods {
        out.push_str(&format!(";; {tag} {VERSION} {} ({}) =========\n", period.start, format_time(period.start)));
        write_records(&document.zone, &period.records, &mut out);
    }
    let version = env!("CARGO_PKG_VERSION");
    out.push_str(&format!(";; {tag} {VERSION} generated at {} by signet {version}\n", format_time(now)));
    out
}

/// Appends `records`, owned by `zone`'s apex, one master-file line each.
pub fn write_records(zone: &Name, records: &[Record], out: &mut String) {
    for record in records {
        let rdata = &record.rdata;
        write_record(RecordRef { owner: zone.as_ref(), rtype: record.rtype, ttl: record.ttl, rdata }, 1, out);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> Name {
        Name::from_text("example.", None).expect("name")
    }

    const KNOT_REQUEST: &str = "\
;; KeySigningRequest 1.0 1796511766 (2026-12-05T23:02:46Z) =========
example.       \t3600 DNSKEY 256 3 13 (
\t\t\t\tnjzZP4g2iL/hwwW1+N+4QRCEWTW5odRw921gfSiY
\t\t\t\t9hlcpOsOEX9kOTti59cPZtJGXwg4uVw+6GvjKWBy
\t\t\t\t0g21/A==
\t\t\t\t) ; ZSK, ECDSAP256SHA256 (256b), id = 65000
;; KeySigningRequest 1.0 1799103766 (2027-01-04T23:02:46Z) =========
example.       \t3600 DNSKEY 256 3 13 (
\t\t\t\tnjzZP4g2iL/hwwW1+N+4QRCEWTW5odRw921gfSiY
\t\t\t\t9hlcpOsOEX9kOTti59cPZtJGXwg4uVw+6GvjKWBy
\t\t\t\t0g21/A==
\t\t\t\t) ; ZSK, ECDSAP256SHA256 (256b), id = 65000
;; KeySigningRequest 1.0 generated at 2026-12-05T23:02:46Z by Knot DNS 3.2.6
";

    #[test]
    fn reads_knots_request_and_writes_it_back_the_same() {
        let doc = parse(KNOT_REQUEST, Kind::Request, &zone(), Path::new("r.ksr")).expect("read");
        assert_eq!(doc.periods.len(), 2);
        assert_eq!(doc.periods[0].start, 1796511766);
        assert_eq!(doc.periods[1].records.len(), 1);
        assert_eq!(doc.periods[1].records[0].rtype, Rtype::DNSKEY);
        let text = write(&doc, 1796511766);
        let again = parse(&text, Kind::Request, &zone(), Path::new("w.ksr")).expect("read back");
        assert_eq!(again.periods.iter().map(|p| p.start).collect::<Vec<_>>(), vec![1796511766, 1799103766]);
        assert_eq!(again.periods[0].records[0].rdata, doc.periods[0].records[0].rdata);
    }

    #[test]
    fn refuses_the_other_kind_a_foreign_owner_and_records_before_a_header() {
        let err = parse(KNOT_REQUEST, Kind::Response, &zone(), Path::new("r.ksr")).expect_err("refused").to_string();
        assert!(err.contains("r.ksr:1: a key signing request header where a signed key response"), "{err}");
        let foreign = KNOT_REQUEST.replacen("example.       \t3600", "www.example. 3600", 1);
        let err = parse(&foreign, Kind::Request, &zone(), Path::new("r.ksr")).expect_err("refused").to_string();
        assert!(err.contains("r.ksr:2: www.example. DNSKEY: not owned by the zone's apex"), "{err}");
        let before = format!("example. 3600 DNSKEY 256 3 13 AAAA\n{KNOT_REQUEST}");
        let err = parse(&before, Kind::Request, &zone(), Path::new("r.ksr")).expect_err("refused").to_string();
        assert!(err.contains("r.ksr:1: a record before the first period's header"), "{err}");
        let version = KNOT_REQUEST.replacen("1.0 1796511766", "2.0 1796511766", 1);
        let err = parse(&version, Kind::Request, &zone(), Path::new("r.ksr")).expect_err("refused").to_string();
        assert!(err.contains("version 2.0"), "{err}");
        let err = parse("; nothing\n", Kind::Request, &zone(), Path::new("r.ksr")).expect_err("refused").to_string();
        assert!(err.contains("not a key signing request"), "{err}");
    }
}
