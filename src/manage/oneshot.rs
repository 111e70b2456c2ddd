//! One-shot signing (`signet sign FILE --origin … --policy … --key …`):
//! an unsigned zone file, a policy and keys by URI in; the signed zone
//! out through the same gate as a managed run; no database.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::gate::{GateFailure, Passed, Predecessor, sign_through_gate};
use super::keys::{GivenKey, given_signing_keys, open_and_prove};
use super::{ManageError, PublishFailure};
use crate::keys::PublishedKey;
use crate::policy::{Policy, SerialScheme};
use crate::publish::PublishError;
use crate::sign::{SignSettings, SignStats, check_input, random_salt, sign_zone};
use crate::verify::{Anchor, Progress, Report, VerifyOptions};
use crate::zone::dnssec::Role;
use crate::zone::writer::write_record;
use crate::zone::{Name, RecordRef, Rtype, read_zone_file};

/// What to sign, with what, and where to put it.
#[derive(Debug)]
pub struct OneShot<'a> {
    /// The unsigned zone file.
    pub input: &'a Path,
    /// Its apex.
    pub origin: &'a Name,
    /// The policy.
    pub policy: &'a Policy,
    /// The keys, with their roles.
    pub keys: &'a [GivenKey],
    /// Where the signed zone goes (replaced only if the gate passes it).
    pub output: &'a Path,
    /// The parent's DS (or DNSKEY) records; default: the DS of the KSKs given.
    pub trust_anchor: Option<Vec<Anchor>>,
    /// Also write the DS records of the KSKs (or CSKs) here.
    pub ds_out: Option<&'a Path>,
    /// The time of signing.
    pub now: i64,
}

/// How a one-shot signing ended.
#[derive(Debug)]
pub enum OneShotOutcome {
    /// In place.
    Published {
        /// What the signer made.
        stats: SignStats,
        /// The gate's report.
        report: Box<Report>,
    },
    /// The gate refused: nothing was written.
    Refused(Box<Report>),
}

/// Signs `job.input` into `job.output` through the gate.
pub fn sign_once(job: &OneShot<'_>, progress: &dyn Progress) -> Result<OneShotOutcome, ManageError> {
    let zone = job.origin.to_string();
    if super::requests::same_file(job.input, job.output) {
        return Err(ManageError::Argument(format!(
            "-o {} is the input: signing would overwrite the unsigned zone",
            job.output.display()
        )));
    }
    crate::publish::remove_stale_candidates(job.output);
    let unsigned = read_zone_file(job.input, job.origin)
        .map_err(|source| ManageError::Input { zone: zone.clone(), source: Box::new(source) })?;
    // Content gate: checked before any key is opened.
    check_input(&unsigned, job.origin).map_err(ManageError::content(&zone, job.input))?;
    let keys = open_and_prove(&zone, job.keys)?;
    for key in keys.iter().filter(|k| k.published.algorithm != job.policy.keys.algorithm) {
        // An algorithm rollover signs with two algorithms on purpose; a
        // policy that names neither is more likely a mistake.
        tracing::warn!(
            "key tag {} is not of the policy's keys.algorithm {}: signing with it anyway",
            key.published.tag,
            job.policy.keys.algorithm
        );
    }
    let signing = given_signing_keys(&keys, job.policy.parent.cds);
    let salt = random_salt(job.policy.denial.salt_length).map_err(|source| sign_error(job, source))?;
    let mut settings = SignSettings::from_policy(job.policy, job.now, salt);
    settings.last_serial = published_serial(job.output, job.origin);
    let digest = job.policy.parent.digest.number();
    let ksks: Vec<&PublishedKey> = keys.iter().filter(|k| k.role != Role::Zsk).map(|k| &k.published).collect();
    let trust_anchor = match &job.trust_anchor {
        Some(anchors) => anchors.clone(),
        None => ksks.iter().filter_map(|k| k.ds_rdata(job.origin.as_ref(), digest)).map(Anchor::Ds).collect(),
    };
    let ds_file = match job.ds_out {
        Some(path) => Some(PreparedFile::write(path, &ds_text(job, &ksks)).map_err(|e| publish_error(job, e))?),
        None => None,
    };
    let options = VerifyOptions {
        now: job.now,
        min_validity: job.policy.signatures.refresh,
        trust_anchor: Some(trust_anchor),
        ..VerifyOptions::default()
    };
    // Under `keep` the serial may be the one at the output: the version
    // there is read to tell a republication from a change (the other
    // schemes move past it).
    let keeps_serial = job.policy.zone.serial == SerialScheme::Keep && settings.last_serial.is_some();
    let previous = keeps_serial.then(|| read_zone_file(job.output, job.origin).ok()).flatten();
    let predecessor = Predecessor { serial: settings.last_serial, zone: previous.as_ref() };
    let result = sign_through_gate(job.output, job.origin, &options, predecessor, progress, None, |out| {
        sign_zone(unsigned, &signing, &settings, out)
    });
    match result {
        Ok(Passed { made: stats, report, .. }) => {
            if let Some(ds_file) = ds_file {
                ds_file.install().map_err(|e| publish_error(job, e))?;
            }
            Ok(OneShotOutcome::Published { stats, report: Box::new(report) })
        }
        Err(GateFailure::Refused(report)) => Ok(OneShotOutcome::Refused(report)),
        Err(GateFailure::Sign(source)) => Err(sign_error(job, source)),
        Err(GateFailure::Abandoned) => Err(ManageError::Abandoned { zone: job.origin.to_string() }),
        Err(GateFailure::SerialHeld(source)) => Err(ManageError::SerialHeld { zone: job.origin.to_string(), source }),
        Err(GateFailure::Publish(source)) => Err(ManageError::Publish {
            zone: job.origin.to_string(),
            output: job.output.display().to_string(),
            source: Box::new(source),
        }),
    }
}

