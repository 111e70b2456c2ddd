//! The offline KSK in a rehearsal (issue 27): the KSK side with its own
//! throw-away database and key store, and its ceremonies on the simulated
//! clock. At each ceremony the online side writes a request from then to
//! one and a half intervals later (a ceremony up to half an interval late
//! is still covered), the KSK side signs it, taking in what the parent
//! did since the last one, and the online side imports the response, all
//! with the production code of `manage::offline`. The KSK side's keys are
//! numbered from [`KSK_ID_OFFSET`] in the rehearsal's tables.

use std::path::{Path, PathBuf};

use super::simulation::DryRunError;
use crate::db::{Actor, Database, DbLocation, Event, EventKind, NewZone, StoredKey};
use crate::keys::KeyUri;
use crate::manage::offline::{import_response, sign_request, write_request};
use crate::rollover::Observation;
use crate::zone::Name;
use crate::zone::dnssec::ds_matches;

/// The KSK side's key ids are shown plus this.
pub const KSK_ID_OFFSET: i64 = 1000;

/// When the ceremonies are held.
#[derive(Debug, Clone)]
pub struct CeremonyPlan {
    /// The interval between ceremonies; the first is at the start.
    pub every: i64,
    /// Ceremonies held late: (the ceremony's number, from 1, and by how
    /// much).
    pub late: Vec<(usize, i64)>,
}

impl CeremonyPlan {
    /// When ceremony `n` (from 1) is held.
    fn at(&self, from: i64, n: usize) -> i64 {
        let late = self.late.iter().filter(|(which, _)| *which == n).map(|(_, by)| *by).sum::<i64>();
        from + (n as i64 - 1) * self.every + late
    }

    /// How far a request made at `at` reaches.
    fn until(&self, at: i64) -> i64 {
        at + self.every + self.every / 2
    }
}

/// The KSK side of a rehearsal.
pub(super) struct KskSide {
    db: Database,
    zone_id: i64,
    plan: CeremonyPlan,
    from: i64,
    held: usize,
    work: PathBuf,
    key_store: KeyUri,
    last_event: i64,
    /// The KSK side's events, the latest plan's only.
    pub events: Vec<Event>,
}

impl KskSide {
    /// Makes the KSK side's database in `work` with the zone under `policy`.
    pub(super) async fn start(
        work: &Path,
        origin: &Name,
        (policy, source): (&str, &str),
        key_store: KeyUri,
        plan: CeremonyPlan,
        from: i64,
    ) -> Result<KskSide, DryRunError> {
        let db = Database::open(&DbLocation::File(work.join("ksk-side.db")), true).await?;
        db.import_policy(policy, source, from).await?;
        let marker = format!("offline-ksk:{origin}");
        let zone = NewZone { name: origin, policy, input: &marker, output: &marker, salt: &[], remotes: &[] };
        let zone_id = db.add_zone(&zone, from).await?;
        let work = work.to_owned();
        Ok(KskSide { db, zone_id, plan, from, held: 0, work, key_store, last_event: 0, events: Vec::new() })
    }

    /// When the next ceremony is due.
    pub(super) fn due(&self) -> i64 {
        self.plan.at(self.from, self.held + 1)
    }

    /// Holds the ceremony due at `now`, if one is: request, response,
    /// import; the online side makes its ZSKs in `online_keys`. Returns
    /// the KSK side's keys afterwards.
    pub(super) async fn hold_if_due(
        &mut self,
        (online, online_keys): (&Database, &KeyUri),
        origin: &Name,
        now: i64,
    ) -> Result<Option<Vec<StoredKey>>, DryRunError> {
        if now < self.due() {
            return Ok(None);
        }
        self.held += 1;
        let n = self.held;
        let request = self.work.join(format!("request-{n}.ksr"));
        let response = self.work.join(format!("response-{n}.skr"));
        let made = write_request(online, origin, (now, self.plan.until(now)), now, Some(online_keys)).await?;
        std::fs::write(&request, &made.text).map_err(|source| DryRunError::Io { path: request.clone(), source })?;
        let signed = sign_request(&self.db, origin, &request, now, Some(&self.key_store)).await?;
        std::fs::write(&response, &signed.text).map_err(|source| DryRunError::Io { path: response.clone(), source })?;
        import_response(online, origin, &response, now).await?;
        let why = format!(
            "ceremony {n}: request for {} periods signed by KSKs {:?} and imported",
            signed.periods, signed.ksks
        );
        self.db.record_event(self.zone_id, &Event::note(now, Actor::Operator, EventKind::Offline, None, why)).await?;
        self.collect_events(now).await?;
        Ok(Some(self.db.keys(self.zone_id).await?))
    }

    /// The parent published (`seen`) or withdrew a DS: the operator
    /// records it on the KSK side, which takes it in at its next ceremony.
    pub(super) async fn parent_changed(
        &self,
        origin: &Name,
        ds: &[u8],
        seen: bool,
        event: &Event,
    ) -> Result<Option<i64>, DryRunError> {
        let keys = self.db.keys(self.zone_id).await?;
        let Some(key) = keys.iter().find(|k| ds_matches(origin.as_ref(), ds, &k.dnskey) == Some(true)) else {
            return Ok(None);
        };
        let key = key.key.id;
        let observation = if seen { Observation::DsSeen { key } } else { Observation::DsGone { key } };
        self.db.observe(self.zone_id, &observation, event, None).await?;
        Ok(Some(key + KSK_ID_OFFSET))
    }

    /// Takes the KSK side's new events: a ceremony's plan from `start`
    /// replaces the events planned before for the time from `start` on.
    async fn collect_events(&mut self, start: i64) -> Result<(), DryRunError> {
        self.events.retain(|e| e.time < start);
        for (id, mut event) in self.db.events_after(self.zone_id, self.last_event).await? {
            self.last_event = id;
            if matches!(event.kind, EventKind::ZoneAdded | EventKind::PolicyChange) {
                continue;
            }
            event.key = event.key.map(|k| k + KSK_ID_OFFSET);
            self.events.push(event);
        }
        Ok(())
    }
}
