//! `signet serve`: every managed zone of a database, signed continuously.
//!
//! One tokio task per zone ([`zone_task`]), so that a slow or failing zone
//! never delays another; each wake-up is exactly the managed run of the
//! command line. A supervisor loop here polls the input files
//! ([`watch`]) and the database (operator commands, zones added or
//! removed), wakes the zone tasks, and handles the signals:
//!
//! - SIGTERM, SIGINT: no new runs; runs under way are told to abandon
//!   before they publish, and are waited for at most `stop-timeout`;
//!   then the service returns (exit 0). A run still going then is cut off
//!   when the process exits: publication is an atomic rename and the run's
//!   database writes one transaction, so that is a run killed before
//!   publishing, which the next start redoes.
//! - SIGHUP: the configuration file is read again (a bad one is reported
//!   and the old one kept), and every zone looks at its input again.
//!
//! One service per SQLite database: a second refuses to start, naming the
//! first. A PostgreSQL state may be shared by several services, on
//! several machines: each zone is signed by the holder of its lease
//! ([`leases`]), the zones are shared out among the live services, and a
//! dead service's zones are taken by the others once its leases expire.
//!
//! Under systemd (`Type=notify`) it says when it is ready, reloading and
//! stopping, and feeds the watchdog ([`systemd`]).

pub mod config;
mod leases;
pub mod metrics;
mod parent;
mod systemd;
mod transfers;
mod watch;
mod xfr_store;
mod zone_task;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Semaphore, mpsc, watch as channel};
use tokio::task::JoinHandle;
use tokio::time::{Interval, MissedTickBehavior};

pub use config::{ConfigError, ServeConfig};
use metrics::Metrics;
use watch::InputWatch;
use zone_task::{Wake, ZoneTask};

use crate::chain::Chain;
use crate::db::{Database, DbError, ZoneWatch};
use crate::time::wall_clock;
use crate::xfr::catalog::Catalog;
use crate::xfr::server::{Listener, ServerContext};
use crate::zone::Name;

/// Why the service could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration file cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database refused (another service holds it, included).
    #[error(transparent)]
    Database(#[from] DbError),
    /// The metrics endpoint cannot listen where told.
    #[error("metrics endpoint {addr}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The signal handlers could not be installed.
    #[error("signal handling: {0}")]
    Signals(std::io::Error),
    /// A `--listen` address cannot be bound.
    #[error("cannot listen for DNS on {addr} (UDP and TCP)")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// How `signet serve` was started.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The configuration file, read at start and on SIGHUP.
    pub config: Option<PathBuf>,
    /// The Prometheus endpoint (over the configuration file's).
    pub metrics: Option<SocketAddr>,
    /// Where DNS is answered (over the configuration file's).
    pub listen: Vec<SocketAddr>,
}

/// How the service ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Zone tasks still running when `stop-timeout` was up: their runs
    /// published nothing after the stop and are cut off at exit.
    pub cut_off: usize,
}

/// What the supervisor and the zone tasks share.
#[derive(Debug)]
struct Shared {
    db: Database,
    config: RwLock<ServeConfig>,
    /// Set once on SIGTERM/SIGINT: no new runs, runs under way abandon.
    stopping: AtomicBool,
    /// Runs at once.
    runs: Semaphore,
    metrics: Arc<Metrics>,
    run_ids: AtomicU64,
    /// Threads of each run's rayon pool.
    cores: usize,
    /// What the DNS side serves: versions, remotes, TSIG keys.
    catalog: Arc<Catalog>,
    /// DNS is answered: zone tasks keep the version published in memory
    /// from the start.
    listening: bool,
    /// Turns true when the service stops.
    shutdown: channel::Receiver<bool>,
    /// The zones' leases, when services share the state (PostgreSQL):
    /// a zone is signed only while this process holds its lease.
    leases: Option<Arc<leases::Leases>>,
}

