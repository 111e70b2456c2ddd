//! Splits master-file text into entries (one record or directive each,
//! parentheses joined) and entries into tokens (RFC 1035 §5.1).
//!
//! Tokens borrow the source bytes; escapes are left in place for the
//! reader of each field to decode, so no token is ever copied.

/// One token of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// The bytes, escapes undecoded; for a quoted string, the inside.
    pub text: &'a [u8],
    /// Was the token a quoted string?
    pub quoted: bool,
}

/// The longest entry (one record or directive, its parenthesised lines
/// and comments included): 1 MiB. A record's RDATA is at most 65535
/// octets, whose longest presentation is about 256 KiB (a TXT of 255-octet
/// strings with every octet written `\DDD`; hex is 128 KiB, base64 87 KiB),
/// so no real zone comes near it; what does is not a zone (a device, a
/// binary file) or has a parenthesis or quote left open, and is refused
/// before it costs more than this much work.
pub(super) const MAX_ENTRY: usize = 1 << 20;

/// The longest piece of input text a message shows.
const ECHO_CHARS: usize = 40;

/// Input text for a message: at most [`ECHO_CHARS`] characters, then `…`
/// (a token can be 100 KB; the message needs its start).
pub(super) fn echo(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(4 * ECHO_CHARS)]);
    match text.char_indices().nth(ECHO_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None if bytes.len() > 4 * ECHO_CHARS => format!("{text}…"),
        None => text.into_owned(),
    }
}

/// Why an entry could not be split into tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LexError {
    /// A `(` without its `)` before the end of the file.
    #[error("unbalanced parentheses: '(' opened on line {0} is never closed")]
    UnclosedParen(usize),
    /// A `)` without a `(`.
    #[error("')' without '('")]
    StrayParen,
    /// A quoted string without its closing quote.
    #[error("quoted string opened on line {0} is never closed")]
    UnclosedQuote(usize),
    /// An entry longer than [`MAX_ENTRY`].
    #[error(
        "entry longer than 1 MiB (a record's text is at most about 256 KiB): not a zone file, or a '(' or '\"' never closed?"
    )]
    TooLong,
}

/// An entry: the tokens of one logical line.
#[derive(Debug, Default)]
pub(super) struct Entry<'a> {
    /// The line the entry starts on (1-based).
    pub line: usize,
    /// The line began with white space: the owner is the previous one.
    pub blank_owner: bool,
    /// The tokens.
    pub tokens: Vec<Token<'a>>,
}

/// Walks the text entry by entry.
#[derive(Debug)]
pub(super) struct Lexer<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
    /// Where the entry being read must end: at most [`MAX_ENTRY`] past its start.
    end: usize,
}

