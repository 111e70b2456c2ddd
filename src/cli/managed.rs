//! `signet sign ZONE`, managed: advance the zone's rollover state machine
//! to now, make the keys it asks for in the policy's key store, sign
//! with the keys the key states say, through the gate, and record the
//! run — key states, transitions, consumed observations — in one
//! transaction after the zone is published.
//!
//! Order matters for safety: the database learns of a transition only
//! once the zone that carries it is in place. A run killed before that
//! leaves the old states, which the next run takes up again later (a
//! later start of every timer: never less safe); a run killed after the
//! rename but before the commit is redone the same way.

use std::path::Path;

use anyhow::{Context as _, bail};

use super::progress::TerminalProgress;
use crate::keys::{KeyUri, PublishedKey, SigningKey, generate_key, open_key, proof::prove};
use crate::policy::Policy;
use crate::publish::{PublishError, publish};
use crate::rollover::{Action, Key, Publication, Record, RecordState, Step, advance, publication};
use crate::sign::{KeyPlan, SignSettings, SignStats, Signer, sign_zone};
use crate::store::{RunCommit, RunRecord, Store, StoredKey, ZoneRow};
use crate::verify::{Anchor, Report, VerifyOptions};
use crate::zone::{Name, read_zone_file};

/// How a managed run ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// Published.
    Published {
        /// The machine's step.
        step: Box<Step>,
        /// What the signer made.
        stats: SignStats,
        /// The gate's report.
        report: Box<Report>,
    },
    /// The gate refused: nothing published, key states unchanged.
    Refused(Box<Report>),
}

/// Signs zone `name` at `now`. `explicit_now` says the time was given
/// (`--now`), which lifts the clock check.
pub async fn sign_managed(store: &Store, name: &str, now: i64, explicit_now: bool) -> anyhow::Result<RunOutcome> {
    let zone = store.zone(name).await?;
    if !explicit_now && zone.last_run_at.is_some_and(|last| now < last) {
        bail!(
            "the clock went backwards: zone {name} was last signed at {}, and the clock says {}; \
             refusing to run (give --now to override)",
            crate::time::format_time(zone.last_run_at.unwrap_or(0)),
            crate::time::format_time(now)
        );
    }
    let pid = std::process::id();
    store.lock_zone(&zone, pid, now).await?;
    let result = run_locked(store, &zone, now).await;
    store.unlock_zone(zone.id, pid).await?;
    result
}

async fn run_locked(store: &Store, zone: &ZoneRow, now: i64) -> anyhow::Result<RunOutcome> {
    let started = std::time::Instant::now();
    let policy_row = store.policy_by_id(zone.policy_id).await?;
    let (policy, _) = Policy::from_text(&policy_row.source, Path::new(&format!("policy {}", policy_row.name)))?;
    let origin = Name::from_text(&zone.name, None).with_context(|| format!("zone name {:?}", zone.name))?;
    let pending = store.pending_observations(zone.id).await?;
    let observations: Vec<_> = pending.iter().map(|(_, o)| o.clone()).collect();
    let (step, stored) = advance_with_new_keys(store, zone, &policy, &origin, now, &observations).await?;
    let publication = publication(&step.keys);
    let opened = open_signing_keys(&stored, &step.keys, &publication)?;
    let plan = signing_plan(&publication, &opened, policy.parent.cds);
    let unsigned = read_zone_file(Path::new(&zone.input_path), &origin)?;
    let mut settings = SignSettings::from_policy(&policy, now, zone.nsec3_salt.clone());
    settings.last_serial = zone.last_serial.and_then(|s| u32::try_from(s).ok());
    let options = VerifyOptions {
        now,
        min_validity: policy.signatures.refresh,
        trust_anchor: parent_ds(&step.keys, &opened, &origin, &policy),
    };
    let output = Path::new(&zone.output_path);
    let result = publish(output, &origin, &options, &TerminalProgress::new(), move |out| {
        Ok(sign_zone(unsigned, &plan, &settings, out)?)
    });
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok((stats, report)) => {
            let removed: Vec<i64> = step
                .actions
                .iter()
                .filter_map(|a| match *a {
                    Action::RemoveKey { key } => Some(key),
                    _ => None,
                })
                .collect();
            let run = RunRecord {
                at: now,
                serial: Some(stats.serial),
                result: "published",
                rrsigs: stats.rrsigs,
                records: stats.records,
                errors: report.stats.errors,
                warnings: report.stats.warnings,
                findings: None,
                message: format!("{} RRSIGs, {} transitions", stats.rrsigs, step.transitions.len()),
                seconds,
            };
            let consumed: Vec<i64> = pending.iter().map(|(id, _)| *id).collect();
            let mut step = step;
            let due = resign_due(&policy, now);
            step.next = Some(step.next.map_or(due, |next| next.min(due)));
            let commit = RunCommit {
                keys: &step.keys,
                transitions: &step.transitions,
                removed: &removed,
                consumed: &consumed,
                next_run_at: step.next,
                run,
            };
            store.commit_run(zone.id, &commit).await?;
            Ok(RunOutcome::Published { step: Box::new(step), stats, report: Box::new(report) })
        }
        Err(PublishError::Refused(report)) => {
            let run = RunRecord {
                at: now,
                result: "refused",
                errors: report.stats.errors,
                warnings: report.stats.warnings,
                findings: serde_json::to_string(&report.findings).ok(),
                message: report.summary_line(),
                seconds,
                ..RunRecord::default()
            };
            store.record_unpublished_run(zone.id, &run).await?;
            Ok(RunOutcome::Refused(report))
        }
        Err(e) => {
            let run = RunRecord { at: now, result: "failed", message: e.to_string(), seconds, ..RunRecord::default() };
            store.record_unpublished_run(zone.id, &run).await?;
            Err(e).context(format!("nothing was written to {}", zone.output_path))
        }
    }
}

