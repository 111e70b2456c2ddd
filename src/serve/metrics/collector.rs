//! The metrics written at each scrape: the service's numbers, one moment
//! of them under the lock, and the process's health.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;

use super::process::ProcessStats;
use super::{RunResultLabel, State, ZoneSeries, lock};

/// The collector registered with prometheus-client: it writes [`State`]
/// and the process's health at each scrape.
#[derive(Debug)]
pub(super) struct SignetCollector {
    started_at: i64,
    state: Arc<Mutex<State>>,
}

impl SignetCollector {
    /// The collector of a process started at `started_at` (Unix seconds).
    pub(super) fn new(started_at: i64, state: Arc<Mutex<State>>) -> SignetCollector {
        SignetCollector { started_at, state }
    }
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
        zone_gauge(
            &mut encoder,
            zones,
            "signet_zone_offline_response_expiry_timestamp_seconds",
            "Offline KSK: when the imported signed key responses run out, Unix seconds.",
            |z| z.gauges.offline_response_expiry,
        )?;
        zone_gauge(
            &mut encoder,
            zones,
            "signet_zone_lease_held",
            "Services sharing a PostgreSQL state: 1 while this service holds the zone's lease, else 0.",
            |z| z.gauges.lease.map(|(held, _)| i64::from(held)),
        )?;
        zone_gauge(
            &mut encoder,
            zones,
            "signet_zone_lease_fencing",
            "Services sharing a PostgreSQL state: the fencing number of the zone's lease.",
            |z| z.gauges.lease.map(|(_, fencing)| fencing),
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
                series.duration.encode(metric.encode_family(&labels)?)?;
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
