//! Keys named on the command line (`--key URI:ROLE`), opened, proven and
//! turned into a signing plan.

use anyhow::{Context as _, bail};

use crate::keys::{KeyUri, PublishedKey, Role, SigningKey, open_key, proof::prove};
use crate::sign::{KeyPlan, Signer};

/// One key as given: its replicas (the same key in several stores) and role.
#[derive(Debug)]
pub struct OpenedKey {
    /// The key in each store; the first signs.
    pub replicas: Vec<Box<dyn SigningKey>>,
    /// What it does.
    pub role: Role,
    /// Its DNSKEY.
    pub published: PublishedKey,
}

/// Reads `URI[ URI…]:ROLE`: one or more URIs of replicas of one key,
/// separated by spaces, then its role.
pub fn parse_key_arg(text: &str) -> anyhow::Result<(Vec<KeyUri>, Role)> {
    let (uris, role) =
        text.rsplit_once(':').with_context(|| format!("--key {text:?}: expected URI:ROLE, e.g. file:zsk.pk8:zsk"))?;
    let role = Role::from_text(role).with_context(|| format!("--key {text:?}"))?;
    let uris = uris.split_whitespace().map(KeyUri::parse).collect::<Result<Vec<_>, _>>()?;
    if uris.is_empty() {
        bail!("--key {text:?}: no key URI before the role");
    }
    Ok((uris, role))
}

/// Opens every key and replica, and proves each replica against the
/// DNSKEY that will be published (the first replica's public key).
pub fn open_and_prove(args: &[String]) -> anyhow::Result<Vec<OpenedKey>> {
    let mut keys: Vec<OpenedKey> = Vec::new();
    for arg in args {
        let (uris, role) = parse_key_arg(arg)?;
        let replicas = uris.iter().map(open_key).collect::<Result<Vec<_>, _>>()?;
        let published = PublishedKey::new(replicas[0].as_ref(), role);
        for replica in &replicas {
            prove(replica.as_ref(), &published)?;
        }
        if keys.iter().any(|k| k.published.rdata == published.rdata) {
            bail!("--key {arg:?}: the same key is given twice (key tag {})", published.tag);
        }
        if let Some(other) = keys.iter().find(|k| k.published.tag == published.tag) {
            tracing::warn!(tag = published.tag, other = %other.replicas[0].uri(), "two keys share a key tag");
        }
        tracing::info!(tag = published.tag, role = %role, replicas = replicas.len(), "key proven");
        keys.push(OpenedKey { replicas, role, published });
    }
    Ok(keys)
}

/// The plan: every key published; KSKs and CSKs sign the key RRsets and
/// are offered as CDS/CDNSKEY when `cds`; ZSKs and CSKs sign the rest.
pub fn plan(keys: &[OpenedKey], cds: bool) -> KeyPlan<'_> {
    let mut plan = KeyPlan::default();
    for key in keys {
        let signer = Signer { key: key.replicas[0].as_ref(), tag: key.published.tag };
        plan.published.push(key.published.clone());
        if key.role.signs_keys() {
            plan.key_signers.push(signer);
            if cds {
                plan.cds.push(key.published.clone());
            }
        }
        if key.role.signs_zone() {
            plan.zone_signers.push(signer);
        }
    }
    plan
}