/// Runs the machine; makes the keys it asks for (recording each in the
/// database at once, so that a key made is never made twice) and runs it
/// again until it asks for none. Returns the last step, with the
/// transitions and actions of every pass, and the stored keys.
async fn advance_with_new_keys(
    store: &Store,
    zone: &ZoneRow,
    policy: &Policy,
    origin: &Name,
    now: i64,
    observations: &[crate::rollover::Observation],
) -> anyhow::Result<(Step, Vec<StoredKey>)> {
    let mut stored = store.keys(zone.id).await?;
    let mut keys: Vec<Key> = stored.iter().map(|s| s.key.clone()).collect();
    let mut step = advance(&keys, policy, now, observations);
    let mut transitions = Vec::new();
    let mut actions = Vec::new();
    for _ in 0..4 {
        let creations: Vec<Action> =
            step.actions.iter().filter(|a| matches!(a, Action::CreateKey { .. })).cloned().collect();
        transitions.append(&mut step.transitions);
        actions.extend(step.actions.drain(..).filter(|a| !matches!(a, Action::CreateKey { .. })));
        if creations.is_empty() {
            break;
        }
        keys = step.keys.clone();
        for action in creations {
            let Action::CreateKey { role, algorithm, predecessor } = action else { continue };
            let made = make_key(store, zone, policy, origin, role, algorithm, predecessor, now).await?;
            keys.push(made.key.clone());
            stored.push(made);
        }
        step = advance(&keys, policy, now, &[]);
    }
    step.transitions = transitions;
    step.actions = actions;
    Ok((step, stored))
}

#[allow(clippy::too_many_arguments)]
async fn make_key(
    store: &Store,
    zone: &ZoneRow,
    policy: &Policy,
    origin: &Name,
    role: crate::keys::Role,
    algorithm: crate::keys::Algorithm,
    predecessor: Option<i64>,
    now: i64,
) -> anyhow::Result<StoredKey> {
    let store_uri = policy.keys.store.clone().with_context(|| {
        format!("policy {}: keys.store is not set, so signet cannot make the {role} it needs", policy.name)
    })?;
    let bits = if algorithm == policy.keys.algorithm { policy.keys.bits } else { None };
    let taken: Vec<u16> = store.keys(zone.id).await?.iter().map(|k| k.key.tag).collect();
    let (signing, published) = generate_untaken(&store_uri, algorithm, bits, role, origin, now, &taken)?;
    prove(signing.as_ref(), &published)?;
    let mut key = Key::new(0, role, algorithm, published.tag, now);
    key.predecessor = predecessor;
    let uri = signing.uri().to_string();
    key.id = store.insert_key(zone.id, &uri, &published.rdata, &key, now).await?;
    tracing::info!(zone = %zone.name, role = %role, tag = published.tag, %uri, "key made");
    Ok(StoredKey { key, uri, dnskey: published.rdata })
}