impl Shared {
    fn config(&self) -> ServeConfig {
        self.config.read().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A zone as the supervisor knows it.
#[derive(Debug)]
struct ServedZone {
    row: ZoneWatch,
    input: InputWatch,
    wakes: mpsc::UnboundedSender<Wake>,
    task: JoinHandle<()>,
    /// Its transfer in, when its input is a primary.
    inbound: Option<transfers::InboundTask>,
    /// Its check of the parent and DS submission.
    parent: parent::ParentHandle,
}

/// Serves every zone of `db` until SIGTERM or SIGINT.
pub async fn serve(db: Database, options: ServeOptions) -> Result<Stopped, ServeError> {
    let config = read_config(&options)?;
    let pid = std::process::id();
    let started = wall_clock();
    let lock = db.hold_service(pid, started).await?;
    // One login per token for the service's life, not one per run.
    let stores = crate::manage::keys::keep_key_stores_open();
    let result = serve_held(db.clone(), options, config, started).await;
    drop(stores);
    if let Err(e) = db.release_service(lock).await {
        tracing::error!("cannot release the service lock: {}", Chain(&e));
    }
    result
}

fn read_config(options: &ServeOptions) -> Result<ServeConfig, ConfigError> {
    let mut config = match &options.config {
        Some(path) => ServeConfig::read(path)?,
        None => ServeConfig::default(),
    };
    if options.metrics.is_some() {
        config.metrics = options.metrics;
    }
    if !options.listen.is_empty() {
        config.listen.clone_from(&options.listen);
    }
    Ok(config)
}

async fn serve_held(
    db: Database,
    options: ServeOptions,
    config: ServeConfig,
    started: i64,
) -> Result<Stopped, ServeError> {
    let mut signals = Signals::new().map_err(ServeError::Signals)?;
    let metrics = Arc::new(Metrics::new(started));
    let (shutdown_tx, shutdown) = channel::channel(false);
    // The endpoint stops by itself once `shutdown` says so.
    start_metrics(config.metrics, &metrics, &shutdown).await?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let catalog = Arc::new(Catalog::default());
    catalog.set_source_defaults(config.source_defaults());
    let listeners = bind_listeners(&config.listen).await?;
    let leases = db.is_postgres().then(|| Arc::new(leases::Leases::new(config.lease_terms())));
    let shared = Arc::new(Shared {
        db,
        runs: Semaphore::new(config.max_parallel_runs),
        config: RwLock::new(config),
        stopping: AtomicBool::new(false),
        metrics,
        run_ids: AtomicU64::new(0),
        cores,
        catalog: Arc::clone(&catalog),
        listening: !listeners.is_empty(),
        shutdown: shutdown.clone(),
        leases: leases.clone(),
    });
    let store = transfers::xfr_store(&shared);
    let context = Arc::new(ServerContext { journal: store.clone(), log: store, catalog });
    for listener in listeners {
        tokio::spawn(listener.run(Arc::clone(&context), shutdown.clone()));
    }
    tracing::info!(pid = std::process::id(), database = %shared.db.location(), "signet serve started");
    let (taken_tx, taken) = mpsc::unbounded_channel();
    // The keeper stops after the zone tasks: a run still going at the
    // stop keeps its lease until it ends.
    let (keeper_stop, keeper_stopped) = channel::channel(false);
    let keeper = leases.map(|leases| {
        tracing::info!(signer = %leases.name, lease = ?leases.terms().period, "zones signed by lease: the state is shared");
        tokio::spawn(leases.keep(shared.db.clone(), started, taken_tx, keeper_stopped))
    });
    let mut supervisor = Supervisor {
        shared: Arc::clone(&shared),
        zones: HashMap::new(),
        shutdown,
        keys: transfers::KeyFiles::default(),
        refreshes: 0,
        taken,
    };
    // Ready for systemd once every zone of the database has its task.
    supervisor.refresh().await;
    systemd::ready(supervisor.zones.len());
    let why = supervisor.supervise(&mut signals, &options).await;
    systemd::stopping();
    tracing::info!("{why}: stopping; no new runs, runs under way publish nothing more");
    shared.stopping.store(true, Ordering::SeqCst);
    let _ = shutdown_tx.send(true);
    let stopped = supervisor.stop(shared.config().stop_timeout).await;
    // The leases are let go of once no run of this process can use them.
    let _ = keeper_stop.send(true);
    if let Some(keeper) = keeper {
        let _ = keeper.await;
    }
    Ok(stopped)
}

async fn start_metrics(
    addr: Option<SocketAddr>,
    metrics: &Arc<Metrics>,
    shutdown: &channel::Receiver<bool>,
) -> Result<(), ServeError> {
    let Some(addr) = addr else { return Ok(()) };
    let server = metrics::MetricsServer::bind(addr).await.map_err(|source| ServeError::Metrics { addr, source })?;
    tracing::info!(address = %server.local_addr(), "metrics endpoint listening");
    tokio::spawn(server.run(Arc::clone(metrics), shutdown.clone()));
    Ok(())
}

/// Binds every `--listen` address, UDP and TCP, before anything runs:
/// an address that cannot be had stops the start.
async fn bind_listeners(addrs: &[SocketAddr]) -> Result<Vec<Listener>, ServeError> {
    let mut listeners = Vec::with_capacity(addrs.len());
    for &addr in addrs {
        let listener = Listener::bind(addr).await.map_err(|source| ServeError::Listen { addr, source })?;
        let bound = listener.local_addr().unwrap_or(addr);
        tracing::info!(address = %bound, "DNS listening (UDP and TCP): SOA, AXFR, IXFR, NOTIFY");
        listeners.push(listener);
    }
    Ok(listeners)
}

/// The signals the service answers.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

struct Supervisor {
    shared: Arc<Shared>,
    zones: HashMap<i64, ServedZone>,
    shutdown: channel::Receiver<bool>,
    keys: transfers::KeyFiles,
    /// Database polls so far.
    refreshes: u64,
    /// Zones whose lease the keeper took: they are woken for a run.
    taken: mpsc::UnboundedReceiver<i64>,
}

/// Transfer metrics are read from the database every this many polls.
const TRANSFER_METRICS_EVERY: u64 = 5;

impl Supervisor {
    /// Polls inputs and the database until a stop signal; returns which.
    async fn supervise(&mut self, signals: &mut Signals, options: &ServeOptions) -> &'static str {
        let (mut inputs, mut database) = self.intervals();
        let mut watchdog = systemd::watchdog_interval();
        loop {
            tokio::select! {
                _ = database.tick() => self.refresh().await,
                _ = inputs.tick() => self.poll_inputs(),
                Some(zone_id) = self.taken.recv() => {
                    if let Some(zone) = self.zones.get(&zone_id) {
                        let _ = zone.wakes.send(Wake::Lease);
                    }
                }
                _ = systemd::next_tick(&mut watchdog) => systemd::watchdog(),
                _ = signals.hup.recv() => {
                    systemd::reloading();
                    self.reconfigure(options);
                    (inputs, database) = self.intervals();
                    systemd::ready(self.zones.len());
                }
                _ = signals.term.recv() => return "SIGTERM",
                _ = signals.int.recv() => return "SIGINT",
            }
        }
    }

    fn intervals(&self) -> (Interval, Interval) {
        let config = self.shared.config();
        let make = |period| {
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
            interval
        };
        (make(config.poll_interval), make(config.db_poll_interval))
    }

    fn poll_inputs(&mut self) {
        for zone in self.zones.values_mut() {
            if zone.input.poll() {
                tracing::debug!(zone = %zone.row.name, input = %zone.input.path().display(), "input changed");
                let _ = zone.wakes.send(Wake::Input);
            }
        }
    }

    /// SIGHUP: reads the configuration again and has every zone look at
    /// its input.
    fn reconfigure(&mut self, options: &ServeOptions) {
        match read_config(options) {
            Ok(config) => {
                let old = self.shared.config();
                if config.metrics != old.metrics
                    || config.max_parallel_runs != old.max_parallel_runs
                    || config.listen != old.listen
                {
                    tracing::warn!("SIGHUP: metrics, listen and max-parallel-runs change only at a restart");
                }
                // The listen addresses stay those bound at the start.
                let listen = old.source_defaults().listen;
                self.shared
                    .catalog
                    .set_source_defaults(crate::xfr::source::SourceDefaults { listen, ..config.source_defaults() });
                if let Some(leases) = &self.shared.leases {
                    leases.set_terms(config.lease_terms());
                }
                *self.shared.config.write().unwrap_or_else(PoisonError::into_inner) = config;
                tracing::info!("SIGHUP: configuration read again");
            }
            Err(e) => tracing::error!("SIGHUP: the configuration is unchanged: {}", Chain(&e)),
        }
        for zone in self.zones.values() {
            let _ = zone.wakes.send(Wake::Input);
        }
    }

    /// Reads the database: starts tasks for new zones, stops those of
    /// zones removed, and wakes zones whose rows show an operator command.
    async fn refresh(&mut self) {
        let rows = match self.shared.db.zone_watch().await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!("cannot read the zones from the database: {}", Chain(&e));
                return;
            }
        };
        let ids: std::collections::HashSet<i64> = rows.iter().map(|row| row.id).collect();
        self.zones.retain(|id, zone| {
            let keep = ids.contains(id);
            if !keep {
                tracing::info!(zone = %zone.row.name, "zone left management: its task stops");
                self.shared.metrics.remove_zone(&zone.row.name);
                if let Ok(origin) = Name::from_text(&zone.row.name, None) {
                    self.shared.catalog.remove(&origin);
                }
            }
            keep
        });
        self.keys.refresh(&self.shared).await;
        // Three queries a zone: every few polls is often enough for metrics.
        self.refreshes = self.refreshes.wrapping_add(1);
        let transfer_metrics_due = self.refreshes % TRANSFER_METRICS_EVERY == 1;
        let mut remotes: HashMap<i64, Vec<crate::db::Remote>> = HashMap::new();
        match self.shared.db.all_remotes().await {
            Ok(all) => all.into_iter().for_each(|(id, remote)| remotes.entry(id).or_default().push(remote)),
            Err(e) => tracing::error!("cannot read the zones' remotes from the database: {}", Chain(&e)),
        }
        for row in rows {
            let Ok(origin) = Name::from_text(&row.name, None) else { continue };
            let zone_remotes = transfers::zone_remotes(&row.name, remotes.get(&row.id).map_or(&[], Vec::as_slice));
            transfers::configure(&self.shared, &origin, zone_remotes.clone());
            let id = row.id;
            match self.zones.get_mut(&id) {
                Some(zone) => zone.update(row),
                None => self.start_zone(row),
            }
            if let Some(zone) = self.zones.get_mut(&id) {
                let ServedZone { row, wakes, inbound, .. } = zone;
                transfers::keep_inbound(&self.shared, inbound, &origin, &row.input_path, &zone_remotes, wakes);
            }
            if transfer_metrics_due
                && zone_remotes != crate::xfr::catalog::ZoneRemotes::default()
                && let Some(zone) = self.zones.get(&id)
            {
                transfers::update_metrics(&self.shared, id, &zone.row.name).await;
            }
        }
        self.shared.metrics.set_zones(self.zones.len());
    }

    fn start_zone(&mut self, row: ZoneWatch) {
        let origin = match Name::from_text(&row.name, None) {
            Ok(origin) => origin,
            Err(e) => {
                tracing::error!(zone = %row.name, "stored zone name does not read: {}", Chain(&e));
                return;
            }
        };
        let (wakes, receiver) = mpsc::unbounded_channel();
        let task = ZoneTask::new(origin.clone(), &row, Arc::clone(&self.shared), receiver, self.shutdown.clone());
        let first = row.clone();
        let handle = tokio::spawn(task.run(first));
        tracing::info!(zone = %row.name, input = %row.input_path, "zone served");
        let input = InputWatch::new(Path::new(&row.input_path));
        let parent = parent::start(&self.shared, origin, row.id);
        self.zones.insert(row.id, ServedZone { row, input, wakes, task: handle, inbound: None, parent });
    }

    /// Stops every zone task, waiting at most `timeout` for runs under way.
    async fn stop(self, timeout: std::time::Duration) -> Stopped {
        let mut tasks: Vec<JoinHandle<()>> = self.zones.into_values().map(|zone| zone.task).collect();
        // Transfers in under way are dropped with their tasks: a copy is
        // written by rename, so an abandoned transfer changed nothing.
        let cut_off = match tokio::time::timeout(timeout, join_all(&mut tasks)).await {
            Ok(()) => 0,
            Err(_) => tasks.iter().filter(|t| !t.is_finished()).count(),
        };
        if cut_off > 0 {
            tracing::warn!("{cut_off} run(s) still going after the stop timeout: cut off unpublished");
        }
        Stopped { cut_off }
    }
}

