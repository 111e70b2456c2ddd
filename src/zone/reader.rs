//! RFC 1035 master-file reader: `$ORIGIN`, `$TTL`, `$INCLUDE`, relative
//! names and `@`, omitted owner, TTL and class, parentheses, comments,
//! quoted strings, escapes, and RFC 3597 `TYPEnnn \# len hex`.
//!
//! The whole file is read into memory and tokenised in place; names and
//! RDATA are parsed straight into reused buffers and pushed into the
//! zone's arena, so reading costs no allocation per record.
//!
//! A record without a TTL takes the last `$TTL`; before any `$TTL`, the
//! last TTL given explicitly (RFC 1035 §5.1); before either, the SOA's
//! minimum field, as BIND does.

use std::path::{Path, PathBuf};

use super::arena::{Zone, ZoneBuilder};
use super::lexer::{Entry, LexError, Lexer, Token, cut_points, echo};
use super::name::{Name, NameError, NameRef, parse_text};
use super::rdata::{parse_rdata, parse_ttl};
use super::rtype::Rtype;
use super::text::RdataError;

/// Deepest `$INCLUDE` nesting accepted (guards against include loops).
const MAX_INCLUDE_DEPTH: usize = 16;
const CLASS_IN: u16 = 1;

/// A master file could not be read: where, and what is wrong there.
///
/// Shown as `FILE:LINE: PROBLEM`; its [`source`](std::error::Error::source)
/// is the problem's (the I/O error of a file that cannot be read).
#[derive(Debug)]
pub struct ReadError {
    /// The file the error is in (an `$INCLUDE`d file where it is there).
    pub file: PathBuf,
    /// 1-based line number; 0 when the error concerns the whole file.
    pub line: usize,
    /// What is wrong, and what was expected.
    pub problem: ReadProblem,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.problem)
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.problem.source()
    }
}

/// What is wrong at a place in a master file. Texts from the file are
/// shown cut short ([`echo`]).
#[derive(Debug, thiserror::Error)]
pub enum ReadProblem {
    /// The file (or an `$INCLUDE`d one) cannot be read.
    #[error("cannot read {}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A directory, device or pipe, which has no end to read to.
    #[error("cannot read {}: not a regular file (a directory, device or pipe); signet reads zone files whole", path.display())]
    NotRegularFile {
        /// The file.
        path: PathBuf,
    },
    /// The text does not split into entries.
    #[error("{0}")]
    Lexer(LexError),
    /// No SOA record in the zone.
    #[error("no SOA record at the apex {0}")]
    NoSoa(Name),
    /// An SOA record below the apex.
    #[error("SOA record at {owner}, but only the apex {apex} may have one")]
    SoaBelowApex {
        /// Its owner.
        owner: Name,
        /// The apex.
        apex: Name,
    },
    /// A second SOA record.
    #[error("second SOA record (the first is on line {first})")]
    SecondSoa {
        /// The line of the first.
        first: usize,
    },
    /// A directive with the wrong arguments.
    #[error("{0}")]
    DirectiveArguments(&'static str),
    /// A TTL that does not read.
    #[error("bad TTL {0:?}: expected a number with optional units (1h30m)")]
    BadTtl(String),
    /// `$INCLUDE`s within `$INCLUDE`s, too deep.
    #[error("$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep (a loop?)")]
    IncludeTooDeep,
    /// A `$` directive signet does not know (`$GENERATE`).
    #[error("unknown directive {0}")]
    UnknownDirective(String),
    /// A domain name that does not read.
    #[error("bad domain name {text:?}{}", problem.as_ref().map(|p| format!(": {p}")).unwrap_or_default())]
    BadName {
        /// The name as written.
        text: String,
        /// What is wrong with it.
        problem: Option<NameError>,
    },
    /// An owner name that does not read.
    #[error("bad owner name {text:?}: {problem}")]
    BadOwner {
        /// The name as written.
        text: String,
        /// What is wrong with it.
        problem: NameError,
    },
    /// A record without an owner, first in the file.
    #[error("record without an owner name, and no previous owner to repeat")]
    NoOwner,
    /// RDATA that does not read.
    #[error("{rtype} record: {problem}")]
    BadRdata {
        /// The record's type.
        rtype: Rtype,
        /// What is wrong with its RDATA.
        problem: RdataError,
    },
    /// The owner kept from an earlier entry does not read back (a bug).
    #[error("bad owner name")]
    OwnerWire,
    /// An owner outside the zone.
    #[error("owner {owner} is outside the zone {zone}")]
    OutsideZone {
        /// The owner.
        owner: Name,
        /// The zone.
        zone: Name,
    },
    /// No TTL, and none to default to.
    #[error("no TTL given, and no $TTL or earlier TTL to use")]
    NoTtl,
    /// A class other than IN.
    #[error("class {0} is not supported: signet reads class IN zones")]
    UnsupportedClass(String),
    /// A type that does not read.
    #[error("unknown record type {0:?}")]
    UnknownType(String),
    /// A meta type (ANY, AXFR…), which is never data.
    #[error("{0} is a meta type and cannot be in a zone")]
    MetaType(Rtype),
    /// No type after the owner, TTL and class.
    #[error("missing record type")]
    NoType,
}

/// A record read from a file, with the line it came from.
#[derive(Debug, Clone)]
pub struct OwnedRecord {
    /// Owner name.
    pub owner: Name,
    /// Type.
    pub rtype: Rtype,
    /// TTL.
    pub ttl: u32,
    /// RDATA in wire form.
    pub rdata: Vec<u8>,
    /// Line in the file.
    pub line: usize,
}

/// Reads the zone for `origin` from the master file at `path`.
pub fn read_zone_file(path: &Path, origin: &Name) -> Result<Zone, ReadError> {
    let started = std::time::Instant::now();
    let text = read_bytes(path, path, 0)?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), bytes = text.len(), "file read");
    read_file_text(text, path, origin)
}

