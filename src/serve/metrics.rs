//! Placeholder: the Prometheus metrics land with their own commit.

/// The service's metrics.
#[derive(Debug, Default)]
pub struct Metrics;

/// How a run ended, as a label.
#[derive(Debug, Clone, Copy)]
pub enum RunResultLabel {
    /// Published.
    Published,
    /// Refused by the gate.
    Refused,
    /// Failed.
    Failed,
}

/// One finished run.
#[derive(Debug)]
pub struct RunMetric {
    /// How it ended.
    pub result: RunResultLabel,
    /// Wall seconds.
    pub seconds: f64,
    /// Gate errors.
    pub gate_errors: u64,
    /// Gate warnings.
    pub gate_warnings: u64,
}

/// A zone's gauges.
#[derive(Debug, Default)]
pub struct ZoneGauges {
    /// Last publication.
    pub last_publication: Option<i64>,
    /// Earliest signature expiry.
    pub signature_expiry: Option<i64>,
    /// Next key event.
    pub next_key_event: Option<i64>,
    /// Published serial.
    pub published_serial: Option<u32>,
    /// Consecutive failures.
    pub consecutive_failures: u32,
    /// Signatures within the refresh margin while runs fail.
    pub signatures_expiring: bool,
}

impl Metrics {
    /// New metrics.
    pub fn new(_started_at: i64) -> Metrics {
        Metrics
    }
    /// Zones served.
    pub fn set_zones(&self, _count: usize) {}
    /// A zone left.
    pub fn remove_zone(&self, _zone: &str) {}
    /// A run ended.
    pub fn run_finished(&self, _zone: &str, _run: &RunMetric) {}
    /// A zone's gauges.
    pub fn set_zone(&self, _zone: &str, _gauges: &ZoneGauges) {}
}

/// The endpoint.
#[derive(Debug)]
pub struct MetricsServer(std::net::SocketAddr);

impl MetricsServer {
    /// Binds.
    pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<MetricsServer> {
        Ok(MetricsServer(addr))
    }
    /// Where.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.0
    }
    /// Serves.
    pub async fn run(self, _metrics: std::sync::Arc<Metrics>, _shutdown: tokio::sync::watch::Receiver<bool>) {}
}
