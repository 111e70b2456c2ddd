//! The journal of differences (issue 13): `signet zone diff`, `signet zone
//! versions` and the journal line of `signet status`, on a database filled
//! through the library's API (a publication committed with its diff, as
//! the managed run commits it), and on real managed runs.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use signet::db::{Database, DbLocation, NewZone, RunCommit, RunRecord, RunResult};
use signet::manage::journal::diff_for_commit;
use signet::policy::JournalPolicy;
use signet::zone::{Name, Zone, read_zone_str};

const ORIGIN: &str = "example.";

fn zone(serial: u32, body: &str) -> Zone {
    let text = format!(
        "example. 3600 IN SOA ns.example. admin.example. {serial} 7200 3600 1209600 300\n\
         example. 3600 IN NS ns.example.\nns.example. 3600 IN A 192.0.2.53\n{body}"
    );
    let origin = Name::from_text(ORIGIN, None).expect("origin");
    read_zone_str(&text, &origin, Path::new("t.zone")).expect("reads")
}

/// A database whose zone `example.` published serials 1, 2 and 3 (the
/// first without a version before it); returns the database file.
async fn filled(dir: &Path) -> PathBuf {
    let path = dir.join("signet.db");
    let db = Database::open(&DbLocation::File(path.clone()), true).await.expect("open");
    db.import_policy("p", "", 0).await.expect("policy");
    let name = Name::from_text(ORIGIN, None).expect("name");
    let new_zone = NewZone { name: &name, policy: "p", input: "in.zone", output: "out.zone", salt: &[], remotes: &[] };
    let id = db.add_zone(&new_zone, 0).await.expect("zone");
    let versions = [
        zone(1, "a.example. 300 IN A 192.0.2.1\n"),
        zone(2, "a.example. 300 IN A 192.0.2.2\n"),
        zone(3, "a.example. 600 IN A 192.0.2.2\nb.example. 300 IN TXT \"new\"\n"),
    ];
    for (i, version) in versions.iter().enumerate() {
        let previous = i.checked_sub(1).map(|p| &versions[p]);
        let diff = diff_for_commit(previous, version, &JournalPolicy::default());
        let at = 1_796_083_200 + 3600 * i as i64;
        let serial = Some(i as u32 + 1);
        let run = RunRecord { at, serial, result: RunResult::Published, ..RunRecord::default() };
        let commit = RunCommit { diff, ..RunCommit::publication(run) };
        db.commit_run(id, &commit).await.expect("commit");
    }
    path
}

fn signet(db: &Path, args: &[&str]) -> Output {
    common::run(common::signet().arg("--db").arg(db).args(["--now", "2026-12-01T06:00:00Z"]).args(args))
}

fn stdout(output: &Output) -> String {
    common::expect_success("signet", output);
    String::from_utf8(output.stdout.clone()).expect("utf-8").replace('\t', " ")
}

#[tokio::test]
async fn zone_diff_shows_a_version_in_ixfr_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled(dir.path()).await;
    let newest = stdout(&signet(&db, &["zone", "diff", ORIGIN]));
    let lines: Vec<&str> = newest.lines().collect();
    assert!(lines[0].starts_with("; published 2026-12-01 02:00"), "{newest}");
    assert_eq!(
        lines[1..],
        [
            "; zone example. serial 2 -> 3: 2 removed, 3 added",
            "- example. 3600 IN SOA ns.example. admin.example. 2 7200 3600 1209600 300",
            "- a.example. 300 IN A 192.0.2.2",
            "+ example. 3600 IN SOA ns.example. admin.example. 3 7200 3600 1209600 300",
            "+ a.example. 600 IN A 192.0.2.2",
            "+ b.example. 300 IN TXT \"new\"",
        ]
    );
    let second = stdout(&signet(&db, &["zone", "diff", ORIGIN, "--serial", "2", "--sections"]));
    assert!(second.contains("; removed from serial 1\nexample. 3600 IN SOA"), "{second}");
    assert!(second.contains("; added in serial 2\nexample. 3600 IN SOA"), "{second}");
    assert!(second.contains("\na.example. 300 IN A 192.0.2.2\n"), "{second}");

    let json: serde_json::Value =
        serde_json::from_str(&stdout(&signet(&db, &["zone", "diff", ORIGIN, "--format", "json"]))).expect("JSON");
    assert_eq!(json["version"]["serial_from"], 2);
    assert_eq!(json["version"]["serial_to"], 3);
    assert_eq!((json["version"]["removed"].as_i64(), json["version"]["added"].as_i64()), (Some(2), Some(3)));
    assert_eq!(json["records"]["added"].as_array().map(Vec::len), Some(3));

    // Serial 1 was the first publication: the journal has no version of it.
    let missing = signet(&db, &["zone", "diff", ORIGIN, "--serial", "1"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("the journal has no version with serial 1"));
}

