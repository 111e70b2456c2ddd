//! TSIG key files: a BIND key clause (as `tsig-keygen -a hmac-sha256
//! NAME` writes it), Knot's key section (as `keymgr -t NAME hmac-sha256`
//! writes it), or one line of base64 (the secret alone).
//!
//! The file must not be readable or writable by group or other. The text
//! is held in zeroized buffers, and no error ever quotes the secret.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use zeroize::Zeroizing;

use crate::zone::{Name, NameError};

/// The largest key file read; a key clause is well under 1 KiB.
const MAX_FILE_LEN: u64 = 64 * 1024;

/// Why a TSIG key file could not be used. No variant holds the secret.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be opened or read.
    #[error("cannot read TSIG key file {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is readable or writable by group or other.
    #[error(
        "TSIG key file {} has mode {mode:04o}: it must not be readable or writable by group or other \
         (chmod 600 it)",
        path.display()
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is larger than a key file can be.
    #[error("TSIG key file {} is larger than {MAX_FILE_LEN} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The text is not a key clause, a Knot key section or a base64 line.
    #[error("TSIG key file {} line {line}: {expected}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// What was expected there.
        expected: &'static str,
    },
    /// A key's name is not a domain name.
    #[error("TSIG key file {}: bad key name {name:?}", path.display())]
    BadName {
        /// The file.
        path: PathBuf,
        /// The name as written.
        name: String,
        /// Why it is not a name.
        source: NameError,
    },
    /// A key uses an algorithm other than hmac-sha256.
    #[error("TSIG key file {}: key {name} uses algorithm {algorithm:?}; signet supports hmac-sha256 only", path.display())]
    Algorithm {
        /// The file.
        path: PathBuf,
        /// The key's name.
        name: String,
        /// The algorithm as written.
        algorithm: String,
    },
    /// A key lacks its algorithm or its secret.
    #[error("TSIG key file {}: key {name} has no {field}", path.display())]
    MissingField {
        /// The file.
        path: PathBuf,
        /// The key's name.
        name: String,
        /// `algorithm` or `secret`.
        field: &'static str,
    },
    /// The secret is not base64, or is empty.
    #[error("TSIG key file {}: the secret of key {name} is not (non-empty) base64", path.display())]
    BadSecret {
        /// The file.
        path: PathBuf,
        /// The key's name, `-` for a file that holds only the secret.
        name: String,
    },
    /// The secret is shorter than the hash's output (RFC 8945 §8).
    #[error("TSIG key file {}: the secret of key {name} has {len} bytes; hmac-sha256 needs at least {SECRET_MIN} (RFC 8945 §8): make one with `tsig-keygen -a hmac-sha256 NAME`", path.display())]
    ShortSecret {
        /// The file.
        path: PathBuf,
        /// The key's name, `-` for a file that holds only the secret.
        name: String,
        /// The secret's length in bytes.
        len: usize,
    },
    /// The file holds no key.
    #[error("TSIG key file {} holds no key", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The file holds several keys and no name says which one.
    #[error("TSIG key file {} holds several keys ({}): name the one to use", path.display(), names.join(", "))]
    SeveralKeys {
        /// The file.
        path: PathBuf,
        /// The keys' names.
        names: Vec<String>,
    },
    /// The file holds only a secret and no name was given for it.
    #[error("TSIG key file {} holds only a secret: its key name must be given", path.display())]
    Nameless {
        /// The file.
        path: PathBuf,
    },
    /// The file does not hold the key of the expected name.
    #[error("TSIG key file {} holds no key named {expected} (it has: {})", path.display(), found.join(", "))]
    NameMismatch {
        /// The file.
        path: PathBuf,
        /// The name the key was registered under.
        expected: Name,
        /// The names the file holds.
        found: Vec<String>,
    },
}

/// The shortest secret taken: the length of an HMAC-SHA256 output.
pub(super) const SECRET_MIN: usize = 32;

