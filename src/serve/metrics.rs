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
//! | `signet_zone_runs_total{result}` | counter | runs by `published`, `refused`, `failed` |
//! | `signet_zone_run_duration_seconds` | histogram | the wall time of every run |
//! | `signet_zone_gate_findings{severity}` | gauge | the gate's `error` and `warning` findings in the last run |
//! | `signet_zone_next_key_event_timestamp_seconds` | gauge | the next key-state transition |
//! | `signet_zone_published_serial` | gauge | the SOA serial at the output |
//! | `signet_zone_consecutive_failures` | gauge | runs refused or failed since the last publication |
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

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The `Content-Type` of [`Metrics::render`]'s text: the Prometheus text
/// exposition format, version 0.0.4, which every Prometheus-compatible
/// scraper reads (Prometheus, VictoriaMetrics, the OpenTelemetry collector,
/// `curl`).
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the run-duration buckets, in seconds (`+Inf` is added).
const DURATION_BUCKETS: [f64; 8] = [0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0];

/// The Linux clock tick of `/proc/<pid>/stat` (`USER_HZ`), fixed at 100 by
/// the kernel's user ABI on every architecture signet builds for. Reading
/// `sysconf(_SC_CLK_TCK)` would take `unsafe`; Prometheus's Go client uses
/// the same constant.
const USER_HZ: f64 = 100.0;

/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one connection may last in all, request and response; a client
/// that reads the response slower than this is cut off.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Connections served at once; one more is closed as soon as it is
/// accepted, so that a misbehaving client cannot take the file descriptors
/// the signer needs for its zones and database.
const MAX_CONNECTIONS: usize = 64;

/// After a failed `accept` (out of file descriptors, …), wait this long
/// before the next, rather than spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
}

impl RunResultLabel {
    /// Every label value, in the order the series are written.
    const ALL: [RunResultLabel; 3] = [RunResultLabel::Published, RunResultLabel::Refused, RunResultLabel::Failed];

