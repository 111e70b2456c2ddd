//! Where the state lives: an SQLite file (the default) or a PostgreSQL
//! database, as `--db` (or `$SIGNET_DB`) names it.
//!
//! A PostgreSQL URL carries no password: one in it would show in `ps`,
//! shell histories, unit files and every error that quotes the URL. The
//! password comes from `PGPASSWORD` or a password file (`PGPASSFILE`,
//! else `~/.pgpass`), as for every libpq program; the URL is shown only
//! without it.

use std::fmt;
use std::path::{Path, PathBuf};

/// The schemes that name a PostgreSQL database.
const POSTGRES_SCHEMES: [&str; 2] = ["postgres", "postgresql"];

/// Where the state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// An SQLite file.
    File(PathBuf),
    /// A PostgreSQL database: its URL, without a password (boxed: errors
    /// carry the location, and a URL is four times a path's size).
    Postgres(Box<url::Url>),
}

/// Why `--db` names no usable database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// The text starts like a PostgreSQL URL but does not parse as one.
    #[error("--db {shown}: not a PostgreSQL URL ({why}); write postgres://USER@HOST:PORT/DATABASE")]
    BadUrl {
        /// The text up to its first `@` (what may follow is a password).
        shown: String,
        /// What the URL parser said.
        why: String,
    },
    /// The URL holds a password.
    #[error(
        "--db {shown}: the URL holds a password, which would show in process lists and logs; give it in PGPASSWORD or a password file (PGPASSFILE, ~/.pgpass) instead"
    )]
    PasswordInUrl {
        /// The URL without the password.
        shown: String,
    },
}

impl DbLocation {
    /// What `--db` says: a `postgres://` or `postgresql://` URL, or else
    /// the path of an SQLite file.
    pub fn parse(text: &str) -> Result<DbLocation, LocationError> {
        let scheme = text.split_once("://").map(|(scheme, _)| scheme.to_ascii_lowercase());
        if !scheme.is_some_and(|s| POSTGRES_SCHEMES.contains(&s.as_str())) {
            return Ok(DbLocation::File(PathBuf::from(text)));
        }
        let mut url = url::Url::parse(text)
            .map_err(|e| LocationError::BadUrl { shown: without_user_info(text), why: e.to_string() })?;
        let in_query = url.query_pairs().any(|(key, _)| key == "password");
        if url.password().is_some() || in_query {
            let _ = url.set_password(None);
            let kept: Vec<(String, String)> =
                url.query_pairs().filter(|(key, _)| key != "password").map(|(k, v)| (k.into(), v.into())).collect();
            url.set_query(None);
            if !kept.is_empty() {
                url.query_pairs_mut().extend_pairs(kept);
            }
            return Err(LocationError::PasswordInUrl { shown: url.to_string() });
        }
        Ok(DbLocation::Postgres(Box::new(url)))
    }

    /// The SQLite file, if the state lives in one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            DbLocation::File(path) => Some(path),
            DbLocation::Postgres(_) => None,
        }
    }

    /// The directory relative `file:` key paths are taken from: the
    /// database file's, or for PostgreSQL (whose state several machines
    /// may share) the working directory.
    pub fn key_dir(&self) -> PathBuf {
        let dir = match self {
            DbLocation::File(path) => path.parent().unwrap_or(Path::new(".")),
            DbLocation::Postgres(_) => Path::new("."),
        };
        std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned())
    }
}

/// A URL that did not parse, shown without what comes between the
/// scheme and the last `@`.
fn without_user_info(text: &str) -> String {
    match (text.split_once("://"), text.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://…@{host}"),
        _ => text.to_owned(),
    }
}

impl fmt::Display for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::File(path) => write!(f, "{}", path.display()),
            DbLocation::Postgres(url) => write!(f, "{url}"),
        }
    }
}

impl From<&Path> for DbLocation {
    fn from(path: &Path) -> DbLocation {
        DbLocation::File(path.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_an_sqlite_file() {
        assert_eq!(DbLocation::parse("signet.db").expect("parses"), DbLocation::File("signet.db".into()));
        assert_eq!(DbLocation::parse("/var/lib/x://y").expect("parses"), DbLocation::File("/var/lib/x://y".into()));
    }

    #[test]
    fn a_postgres_url_is_kept_without_a_password() {
        let location = DbLocation::parse("postgres://signet@127.0.0.1:5432/state").expect("parses");
        assert_eq!(location.to_string(), "postgres://signet@127.0.0.1:5432/state");
        assert!(location.file().is_none());
        assert!(matches!(DbLocation::parse("PostgreSQL://h/d").expect("parses"), DbLocation::Postgres(_)));
    }

    #[test]
    fn a_password_in_the_url_is_refused_and_never_shown() {
        for text in ["postgres://signet:s3cret@h/state", "postgres://signet@h/state?password=s3cret&sslmode=disable"] {
            let error = DbLocation::parse(text).expect_err("refused");
            let shown = error.to_string();
            assert!(matches!(error, LocationError::PasswordInUrl { .. }), "{shown}");
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains("PGPASSWORD"), "{shown}");
        }
        let bad = DbLocation::parse("postgres://signet:s3cret@[::1/state").expect_err("refused").to_string();
        assert!(!bad.contains("s3cret"), "{bad}");
    }
}
