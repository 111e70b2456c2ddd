//! A scratch database for the unit tests of `db`: an SQLite file, or,
//! when `SIGNET_TEST_POSTGRES` names a PostgreSQL database to connect to
//! (`tests/db-on-postgres.sh` sets it), a fresh database on that server,
//! so that the same tests check both dialects.

use super::{Database, DbLocation, NewZone};
use crate::zone::Name;

/// The variable that sends the tests to PostgreSQL: the URL of a
/// database of the server in which to make the scratch ones (its
/// password in PGPASSWORD).
const POSTGRES_VARIABLE: &str = "SIGNET_TEST_POSTGRES";

/// A fresh database with one zone, `example.` under a default policy
/// `p`; returns it, the zone's name and id, and a temporary directory
/// (dropped: removed, with the SQLite file).
pub(crate) async fn database() -> (Database, Name, i64, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let location = match std::env::var(POSTGRES_VARIABLE) {
        Ok(server) => fresh_postgres_database(&server).await,
        Err(_) => DbLocation::File(dir.path().join("signet.db")),
    };
    let db = Database::open(&location, true).await.expect("open");
    db.import_policy("p", "", 0).await.expect("policy");
    let name = Name::from_text("example.", None).expect("name");
    let zone = NewZone { name: &name, policy: "p", input: "in.zone", output: "out.zone", salt: &[], remotes: &[] };
    let id = db.add_zone(&zone, 0).await.expect("zone");
    (db, name, id, dir)
}

/// A new, empty database on the server of `server` (a URL); its location.
async fn fresh_postgres_database(server: &str) -> DbLocation {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut bytes = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("random");
    let name = format!("scratch_{}", data_encoding::HEXLOWER.encode(&bytes));
    let mut connection = sqlx::AnyConnection::connect(server).await.expect("connect to the test server");
    // The name is made here of hex digits: nothing to inject.
    let create = sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"));
    sqlx::query(create).execute(&mut connection).await.expect("CREATE DATABASE");
    connection.close().await.expect("close");
    let mut url = url::Url::parse(server).expect("the test server's URL");
    url.set_path(&name);
    DbLocation::parse(url.as_str()).expect("a PostgreSQL URL")
}
