//! One zone under the service: a task that sleeps until the zone is due
//! (the machine's next transition, the signatures' refresh, a retry) or
//! is woken (its input changed, a transfer in brought a new copy, an
//! operator command landed, a reload), then does the managed run the
//! command line does ([`crate::manage::run_zone`]) with the zone in
//! memory: the unsigned input it holds (read once per change of the file,
//! or handed over by the transfer in), the version it serves as the one
//! to keep signatures from, the gate on the candidate in memory, one
//! commit, the verified version served and notified, and only then the
//! output file (through its own gate) and the transfer's copy written.
//!
//! A failing zone keeps its last good output, retries with capped
//! exponential backoff, and says loudly when the signatures it serves
//! come within the refresh margin of expiry. The run itself is CPU work:
//! it runs on a blocking thread with a rayon pool of its own, so that a
//! big zone's signing never queues a small zone's behind it.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use super::Shared;
use super::metrics::{RunMetric, RunResultLabel, ZoneGauges};
use super::watch::Stamp;
use crate::chain::Chain;
use crate::db::{DbError, Fence, ZoneRow, ZoneWatch};
use crate::manage::offline::response_cover;
use crate::manage::output::{OutputWritten, PendingOutput, restore_published, write_pending_output};
use crate::manage::review::NotApproved;
use crate::manage::run::{ChangeBasis, HeldInput, Serving};
use crate::manage::{ManageError, RunOptions, RunOutcome, file_digest, run_zone};
use crate::time::{format_duration, format_time, wall_clock};
use crate::verify::{NoProgress, SignatureMemo, VerifiedVersion};
use crate::xfr::catalog::ServedVersion;
use crate::xfr::incoming::{NewCopy, write_copy};
use crate::xfr::outgoing::apex_soa;
use crate::xfr::wire::soa_serial;
use crate::zone::serial::serial_gt;
use crate::zone::{Name, Zone};

/// Why the service looks at a zone now.
#[derive(Debug, Clone)]
pub(super) enum Wake {
    /// The input file changed and has settled.
    Input,
    /// The transfer in has a copy of the zone: read at its start, or new.
    Copy(NewCopy),
    /// An operator request or a new policy landed in the database.
    Request(&'static str),
    /// `signet zone reload`, SIGHUP, or another input file.
    Reload,
    /// The zone's schedule changed (a run from the command line).
    Reschedule,
    /// This service took the zone's lease (a shared state).
    Lease,
}

/// How long a zone waits after finding another process signing it.
const BUSY_RETRY: i64 = 2;
/// How long a zone waits when the database cannot be read.
const DB_RETRY: Duration = Duration::from_secs(5);
/// The least time between two runs of one zone that nothing asked for.
const MIN_SPACING: Duration = Duration::from_secs(1);

/// One zone's task.
#[derive(Debug)]
pub(super) struct ZoneTask {
    origin: Name,
    /// The zone as stored (absolute, lowercase): its metrics label.
    label: String,
    zone_id: i64,
    input: PathBuf,
    shared: Arc<Shared>,
    wakes: mpsc::UnboundedReceiver<Wake>,
    shutdown: watch::Receiver<bool>,
    /// The digest of the input the last run read or was started for:
    /// the published run's from the database, or the one an input
    /// change was noticed with (hashing a large input costs time, so a run
    /// does not hash it again).
    tried_digest: Option<Vec<u8>>,
    /// Runs failed in a row.
    failures: u32,
    /// When to try again after a failure or a busy zone.
    retry_at: Option<i64>,
    last_run: Option<Instant>,
    /// The version served (verified): the next run takes its signatures
    /// from it, and the journal its difference, as long as it is still
    /// the version last published (a `signet sign` from the command line
    /// publishes another).
    served: Option<Served>,
    /// The unsigned input held between runs.
    unsigned: Option<Unsigned>,
    /// Why a run is owed to a zone whose input is transferred, while it
    /// waits for its copy.
    owed: Option<String>,
    /// The fencing number of the lease the last run held the zone by (a
    /// shared state).
    ran_under: Option<i64>,
    /// Runs in a row whose version the review did not approve.
    review_stops: u32,
    /// When to look again at a zone whose version was not approved (a
    /// decision, an input change or a request wakes it sooner), and why.
    review_wait: Option<(i64, String)>,
}

/// Another service holds the zone's lease: it signs the zone.
#[derive(Debug)]
struct NotHolder;

/// The version a zone task serves.
#[derive(Debug, Clone)]
struct Served {
    zone: Arc<Zone>,
    serial: u32,
    /// The unsigned input it was signed from and the fingerprint of its
    /// keys and settings, when this task signed it: the next run may then
    /// sign only what changed.
    basis: Option<(Arc<Zone>, u64)>,
    /// The memo its gate collected, when this task's run verified it:
    /// the next run's gate memo.
    memo: Option<Arc<SignatureMemo>>,
}

/// The unsigned input a zone task holds.
#[derive(Debug)]
struct Unsigned {
    zone: Arc<Zone>,
    /// The input file's digest (None: a transferred copy, see `on_disk`).
    digest: Option<Vec<u8>>,
    /// A transferred copy that is already in its file.
    on_disk: bool,
}

impl ZoneTask {
    /// A task for the zone `watch` describes.
    pub(super) fn new(
        origin: Name,
        watch: &ZoneWatch,
        shared: Arc<Shared>,
        wakes: mpsc::UnboundedReceiver<Wake>,
        shutdown: watch::Receiver<bool>,
    ) -> ZoneTask {
        ZoneTask {
            origin,
            label: watch.name.clone(),
            zone_id: watch.id,
            input: PathBuf::from(&watch.input_path),
            shared,
            wakes,
            shutdown,
            tried_digest: None,
            failures: 0,
            retry_at: None,
            last_run: None,
            served: None,
            unsigned: None,
            owed: None,
            ran_under: None,
            review_stops: 0,
            review_wait: None,
        }
    }