    /// The label value: `published`, `refused` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunResultLabel::Published => "published",
            RunResultLabel::Refused => "refused",
            RunResultLabel::Failed => "failed",
        }
    }

    /// The index of this result in [`RunResultLabel::ALL`].
    fn index(self) -> usize {
        match self {
            RunResultLabel::Published => 0,
            RunResultLabel::Refused => 1,
            RunResultLabel::Failed => 2,
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
}

/// The run-duration histogram of one zone.
#[derive(Debug, Clone, Default)]
struct DurationHistogram {
    /// Runs per bucket of [`DURATION_BUCKETS`], not cumulative; the last
    /// slot is the `+Inf` bucket.
    buckets: [u64; DURATION_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

impl DurationHistogram {
    /// Counts one run of `seconds` (0 if negative or not finite).
    fn observe(&mut self, seconds: f64) {
        let seconds = if seconds.is_finite() && seconds > 0.0 { seconds } else { 0.0 };
        let slot = DURATION_BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(DURATION_BUCKETS.len());
        if let Some(bucket) = self.buckets.get_mut(slot) {
            *bucket = bucket.saturating_add(1);
        }
        self.sum += seconds;
        self.count = self.count.saturating_add(1);
    }

    /// The `(upper bound, runs in that bucket)` pairs the encoder takes.
    fn pairs(&self) -> Vec<(f64, u64)> {
        DURATION_BUCKETS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().copied())
            .collect()
    }
}

/// Everything known about one zone.
#[derive(Debug, Clone, Default)]
struct ZoneSeries {
    gauges: ZoneGauges,
    /// Runs per [`RunResultLabel::index`].
    runs: [u64; 3],
    duration: DurationHistogram,
    /// Error and warning findings of the last run; `None` before the first.
    findings: Option<(u64, u64)>,
    /// Its transfers in and out.
    transfers: TransferGauges,
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

/// The collector registered with prometheus-client: it writes [`State`]
/// and the process's health at each scrape.
#[derive(Debug)]
struct SignetCollector {
    started_at: i64,
    state: Arc<Mutex<State>>,
}

/// The metrics of a running `signet serve`. Cheap to update from any task
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
        registry.register_collector(Box::new(SignetCollector { started_at, state: Arc::clone(&state) }));
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
        series.duration.observe(run.seconds);
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

/// The label set `zone="…"`.
fn zone_labels(zone: &str) -> [(&'static str, &str); 1] {
    [("zone", zone)]
}

impl Collector for SignetCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Read /proc before taking the lock: the lock is held only to copy
        // numbers out.
        let process = ProcessStats::read();
        let state = lock(&self.state);
        let zones = &state.per_zone;

        gauge(&mut encoder, "signet_up", "1 while signet serve runs.", &1i64)?;
        gauge(&mut encoder, "signet_zones", "Zones the service manages.", &state.zones)?;
        {
            let version = [("version", env!("CARGO_PKG_VERSION"))];
            let mut metric = encoder.encode_descriptor(
                "signet_build_info",
                "The signet build, as its labels; always 1.",
                None,
                MetricType::Gauge,
            )?;
            metric.encode_family(&version)?.encode_gauge(&1i64)?;
        }
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds.",
            &self.started_at,
        )?;
        if let Some(cpu) = process.cpu_seconds {
            let mut metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent, in seconds.",
                None,
                MetricType::Counter,
            )?;
            metric.encode_counter::<NoLabelSet, _, f64>(&cpu, None)?;
        }
        if let Some(rss) = process.resident_bytes {
            gauge(&mut encoder, "process_resident_memory_bytes", "Resident memory size, in bytes.", &rss)?;
        }

        zone_gauge(
            &mut encoder,
            zones,
            "signet_zone_last_publication_timestamp_seconds",
            "When the zone was last installed at its output, Unix seconds.",
            |z| z.gauges.last_publication,
        )?;
        zone_gauge(
            &mut encoder,
            zones,
            "signet_zone_signature_expiry_timestamp_seconds",
            "When the first RRSIG of the published zone expires, Unix seconds.",
            |z| z.gauges.signature_expiry,
        )?;
        zone_gauge(
            &mut encoder,
            zones,
            "signet_zone_signatures_expiring",
            "1 while the published signatures are expiring (as signet status says), else 0.",
            |z| Some(i64::from(z.gauges.signatures_expiring)),
        )?;
        {
            let mut metric = encoder.encode_descriptor(
                "signet_zone_runs",
                "Runs of the zone, by result (published, refused, failed).",
                None,
                MetricType::Counter,
            )?;
            for (zone, series) in zones {
                for result in RunResultLabel::ALL {
                    let labels = [("zone", zone.as_str()), ("result", result.as_str())];
                    metric
                        .encode_family(&labels)?
                        .encode_counter::<NoLabelSet, _, u64>(&series.runs[result.index()], None)?;
                }
            }
        }
        {
            let mut metric = encoder.encode_descriptor(
                "signet_zone_run_duration_seconds",
                "Wall time of the zone's runs, in seconds.",
                None,
                MetricType::Histogram,
            )?;
            for (zone, series) in zones {
                let labels = zone_labels(zone);
                let histogram = &series.duration;
                metric.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
                    histogram.sum,
                    histogram.count,
                    &histogram.pairs(),
                    None,
                )?;
            }
        }
        {
            let mut metric = encoder.encode_descriptor(
                "signet_zone_gate_findings",
                "The gate's findings in the zone's last run, by severity.",
                None,
                MetricType::Gauge,
            )?;
            for (zone, series) in zones {
                if let Some((errors, warnings)) = series.findings {
                    for (severity, count) in [("error", errors), ("warning", warnings)] {
                        let labels = [("zone", zone.as_str()), ("severity", severity)];
                        metric.encode_family(&labels)?.encode_gauge(&count)?;
                    }
                }
            }
        }
        zone_gauge(
            &mut encoder,
            zones,
            "signet_zone_next_key_event_timestamp_seconds",
            "When the key-state machine next has something to do, Unix seconds.",
            |z| z.gauges.next_key_event,
        )?;
        zone_gauge(
            &mut encoder,
            zones,
            "signet_zone_published_serial",
            "The SOA serial of the published zone.",
            |z| z.gauges.published_serial.map(i64::from),
        )?;
        zone_gauge(
            &mut encoder,
            zones,
            "signet_zone_consecutive_failures",
            "Runs refused or failed since the zone was last published.",
            |z| Some(i64::from(z.gauges.consecutive_failures)),
        )?;
        encode_transfers(&mut encoder, zones)
    }
}

