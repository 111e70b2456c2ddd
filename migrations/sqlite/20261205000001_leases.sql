-- Several signers sharing one state (issue 26). A zone is signed only by
-- the holder of its lease; every commit of a run checks, in its
-- transaction, that the lease is still the holder's and unexpired.
-- Times in milliseconds of the database's clock (every signer judges
-- expiry by the same clock). A row is never deleted: a release expires
-- it, and fencing keeps growing with every new holder.
CREATE TABLE zone_leases (
    zone_id    INTEGER PRIMARY KEY REFERENCES zones(id),
    holder     TEXT    NOT NULL,   -- "serve HOST/PID", "sign HOST/PID"
    fencing    INTEGER NOT NULL,   -- grows by one with every new holder
    since      INTEGER NOT NULL,   -- when this holder took it
    expires_at INTEGER NOT NULL    -- renewed by the holder well before
);

-- The signers (`signet serve` processes) sharing the database: each
-- writes its row at start and a heartbeat with every lease renewal; the
-- live ones (heartbeat within a lease period) share the zones.
CREATE TABLE signers (
    name    TEXT    PRIMARY KEY,   -- HOST/PID
    pid     INTEGER NOT NULL,
    started INTEGER NOT NULL,      -- Unix seconds
    seen_at INTEGER NOT NULL       -- its last heartbeat (database clock, ms)
);