    /// Serves the zone until the service stops or the zone is removed.
    pub(super) async fn run(mut self, first: ZoneWatch) {
        let mut due_now = self.startup(&first).await;
        if due_now.is_none()
            && let Ok(zone) = self.shared.db.zone(&self.origin).await
            && zone.last_serial.is_some()
            && !self.resume_published(&zone).await
        {
            due_now = Some("the output is not the version last published".to_owned());
        }
        loop {
            if self.stopping() {
                return;
            }
            let why = match due_now.take() {
                Some(why) => why,
                None => match self.wait().await {
                    Some(why) => why,
                    None => return,
                },
            };
            self.run_once(why).await;
        }
    }

    fn stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    /// What a run holds the zone by: nothing more than its lock when the
    /// service is alone on its database (`Ok(None)`), else the zone's
    /// lease, if this service holds it (`Err` if another does).
    fn lease(&self) -> Result<Option<Fence>, NotHolder> {
        match &self.shared.leases {
            None => Ok(None),
            Some(leases) => leases.fence(self.zone_id).map(Some).ok_or(NotHolder),
        }
    }

    /// What the zone needs at the service's start: a run at once if it
    /// was never published, its input or policy changed while nobody
    /// served it, or requests wait; otherwise nothing until it is due.
    async fn startup(&mut self, first: &ZoneWatch) -> Option<String> {
        let zone = match self.shared.db.zone(&self.origin).await {
            Ok(zone) => zone,
            Err(e) => return Some(format!("start (the zone did not read: {})", Chain(&e))),
        };
        // The input as it is now: a run started for it (below, or later)
        // is not started again for the same bytes, and an input the last
        // published run read needs no run at the start.
        self.tried_digest = self.digest().await;
        self.retry_at = zone.retry_at;
        self.failures = u32::try_from(self.shared.db.consecutive_failures(zone.id).await.unwrap_or(0)).unwrap_or(0);
        self.update_metrics(&zone).await;
        let output_missing = !std::path::Path::new(&zone.output_path).exists();
        let last_run = zone.last_run_at.unwrap_or(i64::MIN);
        let transferred = self.transferred();
        let why = if zone.last_serial.is_none() || output_missing {
            "first publication"
        } else if !transferred && self.tried_digest != zone.input_digest {
            "the input changed while the service was not running"
        } else if first.pending_request.is_some() {
            "an operator request waits"
        } else if first.reload_at.is_some_and(|at| at >= last_run) {
            "a reload was asked for"
        } else if first.policy_imported_at > last_run {
            "the policy was imported again"
        } else {
            return None;
        };
        if transferred {
            // Signed once the transfer in hands over its copy.
            tracing::info!(zone = %self.origin, why, "waiting for the copy of the zone from the transfer in");
            self.owed = Some(why.to_owned());
            return None;
        }
        Some(why.to_owned())
    }

    /// Whether the zone's input is a primary's, by transfer.
    fn transferred(&self) -> bool {
        self.shared.catalog.zone(self.origin.as_ref()).is_some_and(|z| !z.remotes.primaries.is_empty())
    }

