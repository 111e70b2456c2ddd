//! `--db` pointing at something that is not signet's database is refused,
//! and left as it was: an empty file (except for `signet init`), another
//! program's SQLite database, a file that is not SQLite at all, a signet
//! database of a newer schema (both versions named), and a database this
//! user cannot write (said so, with what to do).

use crate::common;

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Output};

fn signet(db: &Path, args: &[&str]) -> Output {
    common::run(common::signet().arg("--db").arg(db).args(args))
}

/// Exit 2, every needle in the message, no panic.
fn assert_refused(what: &str, output: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{what}: expected exit 2:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{what}: stderr lacks {needle:?}:\n{stderr}");
    }
}

/// Runs SQL on a database file with SQLite itself (through sqlx).
fn sql(db: &Path, statements: &[&'static str]) {
    use sqlx::Connection as _;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(db).create_if_missing(true);
        let mut connection = sqlx::sqlite::SqliteConnection::connect_with(&options).await.expect("open");
        for statement in statements {
            sqlx::query(*statement).execute(&mut connection).await.expect(statement);
        }
        connection.close().await.expect("close");
    });
}

/// The newest migration this signet has: the version that names the
/// newest file in migrations/.
fn newest_migration() -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    let names =
        std::fs::read_dir(dir).expect("migrations/").flatten().map(|e| e.file_name().to_string_lossy().into_owned());
    let versions = names.filter_map(|n| n.split('_').next().map(str::to_owned));
    versions.max().expect("a migration")
}

#[test]
fn an_empty_file_is_refused_except_by_init() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("empty.db");
    std::fs::write(&db, b"").expect("write");
    for command in [&["zone", "list"][..], &["zone", "status", "example."], &["key", "list"]] {
        assert_refused(&format!("{command:?}"), &signet(&db, command), &["empty.db", "not a signet database", "empty"]);
    }
    assert_eq!(std::fs::metadata(&db).expect("stat").len(), 0, "left as it was");
    common::expect_success("init", &signet(&db, &["init"]));
    common::expect_success("zone list", &signet(&db, &["zone", "list"]));
}

#[test]
fn another_programs_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("photos.db");
    sql(&db, &["CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT)", "INSERT INTO photos VALUES (1, 'a.jpg')"]);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let before = std::fs::read(&db).expect("read");
    for command in [&["zone", "list"][..], &["init"]] {
        let output = signet(&db, command);
        assert_refused(&format!("{command:?}"), &output, &["photos.db", "not a signet database", "photos"]);
    }
    assert_eq!(std::fs::read(&db).expect("read"), before, "the file is left as it was");
    assert_eq!(std::fs::metadata(&db).expect("stat").permissions().mode() & 0o777, 0o644, "its mode too");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database at all\n").expect("write");
    assert_refused("text", &signet(&text, &["zone", "list"]), &["notes.txt", "not an SQLite database"]);
    assert_refused("device", &signet(Path::new("/dev/null"), &["init"]), &["/dev/null", "not a regular file"]);
}

#[test]
fn a_newer_schema_is_refused_naming_both_versions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("signet.db");
    common::expect_success("init", &signet(&db, &["init"]));
    sql(
        &db,
        &["INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
           VALUES (29991231000001, 'from the future', CURRENT_TIMESTAMP, 1, x'00', 0)"],
    );
    let newest = newest_migration();
    for command in [&["zone", "list"][..], &["init"]] {
        let output = signet(&db, command);
        assert_refused(&format!("{command:?}"), &output, &["signet.db", "29991231000001", &newest, "newer signet"]);
        assert!(!String::from_utf8_lossy(&output.stderr).contains("previously applied"), "not sqlx's text");
    }
}

/// Are the tests running as root (who can write any file)? A file just
/// made belongs to the effective user.
fn running_as_root(dir: &Path) -> bool {
    let probe = dir.join("probe");
    std::fs::write(&probe, b"").expect("write");
    std::fs::metadata(&probe).expect("stat").uid() == 0
}

#[test]
fn a_read_only_database_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    let db = dir.path().join("signet.db");
    common::expect_success("init", &signet(&db, &["init"]));
    let output = if running_as_root(dir.path()) {
        // Root writes anything: run as nobody, to whom the 0600 file is closed.
        if !common::have_tool("setpriv") {
            return;
        }
        let mut command = Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_signet"), "--db"]);
        common::run(command.arg(&db).args(["zone", "list"]))
    } else {
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o400)).expect("chmod");
        signet(&db, &["zone", "list"])
    };
    assert_refused("read-only", &output, &["signet.db", "read-only", "cannot write", "writable"]);
    assert!(!String::from_utf8_lossy(&output.stderr).contains("unable to open database file"), "not SQLite's text");
}
