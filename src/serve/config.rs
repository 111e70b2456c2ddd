//! The service's configuration file (`signet serve --config FILE`), TOML.
//! Every key is optional; SIGHUP reads the file again.
//!
//! ```toml
//! [serve]
//! poll-interval = "250ms"     # how often each input file is looked at
//! db-poll-interval = "1s"     # how often the database is read for operator commands
//! retry-min = "5s"            # first retry after a failed run; doubles up to retry-max
//! retry-max = "10m"
//! stop-timeout = "10s"        # SIGTERM: how long runs under way may take to finish
//! max-parallel-runs = 4
//! publish-command = ["/usr/sbin/nsd-control", "reload"]
//! metrics = "127.0.0.1:9253"
//! listen = ["127.0.0.1:53", "[::1]:53"]  # DNS: SOA, AXFR, IXFR, NOTIFY (port 53 if none)
//! notify-source = "192.0.2.1"            # NOTIFY leaves from here (one address per family)
//! transfer-source = ["192.0.2.1", "2001:db8::1"]  # SOA queries, transfers in, parent checks, UPDATEs
//! transfer-max-records = 30000000  # one transfer in: more records, bytes or time is refused
//! transfer-max-bytes = 2147483648
//! transfer-timeout = "1h"
//! ```
//!
//! Read by serde derive, like the policies: the shape (names, types) is
//! the toml crate's to check, and its errors name the file, the line and
//! the key; the bounds of each value are checked here after, naming the
//! file and the key.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::xfr::acl::AddressError;
use crate::xfr::incoming::TransferLimits;

/// A configuration file that cannot be used: names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not TOML, or a value is not of its key's type.
    #[error("{}:{line}: {}{message}", path.display(), key.as_ref().map(|k| format!("serve.{k}: ")).unwrap_or_default())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line (0: the parser did not say).
        line: usize,
        /// The key of `[serve]` the error is about, when it is one.
        key: Option<String>,
        /// The parser's message.
        message: String,
    },
    /// A key the file may not have.
    #[error("{}:{line}: unknown key {name} (known: {})", path.display(), known_keys(*in_serve))]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The key as written, `serve.KEY` inside `[serve]`.
        name: String,
        /// Whether it is inside `[serve]` (else a table or key beside it).
        in_serve: bool,
    },
    /// A value is out of its bounds or does not parse.
    #[error("{}: serve.{key}: {reason}", path.display())]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong with it.
        reason: ValueError,
    },
}

/// What is wrong with a value of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A duration below the least the key allows.
    #[error("{given:?} is shorter than the least allowed, {least}")]
    TooShort {
        /// The duration given, as written back.
        given: String,
        /// The least allowed.
        least: String,
    },
    /// A number outside the key's range.
    #[error("{given} is not a whole number from {least} to {most}")]
    OutOfRange {
        /// The number given.
        given: u64,
        /// The least allowed.
        least: u64,
        /// The most allowed.
        most: u64,
    },
    /// `retry-max` below `retry-min`.
    #[error("shorter than retry-min")]
    BelowRetryMin,
    /// An empty `publish-command`.
    #[error("expected a non-empty list of strings: [\"program\", \"argument\", …]")]
    EmptyCommand,
    /// An address that does not read.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// Source addresses that cannot be used (`xfr::source` says why).
    #[error(transparent)]
    Sources(#[from] crate::xfr::source::SourceError),
}

/// The settings of `signet serve`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// How often each zone's input file is looked at (size, mtime, inode).
    pub poll_interval: Duration,
    /// How often the database is read for operator commands.
    pub db_poll_interval: Duration,
    /// The first retry after a failed run.
    pub retry_min: Duration,
    /// The longest wait between retries.
    pub retry_max: Duration,
    /// How long runs under way may take to finish after SIGTERM.
    pub stop_timeout: Duration,
    /// Runs at once, over all zones.
    pub max_parallel_runs: usize,
    /// Run after every publication (program and arguments).
    pub publish_command: Vec<String>,
    /// The Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// Where DNS is answered (UDP and TCP): transfers out, NOTIFY in.
    pub listen: Vec<SocketAddr>,
    /// Where NOTIFY leaves from (at most one address per family; none:
    /// the listen address of the family, else the kernel's choice).
    pub notify_source: Vec<IpAddr>,
    /// Where SOA queries, transfers in, parent checks and UPDATEs leave
    /// from.
    pub transfer_source: Vec<IpAddr>,
    /// The bounds of one transfer in.
    pub transfer_limits: TransferLimits,
    /// How long a zone's lease lasts (services sharing a PostgreSQL
    /// state): renewed every third of it; a dead service's zones are
    /// taken by the others within it.
    pub lease: Duration,
    /// At most this many zones' leases (0: the fair share, the zones
    /// divided by the live services, only).
    pub max_zones: usize,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            poll_interval: Duration::from_millis(250),
            db_poll_interval: Duration::from_secs(1),
            retry_min: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            stop_timeout: Duration::from_secs(10),
            max_parallel_runs: 4,
            publish_command: Vec::new(),
            metrics: None,
            listen: Vec::new(),
            notify_source: Vec::new(),
            transfer_source: Vec::new(),
            transfer_limits: TransferLimits::default(),
            lease: Duration::from_secs(30),
            max_zones: 0,
        }
    }
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    serve: Table,
}