/// The transfer series: the primaries' serial, the last transfer in,
/// and each secondary's acknowledged and transferred serials.
fn encode_transfers(
    encoder: &mut DescriptorEncoder,
    zones: &BTreeMap<String, ZoneSeries>,
) -> Result<(), std::fmt::Error> {
    zone_gauge(
        encoder,
        zones,
        "signet_zone_primary_serial",
        "The SOA serial the zone's primaries last answered.",
        |z| z.transfers.primary_serial,
    )?;
    zone_gauge(
        encoder,
        zones,
        "signet_zone_transfer_in_timestamp_seconds",
        "When the zone's input was last transferred completely from a primary, Unix seconds.",
        |z| z.transfers.transfer_in_at,
    )?;
    zone_gauge(
        encoder,
        zones,
        "signet_zone_transfer_in_failing",
        "1 while the last check or transfer from the zone's primaries failed, else 0 (zones with primaries).",
        |z| {
            z.transfers
                .primary_serial
                .or(z.transfers.transfer_in_at)
                .map(|_| i64::from(z.transfers.transfer_in_failing))
        },
    )?;
    for (name, help, pick) in [
        (
            "signet_zone_secondary_notified_serial",
            "The serial the secondary last acknowledged a NOTIFY for.",
            (|s: &(String, Option<i64>, Option<i64>)| s.1) as fn(&(String, Option<i64>, Option<i64>)) -> Option<i64>,
        ),
        ("signet_zone_secondary_transferred_serial", "The serial the secondary last transferred.", |s| s.2),
    ] {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (zone, series) in zones {
            for secondary in &series.transfers.secondaries {
                if let Some(value) = pick(secondary) {
                    let labels = [("zone", zone.as_str()), ("secondary", secondary.0.as_str())];
                    metric.encode_family(&labels)?.encode_gauge(&value)?;
                }
            }
        }
    }
    for (name, help, pick) in [
        (
            "signet_zone_secondary_versions_behind",
            "How many published versions the secondary is behind the one served, by the serial it last transferred.",
            (|s: &(String, Option<i64>, bool)| s.1) as fn(&(String, Option<i64>, bool)) -> Option<i64>,
        ),
        (
            "signet_zone_secondary_notify_failing",
            "1 when the last NOTIFY to the secondary was given up on (refused, or no answer after every try), else 0.",
            |s| Some(i64::from(s.2)),
        ),
    ] {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (zone, series) in zones {
            for secondary in &series.transfers.secondary_lag {
                if let Some(value) = pick(secondary) {
                    let labels = [("zone", zone.as_str()), ("secondary", secondary.0.as_str())];
                    metric.encode_family(&labels)?.encode_gauge(&value)?;
                }
            }
        }
    }
    Ok(())
}

/// One unlabelled gauge.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: &impl EncodeGaugeValue,
) -> Result<(), std::fmt::Error> {
    encoder.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(value)
}

/// One gauge per zone, for the zones `value` has a value for.
fn zone_gauge(
    encoder: &mut DescriptorEncoder,
    zones: &BTreeMap<String, ZoneSeries>,
    name: &str,
    help: &str,
    value: impl Fn(&ZoneSeries) -> Option<i64>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (zone, series) in zones {
        if let Some(v) = value(series) {
            metric.encode_family(&zone_labels(zone))?.encode_gauge(&v)?;
        }
    }
    Ok(())
}

/// The process's CPU time and resident memory, from `/proc/self`.
#[derive(Debug, Default)]
struct ProcessStats {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<u64>,
}

impl ProcessStats {
    fn read() -> ProcessStats {
        ProcessStats {
            cpu_seconds: std::fs::read_to_string("/proc/self/stat").ok().and_then(|stat| cpu_seconds_from_stat(&stat)),
            resident_bytes: std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|status| resident_bytes_from_status(&status)),
        }
    }
}

/// User plus system time from the text of `/proc/<pid>/stat`: fields 14
/// (`utime`) and 15 (`stime`), in clock ticks. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted from the last
/// `)`.
fn cpu_seconds_from_stat(stat: &str) -> Option<f64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // after_comm starts with field 3 (state): utime is the 12th field.
    let mut fields = after_comm.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime) as f64 / USER_HZ)
}

/// The resident set size from the text of `/proc/<pid>/status` (`VmRSS`,
/// in kB). `statm` has the same number in pages, but the page size needs
/// `sysconf`, which would take `unsafe` (and pages are not 4 KiB on every
/// arm64 kernel).
fn resident_bytes_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut words = line["VmRSS:".len()..].split_ascii_whitespace();
    let kib: u64 = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") => kib.checked_mul(1024),
        _ => None,
    }
}