impl<'a> Lexer<'a> {
    /// A lexer at the start of `text`.
    pub(super) fn new(text: &'a [u8]) -> Lexer<'a> {
        Lexer { text, pos: 0, line: 1, end: 0 }
    }

    /// Ran into the entry's limit rather than the end of the text?
    fn cut_short(&self) -> bool {
        self.pos >= self.end && self.end < self.text.len()
    }

    /// Fills `entry` with the next non-empty entry; `Ok(false)` at the end.
    /// The error carries the line it was found on.
    pub(super) fn next_entry(&mut self, entry: &mut Entry<'a>) -> Result<bool, (usize, LexError)> {
        loop {
            entry.tokens.clear();
            if self.pos >= self.text.len() {
                return Ok(false);
            }
            entry.line = self.line;
            entry.blank_owner = matches!(self.text[self.pos], b' ' | b'\t');
            self.read_entry(entry)?;
            if !entry.tokens.is_empty() {
                return Ok(true);
            }
        }
    }

    fn read_entry(&mut self, entry: &mut Entry<'a>) -> Result<(), (usize, LexError)> {
        let text = self.text;
        let mut paren_line = None;
        self.end = text.len().min(self.pos + MAX_ENTRY);
        while self.pos < self.end {
            match text[self.pos] {
                b'\n' => {
                    self.pos += 1;
                    self.line += 1;
                    if paren_line.is_none() {
                        return Ok(());
                    }
                }
                b' ' | b'\t' | b'\r' => self.pos += 1,
                b';' => {
                    while self.pos < self.end && text[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                b'(' => {
                    if paren_line.is_some() {
                        return Err((self.line, LexError::UnclosedParen(self.line)));
                    }
                    paren_line = Some(self.line);
                    self.pos += 1;
                }
                b')' => {
                    if paren_line.take().is_none() {
                        return Err((self.line, LexError::StrayParen));
                    }
                    self.pos += 1;
                }
                b'"' => entry.tokens.push(self.quoted()?),
                _ => entry.tokens.push(self.word()),
            }
        }
        if self.cut_short() {
            return Err((entry.line, LexError::TooLong));
        }
        match paren_line {
            Some(line) => Err((line, LexError::UnclosedParen(line))),
            None => Ok(()),
        }
    }

    fn word(&mut self) -> Token<'a> {
        let text = self.text;
        let start = self.pos;
        while self.pos < self.end {
            match text[self.pos] {
                b'\\' => self.pos = (self.pos + 2).min(self.end),
                b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';' | b'"' => break,
                _ => self.pos += 1,
            }
        }
        Token { text: &text[start..self.pos], quoted: false }
    }

    fn quoted(&mut self) -> Result<Token<'a>, (usize, LexError)> {
        let text = self.text;
        let opened = self.line;
        self.pos += 1;
        let start = self.pos;
        while self.pos < self.end {
            match text[self.pos] {
                b'\\' => {
                    if text.get(self.pos + 1) == Some(&b'\n') {
                        self.line += 1;
                    }
                    self.pos += 2;
                }
                b'"' => {
                    let token = Token { text: &text[start..self.pos], quoted: true };
                    self.pos += 1;
                    return Ok(token);
                }
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                _ => self.pos += 1,
            }
        }
        self.pos = self.pos.min(self.end);
        Err((opened, if self.cut_short() { LexError::TooLong } else { LexError::UnclosedQuote(opened) }))
    }
}

/// Where text can be cut into pieces that read the same apart as together:
/// for each offset in `targets` (ascending), the first entry that starts
/// at or after it on a line of its own, with its owner written out, outside
/// parentheses and quotes. `None` if the text holds a `$` directive, whose
/// effect would cross the cuts. Lines without parentheses, quotes or
/// escapes (nearly all) are skipped whole with `memchr`.
pub(super) fn cut_points(text: &[u8], targets: &[usize]) -> Option<Vec<usize>> {
    let mut cuts = Vec::with_capacity(targets.len());
    let mut targets = targets.iter().copied().peekable();
    let mut in_paren = false;
    let mut pos = 0;
    while pos < text.len() {
        if !in_paren {
            match text[pos] {
                b'$' => return None,
                b' ' | b'\t' | b'\r' | b'\n' | b';' => {}
                _ => {
                    if targets.peek().is_some_and(|&t| t <= pos) {
                        cuts.push(pos);
                        while targets.next_if(|&t| t <= pos).is_some() {}
                    }
                }
            }
        }
        let end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |i| pos + i);
        let line = &text[pos..end];
        pos = if memchr::memchr3(b'(', b')', b'"', line).is_none() && memchr::memchr(b'\\', line).is_none() {
            end + 1
        } else {
            after_line(text, pos, &mut in_paren)
        };
    }
    Some(cuts)
}

/// Walks one line byte by byte (a quoted string may carry it over newlines),
/// tracking parentheses; returns the offset after its newline.
fn after_line(text: &[u8], mut pos: usize, in_paren: &mut bool) -> usize {
    while pos < text.len() {
        match text[pos] {
            b'\n' => return pos + 1,
            b';' => pos = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |i| pos + i),
            b'\\' => pos += 2,
            b'(' => {
                *in_paren = true;
                pos += 1;
            }
            b')' => {
                *in_paren = false;
                pos += 1;
            }
            b'"' => pos = closing_quote(text, pos + 1) + 1,
            _ => pos += 1,
        }
    }
    text.len()
}