#[tokio::test]
async fn zone_versions_and_status_show_the_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = filled(dir.path()).await;
    let versions = stdout(&signet(&db, &["zone", "versions", ORIGIN]));
    let lines: Vec<&str> = versions.lines().collect();
    assert!(lines[0].starts_with("zone example.: 2 version(s), "), "{versions}");
    assert!(lines[0].ends_with("IXFR reaches back to serial 1"), "{versions}");
    assert!(lines[1].starts_with("FROM  TO  PUBLISHED"), "{versions}");
    assert!(lines[2].starts_with("1     2   2026-12-01 01:00") && lines[2].contains("  2        2 "), "{versions}");
    assert_eq!(lines.len(), 4);
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&signet(&db, &["zone", "versions", ORIGIN, "--format", "json"]))).expect("JSON");
    assert_eq!(json["summary"]["versions"], 2);
    assert_eq!(json["versions"][1]["serial_to"], 3);

    let status = stdout(&signet(&db, &["status", ORIGIN]));
    assert!(status.contains("  journal      2 version(s), "), "{status}");
    assert!(status.contains(": serial 1 → 3\n"), "{status}");
}

/// Two managed runs (`signet sign ZONE`), one record changed between
/// them: the journal holds the second version, whose difference is that
/// record, the SOA, and what the signer made anew around it.
#[test]
fn a_managed_run_records_its_difference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = common::Store::soft(&dir.path().join("keys"));
    let policy = common::write_policy(dir.path(), "policy", "13", "nsec", &format!("store = \"{}\"", store.uri()));
    let input = dir.path().join("example.zone");
    let unsigned = std::fs::read_to_string(common::realistic_zone()).expect("realistic zone");
    std::fs::write(&input, &unsigned).expect("write input");
    let (db, output) = (dir.path().join("signet.db"), dir.path().join("example.signed"));
    let path = |p: &Path| p.to_str().expect("path").to_owned();
    let signet_at = |now: &str, args: &[&str]| {
        let output = common::run(common::signet().arg("--db").arg(&db).args(["--now", now]).args(args));
        common::expect_success(&format!("signet {}", args.join(" ")), &output);
        String::from_utf8(output.stdout).expect("utf-8").replace('\t', " ")
    };
    signet_at("2026-12-01T00:00:00Z", &["init"]);
    signet_at("2026-12-01T00:00:00Z", &["policy", "import", &path(&policy), "--name", "p"]);
    let add = ["zone", "add", ORIGIN, "--policy", "p", "--input", &path(&input), "--output", &path(&output)];
    signet_at("2026-12-01T00:00:00Z", &add);
    signet_at("2026-12-01T00:00:00Z", &["sign", ORIGIN]);
    // The first publication has no version before it.
    assert!(signet_at("2026-12-01T00:00:00Z", &["zone", "versions", ORIGIN]).contains("the journal is empty"));

    std::fs::write(&input, format!("{unsigned}\njournal-test.example. 300 IN TXT \"added\"\n")).expect("write input");
    signet_at("2026-12-01T01:00:00Z", &["sign", ORIGIN]);
    let versions = signet_at("2026-12-01T01:00:00Z", &["zone", "versions", ORIGIN]);
    assert!(versions.starts_with("zone example.: 1 version(s), "), "{versions}");
    let diff = signet_at("2026-12-01T01:00:00Z", &["zone", "diff", ORIGIN]);
    assert!(diff.contains("\n+ journal-test.example. 300 IN TXT \"added\"\n"), "{diff}");
    let added: Vec<&str> = diff.lines().filter(|l| l.starts_with("+ ")).collect();
    assert!(added[0].contains(" IN SOA "), "the new SOA comes first: {diff}");
}
