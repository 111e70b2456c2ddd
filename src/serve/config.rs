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

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::xfr::incoming::TransferLimits;

/// A configuration file that cannot be used: names the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not TOML of the expected shape.
    #[error("{}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// A value is out of range or does not parse.
    #[error("{}: serve.{key}: {reason}", path.display())]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
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
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    serve: BTreeMap<String, toml::Value>,
}

/// The keys a `[serve]` table may have.
const KEYS: [&str; 14] = [
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
];

impl ServeConfig {
    /// Reads a configuration file; keys not in it keep their defaults.
    pub fn read(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.into(), source })?;
        ServeConfig::from_text(&text, path)
    }

    /// Parses the text of a configuration file read from `path`.
    pub fn from_text(text: &str, path: &Path) -> Result<ServeConfig, ConfigError> {
        let file: File =
            toml::from_str(text).map_err(|e| ConfigError::Syntax { path: path.into(), message: e.to_string() })?;
        let value_error = |key: &'static str, reason: String| ConfigError::Value { path: path.into(), key, reason };
        if let Some(unknown) = file.serve.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(ConfigError::Syntax {
                path: path.into(),
                message: format!("unknown key serve.{unknown} (known: {})", KEYS.join(", ")),
            });
        }
        let mut config = ServeConfig::default();
        for key in KEYS {
            let Some(value) = file.serve.get(key) else { continue };
            let fail = |reason: String| value_error(key, reason);
            match key {
                "poll-interval" => config.poll_interval = duration(value, Duration::from_millis(10)).map_err(fail)?,
                "db-poll-interval" => {
                    config.db_poll_interval = duration(value, Duration::from_millis(100)).map_err(fail)?
                }
                "retry-min" => config.retry_min = duration(value, Duration::from_secs(1)).map_err(fail)?,
                "retry-max" => config.retry_max = duration(value, Duration::from_secs(1)).map_err(fail)?,
                "stop-timeout" => config.stop_timeout = duration(value, Duration::ZERO).map_err(fail)?,
                "max-parallel-runs" => config.max_parallel_runs = count(value).map_err(fail)?,
                "publish-command" => config.publish_command = command(value).map_err(fail)?,
                "listen" => config.listen = listen(value).map_err(fail)?,
                "notify-source" => config.notify_source = sources(value).map_err(fail)?,
                "transfer-source" => config.transfer_source = sources(value).map_err(fail)?,
                "transfer-max-records" => config.transfer_limits.max_records = at_least(value, 2).map_err(fail)?,
                "transfer-max-bytes" => config.transfer_limits.max_bytes = at_least(value, 512).map_err(fail)?,
                "transfer-timeout" => {
                    config.transfer_limits.timeout = duration(value, Duration::from_secs(1)).map_err(fail)?
                }
                _ => config.metrics = Some(address(value).map_err(fail)?),
            }
        }
        if config.retry_max < config.retry_min {
            return Err(value_error("retry-max", "shorter than retry-min".to_owned()));
        }
        Ok(config)
    }
}

fn duration(value: &toml::Value, min: Duration) -> Result<Duration, String> {
    let text = value.as_str().ok_or("expected a duration in quotes, e.g. \"5s\"")?;
    let parsed = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e}"))?;
    if parsed < min {
        return Err(format!("{text:?} is shorter than the least allowed, {}", humantime::format_duration(min)));
    }
    Ok(parsed)
}

fn count(value: &toml::Value) -> Result<usize, String> {
    value
        .as_integer()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| (1..=1024).contains(&n))
        .ok_or_else(|| format!("{value} is not a whole number from 1 to 1024"))
}

/// A whole number of at least `min` (a limit).
fn at_least(value: &toml::Value, min: u64) -> Result<u64, String> {
    value
        .as_integer()
        .and_then(|n| u64::try_from(n).ok())
        .filter(|&n| n >= min)
        .ok_or_else(|| format!("{value} is not a whole number of at least {min}"))
}

fn command(value: &toml::Value) -> Result<Vec<String>, String> {
    let list = value.as_array().ok_or("expected a list: [\"program\", \"argument\", …]")?;
    let words: Option<Vec<String>> = list.iter().map(|v| v.as_str().map(str::to_owned)).collect();
    match words {
        Some(words) if !words.is_empty() => Ok(words),
        _ => Err("expected a non-empty list of strings: [\"program\", \"argument\", …]".to_owned()),
    }
}

fn address(value: &toml::Value) -> Result<SocketAddr, String> {
    let text = value.as_str().ok_or("expected an address in quotes, e.g. \"127.0.0.1:9253\"")?;
    text.parse().map_err(|e| format!("{text:?}: {e}"))
}

fn listen(value: &toml::Value) -> Result<Vec<SocketAddr>, String> {
    let list = value.as_array().ok_or("expected a list of addresses: [\"127.0.0.1:53\", …]")?;
    list.iter()
        .map(|v| {
            let text = v.as_str().ok_or("expected addresses in quotes")?;
            crate::xfr::acl::parse_socket(text).map_err(|e| e.to_string())
        })
        .collect()
}

/// One address, or a list of at most one per family.
fn sources(value: &toml::Value) -> Result<Vec<IpAddr>, String> {
    let expected = "expected an address in quotes, or a list of them: \"192.0.2.1\", [\"192.0.2.1\", \"2001:db8::1\"]";
    let texts: Vec<String> = match value {
        toml::Value::String(text) => vec![text.clone()],
        toml::Value::Array(list) => {
            list.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<_>>().ok_or(expected)?
        }
        _ => return Err(expected.to_owned()),
    };
    crate::xfr::source::parse_sources(&texts)
}

impl ServeConfig {
    /// The source settings and the listen addresses, as the DNS side
    /// uses them.
    pub fn source_defaults(&self) -> crate::xfr::source::SourceDefaults {
        crate::xfr::source::SourceDefaults {
            notify: self.notify_source.clone(),
            transfer: self.transfer_source.clone(),
            listen: self.listen.iter().map(SocketAddr::ip).collect(),
        }
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