/// [`read_zone_file`], with the SHA-256 of exactly the bytes read (how a
/// service tells a changed input from a touched one): the file is read
/// once, and the digest is of the version parsed even if the file changes
/// meanwhile.
pub fn read_zone_file_with_digest(path: &Path, origin: &Name) -> Result<(Zone, Vec<u8>), ReadError> {
    let text = read_bytes(path, path, 0)?;
    let digest = ring::digest::digest(&ring::digest::SHA256, &text).as_ref().to_vec();
    Ok((read_file_text(text, path, origin)?, digest))
}

/// The zone in `text`, the whole of the file `path`.
fn read_file_text(text: Vec<u8>, path: &Path, origin: &Name) -> Result<Zone, ReadError> {
    let started = std::time::Instant::now();
    let sink = match read_parallel(&text, origin, path, PARALLEL_MIN_BYTES) {
        Some(pieces) => {
            tracing::debug!(seconds = started.elapsed().as_secs_f64(), "pieces parsed");
            // The text is no longer needed: free it before the pieces are joined.
            drop(text);
            let sink = join(pieces);
            tracing::debug!(seconds = started.elapsed().as_secs_f64(), "pieces joined");
            sink
        }
        None => read_serial(&text, origin, path)?,
    };
    Ok(finish(sink))
}

/// Reads a zone from master-file text; `source` names it in errors.
pub fn read_zone_str(text: &str, origin: &Name, source: &Path) -> Result<Zone, ReadError> {
    let sink = match read_parallel(text.as_bytes(), origin, source, PARALLEL_MIN_BYTES) {
        Some(pieces) => join(pieces),
        None => read_serial(text.as_bytes(), origin, source)?,
    };
    Ok(finish(sink))
}

/// Reads `text` the way a large file is read, cut into pieces parsed on
/// all cores, whatever its size; `None` when it cannot be read so (then
/// [`read_zone_str`] reads it serially). For tests and fuzzing, which
/// hold the pieces to the serial reader.
#[doc(hidden)]
pub fn read_zone_str_in_pieces(text: &str, origin: &Name, source: &Path) -> Option<Zone> {
    read_parallel(text.as_bytes(), origin, source, 0).map(|pieces| finish(join(pieces)))
}

fn finish(sink: ZoneSink) -> Zone {
    let started = std::time::Instant::now();
    let zone = sink.builder.finish();
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "records sorted");
    zone
}

fn read_serial(text: &[u8], origin: &Name, source: &Path) -> Result<ZoneSink, ReadError> {
    let mut sink = ZoneSink { builder: ZoneBuilder::new(origin.clone(), CLASS_IN), soa: None };
    let mut reader = Reader::new(origin, &mut sink);
    reader.read(text, source, origin.clone(), 0)?;
    let last_line = reader.last_line;
    if sink.soa.is_none() {
        return Err(ReadError {
            file: source.to_owned(),
            line: last_line,
            problem: ReadProblem::NoSoa(origin.clone()),
        });
    }
    Ok(sink)
}

