-- signet's state: policies, zones, their keys and the key states of the
-- rollover state machine, DS confirmations and operator requests, signing
-- runs, and an audit row for every state transition and operator action.
-- Times are Unix seconds (UTC). PINs are never stored.

CREATE TABLE policies (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    source      TEXT    NOT NULL,            -- the TOML, as imported
    imported_at INTEGER NOT NULL
);

CREATE TABLE zones (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,     -- the apex, lowercase, absolute
    policy_id   INTEGER NOT NULL REFERENCES policies(id),
    input_path  TEXT    NOT NULL,
    output_path TEXT    NOT NULL,
    nsec3_salt  BLOB    NOT NULL DEFAULT x'',
    last_serial INTEGER,
    last_run_at INTEGER,                     -- the `now` of the last run: the clock must not go back
    next_run_at INTEGER,                     -- when the state machine wants to run again
    lock_pid    INTEGER,                     -- the signet process signing it, if any
    lock_since  INTEGER,
    created_at  INTEGER NOT NULL
);

CREATE TABLE keys (
    id             INTEGER PRIMARY KEY,
    zone_id        INTEGER NOT NULL REFERENCES zones(id),
    uri            TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('ksk', 'zsk', 'csk')),
    algorithm      INTEGER NOT NULL,
    key_tag        INTEGER NOT NULL,
    dnskey         BLOB    NOT NULL,         -- DNSKEY RDATA
    goal           TEXT    NOT NULL CHECK (goal IN ('omnipresent', 'hidden')),
    dnskey_state   TEXT    NOT NULL,
    dnskey_since   INTEGER NOT NULL,
    krrsig_state   TEXT    NOT NULL,
    krrsig_since   INTEGER NOT NULL,
    zrrsig_state   TEXT    NOT NULL,
    zrrsig_since   INTEGER NOT NULL,
    ds_state       TEXT    NOT NULL,
    ds_since       INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    active_at      INTEGER,
    retire_at      INTEGER,
    removed_at     INTEGER,                  -- done with: hidden everywhere, deleted from its store
    predecessor_id INTEGER REFERENCES keys(id),
    successor_id   INTEGER REFERENCES keys(id),
    compromised    INTEGER NOT NULL DEFAULT 0,
    ds_pending     INTEGER                   -- NULL, 1 DS submitted, 0 DS retraction asked
);
CREATE INDEX keys_by_zone ON keys(zone_id);

-- What the operator or the parent reported, for the next run to take in.
CREATE TABLE observations (
    id          INTEGER PRIMARY KEY,
    zone_id     INTEGER NOT NULL REFERENCES zones(id),
    key_id      INTEGER REFERENCES keys(id),
    kind        TEXT    NOT NULL CHECK (kind IN ('ds-seen', 'ds-gone', 'rollover', 'compromised')),
    role        TEXT,                        -- for a rollover
    at          INTEGER NOT NULL,
    consumed_at INTEGER                      -- the run that took it in
);

CREATE TABLE runs (
    id       INTEGER PRIMARY KEY,
    zone_id  INTEGER NOT NULL REFERENCES zones(id),
    at       INTEGER NOT NULL,
    serial   INTEGER,
    result   TEXT    NOT NULL CHECK (result IN ('published', 'refused', 'failed')),
    rrsigs   INTEGER NOT NULL DEFAULT 0,
    records  INTEGER NOT NULL DEFAULT 0,
    errors   INTEGER NOT NULL DEFAULT 0,
    warnings INTEGER NOT NULL DEFAULT 0,
    findings TEXT,                           -- JSON, the gate's findings when refused
    message  TEXT,
    seconds  REAL    NOT NULL DEFAULT 0
);

CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    zone_id    INTEGER REFERENCES zones(id),
    key_id     INTEGER REFERENCES keys(id),
    at         INTEGER NOT NULL,
    actor      TEXT    NOT NULL CHECK (actor IN ('machine', 'operator')),
    event      TEXT    NOT NULL,             -- transition, key-created, ds-seen, rollover, run, ...
    record     TEXT,
    from_state TEXT,
    to_state   TEXT,
    message    TEXT    NOT NULL
);
CREATE INDEX audit_by_zone ON audit(zone_id, at);
