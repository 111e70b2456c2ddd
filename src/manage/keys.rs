//! The keys of a run: made when the machine asks (each recorded at once,
//! so that a key made is never made twice), opened and proven before they
//! sign, and turned into the signer's [`SigningKeys`].

use super::ManageError;
use crate::db::{Actor, Database, Event, EventKind, StoredKey, ZoneSnapshot};
use crate::keys::{Destroyed, KeyUri, PublishedKey, SigningKey, destroy_key, generate_key, open_key, proof::prove};
use crate::policy::Policy;
use crate::rollover::{Action, Key, Observation, Publication, Record, RecordState, Step, advance_within};
use crate::sign::{Signer, SigningKeys};
use crate::verify::Anchor;
use crate::zone::Name;
use crate::zone::dnssec::{Algorithm, Role};

/// Keeps the key stores the process opens logged in while the guard
/// lives: a service logs in to each PKCS#11 token once, not at every run
/// ([`crate::keys::pkcs11::KeptTokens`]).
pub fn keep_key_stores_open() -> crate::keys::pkcs11::KeptTokens {
    crate::keys::pkcs11::keep_tokens()
}

/// Where new keys are made: the policy's `keys.store`, unless the caller
/// gives another (a dry-run's throw-away key store).
pub(super) fn key_store<'a>(snapshot: &'a ZoneSnapshot, given: Option<&'a KeyUri>) -> Option<&'a KeyUri> {
    given.or(snapshot.policy.keys.store.as_ref())
}

/// What an offline KSK's response fixes for a run: stand-ins for the
/// KSKs it publishes (ids below zero, every record omnipresent: the KSK
/// side vouches for them), and the only keys whose DNSKEY may be
/// published.
#[derive(Debug, Clone, Default)]
pub(super) struct Within {
    /// The stand-ins.
    pub stand_ins: Vec<Key>,
    /// Stored keys and stand-ins whose DNSKEY the response publishes.
    pub dnskeys: Vec<i64>,
}

/// Runs the machine; makes the keys it asks for and runs it again until it
/// asks for none. Returns the last step, with the transitions and actions
/// of every pass; the snapshot's keys gain the keys made. `within`: the
/// response that fixes the DNSKEY RRset, for a zone whose KSK is offline
/// (its stand-ins are not in the step returned).
pub(super) async fn advance_with_new_keys(
    db: &Database,
    snapshot: &mut ZoneSnapshot,
    key_store: Option<&KeyUri>,
    origin: &Name,
    now: i64,
    within: Option<&Within>,
) -> Result<Step, ManageError> {
    let observations: Vec<Observation> = snapshot.pending.iter().map(|(_, o)| o.clone()).collect();
    let mut keys = machine_keys(&snapshot.keys);
    keys.extend(within.iter().flat_map(|w| w.stand_ins.iter().cloned()));
    let fixed = within.map(|w| w.dnskeys.as_slice());
    let mut step = advance_making_keys(db, snapshot, (key_store, origin), keys, now, &observations, fixed).await?;
    if within.is_some() {
        strip_stand_ins(&mut step);
    }
    Ok(step)
}

/// Runs the machine on `keys` at `now`; makes the keys it asks for
/// (recorded as made at `now`, which may be ahead of the clock when a
/// request plans them) and runs it again until it asks for none. The
/// step returned has the transitions and actions of every pass.
pub(super) async fn advance_making_keys(
    db: &Database,
    snapshot: &mut ZoneSnapshot,
    (key_store, origin): (Option<&KeyUri>, &Name),
    keys: Vec<Key>,
    now: i64,
    observations: &[Observation],
    fixed: Option<&[i64]>,
) -> Result<Step, ManageError> {
    let mut step = advance_within(&keys, &snapshot.policy, now, observations, fixed);
    let mut transitions = Vec::new();
    let mut actions = Vec::new();
    for _ in 0..4 {
        let (creations, rest): (Vec<Action>, Vec<Action>) =
            step.actions.drain(..).partition(|a| matches!(a, Action::CreateKey { .. }));
        transitions.append(&mut step.transitions);
        actions.extend(rest);
        if creations.is_empty() {
            break;
        }
        let mut keys = step.keys.clone();
        for action in creations {
            let Action::CreateKey { role, algorithm, predecessor } = action else { continue };
            let wanted = NewKey { role, algorithm, predecessor };
            let made = make_key(db, snapshot, key_store, origin, &wanted, now).await?;
            keys.push(made.key.clone());
            snapshot.keys.push(made);
        }
        step = advance_within(&keys, &snapshot.policy, now, &[], fixed);
    }
    step.transitions = transitions;
    step.actions = actions;
    Ok(step)
}

