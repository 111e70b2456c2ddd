//! The `signet` command line: one file per command group. Each parses its
//! arguments, calls the library and prints; no command file imports
//! another (what they share is here and in `output.rs`).
//!
//! Exit codes: 0 success; 1 the command ran and found the zone wanting
//! (verification errors, a gate refusal, a key that fails its proof); 2
//! the input could not be used (unreadable file, syntax error, bad
//! arguments, an HSM that cannot be reached).

/// `println!` that returns the write error instead of panicking: a closed
/// pipe (`signet key list | head -1`) ends the command quietly.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` that returns the write error instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod dry_run;
mod ds;
mod key;
mod offline;
mod output;
mod parent;
mod policy;
mod progress;
mod serve;
mod sign;
mod status;
mod tsig;
mod verify;
mod zone;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use signet::db::{Database, DbLocation};
use signet::zone::Name;

/// Exit code when the command could not use its input.
pub(crate) const EXIT_INPUT: u8 = 2;
/// Exit code when a safety check refused: the gate, or a key proof.
pub(crate) const EXIT_REFUSED: u8 = 1;
/// Exit code of `signet sign ZONE` when the zone's review hook (or an
/// operator) rejected the verified version, or the hook timed out or
/// crashed: nothing was published.
pub(crate) const EXIT_NOT_APPROVED: u8 = 3;
/// Exit code of `signet sign ZONE` when the verified version waits for an
/// operator's review (`signet zone approve|reject`): the hook's own 75,
/// `EX_TEMPFAIL`.
pub(crate) const EXIT_REVIEW_PENDING: u8 = signet::manage::review::EXIT_WAIT as u8;

/// signet: a DNSSEC signer that verifies every signature before it
/// publishes a zone.
#[derive(Debug, Parser)]
#[command(name = "signet", version, about, propagate_version = true)]
pub(crate) struct Cli {
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// The time to act at: RFC 3339 or Unix seconds (default: the clock).
    #[arg(long, global = true, env = "SIGNET_NOW")]
    now: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The state database: an SQLite file, or postgres://USER@HOST:PORT/DB
    /// (the password from PGPASSWORD or a password file, never the URL).
    // Read in `main`, not by the argument parser, whose errors would
    // quote a password put in the URL.
    #[arg(long, global = true, env = "SIGNET_DB", default_value = "signet.db")]
    db: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a signed zone file the way a validating resolver would.
    Verify(verify::VerifyArgs),
    /// Sign: a zone under management (`signet sign ZONE`), or a zone file
    /// with the keys given (`signet sign FILE --origin … --policy … --key …`).
    Sign(sign::SignArgs),
    /// Make the state database.
    Init,
    /// Make, list and roll keys.
    #[command(subcommand)]
    Key(key::KeyCommand),
    /// Check and import signing policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Zones under management.
    #[command(subcommand)]
    Zone(zone::ZoneCommand),
    /// TSIG keys for zone transfers and NOTIFY.
    #[command(subcommand)]
    Tsig(tsig::TsigCommand),
    /// The DS at the parent: show, and confirm seen or gone.
    #[command(subcommand)]
    Ds(ds::DsCommand),
    /// Offline KSK: write a Key Signing Request (online) or sign one (KSK
    /// side).
    #[command(subcommand)]
    Ksr(offline::KsrCommand),
    /// Offline KSK: import a Signed Key Response (online).
    #[command(subcommand)]
    Skr(offline::SkrCommand),
    /// Rehearse a policy's rollovers on a simulated clock, check at every
    /// instant that resolvers with any mix of cached records validate, and
    /// draw the timeline.
    DryRun(dry_run::DryRunArgs),
    /// Run every managed zone as a service: sign when due, when the input
    /// changes and when an operator command lands; until SIGTERM.
    Serve(serve::ServeArgs),
    /// Each zone: serials, last run, next wake-up, signature expiry, what
    /// waits for the operator, the last failure.
    Status {
        /// Only this zone.
        zone: Option<String>,
    },
}

/// Output format of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// What every command may need: the database, the time, the format.
#[derive(Debug)]
struct Context {
    db: DbLocation,
    now: i64,
    explicit_now: bool,
    format: Format,
}

impl Context {
    /// Opens the existing database.
    async fn open_db(&self) -> anyhow::Result<Database> {
        Ok(Database::open(&self.db, false).await?)
    }
}

