//! The Prometheus endpoint of `signet serve`: what a zone's runs and state
//! look like to a monitoring system, and the small HTTP server that hands
//! them out on `GET /metrics`.
//!
//! [`Metrics`] holds the numbers: the service tells it about each finished
//! run ([`Metrics::run_finished`]) and each zone's state after it
//! ([`Metrics::set_zone`]), and [`Metrics::render`] writes them in the
//! Prometheus text exposition format (version 0.0.4), together with the
//! process's own health read from `/proc` at that moment.
//! [`MetricsServer`] binds the address it is given (never one of its own)
//! and serves the text until told to stop.
//!
//! Series, per zone with the label `zone="a.test."` (the absolute,
//! lowercase name):
//!
//! | series | type | value |
//! |---|---|---|
//! | `signet_zone_last_publication_timestamp_seconds` | gauge | when the zone was last installed at its output |
//! | `signet_zone_signature_expiry_timestamp_seconds` | gauge | when the first RRSIG of the published zone expires: what to alert on |
//! | `signet_zone_signatures_expiring` | gauge | 1 while the zone's signatures are expiring (`signatures_expiring` of `signet status`), else 0 |
//! | `signet_zone_runs_total{result}` | counter | runs by `published`, `refused`, `failed`, `not-approved` |
//! | `signet_zone_run_duration_seconds` | histogram | the wall time of every run |
//! | `signet_zone_gate_findings{severity}` | gauge | the gate's `error` and `warning` findings in the last run |
//! | `signet_zone_next_key_event_timestamp_seconds` | gauge | the next key-state transition |
//! | `signet_zone_published_serial` | gauge | the SOA serial at the output |
//! | `signet_zone_consecutive_failures` | gauge | runs refused or failed since the last publication |
//! | `signet_zone_lease_held` | gauge | services sharing a PostgreSQL state: 1 while this service holds the zone's lease, else 0 |
//! | `signet_zone_lease_fencing` | gauge | services sharing a PostgreSQL state: the fencing number of the zone's lease |
//! | `signet_zone_offline_response_expiry_timestamp_seconds` | gauge | offline KSK: when the imported signed key responses run out (the last period's signatures expire): alert days ahead |
//!
//! A state the service does not know (`None` in [`ZoneGauges`]) is left
//! out, not written as 0: an alert on `expiry - time() < …` must not fire
//! on a zone never published. Process health: `signet_up` (1),
//! `signet_zones`, `signet_build_info{version}`,
//! `process_start_time_seconds`, `process_cpu_seconds_total` and
//! `process_resident_memory_bytes` (the last two only where `/proc` can be
//! read).
//!
//! The run duration is a histogram rather than a gauge of the last run:
//! runs are events, and several can fall between two scrapes (an input
//! written twice, a retry), which a gauge would show only the last of. The
//! histogram counts each of them, `rate(_sum) / rate(_count)` gives the mean
//! and the buckets show a zone slowing down. Its buckets span a small zone
//! (tens of milliseconds) to a large TLD (minutes); eleven series per zone.

//!
//! One file per concern: the model here (what the service reports, kept
//! under one lock), its encoding at each scrape (`collector`), the
//! process's own health from `/proc/self` (`process`), and the HTTP
//! endpoint (`http`).

mod collector;
mod http;
mod process;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use http::MetricsServer;

/// The `Content-Type` of [`Metrics::render`]'s text: the Prometheus text
/// exposition format, version 0.0.4, which every Prometheus-compatible
/// scraper reads (Prometheus, VictoriaMetrics, the OpenTelemetry collector,
/// `curl`).
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the run-duration buckets, in seconds (`+Inf` is added).
const DURATION_BUCKETS: [f64; 8] = [0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0];

/// The outcome of a run, as the `result` label of `signet_zone_runs_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunResultLabel {
    /// The zone passed the gate and was installed (`published`).
    Published,
    /// A safety refusal: gate findings, a key failing its proof
    /// (`refused`).
    Refused,
    /// Anything else that stopped the run: bad input, an unreachable HSM, a
    /// database error (`failed`).
    Failed,
    /// The review hook (or an operator) did not approve the verified
    /// version, or it waits for an operator (`not-approved`).
    NotApproved,
}

impl RunResultLabel {
    /// Every label value, in the order the series are written.
    const ALL: [RunResultLabel; 4] =
        [RunResultLabel::Published, RunResultLabel::Refused, RunResultLabel::Failed, RunResultLabel::NotApproved];

    /// The label value: `published`, `refused`, `failed` or `not-approved`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResultLabel::Published => "published",
            RunResultLabel::Refused => "refused",
            RunResultLabel::Failed => "failed",
            RunResultLabel::NotApproved => "not-approved",
        }
    }

    /// The index of this result in [`RunResultLabel::ALL`].
    fn index(self) -> usize {
        match self {
            RunResultLabel::Published => 0,
            RunResultLabel::Refused => 1,
            RunResultLabel::Failed => 2,
            RunResultLabel::NotApproved => 3,
        }
    }
}

/// What one finished run of a zone tells the metrics.
#[derive(Debug, Clone, Copy)]
pub struct RunMetric {
    /// How the run ended.
    pub result: RunResultLabel,
    /// Its wall time, in seconds (a negative or non-finite value counts as
    /// 0).
    pub seconds: f64,
    /// The gate's findings of severity error (0 if the gate did not run).
    pub gate_errors: u64,
    /// The gate's findings of severity warning (0 if the gate did not run).
    pub gate_warnings: u64,
}

