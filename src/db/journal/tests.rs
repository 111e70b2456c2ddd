use super::*;
use crate::db::scratch::database;
use crate::db::{RunCommit, RunRecord, RunResult};

/// An encoded difference from `from` to `to` of `bytes` bytes (the
/// journal stores what it is given; it does not decode).
fn entry(from: u32, to: u32, bytes: usize, bounds: JournalPolicy) -> JournalEntry {
    let diff = EncodedDiff { old_serial: from, new_serial: to, removed: 1, added: 2, bytes: vec![to as u8; bytes] };
    JournalEntry { diff, bounds }
}

/// Commits a published run of serial `serial` with `diff`.
async fn publish(db: &Database, zone: i64, serial: u32, diff: Option<JournalEntry>) {
    let run = RunRecord {
        at: i64::from(serial) * 60,
        serial: Some(serial),
        result: RunResult::Published,
        ..RunRecord::default()
    };
    let commit = RunCommit { diff, ..RunCommit::publication(run) };
    db.commit_run(zone, &commit).await.expect("commit");
}

async fn serials(db: &Database, zone: i64) -> Vec<(i64, i64)> {
    db.journal(zone).await.expect("journal").iter().map(|v| (v.serial_from, v.serial_to)).collect()
}

#[tokio::test]
async fn versions_are_kept_in_order_up_to_the_count() {
    let (db, _, zone, _dir) = database().await;
    let bounds = JournalPolicy { max_versions: 3, max_size: 1 << 20 };
    publish(&db, zone, 1, None).await;
    for serial in 2..=6 {
        publish(&db, zone, serial, Some(entry(serial - 1, serial, 100, bounds))).await;
    }
    assert_eq!(serials(&db, zone).await, [(3, 4), (4, 5), (5, 6)]);
    let versions = db.journal(zone).await.expect("journal");
    assert_eq!((versions[2].removed, versions[2].added, versions[2].bytes), (1, 2, 100));
    assert_eq!(versions[2].published_at, 6 * 60);
    assert!(versions[2].run_id.is_some());
    let summary = db.journal_summary(zone).await.expect("summary");
    let expected = JournalSummary { versions: 3, bytes: 300, oldest_serial: Some(3), newest_serial: Some(6) };
    assert_eq!(summary, expected);
}

#[tokio::test]
async fn versions_are_kept_up_to_the_size() {
    let (db, _, zone, _dir) = database().await;
    let bounds = JournalPolicy { max_versions: 100, max_size: 250 };
    for serial in 2..=5 {
        publish(&db, zone, serial, Some(entry(serial - 1, serial, 100, bounds))).await;
    }
    assert_eq!(serials(&db, zone).await, [(3, 4), (4, 5)], "two of 100 bytes fit in 250");
    // One version larger than the bound on its own: nothing is kept.
    publish(&db, zone, 6, Some(entry(5, 6, 251, bounds))).await;
    assert_eq!(serials(&db, zone).await, []);
    assert_eq!(db.journal_summary(zone).await.expect("summary"), JournalSummary::default());
}

#[tokio::test]
async fn the_chain_starts_again_when_a_version_is_unknown() {
    let (db, _, zone, _dir) = database().await;
    let bounds = JournalPolicy::default();
    publish(&db, zone, 2, Some(entry(1, 2, 10, bounds))).await;
    publish(&db, zone, 3, Some(entry(2, 3, 10, bounds))).await;
    // No difference (the previous output could not be read): no chain.
    publish(&db, zone, 4, None).await;
    assert_eq!(serials(&db, zone).await, []);
    publish(&db, zone, 5, Some(entry(4, 5, 10, bounds))).await;
    // A difference from a serial the journal does not end at (the output
    // was replaced behind signet's back): the chain starts at it.
    publish(&db, zone, 8, Some(entry(7, 8, 10, bounds))).await;
    assert_eq!(serials(&db, zone).await, [(7, 8)]);
}

#[tokio::test]
async fn one_version_and_the_chain_since_a_serial() {
    let (db, _, zone, _dir) = database().await;
    let bounds = JournalPolicy::default();
    assert!(db.journal_diff(zone, None).await.expect("query").is_none());
    for serial in 11..=14 {
        publish(&db, zone, serial, Some(entry(serial - 1, serial, 20 + serial as usize, bounds))).await;
    }
    let (newest, bytes) = db.journal_diff(zone, None).await.expect("query").expect("the newest");
    assert_eq!((newest.serial_from, newest.serial_to, bytes.len()), (13, 14, 34));
    let (twelve, bytes) = db.journal_diff(zone, Some(12)).await.expect("query").expect("serial 12");
    assert_eq!((twelve.serial_to, bytes), (12, vec![12; 32]));
    assert!(db.journal_diff(zone, Some(99)).await.expect("query").is_none());

    let since = |serial| db.journal_since(zone, serial);
    let chain = since(11).await.expect("query").expect("11 is reached");
    let steps: Vec<(i64, i64)> = chain.iter().map(|(v, _)| (v.serial_from, v.serial_to)).collect();
    assert_eq!(steps, [(11, 12), (12, 13), (13, 14)]);
    assert_eq!(chain[0].1, vec![12; 32]);
    assert_eq!(since(14).await.expect("query").expect("up to date").len(), 0);
    assert!(since(9).await.expect("query").is_none(), "older than the journal: AXFR");
}

#[tokio::test]
async fn a_removed_zone_loses_its_journal() {
    let (db, name, zone, _dir) = database().await;
    publish(&db, zone, 2, Some(entry(1, 2, 10, JournalPolicy::default()))).await;
    db.remove_zone(&name, 100).await.expect("remove");
    assert_eq!(serials(&db, zone).await, []);
}