    /// Takes a copy from the transfer in as the zone's input; the reason
    /// for a run, if one is due. A copy read from its file that is older
    /// than the input last published (a kill between the publication and
    /// the copy's write) is not signed: the transfer in brings the newer.
    async fn take_copy(&mut self, copy: NewCopy) -> Option<String> {
        let (zone, on_disk) = match copy {
            NewCopy::Loaded(zone) => (zone, true),
            NewCopy::Transferred(zone) => (zone, false),
        };
        let serial = apex_soa(&zone).and_then(|soa| soa_serial(soa.rdata));
        let recorded = self.shared.db.zone(&self.origin).await.ok().and_then(|z| z.input_serial);
        let recorded = recorded.and_then(|s| u32::try_from(s).ok());
        if let (Some(serial), Some(recorded)) = (serial, recorded)
            && serial_gt(recorded, serial)
        {
            tracing::warn!(zone = %self.origin, copy = serial, published = recorded,
                "the copy is older than the input of the last publication: not signed; waiting for the primary's");
            return None;
        }
        self.unsigned = Some(Unsigned { zone, digest: None, on_disk });
        match self.owed.take() {
            Some(why) => Some(why),
            None if serial != recorded => Some(format!("a transfer in brought serial {}", serial.unwrap_or_default())),
            None => None,
        }
    }

    /// Sleeps until the zone is due or something wakes it; `None` when
    /// the service stops or the zone left management.
    async fn wait(&mut self) -> Option<String> {
        loop {
            let zone = match self.shared.db.zone(&self.origin).await {
                Ok(zone) => zone,
                Err(DbError::NotFound { .. }) => return None,
                Err(e) => {
                    tracing::error!(zone = %self.origin, "cannot read the zone from the database: {}", Chain(&e));
                    tokio::select! {
                        _ = tokio::time::sleep(DB_RETRY) => continue,
                        _ = self.shutdown.changed() => return None,
                    }
                }
            };
            if self.input != std::path::Path::new(&zone.input_path) {
                // Another input (`zone set-input`): what is held is not it.
                self.input = PathBuf::from(&zone.input_path);
                self.unsigned = None;
            }
            // A zone another service holds is that service's to run when
            // due: this task sleeps until woken (its lease taken, a change).
            let (due, why) = match self.lease() {
                Ok(_) => self.due(&zone),
                Err(NotHolder) => (None, String::new()),
            };
            let sleep = due.map(|at| self.until(at));
            tokio::select! {
                _ = sleep_for(sleep) => return Some(why),
                wake = self.wakes.recv() => match wake? {
                    Wake::Reschedule => continue,
                    // A transferred zone's file is its copy, which this
                    // task writes itself.
                    Wake::Input if self.transferred() => continue,
                    Wake::Input => {
                        let digest = self.digest().await;
                        if digest != self.tried_digest {
                            self.tried_digest = digest;
                            self.unsigned = None;
                            return Some("the input changed".to_owned());
                        }
                    }
                    Wake::Copy(copy) => {
                        if let Some(why) = self.take_copy(copy).await {
                            return Some(why);
                        }
                        // No run for it (the version it makes is served):
                        // its file is written now.
                        self.write_copy().await;
                    }
                    Wake::Request(what) => return Some(what.to_owned()),
                    // A new holder publishes at once (above whatever the
                    // one before published), unless it ran under this
                    // lease already (it took the lease before its first run).
                    Wake::Lease => {
                        let fencing = self.lease().ok().flatten().map(|fence| fence.fencing);
                        if fencing.is_some() && fencing != self.ran_under {
                            return Some("this service took the zone's lease".to_owned());
                        }
                    }
                    Wake::Reload => {
                        if !self.transferred() {
                            self.unsigned = None;
                        }
                        return Some("reload".to_owned());
                    }
                },
                _ = self.shutdown.changed() => return None,
            }
        }
    }

    /// When the zone is due next, and why.
    fn due(&self, zone: &ZoneRow) -> (Option<i64>, String) {
        if let Some((at, why)) = &self.review_wait {
            return (Some(*at), why.clone());
        }
        if let Some(retry) = self.retry_at {
            let why = match self.failures {
                0 => "retry: the zone was busy".to_owned(),
                n => format!("retry after {n} failed run(s)"),
            };
            return (Some(retry), why);
        }
        let why = zone.next_run_why.clone().unwrap_or_else(|| "the key state machine".to_owned());
        (zone.next_run_at, why)
    }