/// A zone's state, as the service knows it after a run or a look at the
/// database. A `None` is not written at all for that zone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ZoneGauges {
    /// When the zone was last installed at its output (Unix seconds).
    pub last_publication: Option<i64>,
    /// When the first RRSIG of the published zone expires (Unix seconds).
    pub signature_expiry: Option<i64>,
    /// When the key-state machine next has something to do (Unix seconds).
    pub next_key_event: Option<i64>,
    /// The SOA serial of the published zone.
    pub published_serial: Option<u32>,
    /// Runs refused or failed since the last publication.
    pub consecutive_failures: u32,
    /// The published signatures are expiring (as `signatures_expiring` of
    /// `signet status`).
    pub signatures_expiring: bool,
    /// With a shared state: whether this service holds the zone's lease,
    /// and the lease's fencing number (who holds it: `signet status`).
    pub lease: Option<(bool, i64)>,
    /// With an offline KSK: when the imported signed key responses run
    /// out (the last period's signatures expire; Unix seconds).
    pub offline_response_expiry: Option<i64>,
}

/// Everything known about one zone.
#[derive(Debug)]
struct ZoneSeries {
    gauges: ZoneGauges,
    /// Runs per [`RunResultLabel::index`].
    runs: [u64; 4],
    /// The wall time of its runs. prometheus-client's own histogram: it
    /// keeps the buckets, sum and count and writes them in the exposition
    /// format, which the hand-written one this replaced did by hand.
    duration: Histogram,
    /// Error and warning findings of the last run; `None` before the first.
    findings: Option<(u64, u64)>,
    /// Its transfers in and out.
    transfers: TransferGauges,
}

impl Default for ZoneSeries {
    fn default() -> ZoneSeries {
        ZoneSeries {
            gauges: ZoneGauges::default(),
            runs: [0; 4],
            duration: Histogram::new(DURATION_BUCKETS),
            findings: None,
            transfers: TransferGauges::default(),
        }
    }
}

/// A run's wall time as the histogram counts it: 0 if negative or not
/// finite (a clock step, a bug), never NaN in the sum.
fn run_seconds(seconds: f64) -> f64 {
    if seconds.is_finite() && seconds > 0.0 { seconds } else { 0.0 }
}

/// A zone's transfers, as the database last said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferGauges {
    /// The serial its primaries last answered.
    pub primary_serial: Option<i64>,
    /// When its input was last transferred completely (Unix seconds).
    pub transfer_in_at: Option<i64>,
    /// The last check or transfer in failed.
    pub transfer_in_failing: bool,
    /// Per secondary (`ADDR:PORT`): the serial it last acknowledged a
    /// NOTIFY for, and the serial it last transferred.
    pub secondaries: Vec<(String, Option<i64>, Option<i64>)>,
    /// Per secondary: how many published versions it is behind the one
    /// served (`manage::status::versions_behind`), and whether the last
    /// NOTIFY to it was given up on.
    pub secondary_lag: Vec<(String, Option<i64>, bool)>,
}

/// The numbers behind the endpoint, under one lock so that a scrape sees
/// one moment and a removed zone disappears from every series at once.
#[derive(Debug, Default)]
struct State {
    zones: usize,
    per_zone: BTreeMap<String, ZoneSeries>,
}

/// or thread (one short lock); share it as `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    state: Arc<Mutex<State>>,
    registry: Registry,
}

impl Metrics {
    /// Metrics of a process started at `started_at` (Unix seconds), with no
    /// zone yet.
    pub fn new(started_at: i64) -> Metrics {
        let state = Arc::new(Mutex::new(State::default()));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector::SignetCollector::new(started_at, Arc::clone(&state))));
        Metrics { state, registry }
    }

    /// The number of zones the service manages (`signet_zones`).
    pub fn set_zones(&self, count: usize) {
        lock(&self.state).zones = count;
    }

    /// A zone left management: every series with its label goes. Call it
    /// after the zone's last run has been reported, or that report brings
    /// the zone back.
    pub fn remove_zone(&self, zone: &str) {
        lock(&self.state).per_zone.remove(zone);
    }

    /// A run of `zone` ended: counts it by result, adds its duration to the
    /// histogram and keeps its gate findings as those of the last run.
    pub fn run_finished(&self, zone: &str, run: &RunMetric) {
        let mut state = lock(&self.state);
        let series = zone_entry(&mut state, zone);
        let count = &mut series.runs[run.result.index()];
        *count = count.saturating_add(1);
        series.duration.observe(run_seconds(run.seconds));
        series.findings = Some((run.gate_errors, run.gate_warnings));
    }

    /// The zone's state now (after a run, or as read from the database).
    pub fn set_zone(&self, zone: &str, gauges: &ZoneGauges) {
        let mut state = lock(&self.state);
        zone_entry(&mut state, zone).gauges = *gauges;
    }

    /// The zone's transfers now.
    pub fn set_transfers(&self, zone: &str, transfers: TransferGauges) {
        let mut state = lock(&self.state);
        zone_entry(&mut state, zone).transfers = transfers;
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4,
    /// [`CONTENT_TYPE_TEXT`]); zones in name order.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail, nor can the collector.
        if let Err(err) = prometheus_text::encode(&mut text, &self.registry) {
            tracing::warn!(%err, "metrics: encoding failed");
        }
        text
    }
}

/// The lock, even if a thread panicked while holding it: the numbers are
/// plain counters, still worth showing.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The zone's series, made empty if the zone is new.
fn zone_entry<'s>(state: &'s mut State, zone: &str) -> &'s mut ZoneSeries {
    state.per_zone.entry(zone.to_owned()).or_default()
}