/// A key as read from a file: its name (none for a bare secret) and its
/// secret.
pub(super) struct FileKey {
    pub name: Option<Name>,
    pub secret: Zeroizing<Vec<u8>>,
}

/// Reads every key of a key file, after checking the file's mode.
pub(super) fn read_keys(path: &Path) -> Result<Vec<FileKey>, KeyFileError> {
    let text = read_private(path)?;
    let text = std::str::from_utf8(&text).map_err(|_| syntax(path, 1, "the file is not UTF-8 text"))?;
    let raw = if text.lines().any(|line| strip_hash_comment(line).trim_end() == "key:") {
        parse_knot(text, path)?
    } else {
        parse_bind_or_bare(text, path)?
    };
    raw.into_iter().map(|key| key.finish(path)).collect()
}

/// Opens the file, refuses it if group or other may read or write it, and
/// reads it into a buffer that is zeroized when dropped.
fn read_private(path: &Path) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let io = |source| KeyFileError::Io { path: path.to_owned(), source };
    let file = File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions { path: path.to_owned(), mode });
    }
    if meta.len() > MAX_FILE_LEN {
        return Err(KeyFileError::TooLarge { path: path.to_owned() });
    }
    // Sized up front, so that reading does not leave copies behind in
    // reallocated (and not zeroized) memory.
    let mut text = Zeroizing::new(Vec::with_capacity(MAX_FILE_LEN as usize + 1));
    file.take(MAX_FILE_LEN + 1).read_to_end(&mut text).map_err(io)?;
    if text.len() as u64 > MAX_FILE_LEN {
        return Err(KeyFileError::TooLarge { path: path.to_owned() });
    }
    Ok(text)
}

fn syntax(path: &Path, line: usize, expected: &'static str) -> KeyFileError {
    KeyFileError::Syntax { path: path.to_owned(), line, expected }
}

/// A key's fields as written, before they are checked.
#[derive(Default)]
struct RawKey<'a> {
    name: Option<&'a str>,
    algorithm: Option<&'a str>,
    secret: Option<&'a str>,
}

impl RawKey<'_> {
    /// Checks the name and algorithm and decodes the secret.
    fn finish(self, path: &Path) -> Result<FileKey, KeyFileError> {
        let shown = self.name.unwrap_or("-").to_owned();
        let name = match self.name {
            Some(text) => Some(parse_name(text, path)?),
            None => None,
        };
        let missing = |field| KeyFileError::MissingField { path: path.to_owned(), name: shown.clone(), field };
        if name.is_some() {
            let algorithm = self.algorithm.ok_or_else(|| missing("algorithm"))?;
            let bare = algorithm.strip_suffix('.').unwrap_or(algorithm);
            if !bare.eq_ignore_ascii_case("hmac-sha256") {
                let algorithm = algorithm.to_owned();
                return Err(KeyFileError::Algorithm { path: path.to_owned(), name: shown, algorithm });
            }
        }
        let secret = self.secret.ok_or_else(|| missing("secret"))?;
        let secret = decode_secret(secret)
            .ok_or_else(|| KeyFileError::BadSecret { path: path.to_owned(), name: shown.clone() })?;
        // RFC 8945 §8: a secret at least as long as the hash's output.
        if secret.len() < SECRET_MIN {
            return Err(KeyFileError::ShortSecret { path: path.to_owned(), name: shown, len: secret.len() });
        }
        Ok(FileKey { name, secret })
    }
}

fn parse_name(text: &str, path: &Path) -> Result<Name, KeyFileError> {
    Name::from_text(text, Some(Name::root().as_ref())).map_err(|source| KeyFileError::BadName {
        path: path.to_owned(),
        name: text.to_owned(),
        source,
    })
}