/// Below this size a file is read on one core.
const PARALLEL_MIN_BYTES: usize = 8 << 20;

/// Reads a large file in pieces on all cores, when it can be cut into
/// pieces that read the same apart as together: no `$` directives, cuts
/// only before whole entries with their owner written out (see
/// [`cut_points`]). A piece that relies on what came before it (a record
/// without a TTL before the piece gives one, the SOA's TTL defaulting) or
/// any error sends the whole file to the serial reader, which then gives
/// the same records, or the error with its true line.
fn read_parallel(text: &[u8], origin: &Name, source: &Path, min_bytes: usize) -> Option<Pieces> {
    use rayon::prelude::*;
    if text.len() < min_bytes {
        return None;
    }
    let pieces = rayon::current_num_threads() * 4;
    let targets: Vec<usize> = (0..pieces).map(|i| i * text.len() / pieces).collect();
    let mut cuts = cut_points(text, &targets)?;
    // The first piece starts where the serial reader does, comments and
    // all: the first cut (for target 0) moves to the start of the text.
    // (Inserting a cut at 0 instead would leave the leading comment as a
    // piece of its own, without the SOA, and send the file to the serial
    // reader: signers' dumps start with a comment.)
    match cuts.first_mut() {
        Some(first) => *first = 0,
        None => cuts.push(0),
    }
    cuts.push(text.len());
    let sinks: Vec<ZoneSink> = cuts
        .par_windows(2)
        .map(|w| {
            let builder = ZoneBuilder::with_capacity_for_text(origin.clone(), CLASS_IN, w[1] - w[0]);
            let mut sink = ZoneSink { builder, soa: None };
            Reader::new(origin, &mut sink).read(&text[w[0]..w[1]], source, origin.clone(), 0).ok().map(|()| sink)
        })
        .collect::<Option<_>>()?;
    // The SOA must be in the first piece (a later one would have taken
    // its TTL from the SOA itself rather than from the records before it).
    let mut sinks = sinks.into_iter();
    let first = sinks.next()?;
    let rest: Vec<ZoneSink> = sinks.collect();
    (first.soa.is_some() && rest.iter().all(|s| s.soa.is_none())).then_some(Pieces { first, rest })
}

/// A zone read in pieces, in order.
struct Pieces {
    first: ZoneSink,
    rest: Vec<ZoneSink>,
}

/// Joins pieces read in parallel, in order.
fn join(pieces: Pieces) -> ZoneSink {
    let Pieces { mut first, rest } = pieces;
    for piece in rest {
        first.builder.append(piece.builder);
    }
    first
}

/// Reads every record of master-file text (no zone checks: for the
/// offline KSK's requests and responses); `source` names it in errors.
/// Owners must still be at or below `origin`.
pub fn read_records_str(text: &str, origin: &Name, source: &Path) -> Result<Vec<OwnedRecord>, ReadError> {
    let mut sink = ListSink(Vec::new());
    Reader::new(origin, &mut sink).read(text.as_bytes(), source, origin.clone(), 0)?;
    Ok(sink.0)
}

/// Reads every record of a master file (no zone checks: for trust-anchor
/// and key files). Owners must still be at or below `origin`.
pub fn read_records_file(path: &Path, origin: &Name) -> Result<Vec<OwnedRecord>, ReadError> {
    let text = read_bytes(path, path, 0)?;
    let mut sink = ListSink(Vec::new());
    let mut reader = Reader::new(origin, &mut sink);
    // DS and key files often give no TTL; it does not matter for them.
    reader.last_ttl = Some(0);
    reader.read(&text, path, origin.clone(), 0)?;
    Ok(sink.0)
}

/// Reads a whole file, which must be a regular file: a device such as
/// `/dev/zero`, a FIFO or a terminal has no end to read to.
fn read_bytes(path: &Path, file_for_errors: &Path, line: usize) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    let error = |problem| ReadError { file: file_for_errors.to_owned(), line, problem };
    let cannot = |source| error(ReadProblem::Unreadable { path: path.to_owned(), source });
    let mut file = std::fs::File::open(path).map_err(cannot)?;
    let metadata = file.metadata().map_err(cannot)?;
    if !metadata.is_file() {
        return Err(error(ReadProblem::NotRegularFile { path: path.to_owned() }));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(cannot)?;
    Ok(bytes)
}