/// Waits for every task (a panicked task counts as finished).
async fn join_all(tasks: &mut [JoinHandle<()>]) {
    for task in tasks.iter_mut() {
        let _ = task.await;
    }
}

impl ServedZone {
    /// Wakes the zone's task for what changed in its row.
    fn update(&mut self, row: ZoneWatch) {
        let old = &self.row;
        let mut wakes = Vec::new();
        if row.input_path != old.input_path {
            self.input = InputWatch::new(Path::new(&row.input_path));
            wakes.push(Wake::Reload);
        }
        if row.pending_request != old.pending_request && row.pending_request.is_some() {
            wakes.push(Wake::Request("an operator request"));
        }
        if row.review_decision != old.review_decision && row.review_decision.is_some() {
            wakes.push(Wake::Request("an operator's review decision"));
        }
        if row.policy_id != old.policy_id || row.policy_imported_at != old.policy_imported_at {
            wakes.push(Wake::Request("the policy changed"));
        }
        if row.reload_at != old.reload_at {
            wakes.push(Wake::Reload);
        }
        if (row.next_run_at, row.last_run_at) != (old.next_run_at, old.last_run_at) {
            wakes.push(Wake::Reschedule);
        }
        if row.last_run_at != old.last_run_at {
            // A run may have asked the parent for a DS change.
            self.parent.nudge.notify_one();
        }
        for wake in wakes {
            let _ = self.wakes.send(wake);
        }
        self.row = row;
    }
}