/// The `[serve]` table as written: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
struct Table {
    #[serde(deserialize_with = "duration")]
    poll_interval: Option<Duration>,
    #[serde(deserialize_with = "duration")]
    db_poll_interval: Option<Duration>,
    #[serde(deserialize_with = "duration")]
    retry_min: Option<Duration>,
    #[serde(deserialize_with = "duration")]
    retry_max: Option<Duration>,
    #[serde(deserialize_with = "duration")]
    stop_timeout: Option<Duration>,
    max_parallel_runs: Option<u64>,
    publish_command: Option<Vec<String>>,
    metrics: Option<String>,
    listen: Option<Vec<String>>,
    notify_source: Option<OneOrMany>,
    transfer_source: Option<OneOrMany>,
    transfer_max_records: Option<u64>,
    transfer_max_bytes: Option<u64>,
    #[serde(deserialize_with = "duration")]
    transfer_timeout: Option<Duration>,
    #[serde(deserialize_with = "duration")]
    lease: Option<Duration>,
    max_zones: Option<u64>,
}

/// One address, or a list of them.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "an address in quotes, or a list of them: \"192.0.2.1\", [\"192.0.2.1\", \"2001:db8::1\"]"
)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(text) => vec![text],
            OneOrMany::Many(texts) => texts,
        }
    }
}

/// The keys a `[serve]` table may have.
const KEYS: [&str; 16] = [
    "poll-interval",
    "db-poll-interval",
    "retry-min",
    "retry-max",
    "stop-timeout",
    "max-parallel-runs",
    "publish-command",
    "metrics",
    "listen",
    "notify-source",
    "transfer-source",
    "transfer-max-records",
    "transfer-max-bytes",
    "transfer-timeout",
    "lease",
    "max-zones",
];

/// A duration in quotes, as humantime reads it ("250ms", "5s", "1h").
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    use serde::de::Error as _;
    let text = String::deserialize(d).map_err(|_| D::Error::custom("expected a duration in quotes, e.g. \"5s\""))?;
    humantime::parse_duration(&text).map(Some).map_err(|e| D::Error::custom(format!("{text:?}: {e}")))
}

impl ServeConfig {
    /// Reads a configuration file; keys not in it keep their defaults.
    pub fn read(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        ServeConfig::from_text(&text, path)
    }

    /// Parses the text of a configuration file read from `path`.
    pub fn from_text(text: &str, path: &Path) -> Result<ServeConfig, ConfigError> {
        let file: File = toml::from_str(text).map_err(|e| syntax_error(text, path, &e))?;
        Checked { path }.apply(file.serve)
    }

    /// The source settings and the listen addresses, as the DNS side
    /// uses them.
    pub fn source_defaults(&self) -> crate::xfr::source::SourceDefaults {
        crate::xfr::source::SourceDefaults {
            notify: self.notify_source.clone(),
            transfer: self.transfer_source.clone(),
            listen: self.listen.iter().map(SocketAddr::ip).collect(),
        }
    }

    /// The terms of the zones' leases on a shared state.
    pub(super) fn lease_terms(&self) -> super::leases::Terms {
        super::leases::Terms { period: self.lease, max_zones: self.max_zones }
    }
}

/// The parser's error, with its line and, when it points into `[serve]`,
/// the key; a key or table the file may not have is its own error.
fn syntax_error(text: &str, path: &Path, error: &toml::de::Error) -> ConfigError {
    let message = error.message().to_owned();
    let Some(span) = error.span() else {
        return ConfigError::Syntax { path: path.into(), line: 0, key: None, message };
    };
    let at = span.start.min(text.len());
    let line = text[..at].matches('\n').count() + 1;
    let line_text = line_of(text, at).trim();
    let unknown = |name: String, in_serve| ConfigError::UnknownKey { path: path.into(), line, name, in_serve };
    if let Some(table) = line_text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).map(str::trim) {
        return if table == "serve" {
            ConfigError::Syntax { path: path.into(), line, key: None, message }
        } else {
            unknown(table.to_owned(), false)
        };
    }
    let key = line_text.split_once('=').map(|(key, _)| key.trim().trim_matches('"'));
    let in_serve = section_of(text, at) == Some("serve");
    match key {
        Some(key) if in_serve && !KEYS.contains(&key) => unknown(format!("serve.{key}"), true),
        Some(key) if !in_serve && key != "serve" => unknown(key.to_owned(), false),
        _ => ConfigError::Syntax { path: path.into(), line, key: key.filter(|_| in_serve).map(str::to_owned), message },
    }
}