/// Where records go.
trait Sink {
    /// Takes a record; an `Err` is what is wrong at the record's line.
    fn record(
        &mut self,
        owner: NameRef<'_>,
        rtype: Rtype,
        ttl: u32,
        rdata: &[u8],
        line: usize,
    ) -> Result<(), ReadProblem>;
}

struct ZoneSink {
    builder: ZoneBuilder,
    /// How many SOA records, and the first's line.
    soa: Option<(usize, usize)>,
}

impl Sink for ZoneSink {
    fn record(
        &mut self,
        owner: NameRef<'_>,
        rtype: Rtype,
        ttl: u32,
        rdata: &[u8],
        line: usize,
    ) -> Result<(), ReadProblem> {
        if rtype == Rtype::SOA {
            let apex = self.builder.origin();
            if !owner.eq_ignore_case(apex) {
                return Err(ReadProblem::SoaBelowApex { owner: owner.to_owned(), apex: apex.to_owned() });
            }
            if let Some((_, first)) = self.soa {
                return Err(ReadProblem::SecondSoa { first });
            }
            self.soa = Some((1, line));
        }
        self.builder.push(owner, rtype, ttl, rdata);
        Ok(())
    }
}

struct ListSink(Vec<OwnedRecord>);

impl Sink for ListSink {
    fn record(
        &mut self,
        owner: NameRef<'_>,
        rtype: Rtype,
        ttl: u32,
        rdata: &[u8],
        line: usize,
    ) -> Result<(), ReadProblem> {
        self.0.push(OwnedRecord { owner: owner.to_owned(), rtype, ttl, rdata: rdata.to_vec(), line });
        Ok(())
    }
}

/// Reading state shared across included files.
struct Reader<'s> {
    zone_origin: Name,
    sink: &'s mut dyn Sink,
    default_ttl: Option<u32>,
    last_ttl: Option<u32>,
    last_owner: Vec<u8>,
    last_line: usize,
    owner_buf: Vec<u8>,
    rdata_buf: Vec<u8>,
}

/// The fields of one record entry before its RDATA.
struct Head<'t, 'a> {
    ttl: Option<u32>,
    rtype: Rtype,
    rdata: &'t [Token<'a>],
}

impl<'s> Reader<'s> {
    fn new(origin: &Name, sink: &'s mut dyn Sink) -> Reader<'s> {
        Reader {
            zone_origin: origin.clone(),
            sink,
            default_ttl: None,
            last_ttl: None,
            last_owner: Vec::new(),
            last_line: 0,
            owner_buf: Vec::with_capacity(256),
            rdata_buf: Vec::with_capacity(1024),
        }
    }

    fn read(&mut self, text: &[u8], file: &Path, origin: Name, depth: usize) -> Result<(), ReadError> {
        let mut origin = origin;
        let mut lexer = Lexer::new(text);
        let mut entry = Entry::default();
        loop {
            match lexer.next_entry(&mut entry) {
                Ok(true) => {}
                Ok(false) => return Ok(()),
                Err((line, e)) => return Err(error(file, line, ReadProblem::Lexer(e))),
            }
            self.last_line = entry.line;
            let first = entry.tokens[0];
            if !entry.blank_owner && first.text.first() == Some(&b'$') {
                self.directive(&entry, &mut origin, file, depth)?;
            } else {
                self.record(&entry, &origin).map_err(|problem| error(file, entry.line, problem))?;
            }
        }
    }

    fn directive(&mut self, entry: &Entry<'_>, origin: &mut Name, file: &Path, depth: usize) -> Result<(), ReadError> {
        let at = |problem| error(file, entry.line, problem);
        let args = &entry.tokens[1..];
        let name = entry.tokens[0].text.to_ascii_uppercase();
        match name.as_slice() {
            b"$ORIGIN" => {
                let [arg] = args else {
                    return Err(at(ReadProblem::DirectiveArguments("$ORIGIN takes one domain name")));
                };
                *origin = self.name(arg.text, origin.as_ref()).map_err(at)?;
            }
            b"$TTL" => {
                let [arg] = args else { return Err(at(ReadProblem::DirectiveArguments("$TTL takes one TTL"))) };
                self.default_ttl = Some(parse_ttl(arg.text).ok_or_else(|| at(ReadProblem::BadTtl(echo(arg.text))))?);
            }
            b"$INCLUDE" => {
                let (path_token, include_origin) = match args {
                    [path] => (path, origin.clone()),
                    [path, name] => (path, self.name(name.text, origin.as_ref()).map_err(at)?),
                    _ => {
                        return Err(at(ReadProblem::DirectiveArguments(
                            "$INCLUDE takes a file name and an optional origin",
                        )));
                    }
                };
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(at(ReadProblem::IncludeTooDeep));
                }
                let path = file.parent().unwrap_or(Path::new(".")).join(text(path_token.text));
                let included = read_bytes(&path, file, entry.line)?;
                self.read(&included, &path, include_origin, depth + 1)?;
            }
            _ => return Err(at(ReadProblem::UnknownDirective(echo(entry.tokens[0].text)))),
        }
        Ok(())
    }

