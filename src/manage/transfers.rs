//! What the operator says of a zone's transfers, checked before it is
//! stored: TSIG keys (the secret file must read and be private), a
//! zone's primaries, secondaries and access list.

use std::path::{Path, PathBuf};

use super::ManageError;
use crate::chain::Chain;
use crate::db::{Database, Remote, RemoteRole};
use crate::xfr::acl::{parse_prefix, parse_socket};
use crate::xfr::tsig::TsigKey;
use crate::zone::Name;

/// A key name as stored: absolute, lowercase.
pub fn key_name(text: &str) -> Result<String, ManageError> {
    let name = Name::from_text(text, Some(Name::root().as_ref()))
        .map_err(|e| ManageError::Argument(format!("TSIG key name {text:?}: {e}")))?;
    Ok(name.as_ref().to_lowercase().to_string())
}

/// Registers TSIG key `name`, whose secret is in `secret_file`: the file
/// is read now (it must hold an hmac-sha256 secret for that name and be
/// readable by its owner only); the database keeps its path.
pub async fn register_tsig_key(
    db: &Database,
    name: &str,
    secret_file: &Path,
    now: i64,
) -> Result<(String, PathBuf), ManageError> {
    let stored = key_name(name)?;
    let path = std::path::absolute(secret_file).unwrap_or_else(|_| secret_file.to_owned());
    let parsed = Name::from_text(&stored, None).map_err(|e| ManageError::Argument(e.to_string()))?;
    TsigKey::read_file_named(&path, &parsed).map_err(|e| ManageError::Argument(Chain(&e).to_string()))?;
    db.add_tsig_key(&stored, &path.display().to_string(), now).await?;
    Ok((stored, path))
}

/// An address as stored: `ADDR:PORT` (`[V6]:PORT`).
fn socket_text(text: &str) -> Result<String, ManageError> {
    parse_socket(text).map(|addr| addr.to_string()).map_err(|e| ManageError::Argument(e.to_string()))
}

/// The primaries `addresses`, each with `key`.
pub fn primaries(addresses: &[String], key: Option<&str>) -> Result<Vec<Remote>, ManageError> {
    let key = key.map(key_name).transpose()?;
    addresses.iter().map(|a| Ok(Remote::new(RemoteRole::Primary, Some(socket_text(a)?), key.clone()))).collect()
}

/// A secondary at `address`, notified unless `no_notify`.
pub fn secondary(address: &str, key: Option<&str>, notify: bool) -> Result<Remote, ManageError> {
    let key = key.map(key_name).transpose()?;
    Ok(Remote { notify, ..Remote::new(RemoteRole::Secondary, Some(socket_text(address)?), key) })
}

/// An access-list entry: a network, a key, or both.
pub fn acl_entry(prefix: Option<&str>, key: Option<&str>) -> Result<Remote, ManageError> {
    let key = key.map(key_name).transpose()?;
    let address = prefix
        .map(|p| parse_prefix(p).map(|net| net.to_string()).map_err(|e| ManageError::Argument(e.to_string())))
        .transpose()?;
    if address.is_none() && key.is_none() {
        return Err(ManageError::Argument(
            "an access-list entry needs an address or prefix, a TSIG key, or both".into(),
        ));
    }
    Ok(Remote::new(RemoteRole::Acl, address, key))
}

/// A remote to do with the parent at `address`: an agent, a resolver,
/// or an update server (of `parent_zone`, checked to be a name).
pub fn parent_remote(
    role: RemoteRole,
    address: &str,
    key: Option<&str>,
    parent_zone: Option<&str>,
) -> Result<Remote, ManageError> {
    let key = key.map(key_name).transpose()?;
    let parent_zone = parent_zone
        .map(|z| {
            Name::from_text(z, Some(Name::root().as_ref()))
                .map(|n| n.as_ref().to_lowercase().to_string())
                .map_err(|e| ManageError::Argument(format!("parent zone {z:?}: {e}")))
        })
        .transpose()?;
    Ok(Remote { parent_zone, ..Remote::new(role, Some(socket_text(address)?), key) })
}

/// Where a transferred zone's copy is kept by default: beside the output.
pub fn default_copy(output: &Path) -> PathBuf {
    let mut path = output.as_os_str().to_owned();
    path.push(".unsigned");
    PathBuf::from(path)
}
