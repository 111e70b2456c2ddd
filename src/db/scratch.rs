//! A scratch database for the unit tests of `db`.

use super::{Database, DbLocation, NewZone};
use crate::zone::Name;

/// A database in a temporary directory with one zone, `example.` under a
/// default policy `p`; returns it, the zone's name and id, and the
/// directory that holds it (dropped: removed).
pub(crate) async fn database() -> (Database, Name, i64, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::open(&DbLocation::File(dir.path().join("signet.db")), true).await.expect("open");
    db.import_policy("p", "", 0).await.expect("policy");
    let name = Name::from_text("example.", None).expect("name");
    let zone = NewZone { name: &name, policy: "p", input: "in.zone", output: "out.zone", salt: &[], remotes: &[] };
    let id = db.add_zone(&zone, 0).await.expect("zone");
    (db, name, id, dir)
}