/// Makes a key whose tag no other key of the zone has, as BIND does: a
/// resolver tries every key with a signature's tag, and the rollover
/// check tells keys apart by tag. A colliding key (one in 65536 per key)
/// is left unused in the store.
fn generate_untaken(
    store_uri: &KeyUri,
    algorithm: crate::keys::Algorithm,
    bits: Option<u32>,
    role: crate::keys::Role,
    origin: &Name,
    now: i64,
    taken: &[u16],
) -> anyhow::Result<(Box<dyn SigningKey>, PublishedKey)> {
    let zone = origin.to_string();
    for attempt in 0..8 {
        let suffix = if attempt == 0 { String::new() } else { format!("-{attempt}") };
        let label = format!("{}-{role}-{now}{suffix}", zone.trim_end_matches('.'));
        let signing = generate_key(store_uri, algorithm, bits, &label)?;
        let published = PublishedKey::new(signing.as_ref(), role);
        if !taken.contains(&published.tag) {
            return Ok((signing, published));
        }
        tracing::warn!(zone = %zone, tag = published.tag, "new key's tag is taken by another key of the zone; making another");
    }
    bail!("zone {zone}: eight new keys in a row had a key tag already in use")
}

/// A key the next zone uses: its DNSKEY and, if it signs, its store handle.
struct InUse {
    id: i64,
    published: PublishedKey,
    signer: Option<Box<dyn SigningKey>>,
}

/// Opens (and proves) every key that will sign; the others need only their DNSKEY.
fn open_signing_keys(stored: &[StoredKey], keys: &[Key], plan: &Publication) -> anyhow::Result<Vec<InUse>> {
    let mut in_use = Vec::new();
    for key in keys {
        let Some(row) = stored.iter().find(|s| s.key.id == key.id) else { continue };
        let algorithm = key.algorithm;
        let published = PublishedKey::from_public(algorithm, row.dnskey.get(4..).unwrap_or_default(), key.role);
        let signs = plan.key_signers.contains(&key.id) || plan.zone_signers.contains(&key.id);
        let signer = if signs {
            let signing = open_key(&KeyUri::parse(&row.uri)?)?;
            prove(signing.as_ref(), &published)?;
            Some(signing)
        } else {
            None
        };
        in_use.push(InUse { id: key.id, published, signer });
    }
    Ok(in_use)
}

/// The signing plan the key states give; CDS/CDNSKEY only if the policy
/// publishes them (`parent.cds`).
fn signing_plan<'a>(plan: &Publication, opened: &'a [InUse], publish_cds: bool) -> KeyPlan<'a> {
    let find = |id: &i64| opened.iter().find(|k| k.id == *id);
    let signer = |id: &i64| find(id).and_then(|k| k.signer.as_deref().map(|key| Signer { key, tag: k.published.tag }));
    KeyPlan {
        published: plan.dnskey.iter().filter_map(find).map(|k| k.published.clone()).collect(),
        key_signers: plan.key_signers.iter().filter_map(signer).collect(),
        zone_signers: plan.zone_signers.iter().filter_map(signer).collect(),
        cds: plan.cds.iter().filter(|_| publish_cds).filter_map(find).map(|k| k.published.clone()).collect(),
    }
}

/// The DS set the parent publishes (DS rumoured or omnipresent): the
/// gate's trust anchor. `None` before any DS is there (the zone is not
/// yet secure from the parent's side; the gate then wants a SEP key).
fn parent_ds(keys: &[Key], opened: &[InUse], origin: &Name, policy: &Policy) -> Option<Vec<Anchor>> {
    let anchors: Vec<Anchor> = keys
        .iter()
        .filter(|k| matches!(k.state(Record::Ds), RecordState::Rumoured | RecordState::Omnipresent))
        .filter_map(|k| opened.iter().find(|o| o.id == k.id))
        .filter_map(|k| k.published.ds_rdata(origin.as_ref(), policy.parent.digest.number()))
        .map(Anchor::Ds)
        .collect();
    (!anchors.is_empty()).then_some(anchors)
}

/// When the signatures just made fall due for refresh: the zone must be
/// signed again by then, whatever the keys do (the earliest expiration,
/// jitter included, less the refresh margin).
fn resign_due(policy: &Policy, now: i64) -> i64 {
    let s = &policy.signatures;
    now + s.validity.min(s.dnskey_validity) - s.jitter - s.refresh
}