    /// How long until `at` (Unix seconds), at least [`MIN_SPACING`] after
    /// the last run.
    fn until(&self, at: i64) -> Duration {
        let now_ms = wall_clock_ms();
        let wait = Duration::from_millis(u64::try_from(at.saturating_mul(1000) - now_ms).unwrap_or(0));
        let spacing = self.last_run.map_or(Duration::ZERO, |last| MIN_SPACING.saturating_sub(last.elapsed()));
        wait.max(spacing)
    }

    /// The input's digest now (`None`: it cannot be read).
    async fn digest(&self) -> Option<Vec<u8>> {
        let path = self.input.clone();
        tokio::task::spawn_blocking(move || file_digest(&path).ok()).await.ok().flatten()
    }

    /// The wait before the next retry: `retry-min`, doubled for each
    /// failure in a row, at most `retry-max`.
    fn backoff(&self) -> Duration {
        self.backoff_after(self.failures)
    }

    /// `retry-min` doubled for each of `times` in a row but the first, at
    /// most `retry-max`.
    fn backoff_after(&self, times: u32) -> Duration {
        let config = self.shared.config();
        let doublings = times.saturating_sub(1).min(30);
        config.retry_min.saturating_mul(1 << doublings).min(config.retry_max)
    }

    async fn run_once(&mut self, why: String) {
        let shared = Arc::clone(&self.shared);
        let Ok(permit) = shared.runs.acquire().await else { return };
        if self.stopping() {
            return;
        }
        if self.unsigned.is_none() && self.transferred() {
            tracing::info!(zone = %self.origin, why = %why, "waiting for the copy of the zone from the transfer in");
            self.owed = Some(why);
            return;
        }
        let Ok(lease) = self.lease() else {
            tracing::debug!(zone = %self.origin, why = %why, "no run: another service holds the zone's lease");
            return;
        };
        self.ran_under = lease.as_ref().map(|fence| fence.fencing);
        let run_id = self.shared.run_ids.fetch_add(1, Ordering::Relaxed) + 1;
        self.last_run = Some(Instant::now());
        let now = wall_clock();
        let started = Instant::now();
        tracing::info!(zone = %self.origin, run = run_id, why = %why, "run started");
        self.review_wait = None;
        let held = self.held_version().await;
        // What this run signs when it does not read the file.
        let signed_from = self.held_input();
        let result = self.execute(now, held, lease.clone()).await;
        let seconds = started.elapsed().as_secs_f64();
        let metric = |result, report: Option<&crate::verify::Report>| RunMetric {
            result,
            seconds,
            gate_errors: report.map_or(0, |r| r.stats.errors),
            gate_warnings: report.map_or(0, |r| r.stats.warnings),
        };
        let mut finished = None;
        let published = matches!(result, Ok(RunOutcome::Published(_)));
        match result {
            Ok(RunOutcome::Published(mut published)) => {
                let serial = published.stats.serial;
                // The input signed: the file the run read, or the one held.
                let signed_from = match published.input.take() {
                    Some((zone, digest)) => {
                        self.unsigned = Some(Unsigned { zone: Arc::clone(&zone), digest: Some(digest), on_disk: true });
                        Some(zone)
                    }
                    None => signed_from,
                };
                let basis = signed_from.map(|input| (input, published.fingerprint));
                let memo = published.pending_output.as_ref().and_then(|pending| pending.version.memo().cloned());
                self.served = Some(Served { zone: Arc::clone(&published.zone), serial, basis, memo });
                // Served already; the output file follows (the version
                // before is no longer held).
                match published.pending_output.take() {
                    Some(pending) => self.write_output(run_id, now, pending, lease.as_ref()).await,
                    None => self.recovered().await,
                }
                let (stats, report) = (&published.stats, &published.report);
                tracing::info!(
                    zone = %self.origin,
                    run = run_id,
                    serial,
                    rrsigs = stats.rrsigs,
                    records = stats.records,
                    transitions = published.step.transitions.len(),
                    gate_seconds = report.stats.seconds,
                    gate_rrsigs_from_memo = report.stats.rrsigs_from_memo,
                    seconds = started.elapsed().as_secs_f64(),
                    outcome = "published",
                    "zone published"
                );
                finished = Some(metric(RunResultLabel::Published, Some(report)));
                self.review_stops = 0;
                self.publish_command(serial).await;
            }
            Ok(RunOutcome::Refused(report)) => {
                finished = Some(metric(RunResultLabel::Refused, Some(&report)));
                self.failed(run_id, now, &format!("the gate refused the zone: {}", report.summary_line())).await;
            }
            Err(ManageError::NotApproved { stop, .. }) => {
                finished = Some(metric(RunResultLabel::NotApproved, None));
                self.not_approved(run_id, now, &stop).await;
            }
            Err(ManageError::Abandoned { .. }) => {
                tracing::info!(zone = %self.origin, run = run_id, outcome = "abandoned", "run abandoned on shutdown: nothing was published");
            }
            Err(ManageError::Database(DbError::Busy { pid, program, .. })) => {
                tracing::warn!(zone = %self.origin, run = run_id, "busy: {program} (pid {pid}) is signing it; trying again in {BUSY_RETRY} s");
                self.retry_at = Some(now + BUSY_RETRY);
            }
            Err(e) => {
                finished = Some(metric(RunResultLabel::Failed, None));
                let message = Chain(&e).to_string();
                self.failed(run_id, now, &message).await;
            }
        }
        // The output file is written under the same permit as the run.
        drop(permit);
        self.write_copy().await;
        // A zone removed while it ran has no metrics any more: none are
        // made anew for it.
        if let Ok(zone) = self.shared.db.zone(&self.origin).await {
            if published {
                // What the run read, whatever the input is by now.
                self.tried_digest = zone.input_digest.clone();
            }
            if let Some(run) = finished {
                self.shared.metrics.run_finished(&self.label, &run);
            }
            self.update_metrics(&zone).await;
        }
    }