/// Decodes base64 (whitespace ignored) into a zeroized buffer; `None` if
/// it is not base64 or is empty.
fn decode_secret(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let compact: Zeroizing<Vec<u8>> = Zeroizing::new(text.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    let mut secret = Zeroizing::new(vec![0; BASE64.decode_len(compact.len()).ok()?]);
    let len = BASE64.decode_mut(&compact, &mut secret).ok()?;
    secret.truncate(len);
    (!secret.is_empty()).then_some(secret)
}

// ---- Knot: `key:` then `- id: NAME`, `algorithm: ALG`, `secret: B64` ----

fn strip_hash_comment(line: &str) -> &str {
    match line.find('#') {
        Some(at) => &line[..at],
        None => line,
    }
}

fn parse_knot<'a>(text: &'a str, path: &Path) -> Result<Vec<RawKey<'a>>, KeyFileError> {
    let mut keys: Vec<(usize, RawKey<'a>)> = Vec::new();
    let mut in_keys = false;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let content = strip_hash_comment(line).trim_end();
        if content.trim_start().is_empty() {
            continue;
        }
        if !content.starts_with([' ', '\t']) {
            in_keys = content == "key:";
            if !in_keys {
                return Err(syntax(path, line_no, "expected `key:` (only key sections are read)"));
            }
            continue;
        }
        let mut field = content.trim_start();
        if let Some(rest) = field.strip_prefix("- ") {
            keys.push((line_no, RawKey::default()));
            field = rest.trim_start();
        }
        let (_, key) =
            keys.last_mut().filter(|_| in_keys).ok_or_else(|| syntax(path, line_no, "expected `- id: NAME`"))?;
        knot_field(key, field).ok_or_else(|| syntax(path, line_no, "expected `id:`, `algorithm:` or `secret:`"))?;
    }
    if let Some((line, _)) = keys.iter().find(|(_, key)| key.name.is_none()) {
        return Err(syntax(path, *line, "a key without `id:`"));
    }
    Ok(keys.into_iter().map(|(_, key)| key).collect())
}

/// Stores one `field: value` line of a Knot key; `None` if it is not one.
fn knot_field<'a>(key: &mut RawKey<'a>, field: &'a str) -> Option<()> {
    let (field, value) = field.split_once(':')?;
    let value = unquote(value.trim())?;
    let slot = match field.trim() {
        "id" => &mut key.name,
        "algorithm" => &mut key.algorithm,
        "secret" => &mut key.secret,
        _ => return None,
    };
    slot.replace(value).is_none().then_some(())
}

fn unquote(value: &str) -> Option<&str> {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote) {
            return inner.strip_suffix(quote);
        }
    }
    (!value.is_empty()).then_some(value)
}

// ---- BIND: `key "NAME" { algorithm ALG; secret "B64"; };` ----

/// A token of named.conf syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    Word(&'a str),
    Quoted(&'a str),
    Open,
    Close,
    Semicolon,
}

/// Splits named.conf text into tokens, skipping `#`, `//` and `/* */`
/// comments.
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    /// The next token and its line; `Ok(None)` at the end; an error for an
    /// unterminated string or comment.
    fn next(&mut self) -> Result<Option<(Token<'a>, usize)>, (usize, &'static str)> {
        self.skip_blanks()?;
        let rest = &self.text[self.pos..];
        let Some(first) = rest.chars().next() else { return Ok(None) };
        let line = self.line;
        let (token, len) = match first {
            '{' => (Token::Open, 1),
            '}' => (Token::Close, 1),
            ';' => (Token::Semicolon, 1),
            '"' => {
                let end = rest[1..].find('"').ok_or((line, "unterminated string"))?;
                self.line += rest[1..1 + end].matches('\n').count();
                (Token::Quoted(&rest[1..1 + end]), end + 2)
            }
            _ => {
                let end = rest.find(|c: char| c.is_whitespace() || "{};\"#".contains(c)).unwrap_or(rest.len());
                let end = end.max(first.len_utf8());
                (Token::Word(&rest[..end]), end)
            }
        };
        self.pos += len;
        Ok(Some((token, line)))
    }

    fn skip_blanks(&mut self) -> Result<(), (usize, &'static str)> {
        loop {
            let rest = &self.text[self.pos..];
            let trimmed = rest.trim_start();
            self.line += rest[..rest.len() - trimmed.len()].matches('\n').count();
            self.pos += rest.len() - trimmed.len();
            let skip = if trimmed.starts_with('#') || trimmed.starts_with("//") {
                trimmed.find('\n').unwrap_or(trimmed.len())
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                let end = body.find("*/").ok_or((self.line, "unterminated comment"))?;
                self.line += body[..end].matches('\n').count();
                end + 4
            } else {
                return Ok(());
            };
            self.pos += skip;
        }
    }
}