/// The HTTP endpoint: `GET /metrics` (and `HEAD`), 404 for any other path.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl MetricsServer {
    /// Binds `addr` now, so that a bad or taken address stops `signet
    /// serve` at start rather than later. Nothing is served before
    /// [`MetricsServer::run`].
    pub async fn bind(addr: SocketAddr) -> std::io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        Ok(MetricsServer { listener, local_addr })
    }

    /// The address bound (with the port the system chose, for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves `metrics` until `shutdown` becomes true (or its sender is
    /// dropped); then closes the socket and drops the connections still
    /// open. Each connection is its own task, one request each (no
    /// keep-alive), with [`HEADER_TIMEOUT`] to send the request and
    /// [`CONNECTION_TIMEOUT`] in all, and at most [`MAX_CONNECTIONS`] at
    /// once: slow or many clients cost a task each and never hold up the
    /// service.
    pub async fn run(self, metrics: Arc<Metrics>, mut shutdown: watch::Receiver<bool>) {
        let mut connections = JoinSet::new();
        if *shutdown.borrow_and_update() {
            return;
        }
        loop {
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow_and_update() {
                        break;
                    }
                }
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if connections.len() >= MAX_CONNECTIONS {
                            tracing::debug!(%peer, "metrics: too many connections, closing one");
                            drop(stream);
                        } else {
                            connections.spawn(serve_connection(stream, Arc::clone(&metrics)));
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%err, "metrics: accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        connections.shutdown().await;
    }
}

/// One connection: one request, bounded in time.
async fn serve_connection(stream: TcpStream, metrics: Arc<Metrics>) {
    let service = service_fn(move |request| {
        let metrics = Arc::clone(&metrics);
        async move { Ok::<_, Infallible>(respond(&request, &metrics)) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::debug!(%err, "metrics: connection ended with an error"),
        Err(_) => tracing::debug!("metrics: connection timed out"),
    }
}

/// The answer to one request.
fn respond(request: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    if request.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "not found; try /metrics\n");
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut response = Response::new(Full::new(Bytes::from(metrics.render())));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_TEXT));
    response
}