    /// Runs the managed run on a blocking thread, with a rayon pool of
    /// its own, driving its database work on the service's runtime.
    async fn execute(
        &self,
        now: i64,
        previous: Option<Served>,
        lease: Option<Fence>,
    ) -> Result<RunOutcome, ManageError> {
        let shared = Arc::clone(&self.shared);
        let origin = self.origin.clone();
        let handle = tokio::runtime::Handle::current();
        let input = self.unsigned.as_ref().map(|input| (Arc::clone(&input.zone), input.digest.clone()));
        let job = move || {
            let serve = |version: &VerifiedVersion| {
                if lease_usable(&shared, lease.as_ref(), &origin, "serve the version committed") {
                    serve_version(&shared, &origin, version);
                }
            };
            let options = RunOptions {
                explicit_now: false,
                key_store: None,
                progress: &NoProgress,
                purge: true,
                abandon: Some(&shared.stopping),
                full_verify: false,
                previous: previous.as_ref().map(|served| &*served.zone),
                serving: Some(Serving {
                    input: input.as_ref().map(|(zone, digest)| HeldInput { zone, digest: digest.as_deref() }),
                    serve: &serve,
                    basis: previous
                        .as_ref()
                        .and_then(|served| served.basis.as_ref())
                        .map(|(input, fingerprint)| ChangeBasis { input, fingerprint: *fingerprint }),
                    memo: previous.as_ref().and_then(|served| served.memo.as_ref()),
                }),
                lease: lease.as_ref(),
            };
            handle.block_on(run_zone(&shared.db, &origin, now, &options))
        };
        on_run_pool(&self.shared, job).await
    }

    /// Writes the output file of the version just served, through its
    /// own gate (the version before is let go of by then); a failure
    /// keeps the old file, withdraws nothing served, and counts as a
    /// failed run.
    async fn write_output(&mut self, run_id: u64, now: i64, pending: PendingOutput, lease: Option<&Fence>) {
        if !lease_usable(&self.shared, lease, &self.origin, "write the output file") {
            return;
        }
        let started = Instant::now();
        let (shared, origin, lease) = (Arc::clone(&self.shared), self.origin.clone(), lease.cloned());
        let handle = tokio::runtime::Handle::current();
        let job =
            move || handle.block_on(write_pending_output(&shared.db, &origin, &pending, &NoProgress, lease.as_ref()));
        let failure = match on_run_pool(&self.shared, job).await {
            Ok(OutputWritten::Written) => {
                tracing::info!(zone = %self.origin, run = run_id, seconds = started.elapsed().as_secs_f64(), "output file written");
                return self.recovered().await;
            }
            Ok(OutputWritten::Superseded) => {
                return tracing::info!(zone = %self.origin, run = run_id, "output file not written: a newer version was published meanwhile");
            }
            Ok(OutputWritten::Failed(why)) => why,
            Err(e) => Chain(&e).to_string(),
        };
        self.failed(run_id, now, &failure).await;
    }

