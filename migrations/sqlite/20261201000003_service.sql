-- `signet serve`: one service per database, and what `signet status`
-- shows of each zone whether or not the service runs.

-- The service holding the database: named by pid AND start time, like the
-- zones' signing locks. At most one row.
CREATE TABLE service (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    pid     INTEGER NOT NULL,
    started INTEGER,                         -- /proc/PID/stat field 22
    since   INTEGER NOT NULL
);

ALTER TABLE zones ADD COLUMN next_run_why   TEXT;     -- why next_run_at: a key transition, or the signatures' refresh
ALTER TABLE zones ADD COLUMN input_digest   BLOB;     -- SHA-256 of the input the last published run read
ALTER TABLE zones ADD COLUMN input_serial   INTEGER;  -- its SOA serial
ALTER TABLE zones ADD COLUMN sig_expires_at INTEGER;  -- the earliest RRSIG expiration in the published zone, as the gate read it
ALTER TABLE zones ADD COLUMN reload_at      INTEGER;  -- `signet zone reload`: asked at
ALTER TABLE zones ADD COLUMN retry_at       INTEGER;  -- the service's next try after failed runs (NULL: not failing)
ALTER TABLE runs  ADD COLUMN input_serial   INTEGER;  -- the input's SOA serial, when it read