/// A short text answer with `status`.
fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn lines(text: &str) -> Vec<&str> {
        text.lines().collect()
    }

    fn has(text: &str, line: &str) -> bool {
        lines(text).contains(&line)
    }

    fn sample() -> Metrics {
        let metrics = Metrics::new(1_700_000_000);
        metrics.set_zones(2);
        metrics.set_zone(
            "a.test.",
            &ZoneGauges {
                last_publication: Some(1_700_000_100),
                signature_expiry: Some(1_701_000_000),
                next_key_event: Some(1_702_000_000),
                published_serial: Some(2_026_120_101),
                consecutive_failures: 1,
                signatures_expiring: true,
            },
        );
        metrics.run_finished(
            "a.test.",
            &RunMetric { result: RunResultLabel::Published, seconds: 2.5, gate_errors: 0, gate_warnings: 3 },
        );
        metrics.run_finished(
            "a.test.",
            &RunMetric { result: RunResultLabel::Refused, seconds: 0.05, gate_errors: 2, gate_warnings: 0 },
        );
        metrics.set_zone("b.test.", &ZoneGauges::default());
        metrics
    }

    #[test]
    fn render_writes_every_series_with_its_labels() {
        let text = sample().render();
        for line in [
            "# TYPE signet_up gauge",
            "signet_up 1",
            "signet_zones 2",
            "process_start_time_seconds 1700000000",
            "signet_build_info{version=\"0.1.0\"} 1",
            "signet_zone_last_publication_timestamp_seconds{zone=\"a.test.\"} 1700000100",
            "# TYPE signet_zone_signature_expiry_timestamp_seconds gauge",
            "signet_zone_signature_expiry_timestamp_seconds{zone=\"a.test.\"} 1701000000",
            "signet_zone_signatures_expiring{zone=\"a.test.\"} 1",
            "signet_zone_signatures_expiring{zone=\"b.test.\"} 0",
            "# TYPE signet_zone_runs_total counter",
            "signet_zone_runs_total{zone=\"a.test.\",result=\"published\"} 1",
            "signet_zone_runs_total{zone=\"a.test.\",result=\"refused\"} 1",
            "signet_zone_runs_total{zone=\"a.test.\",result=\"failed\"} 0",
            "signet_zone_runs_total{zone=\"b.test.\",result=\"published\"} 0",
            "# TYPE signet_zone_run_duration_seconds histogram",
            "signet_zone_run_duration_seconds_bucket{zone=\"a.test.\",le=\"0.1\"} 1",
            "signet_zone_run_duration_seconds_bucket{zone=\"a.test.\",le=\"1\"} 1",
            "signet_zone_run_duration_seconds_bucket{zone=\"a.test.\",le=\"5\"} 2",
            "signet_zone_run_duration_seconds_bucket{zone=\"a.test.\",le=\"+Inf\"} 2",
            "signet_zone_run_duration_seconds_sum{zone=\"a.test.\"} 2.55",
            "signet_zone_run_duration_seconds_count{zone=\"a.test.\"} 2",
            "signet_zone_run_duration_seconds_count{zone=\"b.test.\"} 0",
            // the findings of the last run, not a sum
            "signet_zone_gate_findings{zone=\"a.test.\",severity=\"error\"} 2",
            "signet_zone_gate_findings{zone=\"a.test.\",severity=\"warning\"} 0",
            "signet_zone_next_key_event_timestamp_seconds{zone=\"a.test.\"} 1702000000",
            "signet_zone_published_serial{zone=\"a.test.\"} 2026120101",
            "signet_zone_consecutive_failures{zone=\"a.test.\"} 1",
            "signet_zone_consecutive_failures{zone=\"b.test.\"} 0",
        ] {
            assert!(has(&text, line), "missing {line:?} in\n{text}");
        }
        // A state not known is left out, not written as 0.
        for series in [
            "signet_zone_last_publication_timestamp_seconds{zone=\"b.test.\"}",
            "signet_zone_signature_expiry_timestamp_seconds{zone=\"b.test.\"}",
            "signet_zone_next_key_event_timestamp_seconds{zone=\"b.test.\"}",
            "signet_zone_published_serial{zone=\"b.test.\"}",
            "signet_zone_gate_findings{zone=\"b.test.\"",
        ] {
            assert!(!text.contains(series), "{series:?} in\n{text}");
        }
        // Every sample line is `name{labels} value` with a number.
        for line in lines(&text).iter().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap_or_default();
            assert!(value.parse::<f64>().is_ok(), "bad sample {line:?}");
        }
    }

    #[test]
    fn process_health_comes_from_proc() {
        let text = Metrics::new(0).render();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");
            let rss = lines(&text)
                .into_iter()
                .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
                .and_then(|v| v.parse::<u64>().ok());
            assert!(rss.is_some_and(|b| b > 1 << 20), "{text}");
        }
        assert!(has(&text, "signet_zones 0"));
    }

    #[test]
    fn proc_parsing() {
        // A command name with spaces and parentheses.
        let stat = "4242 (sig) net (x)) S 1 4242 4242 0 -1 4194560 2000 0 0 0 \
                    250 75 0 0 20 0 3 0 123 456789 1234 18446744073709551615";
        assert_eq!(cpu_seconds_from_stat(stat), Some(3.25));
        assert_eq!(cpu_seconds_from_stat("4242 (x) S 1 2"), None);
        assert_eq!(cpu_seconds_from_stat(""), None);
        let status = "Name:\tsignet\nVmHWM:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t3\n";
        assert_eq!(resident_bytes_from_status(status), Some(5120 * 1024));
        assert_eq!(resident_bytes_from_status("VmRSS:\t12\n"), None);
        assert_eq!(resident_bytes_from_status("Name:\tx\n"), None);
    }

    #[test]
    fn transfer_series_carry_zone_and_secondary() {
        let metrics = Metrics::new(0);
        let transfers = TransferGauges {
            primary_serial: Some(11),
            transfer_in_at: Some(1_700_000_000),
            transfer_in_failing: true,
            secondaries: vec![("127.0.0.2:53".into(), Some(12), None)],
            secondary_lag: vec![("127.0.0.2:53".into(), Some(3), true)],
        };
        metrics.set_transfers("example.", transfers);
        let text = metrics.render();
        assert!(has(&text, r#"signet_zone_primary_serial{zone="example."} 11"#), "{text}");
        assert!(has(&text, r#"signet_zone_transfer_in_failing{zone="example."} 1"#), "{text}");
        assert!(has(&text, r#"signet_zone_transfer_in_timestamp_seconds{zone="example."} 1700000000"#), "{text}");
        let acked = r#"signet_zone_secondary_notified_serial{zone="example.",secondary="127.0.0.2:53"} 12"#;
        assert!(has(&text, acked), "{text}");
        assert!(!text.contains("signet_zone_secondary_transferred_serial{"), "no transfer yet: {text}");
        let lag = r#"signet_zone_secondary_versions_behind{zone="example.",secondary="127.0.0.2:53"} 3"#;
        assert!(has(&text, lag), "{text}");
        let failing = r#"signet_zone_secondary_notify_failing{zone="example.",secondary="127.0.0.2:53"} 1"#;
        assert!(has(&text, failing), "{text}");
    }

    #[test]
    fn a_removed_zone_leaves_every_series() {
        let metrics = sample();
        metrics.remove_zone("a.test.");
        metrics.set_zones(1);
        let text = metrics.render();
        assert!(!text.contains("a.test."), "{text}");
        assert!(has(&text, "signet_zone_consecutive_failures{zone=\"b.test.\"} 0"));
        assert!(has(&text, "signet_zones 1"));
        // Removing an unknown zone is no error.
        metrics.remove_zone("nowhere.");
    }

    #[test]
    fn odd_input_is_written_safely() {
        let metrics = Metrics::new(0);
        for seconds in [f64::NAN, -1.0, f64::INFINITY, 1e300] {
            metrics.run_finished(
                "a\"b\\c.",
                &RunMetric { result: RunResultLabel::Failed, seconds, gate_errors: u64::MAX, gate_warnings: 0 },
            );
        }
        let text = metrics.render();
        assert!(has(&text, "signet_zone_runs_total{zone=\"a\\\"b\\\\c.\",result=\"failed\"} 4"), "{text}");
        assert!(has(&text, "signet_zone_run_duration_seconds_bucket{zone=\"a\\\"b\\\\c.\",le=\"0.1\"} 3"));
    }

    /// One HTTP/1.1 request over a new connection; the whole response.
    async fn http(addr: SocketAddr, request: &str) -> String {
        let exchange = async {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.write_all(request.as_bytes()).await.expect("send request");
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.expect("read response");
            String::from_utf8(response).expect("utf-8 response")
        };
        tokio::time::timeout(Duration::from_secs(10), exchange).await.expect("response within 10 s")
    }

    fn header<'r>(response: &'r str, name: &str) -> Option<&'r str> {
        let head = response.split("\r\n\r\n").next()?;
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }

    #[tokio::test]
    async fn serves_metrics_over_http_until_shutdown() {
        let server = MetricsServer::bind("127.0.0.1:0".parse().expect("address")).await.expect("bind");
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let metrics = Arc::new(sample());
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(server.run(Arc::clone(&metrics), stopped));

        // A client that connects and sends nothing holds up no one.
        let mut idle = TcpStream::connect(addr).await.expect("connect idle");

        let response = http(addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        let content_type = header(&response, "content-type").unwrap_or_default();
        assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
        assert!(response.contains("\r\n\r\n# HELP signet_up "), "{response}");
        assert!(response.contains("\nsignet_zone_runs_total{zone=\"a.test.\",result=\"published\"} 1\n"));

        let response = http(addr, "GET /other HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
        let response = http(addr, "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 405 "), "{response}");
        assert_eq!(header(&response, "allow"), Some("GET, HEAD"));
        let response = http(addr, "HEAD /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
        assert!(response.ends_with("\r\n\r\n"), "a body for HEAD: {response}");
        // Not HTTP at all: an error answer or a closed connection, no panic.
        let response = http(addr, "\x16\x03\x01 hello\r\n\r\n").await;
        assert!(response.is_empty() || response.starts_with("HTTP/1.1 400 "), "{response}");

        // The service goes on updating while the endpoint runs.
        metrics.remove_zone("a.test.");
        let response = http(addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
        assert!(!response.contains("a.test."), "{response}");

        stop.send(true).expect("server listening");
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .expect("run() ends within 5 s of shutdown")
            .expect("run() did not panic");
        // The listener is closed, and so is the idle connection.
        assert!(TcpStream::connect(addr).await.is_err());
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), idle.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    }

    #[tokio::test]
    async fn a_dropped_sender_also_stops_the_server() {
        let server = MetricsServer::bind("127.0.0.1:0".parse().expect("address")).await.expect("bind");
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(server.run(Arc::new(Metrics::new(0)), stopped));
        drop(stop);
        tokio::time::timeout(Duration::from_secs(5), running).await.expect("run() ends").expect("no panic");
    }

    #[tokio::test]
    async fn a_taken_address_fails_at_bind() {
        let first = MetricsServer::bind("127.0.0.1:0".parse().expect("address")).await.expect("bind");
        assert!(MetricsServer::bind(first.local_addr()).await.is_err());
    }
}
