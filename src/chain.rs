//! An error and its causes as one line of text.
//!
//! An error's message in signet does not repeat its source: the source is
//! kept typed and reached with [`std::error::Error::source`]. Whoever turns
//! an error into text for a person (the command line, a log line, the run
//! recorded in the database) shows the whole chain with [`Chain`], so that
//! nothing the causes say is lost.

use std::error::Error;
use std::fmt;

/// Displays an error, then each of its causes, joined by ": ".
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Chain;

    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}")]
    struct Read {
        path: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn shows_every_cause_once() {
        let error = Read { path: "zone.db", source: std::io::Error::other("disk on fire") };
        assert_eq!(Chain(&error).to_string(), "reading zone.db: disk on fire");
    }
}