/// Takes the stand-ins of offline KSKs (ids below zero) out of a step.
pub(super) fn strip_stand_ins(step: &mut Step) {
    step.keys.retain(|k| k.id >= 0);
    step.transitions.retain(|t| t.key >= 0);
    step.waits.retain(|w| w.key >= 0);
    step.actions.retain(|a| match a {
        Action::SubmitDs { key } | Action::RetractDs { key } | Action::RemoveKey { key } => *key >= 0,
        Action::CreateKey { .. } => true,
    });
}

/// The machine's view of stored keys.
pub(super) fn machine_keys(stored: &[StoredKey]) -> Vec<Key> {
    stored.iter().map(|s| s.key.clone()).collect()
}

/// A key the machine asked for.
pub(super) struct NewKey {
    pub role: Role,
    pub algorithm: Algorithm,
    pub predecessor: Option<i64>,
}

pub(super) async fn make_key(
    db: &Database,
    snapshot: &ZoneSnapshot,
    key_store: Option<&KeyUri>,
    origin: &Name,
    wanted: &NewKey,
    now: i64,
) -> Result<StoredKey, ManageError> {
    let zone = &snapshot.zone.name;
    let policy = &snapshot.policy;
    let key_store = key_store.ok_or_else(|| ManageError::NoKeyStore {
        zone: zone.clone(),
        policy: policy.name.clone(),
        role: wanted.role,
    })?;
    let bits = if wanted.algorithm == policy.keys.algorithm { policy.keys.bits } else { None };
    let taken: Vec<u16> = snapshot.keys.iter().map(|k| k.key.tag).collect();
    let (signing, published) = generate_untaken(key_store, wanted, bits, origin, now, &taken)?;
    prove(signing.as_ref(), &published).map_err(ManageError::key(zone))?;
    let mut key = Key::new(0, wanted.role, wanted.algorithm, published.tag, now);
    key.predecessor = wanted.predecessor;
    let uri = signing.uri().to_string();
    key.id = db.insert_key(snapshot.zone.id, &uri, &published.rdata, &key, now, snapshot.fence.as_ref()).await?;
    tracing::info!(zone = %zone, role = %wanted.role, tag = published.tag, %uri, "key made");
    Ok(StoredKey { key, uri, dnskey: published.rdata })
}

/// Makes a key whose tag no other key of the zone has, as BIND does: a
/// resolver tries every key with a signature's tag, and the rollover
/// check tells keys apart by tag. A colliding key (one in 65536 per key)
/// is left unused in the store.
fn generate_untaken(
    key_store: &KeyUri,
    wanted: &NewKey,
    bits: Option<u32>,
    origin: &Name,
    now: i64,
    taken: &[u16],
) -> Result<(Box<dyn SigningKey>, PublishedKey), ManageError> {
    let zone = origin.to_string();
    for attempt in 0..8 {
        let suffix = if attempt == 0 { String::new() } else { format!("-{attempt}") };
        let label = format!("{}-{}-{now}{suffix}", zone.trim_end_matches('.'), wanted.role);
        let signing = generate_key(key_store, wanted.algorithm, bits, &label).map_err(ManageError::key(&zone))?;
        let published = PublishedKey::new(signing.as_ref(), wanted.role);
        if !taken.contains(&published.tag) {
            return Ok((signing, published));
        }
        tracing::warn!(zone = %zone, tag = published.tag, "new key's tag is taken by another key of the zone; making another");
    }
    Err(ManageError::TagCollisions { zone })
}

