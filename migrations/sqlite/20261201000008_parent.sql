-- The parent in the loop: each zone's parent agents (authoritative
-- servers of the parent, asked for the zone's DS), resolvers that find
-- them (parent-discovery) or must validate the DS answer
-- (parent-validator), and servers the DS RRset is updated at by RFC 2136
-- (parent-update, with the parent zone's name). zone_remotes is rebuilt to
-- widen its role check (SQLite cannot alter a CHECK).

CREATE TABLE zone_remotes_new (
    id          INTEGER PRIMARY KEY,
    zone_id     INTEGER NOT NULL REFERENCES zones(id),
    role        TEXT    NOT NULL CHECK (role IN ('primary', 'secondary', 'acl', 'parent-agent',
                                                 'parent-discovery', 'parent-validator', 'parent-update')),
    address     TEXT,                           -- ADDR:PORT (ADDR/LEN for acl), NULL: any address
    tsig_key    TEXT    REFERENCES tsig_keys(name),
    notify      INTEGER NOT NULL DEFAULT 0,     -- a secondary NOTIFY is sent to
    parent_zone TEXT,                           -- parent-update: the zone updated (NULL: the name less its first label)
    CHECK (address IS NOT NULL OR tsig_key IS NOT NULL)
);
INSERT INTO zone_remotes_new (id, zone_id, role, address, tsig_key, notify)
    SELECT id, zone_id, role, address, tsig_key, notify FROM zone_remotes;
DROP TABLE zone_remotes;
ALTER TABLE zone_remotes_new RENAME TO zone_remotes;
CREATE UNIQUE INDEX zone_remotes_unique ON zone_remotes(zone_id, role, COALESCE(address, ''));

-- What the check of the parent waits for, per key whose DS is pending:
-- since when, when it last asked and what every agent answered, when it
-- asks next. A row goes when the key's DS is no longer pending.
CREATE TABLE ds_checks (
    zone_id    INTEGER NOT NULL REFERENCES zones(id),
    key_id     INTEGER NOT NULL REFERENCES keys(id),
    want       TEXT    NOT NULL CHECK (want IN ('seen', 'gone')),
    since      INTEGER NOT NULL,
    checked_at INTEGER,
    next_at    INTEGER,
    checks     INTEGER NOT NULL DEFAULT 0,
    answers    TEXT,                            -- every agent's answer at the last check
    PRIMARY KEY (zone_id, key_id)
);

-- The DS set last submitted to the parent (by submit-command or update),
-- and the last failure since.
CREATE TABLE ds_submissions (
    zone_id      INTEGER PRIMARY KEY REFERENCES zones(id),
    wanted       TEXT    NOT NULL,              -- the DS RRset wanted, as text
    via          TEXT,                          -- command, update, both
    submitted_at INTEGER,                       -- NULL until one succeeded
    attempts     INTEGER NOT NULL DEFAULT 0,
    error_at     INTEGER,
    error        TEXT
);