/// A named.conf parser over the lexer, turning its errors into
/// [`KeyFileError::Syntax`].
struct Bind<'a, 'p> {
    lexer: Lexer<'a>,
    path: &'p Path,
}

impl<'a> Bind<'a, '_> {
    fn next(&mut self) -> Result<Option<(Token<'a>, usize)>, KeyFileError> {
        self.lexer.next().map_err(|(line, expected)| syntax(self.path, line, expected))
    }

    /// The next token, which must be there.
    fn token(&mut self, expected: &'static str) -> Result<(Token<'a>, usize), KeyFileError> {
        self.next()?.ok_or_else(|| syntax(self.path, self.lexer.line, expected))
    }

    /// A word or a quoted string.
    fn string(&mut self, expected: &'static str) -> Result<&'a str, KeyFileError> {
        match self.token(expected)? {
            (Token::Word(text) | Token::Quoted(text), _) => Ok(text),
            (_, line) => Err(syntax(self.path, line, expected)),
        }
    }

    fn expect(&mut self, wanted: Token<'_>, expected: &'static str) -> Result<(), KeyFileError> {
        match self.token(expected)? {
            (token, _) if token == wanted => Ok(()),
            (_, line) => Err(syntax(self.path, line, expected)),
        }
    }

    /// The rest of a key clause after `key`.
    fn key_clause(&mut self) -> Result<RawKey<'a>, KeyFileError> {
        let mut key = RawKey { name: Some(self.string("expected the key's name after `key`")?), ..RawKey::default() };
        self.expect(Token::Open, "expected `{` after the key's name")?;
        loop {
            let slot = match self.token("expected `algorithm`, `secret` or `}`")? {
                (Token::Close, _) => break,
                (Token::Word("algorithm"), _) => &mut key.algorithm,
                (Token::Word("secret"), _) => &mut key.secret,
                (_, line) => return Err(syntax(self.path, line, "expected `algorithm`, `secret` or `}`")),
            };
            *slot = Some(self.string("expected a value")?);
            self.expect(Token::Semicolon, "expected `;` after the value")?;
        }
        self.expect(Token::Semicolon, "expected `;` after `}`")?;
        Ok(key)
    }
}

/// Reads key clauses, or a file whose only token is the base64 secret.
fn parse_bind_or_bare<'a>(text: &'a str, path: &Path) -> Result<Vec<RawKey<'a>>, KeyFileError> {
    let mut bind = Bind { lexer: Lexer { text, pos: 0, line: 1 }, path };
    let mut keys = Vec::new();
    match bind.next()? {
        None => return Ok(keys),
        Some((Token::Word("key"), _)) => keys.push(bind.key_clause()?),
        Some((Token::Word(secret), line)) => {
            return match bind.next()? {
                None => Ok(vec![RawKey { secret: Some(secret), ..RawKey::default() }]),
                Some(_) => Err(syntax(path, line, "expected a key clause or one line of base64")),
            };
        }
        Some((_, line)) => return Err(syntax(path, line, "expected `key`")),
    }
    while let Some((token, line)) = bind.next()? {
        if token != Token::Word("key") {
            return Err(syntax(path, line, "expected `key`"));
        }
        keys.push(bind.key_clause()?);
    }
    Ok(keys)
}
