//! Readiness for systemd (`Type=notify`, contrib/signet.service):
//! `READY=1` once serve listens (metrics, DNS) and has started a task for
//! every zone of the database; `RELOADING=1` when SIGHUP makes it read its
//! configuration again, then `READY=1`; `STOPPING=1` when a stop signal
//! arrives; and, when systemd asks for a watchdog (`WatchdogSec=`, which
//! sets `WATCHDOG_USEC`), `WATCHDOG=1` at half that interval from the
//! supervisor's own loop, so that a supervisor that hangs is restarted.
//! Knot's `systemd.c` does the same.
//!
//! Through the `sd-notify` crate rather than by hand: the protocol is one
//! datagram to `$NOTIFY_SOCKET`, but with details the crate has right (a
//! socket in the abstract namespace, `WATCHDOG_PID`, `MONOTONIC_USEC` with
//! a reload) and needs no `unsafe` here. Without `NOTIFY_SOCKET` (not
//! started by systemd) every call does nothing. A message that cannot be
//! sent is logged, never fatal: systemd then times the start out itself.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::time::{Interval, MissedTickBehavior};

/// Tells systemd the service is up: listening, every zone's task started.
pub(super) fn ready(zones: usize) {
    let status = format!("serving {zones} zone(s)");
    send("READY=1", &[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Tells systemd a reload (SIGHUP) has begun; [`ready`] ends it.
pub(super) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send("RELOADING=1", &[NotifyState::Reloading, now]),
        Err(e) => tracing::debug!("systemd: no monotonic clock for RELOADING=1: {e}"),
    }
}

/// Tells systemd the service is stopping (SIGTERM, SIGINT).
pub(super) fn stopping() {
    send("STOPPING=1", &[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// Tells systemd the supervisor is alive (a watchdog tick).
pub(super) fn watchdog() {
    send("WATCHDOG=1", &[NotifyState::Watchdog]);
}

/// The supervisor's watchdog ticks: every half of `WATCHDOG_USEC` when
/// systemd set it for this process, none otherwise.
pub(super) fn watchdog_interval() -> Option<Interval> {
    let timeout = sd_notify::watchdog_enabled()?;
    let period = (timeout / 2).max(Duration::from_millis(10));
    tracing::info!(every = ?period, "systemd watchdog: WATCHDOG=1 every half of WatchdogSec");
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    Some(interval)
}

/// The next watchdog tick, or never when there is no watchdog.
pub(super) async fn next_tick(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn send(what: &str, states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!("systemd: cannot send {what} to NOTIFY_SOCKET: {e}");
    }
}