    /// At the start: the version last published, served again (with DNS
    /// answered): the output file when it is still that version (its stamp
    /// is the one recorded when it was written); otherwise that version
    /// rebuilt from the file and the journal, verified, served and
    /// written. False if neither: the zone must be signed again before
    /// anything is served. With a shared state, only the lease holder
    /// rebuilds and writes: another service serves the output if it is
    /// the version last published, and otherwise waits for the lease.
    async fn resume_published(&mut self, zone: &ZoneRow) -> bool {
        let output = PathBuf::from(&zone.output_path);
        if Stamp::of(&output).map(|s| s.to_string()) == zone.output_stamp {
            return !self.shared.listening || self.serve_output(output).await;
        }
        let Ok(lease) = self.lease() else { return true };
        let (shared, origin) = (Arc::clone(&self.shared), self.origin.clone());
        let handle = tokio::runtime::Handle::current();
        let job = move || handle.block_on(restore_published(&shared.db, &origin, wall_clock()));
        let Ok(Some(pending)) = on_run_pool(&self.shared, job).await else {
            tracing::warn!(zone = %self.origin, output = %output.display(), "the output is not the version last published (changed since, or published by an older signet), and the journal cannot rebuild it: signing before serving");
            return false;
        };
        let serial = pending.serial;
        tracing::info!(zone = %self.origin, serial, "the output was behind the version last published (stopped before its file was written): that version rebuilt from the output and the journal, and verified");
        if self.shared.listening {
            serve_version(&self.shared, &self.origin, &pending.version);
        }
        let memo = pending.version.memo().cloned();
        self.served = Some(Served { zone: Arc::clone(pending.version.zone()), serial, basis: None, memo });
        self.write_output(0, wall_clock(), pending, lease.as_ref()).await;
        true
    }

    /// Reads the published output and serves it.
    async fn serve_output(&mut self, output: PathBuf) -> bool {
        let origin = self.origin.clone();
        let read = tokio::task::spawn_blocking(move || crate::zone::read_zone_file(&output, &origin)).await;
        let Ok(Ok(read)) = read else {
            tracing::warn!(zone = %self.origin, "the published output does not read: signing before serving");
            return false;
        };
        let Some(serial) = apex_soa(&read).and_then(|soa| soa_serial(soa.rdata)) else {
            return false;
        };
        let zone = Arc::new(read);
        self.shared.catalog.publish(&self.origin, ServedVersion { zone: Arc::clone(&zone), serial });
        self.served = Some(Served { zone, serial, basis: None, memo: None });
        tracing::info!(zone = %self.origin, serial, "serving the version published before the start");
        true
    }

    /// The version served, if it is still the version last published
    /// (kept for the next run if this one publishes nothing).
    async fn held_version(&mut self) -> Option<Served> {
        let served = self.served.as_ref()?;
        let last = self.shared.db.zone(&self.origin).await.ok()?.last_serial;
        if last == Some(i64::from(served.serial)) {
            return Some(served.clone());
        }
        tracing::info!(zone = %self.origin, "another version was published since (from the command line): reading the output again");
        self.served = None;
        None
    }

    /// The unsigned input held, shared.
    fn held_input(&self) -> Option<Arc<Zone>> {
        self.unsigned.as_ref().map(|input| Arc::clone(&input.zone))
    }

    /// Writes a transferred copy held only in memory to the zone's input
    /// file, after the run (off the path to the secondaries), and records
    /// its digest if the last publication signed it.
    async fn write_copy(&mut self) {
        let Some(zone) = self.unsigned.as_ref().filter(|held| !held.on_disk).map(|held| Arc::clone(&held.zone)) else {
            return;
        };
        let (path, serial) = (self.input.clone(), apex_soa(&zone).and_then(|soa| soa_serial(soa.rdata)));
        let written_zone = Arc::clone(&zone);
        let written = tokio::task::spawn_blocking(move || {
            write_copy(&path, &written_zone).map_err(|e| Chain(&e).to_string())?;
            file_digest(&path).map_err(|e| format!("{}: {}", path.display(), Chain(&e)))
        })
        .await;
        match written {
            Ok(Ok(digest)) => {
                // A newer copy may have come meanwhile: only this one is on disk.
                if let Some(held) = self.unsigned.as_mut().filter(|held| Arc::ptr_eq(&held.zone, &zone)) {
                    held.on_disk = true;
                }
                if let Err(e) =
                    self.shared.db.record_input_written(self.zone_id, serial.unwrap_or_default(), &digest).await
                {
                    tracing::error!(zone = %self.origin, "cannot record the copy's digest: {}", Chain(&e));
                }
                self.tried_digest = Some(digest);
            }
            Ok(Err(e)) => {
                tracing::error!(zone = %self.origin, "the copy of the zone was not written (it stays in memory; a restart transfers again): {e}")
            }
            Err(e) => tracing::error!(zone = %self.origin, "the copy of the zone was not written: {e}"),
        }
    }

