-- Zone transfers: TSIG keys by name (the secret stays in its file), each
-- zone's remotes (primaries it transfers its input from, secondaries it
-- notifies and serves, more clients allowed to transfer), and what the
-- transfers in and out last did, for `signet status`.

CREATE TABLE tsig_keys (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,     -- absolute, lowercase
    algorithm   TEXT    NOT NULL CHECK (algorithm IN ('hmac-sha256')),
    secret_path TEXT    NOT NULL,            -- the file; never the secret
    created_at  INTEGER NOT NULL
);

CREATE TABLE zone_remotes (
    id       INTEGER PRIMARY KEY,
    zone_id  INTEGER NOT NULL REFERENCES zones(id),
    role     TEXT    NOT NULL CHECK (role IN ('primary', 'secondary', 'acl')),
    address  TEXT,                           -- ADDR:PORT (primary, secondary), ADDR/LEN (acl), NULL: any address
    tsig_key TEXT    REFERENCES tsig_keys(name),
    notify   INTEGER NOT NULL DEFAULT 0,     -- a secondary NOTIFY is sent to
    CHECK (address IS NOT NULL OR tsig_key IS NOT NULL)
);
CREATE UNIQUE INDEX zone_remotes_unique ON zone_remotes(zone_id, role, COALESCE(address, ''));

-- The transfer in of a zone whose input is a primary.
CREATE TABLE transfer_in (
    zone_id          INTEGER PRIMARY KEY REFERENCES zones(id),
    primary_serial   INTEGER,                -- the serial the primaries last answered
    checked_at       INTEGER,
    transfer_at      INTEGER,                -- the last complete transfer
    transfer_serial  INTEGER,
    transfer_kind    TEXT,                   -- axfr, ixfr
    transfer_records INTEGER,
    transfer_bytes   INTEGER,
    error_at         INTEGER,                -- the last failure, cleared by a success
    error            TEXT
);

-- What each client of the zone's transfers out last did (by address).
CREATE TABLE transfer_out (
    zone_id            INTEGER NOT NULL REFERENCES zones(id),
    address            TEXT    NOT NULL,     -- the client's IP address
    notified_serial    INTEGER,              -- the last serial a NOTIFY to it was acknowledged for
    notify_acked_at    INTEGER,
    transfer_at        INTEGER,
    transfer_serial    INTEGER,
    transfer_from      INTEGER,              -- IXFR: the client's serial
    transfer_kind      TEXT,                 -- axfr, ixfr, up-to-date
    PRIMARY KEY (zone_id, address)
);

-- The published output's stamp (size, mtime, inode, device) right after
-- publication: a service that starts serves the file only if it is still
-- the version the gate passed.
ALTER TABLE zones ADD COLUMN output_stamp TEXT;