/// What a file may have where an unknown key was found.
fn known_keys(in_serve: bool) -> String {
    if in_serve { KEYS.join(", ") } else { "[serve]".to_owned() }
}

/// The whole line of `text` that holds byte `at`.
fn line_of(text: &str, at: usize) -> &str {
    let begin = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    &text[begin..end]
}

/// The table (`[NAME]`) byte `at` of `text` is in, if any.
fn section_of(text: &str, at: usize) -> Option<&str> {
    let before = &text[..at];
    let begin = before.rfind('\n').map_or(0, |i| i + 1);
    // A table header's own line belongs to the table before it.
    text[..begin].lines().rev().find_map(|line| {
        let line = line.trim();
        line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).map(str::trim)
    })
}

/// The configuration being checked, value by value.
struct Checked<'p> {
    path: &'p Path,
}

impl Checked<'_> {
    fn fail(&self, key: &'static str, reason: ValueError) -> ConfigError {
        ConfigError::Value { path: self.path.into(), key, reason }
    }

    /// A duration of at least `least`.
    fn duration(
        &self,
        key: &'static str,
        value: Option<Duration>,
        least: Duration,
        into: &mut Duration,
    ) -> Result<(), ConfigError> {
        let Some(value) = value else { return Ok(()) };
        if value < least {
            let given = humantime::format_duration(value).to_string();
            let least = humantime::format_duration(least).to_string();
            return Err(self.fail(key, ValueError::TooShort { given, least }));
        }
        *into = value;
        Ok(())
    }

    /// A whole number from `least` to `most`.
    fn number(&self, key: &'static str, value: Option<u64>, least: u64, most: u64) -> Result<Option<u64>, ConfigError> {
        match value {
            Some(given) if !(least..=most).contains(&given) => {
                Err(self.fail(key, ValueError::OutOfRange { given, least, most }))
            }
            other => Ok(other),
        }
    }

    fn sources(&self, key: &'static str, value: Option<OneOrMany>) -> Result<Option<Vec<IpAddr>>, ConfigError> {
        value
            .map(|v| {
                crate::xfr::source::parse_sources(&v.into_vec()).map_err(|e| self.fail(key, ValueError::Sources(e)))
            })
            .transpose()
    }

    /// Every value of `table` checked and put in place of its default.
    fn apply(&self, table: Table) -> Result<ServeConfig, ConfigError> {
        let mut c = ServeConfig::default();
        self.duration("poll-interval", table.poll_interval, Duration::from_millis(10), &mut c.poll_interval)?;
        self.duration("db-poll-interval", table.db_poll_interval, Duration::from_millis(100), &mut c.db_poll_interval)?;
        self.duration("retry-min", table.retry_min, Duration::from_secs(1), &mut c.retry_min)?;
        self.duration("retry-max", table.retry_max, Duration::from_secs(1), &mut c.retry_max)?;
        self.duration("stop-timeout", table.stop_timeout, Duration::ZERO, &mut c.stop_timeout)?;
        self.duration("lease", table.lease, Duration::from_secs(3), &mut c.lease)?;
        if let Some(zones) = self.number("max-zones", table.max_zones, 0, 1 << 20)? {
            c.max_zones = usize::try_from(zones).unwrap_or(0);
        }
        let timeout = &mut c.transfer_limits.timeout;
        self.duration("transfer-timeout", table.transfer_timeout, Duration::from_secs(1), timeout)?;
        if let Some(runs) = self.number("max-parallel-runs", table.max_parallel_runs, 1, 1024)? {
            c.max_parallel_runs = usize::try_from(runs).unwrap_or(1024);
        }
        if let Some(records) = self.number("transfer-max-records", table.transfer_max_records, 2, u64::MAX)? {
            c.transfer_limits.max_records = records;
        }
        if let Some(bytes) = self.number("transfer-max-bytes", table.transfer_max_bytes, 512, u64::MAX)? {
            c.transfer_limits.max_bytes = bytes;
        }
        if let Some(command) = table.publish_command {
            if command.is_empty() {
                return Err(self.fail("publish-command", ValueError::EmptyCommand));
            }
            c.publish_command = command;
        }
        if let Some(text) = table.metrics {
            let parsed = text
                .parse::<SocketAddr>()
                .map_err(|_| AddressError { text, expected: "an address and port, e.g. \"127.0.0.1:9253\"" });
            c.metrics = Some(parsed.map_err(|e| self.fail("metrics", e.into()))?);
        }
        if let Some(listen) = table.listen {
            let parsed: Result<Vec<SocketAddr>, AddressError> =
                listen.iter().map(String::as_str).map(crate::xfr::acl::parse_socket).collect();
            c.listen = parsed.map_err(|e| self.fail("listen", e.into()))?;
        }
        if let Some(sources) = self.sources("notify-source", table.notify_source)? {
            c.notify_source = sources;
        }
        if let Some(sources) = self.sources("transfer-source", table.transfer_source)? {
            c.transfer_source = sources;
        }
        if c.retry_max < c.retry_min {
            return Err(self.fail("retry-max", ValueError::BelowRetryMin));
        }
        Ok(c)
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServeConfig, ConfigError> {
        ServeConfig::from_text(text, Path::new("serve.toml"))
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        assert_eq!(parse("").ok(), Some(ServeConfig::default()));
    }

    #[test]
    fn every_key_reads() {
        let config = parse(
            "[serve]\npoll-interval = \"100ms\"\ndb-poll-interval = \"2s\"\nretry-min = \"1s\"\nretry-max = \"1m\"\n\
             stop-timeout = \"3s\"\nmax-parallel-runs = 2\npublish-command = [\"true\", \"x\"]\nmetrics = \"127.0.0.1:9000\"\n\
             listen = [\"127.0.0.1:5300\", \"::1\"]\ntransfer-max-records = 1000\ntransfer-max-bytes = 65536\n\
             transfer-timeout = \"30s\"\n",
        )
        .expect("config");
        assert_eq!(config.poll_interval, Duration::from_millis(100));
        assert_eq!(config.retry_max, Duration::from_secs(60));
        assert_eq!(config.max_parallel_runs, 2);
        assert_eq!(config.publish_command, ["true", "x"]);
        assert_eq!(config.metrics, "127.0.0.1:9000".parse().ok());
        let listen: Vec<SocketAddr> = ["127.0.0.1:5300", "[::1]:53"].iter().filter_map(|a| a.parse().ok()).collect();
        assert_eq!(config.listen, listen);
        let limits = TransferLimits { max_records: 1000, max_bytes: 65536, timeout: Duration::from_secs(30) };
        assert_eq!(config.transfer_limits, limits);
    }

    #[test]
    fn errors_name_the_key() {
        let message = |text: &str| parse(text).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message("[serve]\nretry-min = \"soon\"").contains("serve.retry-min"));
        assert!(message("[serve]\npoll-interval = \"1ms\"").contains("serve.poll-interval"));
        assert!(message("[serve]\nmax-parallel-runs = 0").contains("serve.max-parallel-runs"));
        assert!(message("[serve]\nretry-min = \"2m\"\nretry-max = \"1m\"").contains("serve.retry-max"));
        assert!(message("[serve]\npoll = \"1s\"").contains("unknown key serve.poll"));
        assert!(message("[serve]\ntransfer-max-records = 0").contains("serve.transfer-max-records"));
        assert!(message("[serve]\ntransfer-max-bytes = \"1G\"").contains("serve.transfer-max-bytes"));
        assert!(message("[serve]\ntransfer-timeout = \"0s\"").contains("serve.transfer-timeout"));
        assert!(message("[server]\n").contains("server"));
        assert!(message("[serve]\npublish-command = \"nsd-control reload\"").contains("publish-command"));
        assert!(message("[serve]\nnotify-source = \"127.0.0.2:53\"").contains("serve.notify-source"));
        assert!(
            message("[serve]\ntransfer-source = [\"127.0.0.2\", \"127.0.0.3\"]")
                .contains("one source address per family")
        );
    }

    #[test]
    fn sources_read_as_one_address_or_a_list() {
        let config = parse("[serve]\nnotify-source = \"127.0.0.2\"\ntransfer-source = [\"127.0.0.3\", \"::1\"]\n")
            .expect("config");
        let ip = |t: &str| t.parse::<IpAddr>().expect("ip");
        assert_eq!(config.notify_source, [ip("127.0.0.2")]);
        assert_eq!(config.transfer_source, [ip("127.0.0.3"), ip("::1")]);
    }
}