fn sign_error(job: &OneShot<'_>, source: crate::sign::SignError) -> ManageError {
    ManageError::Sign {
        zone: job.origin.to_string(),
        output: job.output.display().to_string(),
        source: Box::new(source),
    }
}

fn publish_error(job: &OneShot<'_>, source: PublishError) -> ManageError {
    ManageError::Publish {
        zone: job.origin.to_string(),
        output: job.output.display().to_string(),
        source: Box::new(PublishFailure::Io(source)),
    }
}

/// The DS records of the KSKs, as master-file lines.
fn ds_text(job: &OneShot<'_>, ksks: &[&PublishedKey]) -> String {
    let ttl = u32::try_from(job.policy.parent.ds_ttl).unwrap_or(u32::MAX);
    let digest = job.policy.parent.digest.number();
    let mut text = String::new();
    for key in ksks {
        if let Some(ds) = key.ds_rdata(job.origin.as_ref(), digest) {
            write_record(RecordRef { owner: job.origin.as_ref(), rtype: Rtype::DS, ttl, rdata: &ds }, 1, &mut text);
            text.push('\n');
        }
    }
    text
}

/// The serial of the zone published before at `path`, so that the new one
/// is greater: signet writes the SOA on the first line.
pub(super) fn published_serial(path: &Path, origin: &Name) -> Option<u32> {
    use std::io::BufRead as _;
    let file = std::fs::File::open(path).ok()?;
    let first = std::io::BufReader::new(file).lines().next()?.ok()?;
    crate::zone::read_zone_str(&first, origin, path).ok()?.soa_serial()
}

/// A small file written and fsynced beside its target before the zone is
/// published, and renamed into place after it: a failure to write it
/// changes nothing.
struct PreparedFile {
    temp: PathBuf,
    target: PathBuf,
}

impl PreparedFile {
    fn write(target: &Path, text: &str) -> Result<PreparedFile, PublishError> {
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = target.with_file_name(format!(".{name}.signet-{}.tmp", std::process::id()));
        let io = |source| PublishError::Io { path: temp.clone(), source };
        let mut file = std::fs::File::create(&temp).map_err(io)?;
        file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
        Ok(PreparedFile { temp, target: target.to_owned() })
    }

    fn install(self) -> Result<(), PublishError> {
        std::fs::rename(&self.temp, &self.target)
            .map_err(|source| PublishError::Io { path: self.target.clone(), source })
    }
}

impl Drop for PreparedFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.temp);
    }
}
