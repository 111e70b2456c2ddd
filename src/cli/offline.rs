//! `signet ksr request|sign`, `signet skr import|show`: the offline KSK
//! (issue 27). The online signer writes requests and imports responses;
//! the KSK side, with its own database and token, signs requests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use signet::keys::KeyUri;
use signet::manage::offline::{import_response, response_cover, sign_request, write_request};
use signet::time::{format_time, parse_time};

use super::{Context, Format};

/// `signet ksr …`.
#[derive(Debug, Subcommand)]
pub(super) enum KsrCommand {
    /// Online: write a Key Signing Request (Knot DNS's format): the ZSKs
    /// the rollover machine will publish, period by period, from --from
    /// to --until; the ZSKs it will need are made now.
    Request {
        /// The zone (apex).
        zone: String,
        /// The first period's start (RFC 3339 or Unix seconds; default:
        /// now).
        #[arg(long)]
        from: Option<String>,
        /// The last period's start: the request's end.
        #[arg(long)]
        until: String,
        /// Where to write it (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Make the ZSKs here instead of the policy's keys.store.
        #[arg(long)]
        key_store: Option<String>,
    },
    /// KSK side: check a request, run the KSK's rollover machine across
    /// its periods and write the Signed Key Response.
    Sign {
        /// The zone (apex).
        zone: String,
        /// The request.
        request: PathBuf,
        /// Where to write the response (default: standard output).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Make new KSKs here instead of the policy's keys.store.
        #[arg(long)]
        key_store: Option<String>,
    },
}

/// `signet skr …`.
#[derive(Debug, Subcommand)]
pub(super) enum SkrCommand {
    /// Online: check every signature of a Signed Key Response against its
    /// KSKs and the requests written, and store it for the runs.
    Import {
        /// The zone (apex).
        zone: String,
        /// The response.
        response: PathBuf,
    },
    /// How far the imported responses reach.
    Show {
        /// The zone (apex).
        zone: String,
    },
}

/// Runs a `signet ksr` command.
pub(super) async fn run_ksr(command: KsrCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let db = ctx.open_db().await?;
    match command {
        KsrCommand::Request { zone, from, until, output, key_store } => {
            let name = super::parse_origin(&zone)?;
            let from = from.as_deref().map(parse_time).transpose()?.unwrap_or(ctx.now);
            let until = parse_time(&until)?;
            let store = key_store.as_deref().map(KeyUri::parse).transpose()?;
            let written = write_request(&db, &name, (from, until), ctx.now, store.as_ref()).await?;
            emit(output.as_deref(), &written.text)?;
            for (start, tags) in &written.periods {
                eprintln!("period from {}: ZSKs {tags:?}", format_time(*start));
            }
            eprintln!("{} periods; ZSKs made for it: {:?}", written.periods.len(), written.made);
            Ok(ExitCode::SUCCESS)
        }
        KsrCommand::Sign { zone, request, output, key_store } => {
            let name = super::parse_origin(&zone)?;
            let store = key_store.as_deref().map(KeyUri::parse).transpose()?;
            let signed = sign_request(&db, &name, &request, ctx.now, store.as_ref()).await?;
            emit(output.as_deref(), &signed.text)?;
            eprintln!(
                "{} periods signed by KSKs {:?}; {} key state transitions planned",
                signed.periods, signed.ksks, signed.transitions
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Runs a `signet skr` command.
pub(super) async fn run_skr(command: SkrCommand, ctx: &Context) -> anyhow::Result<ExitCode> {
    let db = ctx.open_db().await?;
    match command {
        SkrCommand::Import { zone, response } => {
            let name = super::parse_origin(&zone)?;
            let imported = import_response(&db, &name, &response, ctx.now).await?;
            if ctx.format == Format::Json {
                let json = serde_json::json!({
                    "periods": imported.periods, "first": imported.first, "last": imported.last,
                    "expires": imported.expires, "ksks": imported.ksks, "first_trust": imported.first_trust,
                });
                outln!("{json}")?;
                return Ok(ExitCode::SUCCESS);
            }
            outln!(
                "zone {name}: {} periods imported, from {} to {}; the last one's signatures expire {}",
                imported.periods,
                format_time(imported.first),
                format_time(imported.last),
                format_time(imported.expires)
            )?;
            if imported.first_trust {
                outln!("KSKs {:?} are trusted from now on: check them against the DS at the parent", imported.ksks)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        SkrCommand::Show { zone } => {
            let name = super::parse_origin(&zone)?;
            let row = db.zone(&name).await?;
            let policy = db.parsed_policy(row.policy_id).await?;
            let cover = response_cover(&db, row.id, policy.keys.response_warning).await?;
            match (cover, ctx.format) {
                (cover, Format::Json) => outln!("{}", serde_json::to_string(&cover)?)?,
                (None, Format::Text) => outln!("zone {name}: no signed key response imported")?,
                (Some(cover), Format::Text) => outln!(
                    "zone {name}: responses reach {} (last period), signatures until {}; warning from {}",
                    format_time(cover.last_start),
                    format_time(cover.expires),
                    format_time(cover.warn_from)
                )?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes `text` to `path` (through a file beside it, renamed into
/// place: a reader never sees half of it) or to standard output.
fn emit(path: Option<&Path>, text: &str) -> anyhow::Result<()> {
    let Some(path) = path else {
        out!("{text}")?;
        return Ok(());
    };
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).map_err(|e| anyhow::anyhow!("{}: {e}", partial.display()))?;
    std::fs::rename(&partial, path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(())
}