/// Parses the command line, runs the command, prints any error once, and
/// returns the exit code.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let now = match cli.now.as_deref().map(signet::time::parse_time).transpose() {
        Ok(now) => now,
        Err(e) => {
            report_error(&anyhow::Error::new(e).context("--now"), cli.format);
            return ExitCode::from(EXIT_INPUT);
        }
    };
    if now.is_some() && matches!(cli.command, Command::Serve(_)) {
        // A service on a fixed clock would sign every run at one instant
        // and never roll a key: refused, not ignored.
        let message = "signet serve runs on the wall clock: --now (or SIGNET_NOW) is for one-off commands";
        report_error(&anyhow::anyhow!(message), cli.format);
        return ExitCode::from(EXIT_INPUT);
    }
    let db = match DbLocation::parse(&cli.db) {
        Ok(db) => db,
        Err(e) => {
            report_error(&anyhow::Error::new(e), cli.format);
            return ExitCode::from(EXIT_INPUT);
        }
    };
    let ctx = Context {
        db,
        now: now.unwrap_or_else(signet::time::wall_clock),
        explicit_now: now.is_some(),
        format: cli.format,
    };
    let result = match cli.command {
        Command::Verify(args) => verify::run(args, now, ctx.format),
        Command::Policy(command) => block_on(policy::run(command, &ctx)),
        Command::Sign(args) => block_on(sign::run(args, &ctx)),
        Command::Init => block_on(zone::init(&ctx)),
        Command::Key(command) => block_on(key::run(command, &ctx)),
        Command::Zone(command) => block_on(zone::run(command, &ctx)),
        Command::Tsig(command) => block_on(tsig::run(command, &ctx)),
        Command::Ds(command) => block_on(ds::run(command, &ctx)),
        Command::Ksr(command) => block_on(offline::run_ksr(command, &ctx)),
        Command::Skr(command) => block_on(offline::run_skr(command, &ctx)),
        Command::DryRun(args) => block_on(dry_run::run(args, ctx.format)),
        Command::Serve(args) => serve::run(args, ctx.db.clone()),
        Command::Status { zone } => block_on(status::run(zone, &ctx)),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_BROKEN_PIPE),
        Err(e) => {
            report_error(&e, ctx.format);
            ExitCode::from(EXIT_INPUT)
        }
    }
}

/// Exit code when standard output was closed under us (`… | head -1`):
/// what a shell reports for a process ended by SIGPIPE, so that a
/// pipeline under `set -o pipefail` sees the output was cut.
const EXIT_BROKEN_PIPE: u8 = 141;

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// Prints an error: the message, then each cause, joined by ": " (no
/// message repeats its source, so each says its part once). With
/// `--format json`, as one JSON object on standard output.
fn report_error(error: &anyhow::Error, format: Format) {
    let message = signet::chain::Chain(error.as_ref()).to_string();
    match format {
        Format::Text => eprintln!("signet: error: {message}"),
        Format::Json => {
            let json = serde_json::json!({"error": {"message": message, "exit_code": EXIT_INPUT}});
            let _ = outln!("{json}");
        }
    }
}

fn init_logging(cli: &Cli) {
    // A service's log is its record of what it did: runs at info.
    let quiet_level = if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" };
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => quiet_level,
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    // Colour only for a person at a terminal, never into a pipe or a file.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    // A second initialisation (in tests) is harmless; ignore its error.
    let _ = match cli.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Reads a zone name given on the command line (a relative name is taken
/// as absolute).
fn parse_origin(text: &str) -> anyhow::Result<Name> {
    Name::from_text(text, Some(Name::root().as_ref())).with_context(|| format!("zone name {text:?}"))
}

/// Policy warnings go to standard error, one line each, naming the field.
fn print_policy_warnings(file: &std::path::Path, warnings: &[signet::policy::Warning]) {
    for w in warnings {
        eprintln!("signet: warning: {}: {}: {}", file.display(), w.field, w.reason);
    }
}

/// Prints a refusal (a key failing its proof) and returns exit 1, or
/// passes any other error on.
fn refused_or(error: signet::manage::ManageError) -> anyhow::Result<ExitCode> {
    if error.is_refusal() {
        eprintln!("signet: refused: {}", signet::chain::Chain(&error));
        return Ok(ExitCode::from(EXIT_REFUSED));
    }
    if let signet::manage::ManageError::NotApproved { zone, stop } = &error {
        let serial = stop.review.serial;
        if stop.is_pending() {
            eprintln!(
                "signet: zone {zone}: {stop}: nothing published; decide with `signet zone approve {zone} {serial}` or `signet zone reject {zone} {serial}`"
            );
            return Ok(ExitCode::from(EXIT_REVIEW_PENDING));
        }
        eprintln!(
            "signet: zone {zone}: {stop}: nothing published, the last version stays (to publish it all the same: `signet zone approve {zone} {serial}`)"
        );
        return Ok(ExitCode::from(EXIT_NOT_APPROVED));
    }
    Err(error.into())
}

/// Runs the database work of a command on a single-threaded runtime (the
/// signing itself runs on rayon's threads).
fn block_on<T>(future: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(future)
}