    fn name(&self, token: &[u8], origin: NameRef<'_>) -> Result<Name, ReadProblem> {
        let bad = |problem| ReadProblem::BadName { text: echo(token), problem };
        let mut wire = Vec::new();
        parse_text(token, Some(origin), &mut wire).map_err(|e| bad(Some(e)))?;
        Name::from_wire(&wire).ok_or_else(|| bad(None))
    }

    fn record(&mut self, entry: &Entry<'_>, origin: &Name) -> Result<(), ReadProblem> {
        let mut tokens: &[Token<'_>] = &entry.tokens;
        if entry.blank_owner {
            if self.last_owner.is_empty() {
                return Err(ReadProblem::NoOwner);
            }
        } else {
            self.owner_buf.clear();
            parse_text(tokens[0].text, Some(origin.as_ref()), &mut self.owner_buf)
                .map_err(|problem| ReadProblem::BadOwner { text: echo(tokens[0].text), problem })?;
            std::mem::swap(&mut self.last_owner, &mut self.owner_buf);
            tokens = &tokens[1..];
        }
        let head = parse_head(tokens)?;
        self.rdata_buf.clear();
        parse_rdata(head.rtype, head.rdata, origin.as_ref(), &mut self.rdata_buf)
            .map_err(|problem| ReadProblem::BadRdata { rtype: head.rtype, problem })?;
        let ttl = self.ttl_for(&head)?;
        let owner = NameRef::parse_prefix(&self.last_owner).map(|(n, _)| n).ok_or(ReadProblem::OwnerWire)?;
        if !owner.is_at_or_below(self.zone_origin.as_ref()) {
            return Err(ReadProblem::OutsideZone { owner: owner.to_owned(), zone: self.zone_origin.clone() });
        }
        self.sink.record(owner, head.rtype, ttl, &self.rdata_buf, self.last_line)
    }

    fn ttl_for(&mut self, head: &Head<'_, '_>) -> Result<u32, ReadProblem> {
        if let Some(ttl) = head.ttl {
            self.last_ttl = Some(ttl);
            return Ok(ttl);
        }
        if let Some(ttl) = self.default_ttl.or(self.last_ttl) {
            return Ok(ttl);
        }
        if head.rtype == Rtype::SOA && self.rdata_buf.len() >= 4 {
            let min = &self.rdata_buf[self.rdata_buf.len() - 4..];
            let ttl = u32::from_be_bytes([min[0], min[1], min[2], min[3]]);
            self.last_ttl = Some(ttl);
            return Ok(ttl);
        }
        Err(ReadProblem::NoTtl)
    }
}

/// Reads `[ttl] [class] type` or `[class] [ttl] type`.
fn parse_head<'t, 'a>(tokens: &'t [Token<'a>]) -> Result<Head<'t, 'a>, ReadProblem> {
    let mut ttl = None;
    let mut class = None;
    for (i, token) in tokens.iter().enumerate() {
        let word = token.text;
        if ttl.is_none() && word.first().is_some_and(u8::is_ascii_digit) {
            ttl = Some(parse_ttl(word).ok_or_else(|| ReadProblem::BadTtl(echo(word)))?);
        } else if class.is_none()
            && let Some(c) = parse_class(word)
        {
            if c != CLASS_IN {
                return Err(ReadProblem::UnsupportedClass(echo(word)));
            }
            class = Some(c);
        } else {
            let rtype = std::str::from_utf8(word)
                .ok()
                .and_then(Rtype::from_text)
                .ok_or_else(|| ReadProblem::UnknownType(echo(word)))?;
            if rtype.is_meta() {
                return Err(ReadProblem::MetaType(rtype));
            }
            return Ok(Head { ttl, rtype, rdata: &tokens[i + 1..] });
        }
    }
    Err(ReadProblem::NoType)
}

