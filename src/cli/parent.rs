//! `signet zone parent-agent|parent-resolver|parent-update …`: the
//! servers a zone's parent is checked and updated at.

use std::process::ExitCode;

use clap::Subcommand;
use signet::db::{Database, RemoteRole};
use signet::manage::transfers::parent_remote;

use super::Context;

/// `signet zone parent-agent …`.
#[derive(Debug, Subcommand)]
pub(super) enum AgentCommand {
    /// Add (or change) a parent agent: an authoritative server of the
    /// parent zone, asked for the zone's DS while a DS change is pending.
    Add {
        /// The zone (apex).
        name: String,
        /// Its address (ADDR[:PORT]).
        address: String,
        /// The TSIG key the queries are signed with, and its answers must be.
        #[arg(long)]
        tsig: Option<String>,
    },
    /// Remove a parent agent.
    Remove {
        /// The zone (apex).
        name: String,
        /// Its address as added.
        address: String,
    },
}

/// `signet zone parent-resolver …`.
#[derive(Debug, Subcommand)]
pub(super) enum ResolverCommand {
    /// Add a resolver: one the parent's name servers are found through
    /// (--discover; they are then asked as agents), and/or one whose
    /// validated answer (AD) to the DS query must agree (--validate).
    #[command(group(clap::ArgGroup::new("use").required(true).multiple(true).args(["discover", "validate"])))]
    Add {
        /// The zone (apex).
        name: String,
        /// Its address (ADDR[:PORT]).
        address: String,
        /// Find the parent's name servers through it.
        #[arg(long)]
        discover: bool,
        /// Its validated answer must agree with the agents'.
        #[arg(long)]
        validate: bool,
    },
    /// Remove a resolver (both uses).
    Remove {
        /// The zone (apex).
        name: String,
        /// Its address as added.
        address: String,
    },
}

/// `signet zone parent-update …`.
#[derive(Debug, Subcommand)]
pub(super) enum UpdateCommand {
    /// Add a server the zone's DS RRset is set at by RFC 2136 UPDATE
    /// whenever the DS set wanted at the parent changes.
    Add {
        /// The zone (apex).
        name: String,
        /// Its address (ADDR[:PORT]).
        address: String,
        /// The TSIG key the updates are signed with.
        #[arg(long)]
        tsig: Option<String>,
        /// The parent zone updated (default: the zone's name less its
        /// first label).
        #[arg(long)]
        parent_zone: Option<String>,
    },
    /// Remove an update server.
    Remove {
        /// The zone (apex).
        name: String,
        /// Its address as added.
        address: String,
    },
}

/// Runs `signet zone parent-agent …`.
pub(super) async fn agent(db: &Database, ctx: &Context, command: AgentCommand) -> anyhow::Result<ExitCode> {
    match command {
        AgentCommand::Add { name, address, tsig } => {
            add(db, ctx, &name, &address, &[(RemoteRole::ParentAgent, tsig.as_deref(), None)]).await
        }
        AgentCommand::Remove { name, address } => remove(db, ctx, &name, &address, &[RemoteRole::ParentAgent]).await,
    }
}

/// Runs `signet zone parent-resolver …`.
pub(super) async fn resolver(db: &Database, ctx: &Context, command: ResolverCommand) -> anyhow::Result<ExitCode> {
    let both = [RemoteRole::ParentDiscovery, RemoteRole::ParentValidator];
    match command {
        ResolverCommand::Add { name, address, discover, validate } => {
            let chosen: Vec<_> = both
                .into_iter()
                .zip([discover, validate])
                .filter(|(_, chosen)| *chosen)
                .map(|(role, _)| (role, None, None))
                .collect();
            add(db, ctx, &name, &address, &chosen).await
        }
        ResolverCommand::Remove { name, address } => remove(db, ctx, &name, &address, &both).await,
    }
}

/// Runs `signet zone parent-update …`.
pub(super) async fn update(db: &Database, ctx: &Context, command: UpdateCommand) -> anyhow::Result<ExitCode> {
    match command {
        UpdateCommand::Add { name, address, tsig, parent_zone } => {
            let role = (RemoteRole::ParentUpdate, tsig.as_deref(), parent_zone.as_deref());
            add(db, ctx, &name, &address, &[role]).await
        }
        UpdateCommand::Remove { name, address } => remove(db, ctx, &name, &address, &[RemoteRole::ParentUpdate]).await,
    }
}

/// A role, its TSIG key and its parent zone.
type RoleEntry<'a> = (RemoteRole, Option<&'a str>, Option<&'a str>);

async fn add(
    db: &Database,
    ctx: &Context,
    name: &str,
    address: &str,
    roles: &[RoleEntry<'_>],
) -> anyhow::Result<ExitCode> {
    let zone = db.zone(&super::parse_origin(name)?).await?;
    for &(role, key, parent_zone) in roles {
        let remote = parent_remote(role, address, key, parent_zone)?;
        db.add_remote(zone.id, &remote, ctx.now).await?;
        outln!("zone {}: {} {} added", zone.name, role.as_str(), remote.address.unwrap_or_default())?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn remove(
    db: &Database,
    ctx: &Context,
    name: &str,
    address: &str,
    roles: &[RemoteRole],
) -> anyhow::Result<ExitCode> {
    let zone = db.zone(&super::parse_origin(name)?).await?;
    let mut removed = false;
    for &role in roles {
        let remote = parent_remote(role, address, None, None)?;
        if db.remove_remote(zone.id, role, remote.address.as_deref(), ctx.now).await? {
            outln!("zone {}: {} {address} removed", zone.name, role.as_str())?;
            removed = true;
        }
    }
    if !removed {
        anyhow::bail!("zone {} has no {} {address}", zone.name, roles[0].as_str());
    }
    Ok(ExitCode::SUCCESS)
}
