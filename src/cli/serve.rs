//! `signet serve`: the signer as a long-running service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use signet::db::{Database, DbLocation};
use signet::serve::{ServeOptions, serve};

/// Arguments of `signet serve`.
#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// The configuration file (TOML; read again on SIGHUP).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve Prometheus metrics at this address (GET /metrics), over the
    /// configuration file's `metrics`.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Answer DNS here, UDP and TCP (ADDR[:PORT], port 53 by default;
    /// repeatable): SOA, AXFR and IXFR of the signed zones to the clients
    /// each zone allows, NOTIFY from each zone's primaries. Over the
    /// configuration file's `listen`.
    #[arg(long, value_parser = signet::xfr::acl::parse_socket)]
    listen: Vec<SocketAddr>,
}

/// Runs the service until SIGTERM or SIGINT, on a runtime of its own
/// (each zone's run on a thread of its own).
pub(super) fn run(args: ServeArgs, db: DbLocation) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let options = ServeOptions { config: args.config, metrics: args.metrics, listen: args.listen };
    let result = runtime.block_on(async {
        let db = Database::open(&db, false).await?;
        anyhow::Ok(serve(db, options).await?)
    });
    // A run cut off by the stop timeout is not waited for: its thread ends
    // with the process, having published nothing.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    let stopped = result?;
    tracing::info!(cut_off = stopped.cut_off, "signet serve stopped");
    Ok(ExitCode::SUCCESS)
}