/// A key the next zone uses: its DNSKEY and, if it signs, its key store handle.
pub(super) struct InUse {
    id: i64,
    published: PublishedKey,
    signer: Option<Box<dyn SigningKey>>,
}

/// Opens (and proves) every key that will sign; the others need only
/// their DNSKEY.
pub(super) fn open_signing_keys(
    zone: &str,
    stored: &[StoredKey],
    keys: &[Key],
    publication: &Publication,
) -> Result<Vec<InUse>, ManageError> {
    let mut in_use = Vec::new();
    for key in keys {
        let Some(row) = stored.iter().find(|s| s.key.id == key.id) else { continue };
        let signs = publication.key_signers.contains(&key.id) || publication.zone_signers.contains(&key.id);
        let signer = if signs { Some(open_proven(zone, row)?) } else { None };
        in_use.push(InUse { id: key.id, published: stored_public(row), signer });
    }
    Ok(in_use)
}

/// A stored key's DNSKEY, as the signer publishes it.
pub(super) fn stored_public(row: &StoredKey) -> PublishedKey {
    PublishedKey::from_public(row.key.algorithm, row.dnskey.get(4..).unwrap_or_default(), row.key.role)
}

/// Opens a stored key in its store and proves it against its DNSKEY.
pub(super) fn open_proven(zone: &str, row: &StoredKey) -> Result<Box<dyn SigningKey>, ManageError> {
    let uri = KeyUri::parse(&row.uri).map_err(ManageError::key(zone))?;
    let signing = open_key(&uri).map_err(ManageError::key(zone))?;
    prove(signing.as_ref(), &stored_public(row)).map_err(ManageError::key(zone))?;
    Ok(signing)
}

/// The signer's keys as the key states give them; CDS/CDNSKEY only if the
/// policy publishes them (`parent.cds`). The zone goes out unsigned only
/// when no DNSKEY is published by intent (a policy going insecure); any
/// other zone without keys is the signer's error, not an unsigned zone.
pub(super) fn signing_keys<'a>(publication: &Publication, opened: &'a [InUse], policy: &Policy) -> SigningKeys<'a> {
    let publish_cds = policy.parent.cds;
    let find = |id: &i64| opened.iter().find(|k| k.id == *id);
    let signer = |id: &i64| find(id).and_then(|k| k.signer.as_deref().map(|key| Signer { key, tag: k.published.tag }));
    SigningKeys {
        published: publication.dnskey.iter().filter_map(find).map(|k| k.published.clone()).collect(),
        key_signers: publication.key_signers.iter().filter_map(signer).collect(),
        zone_signers: publication.zone_signers.iter().filter_map(signer).collect(),
        cds: publication.cds.iter().filter(|_| publish_cds).filter_map(find).map(|k| k.published.clone()).collect(),
        cds_delete: publication.cds_delete && publish_cds,
        unsigned: policy.insecure && publication.dnskey.is_empty(),
        presigned: None,
    }
}

/// The DS set the parent publishes (DS rumoured or omnipresent): the
/// gate's trust anchor. `None` before any DS is there (the zone is not
/// yet secure from the parent's side; the gate then wants a SEP key).
pub(super) fn parent_ds(keys: &[Key], opened: &[InUse], origin: &Name, policy: &Policy) -> Option<Vec<Anchor>> {
    let anchors: Vec<Anchor> = keys
        .iter()
        .filter(|k| matches!(k.state(Record::Ds), RecordState::Rumoured | RecordState::Omnipresent))
        .filter_map(|k| opened.iter().find(|o| o.id == k.id))
        .filter_map(|k| k.published.ds_rdata(origin.as_ref(), policy.parent.digest.number()))
        .map(Anchor::Ds)
        .collect();
    (!anchors.is_empty()).then_some(anchors)
}