    async fn recovered(&mut self) {
        if self.failures > 0 {
            tracing::info!(zone = %self.origin, "published again after {} failed run(s)", self.failures);
        }
        self.failures = 0;
        if self.retry_at.take().is_some()
            && let Err(e) = self.shared.db.set_retry(self.zone_id, None).await
        {
            tracing::error!(zone = %self.origin, "cannot record the zone's recovery: {}", Chain(&e));
        }
    }

    /// A run whose verified version its review did not approve: nothing
    /// published, and not a failure: the zone waits for a decision, a
    /// change or a request, and looks again after a backoff (a version
    /// that waits or was rejected is not offered to the hook again; one
    /// whose hook timed out or crashed is).
    async fn not_approved(&mut self, run_id: u64, now: i64, stop: &NotApproved) {
        self.review_stops += 1;
        let backoff = self.backoff_after(self.review_stops);
        let again = now + i64::try_from(backoff.as_secs()).unwrap_or(i64::MAX / 2).max(1);
        let serial = stop.review.serial;
        let why = match stop.is_pending() {
            true => format!("serial {serial} waits for an operator's review"),
            false => format!("serial {serial} was not approved ({})", stop.review.verdict),
        };
        self.review_wait = Some((again, format!("{why}: looking again")));
        let (zone, verdict) = (self.origin.to_string(), stop.review.verdict.as_str());
        if stop.is_pending() {
            tracing::warn!(zone = %zone, run = run_id, serial, verdict, outcome = "held",
                "not published: {stop}; the last version stays; decide with: signet zone approve {zone} {serial} | signet zone reject {zone} {serial}");
        } else {
            tracing::warn!(zone = %zone, run = run_id, serial, verdict, outcome = "rejected",
                look_again_in = %format_duration(backoff.as_secs() as i64),
                "not published: {stop}; the last version stays; to publish it all the same: signet zone approve {zone} {serial}");
        }
        self.warn_if_expiring(now, "versions are held by their review").await;
    }

    /// Says loudly when the published signatures are within the refresh
    /// margin of expiry while nothing new is published.
    async fn warn_if_expiring(&self, now: i64, while_what: &str) {
        if let Some((expires, refresh)) = self.expiry().await
            && expires - refresh <= now
        {
            tracing::error!(
                zone = %self.origin,
                signatures_expire = %format_time(expires),
                "the published signatures expire at {} (in {}), within the refresh margin ({}), and {while_what}: \
                 validating resolvers will fail this zone then unless a version is published",
                format_time(expires),
                format_duration(expires - now),
                format_duration(refresh)
            );
        }
    }

    /// A run that published nothing: back off, and say how long the
    /// published signatures have left.
    async fn failed(&mut self, run_id: u64, now: i64, reason: &str) {
        self.failures += 1;
        let backoff = self.backoff();
        let retry = now + i64::try_from(backoff.as_secs()).unwrap_or(i64::MAX / 2).max(1);
        self.retry_at = Some(retry);
        if let Err(e) = self.shared.db.set_retry(self.zone_id, Some(retry)).await {
            tracing::error!(zone = %self.origin, "cannot record the retry time: {}", Chain(&e));
        }
        tracing::error!(
            zone = %self.origin,
            run = run_id,
            failures = self.failures,
            retry_in = %format_duration(backoff.as_secs() as i64),
            outcome = "failed",
            "run failed, the last good output stays published: {reason}"
        );
        self.warn_if_expiring(now, "runs keep failing").await;
    }

    /// The published zone's earliest signature expiry and the policy's
    /// refresh margin.
    async fn expiry(&self) -> Option<(i64, i64)> {
        let zone = self.shared.db.zone(&self.origin).await.ok()?;
        let policy = self.shared.db.parsed_policy(zone.policy_id).await.ok()?;
        Some((zone.sig_expires_at?, policy.signatures.refresh))
    }

    /// With a shared state: whether this service holds the zone's lease,
    /// and its fencing number.
    async fn lease_gauge(&self, zone_id: i64) -> Option<(bool, i64)> {
        self.shared.leases.as_ref()?;
        let fencing = self.shared.db.lease(zone_id).await.ok().flatten().map_or(0, |lease| lease.fencing);
        Some((self.lease().is_ok_and(|fence| fence.is_some()), fencing))
    }