/// The offset of the quote closing a string that starts at `from`, or the end.
fn closing_quote(text: &[u8], mut pos: usize) -> usize {
    while pos < text.len() {
        match text[pos] {
            b'\\' => pos += 2,
            b'"' => return pos,
            _ => pos += 1,
        }
    }
    text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Vec<(usize, bool, Vec<String>)> {
        let mut lexer = Lexer::new(text.as_bytes());
        let mut entry = Entry::default();
        let mut out = Vec::new();
        while lexer.next_entry(&mut entry).expect("lexes") {
            let tokens = entry.tokens.iter().map(|t| String::from_utf8_lossy(t.text).into_owned()).collect();
            out.push((entry.line, entry.blank_owner, tokens));
        }
        out
    }

    #[test]
    fn joins_parentheses_and_skips_comments() {
        let text = "a 1 IN SOA ns h ( 1 ; serial\n 2 3\n 4 5 )\n\n  ; only a comment\n\tTXT \"x y\" \\;z\n";
        let got = entries(text);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].2, ["a", "1", "IN", "SOA", "ns", "h", "1", "2", "3", "4", "5"]);
        assert_eq!((got[1].0, got[1].1), (6, true));
        assert_eq!(got[1].2, ["TXT", "x y", "\\;z"]);
    }

    #[test]
    fn reports_unbalanced_input() {
        let mut entry = Entry::default();
        assert_eq!(Lexer::new(b"a TXT ( x\n y\n").next_entry(&mut entry), Err((1, LexError::UnclosedParen(1))));
        assert_eq!(Lexer::new(b"\na TXT x )\n").next_entry(&mut entry), Err((2, LexError::StrayParen)));
        assert_eq!(Lexer::new(b"a TXT \"x\n").next_entry(&mut entry), Err((1, LexError::UnclosedQuote(1))));
    }

    #[test]
    fn bounds_an_entry_and_echoes() {
        let mut entry = Entry::default();
        let long = format!("a TXT {}\n", "x".repeat(MAX_ENTRY));
        assert_eq!(Lexer::new(long.as_bytes()).next_entry(&mut entry), Err((1, LexError::TooLong)));
        let quoted = format!("\na TXT \"{}\"\n", "x".repeat(MAX_ENTRY));
        assert_eq!(Lexer::new(quoted.as_bytes()).next_entry(&mut entry), Err((2, LexError::TooLong)));
        let comment = format!(";{}\n", "x".repeat(MAX_ENTRY));
        assert_eq!(Lexer::new(comment.as_bytes()).next_entry(&mut entry), Err((1, LexError::TooLong)));
        let paren = format!("a TXT ( {}", "\"x\"\n".repeat(MAX_ENTRY / 4));
        assert_eq!(Lexer::new(paren.as_bytes()).next_entry(&mut entry), Err((1, LexError::TooLong)));
        // The longest real RDATA, 65535 octets in RFC 3597 hex, is read.
        let generic = format!("a TYPE65280 \\# 65535 {}\n", "ab".repeat(65535));
        assert_eq!(Lexer::new(generic.as_bytes()).next_entry(&mut entry), Ok(true));
        assert_eq!(echo(b"short"), "short");
        assert_eq!(echo(&[b'a'; 100_000]), format!("{}…", "a".repeat(40)));
        assert_eq!(echo("é".repeat(100).as_bytes()), format!("{}…", "é".repeat(40)));
    }

    #[test]
    fn cuts_only_between_whole_entries() {
        let text = b"a 1 TXT ( x\nb c )\n b 1 A 1.2.3.4\nc 1 TXT \"q\nd\" ; (\nd 1 A 1.2.3.4\n";
        // Targets inside the parentheses or at a blank-owner line move on
        // to the next whole entry (33); one inside the quoted string past
        // the `(` of a comment, to the line after (51).
        let d_line = text.windows(2).rposition(|w| w == b"\nd").map_or(0, |i| i + 1);
        assert_eq!(d_line, 51);
        assert_eq!(cut_points(text, &[0, 8, 15, 30, 35]), Some(vec![0, 33, 51]));
        assert_eq!(cut_points(b"a 1 A 1.2.3.4\n$TTL 5\n", &[0]), None);
    }
}