/// Destroys the material of the zone's keys removed more than the
/// policy's `keys.purge-after` ago (never with 0), each with an audit
/// event. Removed keys are hidden everywhere: no record state needs them.
/// A key that cannot be destroyed now is left for a later run.
pub(super) async fn purge_removed_keys(db: &Database, snapshot: &ZoneSnapshot, now: i64) -> Result<(), ManageError> {
    let purge_after = snapshot.policy.keys.purge_after;
    if purge_after == 0 {
        return Ok(());
    }
    let zone = &snapshot.zone;
    for (id, uri) in db.purgeable_keys(zone.id, now - purge_after).await? {
        let destroyed =
            KeyUri::parse(&uri).and_then(|uri| destroy_key(&uri.resolved_against(&super::run::database_dir(db))));
        let why = match destroyed {
            Ok(Destroyed::Now) => format!("key material destroyed in its store ({uri})"),
            Ok(Destroyed::AlreadyGone) => format!("key material was already gone from its store ({uri})"),
            Err(e) => {
                tracing::warn!(zone = %zone.name, key = id, "cannot destroy a removed key yet: {}", crate::chain::Chain(&e));
                continue;
            }
        };
        tracing::info!(zone = %zone.name, key = id, "{why}");
        db.mark_purged(zone.id, id, &Event::note(now, Actor::Machine, EventKind::KeyPurged, Some(id), why)).await?;
    }
    Ok(())
}

/// One key given to the one-shot signer: its replicas (the same key in
/// several stores) and its role.
#[derive(Debug)]
pub struct GivenKey {
    /// The key in each key store; the first signs.
    pub replicas: Vec<KeyUri>,
    /// What it does.
    pub role: Role,
}

/// A given key, opened and proven.
#[derive(Debug)]
pub struct OpenedKey {
    /// The key in each key store; the first signs.
    pub replicas: Vec<Box<dyn SigningKey>>,
    /// What it does.
    pub role: Role,
    /// Its DNSKEY.
    pub published: PublishedKey,
}

/// Opens every key and replica, and proves each replica against the
/// DNSKEY that will be published (the first replica's public key).
pub fn open_and_prove(zone: &str, given: &[GivenKey]) -> Result<Vec<OpenedKey>, ManageError> {
    let key_error = ManageError::key(zone);
    let mut keys: Vec<OpenedKey> = Vec::new();
    for key in given {
        let replicas = key.replicas.iter().map(open_key).collect::<Result<Vec<_>, _>>().map_err(&key_error)?;
        let Some(first) = replicas.first() else { continue };
        let published = PublishedKey::new(first.as_ref(), key.role);
        for replica in &replicas {
            prove(replica.as_ref(), &published).map_err(&key_error)?;
        }
        if keys.iter().any(|k| k.published.rdata == published.rdata) {
            return Err(ManageError::Argument(format!(
                "the same key is given twice: {} (key tag {})",
                first.uri(),
                published.tag
            )));
        }
        if let Some(other) = keys.iter().find(|k| k.published.tag == published.tag) {
            tracing::warn!(tag = published.tag, other = %other.replicas[0].uri(), "two keys share a key tag");
        }
        tracing::debug!(tag = published.tag, role = %key.role, replicas = replicas.len(), "key proven");
        keys.push(OpenedKey { replicas, role: key.role, published });
    }
    Ok(keys)
}

/// The one-shot signer's keys: every key published; KSKs and CSKs sign
/// the key RRsets and are offered as CDS/CDNSKEY when `cds`; ZSKs and
/// CSKs sign the rest.
pub fn given_signing_keys(keys: &[OpenedKey], cds: bool) -> SigningKeys<'_> {
    let mut signing = SigningKeys::default();
    for key in keys {
        let Some(first) = key.replicas.first() else { continue };
        let signer = Signer { key: first.as_ref(), tag: key.published.tag };
        signing.published.push(key.published.clone());
        if key.role.signs_keys() {
            signing.key_signers.push(signer);
            if cds {
                signing.cds.push(key.published.clone());
            }
        }
        if key.role.signs_zone() {
            signing.zone_signers.push(signer);
        }
    }
    signing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_zone_going_insecure_goes_out_without_keys() {
        let none = Publication::default();
        let (mut policy, _) = Policy::from_text("", std::path::Path::new("p.toml")).expect("policy");
        assert!(!signing_keys(&none, &[], &policy).unsigned, "a signed policy without keys is an error, not unsigned");
        policy.insecure = true;
        assert!(signing_keys(&none, &[], &policy).unsigned);
    }
}
