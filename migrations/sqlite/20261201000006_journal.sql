-- The journal: each published version's difference from the version
-- published before it (zone/diff.rs's encoding: removed and added records
-- in wire form, length and SHA-256 inside), written in the same
-- transaction as the publication's run. `signet zone diff` shows it;
-- IXFR serves it. Per zone it is one unbroken chain of serials ending at
-- the version published; the policy's [journal] bounds it, oldest first.
CREATE TABLE journal (
    id           INTEGER PRIMARY KEY,
    zone_id      INTEGER NOT NULL REFERENCES zones(id),
    run_id       INTEGER REFERENCES runs(id),  -- the run that published serial_to
    serial_from  INTEGER NOT NULL,
    serial_to    INTEGER NOT NULL,
    published_at INTEGER NOT NULL,
    removed      INTEGER NOT NULL,             -- records, the old SOA among them
    added        INTEGER NOT NULL,             -- records, the new SOA among them
    bytes        INTEGER NOT NULL,             -- length(diff)
    diff         BLOB    NOT NULL              -- last: listing the journal reads no blob
);
CREATE INDEX journal_by_zone ON journal(zone_id, id);
