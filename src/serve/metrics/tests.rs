//! The metrics as the service reports them, and as they are written.

use super::*;

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn has(text: &str, line: &str) -> bool {
    lines(text).contains(&line)
}

pub(super) fn sample() -> Metrics {
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
            lease: Some((true, 3)),
            offline_response_expiry: Some(1_703_000_000),
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
        "signet_zone_offline_response_expiry_timestamp_seconds{zone=\"a.test.\"} 1703000000",
        "signet_zone_signatures_expiring{zone=\"b.test.\"} 0",
        "# TYPE signet_zone_runs_total counter",
        "signet_zone_runs_total{zone=\"a.test.\",result=\"published\"} 1",
        "signet_zone_runs_total{zone=\"a.test.\",result=\"refused\"} 1",
        "signet_zone_runs_total{zone=\"a.test.\",result=\"failed\"} 0",
        "signet_zone_runs_total{zone=\"a.test.\",result=\"not-approved\"} 0",
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
        "signet_zone_lease_held{zone=\"a.test.\"} 1",
        "signet_zone_lease_fencing{zone=\"a.test.\"} 3",
    ] {
        assert!(has(&text, line), "missing {line:?} in\n{text}");
    }
    // A state not known is left out, not written as 0.
    for series in [
        "signet_zone_lease_held{zone=\"b.test.\"}",
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