    async fn update_metrics(&self, zone: &ZoneRow) {
        let policy = self.shared.db.parsed_policy(zone.policy_id).await.ok();
        let refresh = policy.as_ref().map_or(0, |p| p.signatures.refresh);
        let offline = match policy.filter(|p| p.keys.offline_ksk) {
            Some(p) => response_cover(&self.shared.db, zone.id, p.keys.response_warning).await.ok().flatten(),
            None => None,
        };
        let expiring = self.failures > 0 && zone.sig_expires_at.is_some_and(|at| at - refresh <= wall_clock());
        let key_event = zone.next_run_why.as_deref().filter(|why| why.contains("key")).and(zone.next_run_at);
        let gauges = ZoneGauges {
            last_publication: self.shared.db.last_publication(zone.id).await.ok().flatten(),
            signature_expiry: zone.sig_expires_at,
            next_key_event: key_event,
            published_serial: zone.last_serial.and_then(|s| u32::try_from(s).ok()),
            consecutive_failures: self.failures,
            signatures_expiring: expiring,
            lease: self.lease_gauge(zone.id).await,
            offline_response_expiry: offline.map(|cover| cover.expires),
        };
        if let Some(cover) = offline.filter(|c| wall_clock() >= c.warn_from) {
            tracing::warn!(
                zone = %self.origin,
                "offline KSK: the imported signed key responses run out at {} (last period from {}): \
                 write a request (signet ksr request), have it signed and import the response",
                format_time(cover.expires),
                format_time(cover.last_start)
            );
        }
        self.shared.metrics.set_zone(&self.label, &gauges);
    }

    /// Runs the configured `publish-command`, if any, before the zone's
    /// next run (so that it sees this version of the output), in the
    /// cleaned environment of [`crate::child`].
    async fn publish_command(&self, serial: u32) {
        let config = self.shared.config();
        let Some((program, args)) = config.publish_command.split_first() else { return };
        let output = self.shared.db.zone(&self.origin).await.map(|z| z.output_path).unwrap_or_default();
        let mut command = crate::child::command(program);
        command
            .args(args)
            .env("SIGNET_ZONE", self.origin.to_string().to_ascii_lowercase())
            .env("SIGNET_SERIAL", serial.to_string())
            .env("SIGNET_OUTPUT", &output)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let status = tokio::time::timeout(PUBLISH_COMMAND_TIMEOUT, command.status()).await;
        match status {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => tracing::warn!(zone = %self.origin, "publish-command {program} ended with {status}"),
            Ok(Err(e)) => tracing::warn!(zone = %self.origin, "publish-command {program} did not start: {}", Chain(&e)),
            Err(_) => {
                tracing::warn!(zone = %self.origin, "publish-command {program} killed after {PUBLISH_COMMAND_TIMEOUT:?}")
            }
        }
    }
}

/// How long a `publish-command` may run.
const PUBLISH_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Sleeps for `duration`, or forever when there is none.
async fn sleep_for(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Serves a version the gate passed, before its file is written: the DNS
/// side answers from it at once and the secondaries are notified.
/// Whether a run may still act on the zone by `lease` (no lease: the
/// service is alone on its database); said when it may not.
fn lease_usable(shared: &Shared, lease: Option<&Fence>, origin: &Name, what: &str) -> bool {
    let usable = match (&shared.leases, lease) {
        (Some(leases), Some(fence)) => leases.usable(fence),
        _ => true,
    };
    if !usable {
        tracing::warn!(zone = %origin, "the zone's lease was lost during the run: this service does not {what}; the holder signs a newer version");
    }
    usable
}

fn serve_version(shared: &Shared, origin: &Name, version: &VerifiedVersion) {
    let zone = Arc::clone(version.zone());
    if let Some(serial) = apex_soa(&zone).and_then(|soa| soa_serial(soa.rdata)) {
        shared.catalog.publish(origin, ServedVersion { zone, serial });
        tracing::info!(zone = %origin, serial, "version served: the secondaries are notified; the output file is written next");
    }
}

/// Runs CPU work of a zone on a blocking thread with a rayon pool of its
/// own (so that a big zone's work never queues a small zone's behind it).
async fn on_run_pool<T: Send + 'static>(
    shared: &Shared,
    job: impl FnOnce() -> Result<T, ManageError> + Send + 'static,
) -> Result<T, ManageError> {
    let cores = shared.cores;
    let pooled = move || match rayon::ThreadPoolBuilder::new().num_threads(cores).build() {
        Ok(pool) => pool.install(job),
        Err(_) => job(),
    };
    match tokio::task::spawn_blocking(pooled).await {
        Ok(result) => result,
        // A panic is a bug: the zone is treated as failing, the service
        // and the other zones go on.
        Err(e) => Err(ManageError::Argument(format!("the run stopped abnormally: {e}"))),
    }
}