fn parse_class(word: &[u8]) -> Option<u16> {
    let is = |name: &[u8]| word.eq_ignore_ascii_case(name);
    if is(b"IN") {
        Some(1)
    } else if is(b"CH") || is(b"CS") {
        Some(3)
    } else if is(b"HS") {
        Some(4)
    } else if word.len() > 5 && word[..5].eq_ignore_ascii_case(b"CLASS") {
        std::str::from_utf8(&word[5..]).ok()?.parse().ok()
    } else {
        None
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn error(file: &Path, line: usize, problem: ReadProblem) -> ReadError {
    ReadError { file: file.to_owned(), line, problem }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_text("example.", None).expect("valid")
    }

    fn read(text: &str) -> Result<Zone, ReadError> {
        read_zone_str(text, &origin(), Path::new("t.zone"))
    }

    fn lines(zone: &Zone) -> Vec<String> {
        zone.records()
            .map(|r| {
                let mut line = format!("{} {} {} ", r.owner, r.ttl, r.rtype);
                super::super::rdata::write_rdata(r.rtype, r.rdata, &mut line);
                line
            })
            .collect()
    }

    #[test]
    fn reads_the_master_file_syntax() {
        let zone = read(concat!(
            "$ORIGIN example.\n",
            "@ IN SOA ns1 hostmaster ( 1 ; serial\n 7200 3600 1209600 300 )\n",
            "  NS ns1\n",
            "$TTL 1h\n",
            "ns1 A 192.0.2.1\n",
            "www 60 IN A 192.0.2.2\n",
            "    IN 120 AAAA 2001:db8::2\n",
            "$ORIGIN sub.example.\n",
            "x TXT \"a;b\" c\\ d\n",
            "@ TYPE65280 \\# 2 abcd\n",
        ))
        .expect("valid zone");
        assert_eq!(
            lines(&zone),
            [
                "example. 300 NS ns1.example.",
                "example. 300 SOA ns1.example. hostmaster.example. 1 7200 3600 1209600 300",
                "ns1.example. 3600 A 192.0.2.1",
                "sub.example. 3600 TYPE65280 \\# 2 ABCD",
                "x.sub.example. 3600 TXT \"a;b\" \"c d\"",
                "www.example. 60 A 192.0.2.2",
                "www.example. 120 AAAA 2001:db8::2",
            ]
        );
    }

    #[test]
    fn errors_name_the_line() {
        let head = "@ 300 SOA ns1 h 1 2 3 4 5\n";
        let err = |text: &str| read(text).expect_err("must fail").to_string();
        assert_eq!(err(&format!("{head}www 300 A 1.2.3\n")), "t.zone:2: A record: bad IPv4 address \"1.2.3\"");
        assert_eq!(
            err(&format!("{head}\nwww 1x A 1.2.3.4\n")),
            "t.zone:3: bad TTL \"1x\": expected a number with optional units (1h30m)"
        );
        assert_eq!(
            err(&format!("{head}a.org. 300 A 1.2.3.4\n")),
            "t.zone:2: owner a.org. is outside the zone example."
        );
        assert_eq!(err("www 300 A 1.2.3.4\n"), "t.zone:1: no SOA record at the apex example.");
        assert_eq!(err(&format!("{head}{head}")), "t.zone:2: second SOA record (the first is on line 1)");
        assert_eq!(err(&format!("{head}www 300 FOO x\n")), "t.zone:2: unknown record type \"FOO\"");
        assert_eq!(err(&format!("{head}$GENERATE 1-2 a A 1.2.3.4\n")), "t.zone:2: unknown directive $GENERATE");
        assert_eq!(
            err(&format!("{head}www 300 TXT ( \"x\"\n")),
            "t.zone:2: unbalanced parentheses: '(' opened on line 2 is never closed"
        );
    }

    #[test]
    fn includes_files_relative_to_the_includer() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("main.zone"),
            "@ 300 SOA ns1 h 1 2 3 4 5\n$INCLUDE part.zone sub\nafter 300 A 192.0.2.9\n",
        )
        .expect("write");
        std::fs::write(dir.path().join("part.zone"), "x 300 A 192.0.2.8\nbad 300 A nope\n").expect("write");
        let err = read_zone_file(&dir.path().join("main.zone"), &origin()).expect_err("error in include").to_string();
        assert!(err.ends_with("part.zone:2: A record: bad IPv4 address \"nope\""), "{err}");
        std::fs::write(dir.path().join("part.zone"), "x 300 A 192.0.2.8\n").expect("write");
        let zone = read_zone_file(&dir.path().join("main.zone"), &origin()).expect("valid");
        let owners: Vec<String> = zone.records().map(|r| r.owner.to_string()).collect();
        assert_eq!(owners, ["example.", "after.example.", "x.sub.example."]);
        std::fs::write(dir.path().join("part.zone"), "$INCLUDE part.zone\n").expect("write");
        let err = read_zone_file(&dir.path().join("main.zone"), &origin()).expect_err("loop").to_string();
        assert!(err.contains("nested more than"), "{err}");
    }

    /// A file large enough to be read in pieces reads exactly as it does
    /// serially; one whose pieces depend on each other (a record without a
    /// TTL after a cut) falls back to the serial reader and reads the same.
    #[test]
    fn pieces_read_as_the_whole() {
        let mut text = String::from("example. 3600 IN SOA ns.example. h.example. 1 2 3 4 5\n");
        for i in 0..200_000 {
            text.push_str(&format!("n{i}.example. 86400 IN NS ns{}.hoster.net.\n", i % 7));
            if i % 10 == 0 {
                text.push_str(&format!("n{i} 300 IN TXT \"a ( quoted\nstring\" ( \"spanning\"\n lines )\n"));
            }
        }
        assert!(text.len() >= PARALLEL_MIN_BYTES);
        let serial = read_serial(text.as_bytes(), &origin(), Path::new("t")).expect("serial").builder.finish();
        assert!(
            read_parallel(text.as_bytes(), &origin(), Path::new("t"), PARALLEL_MIN_BYTES).is_some(),
            "read in pieces"
        );
        let parallel = read(&text).expect("parallel");
        assert_eq!(lines(&parallel), lines(&serial));
        // Without TTLs after the first record, pieces cannot stand alone.
        let no_ttls = text.replace(" 86400 IN NS", " NS");
        assert!(read_parallel(no_ttls.as_bytes(), &origin(), Path::new("t"), PARALLEL_MIN_BYTES).is_none());
        assert_eq!(lines(&read(&no_ttls).expect("serial fallback")).len(), lines(&serial).len());
        // What comes before the first whole entry is read too.
        let commented = format!("; a header\n{text}");
        assert_eq!(lines(&read(&commented).expect("reads")), lines(&serial));
        let piece = read_parallel(commented.as_bytes(), &origin(), Path::new("t"), PARALLEL_MIN_BYTES);
        assert!(piece.is_some(), "a leading comment, as Knot and BIND write, still reads in pieces");
        let ownerless = format!(" 300 IN A 192.0.2.1\n{text}");
        assert_eq!(read(&ownerless).expect_err("no owner").line, 1);
    }

    /// An entry longer than the lexer's bound is refused in pieces as
    /// serially, at its line, its text echoed short; a device is not read.
    #[test]
    fn bounds_hold_on_both_paths() {
        let head = "example. 3600 IN SOA ns.example. h.example. 1 2 3 4 5\nwww 300 A 192.0.2.1\n";
        let text = format!("{head}{} 300 A 192.0.2.2\n", "a".repeat(PARALLEL_MIN_BYTES));
        assert!(read_parallel(text.as_bytes(), &origin(), Path::new("t"), PARALLEL_MIN_BYTES).is_none());
        let serial = read_serial(text.as_bytes(), &origin(), Path::new("t.zone")).err().expect("refused");
        assert_eq!((serial.line, serial.problem.to_string().contains("longer than 1 MiB")), (3, true), "{serial}");
        assert_eq!(read(&text).expect_err("refused").to_string(), serial.to_string());
        let token = format!("{head}{} 300 A 192.0.2.2\n", "a".repeat(100_000));
        let message = read(&token).expect_err("refused").to_string();
        assert!(message.len() < 200 && message.contains(&format!("\"{}…\"", "a".repeat(40))), "{message}");
        let device = read_zone_file(Path::new("/dev/zero"), &origin()).expect_err("refused").to_string();
        assert!(device.contains("not a regular file"), "{device}");
    }
}
