-- Source addresses and what NOTIFY got back.
--
-- A zone's own notify-source and transfer-source (one row per address,
-- at most one per family) are kept with its remotes: zone_remotes is
-- rebuilt to widen its role check (SQLite cannot alter a CHECK).
CREATE TABLE zone_remotes_new (
    id          INTEGER PRIMARY KEY,
    zone_id     INTEGER NOT NULL REFERENCES zones(id),
    role        TEXT    NOT NULL CHECK (role IN ('primary', 'secondary', 'acl', 'parent-agent',
                                                 'parent-discovery', 'parent-validator', 'parent-update',
                                                 'notify-source', 'transfer-source')),
    address     TEXT,                           -- ADDR:PORT (ADDR/LEN for acl, ADDR for a source), NULL: any address
    tsig_key    TEXT    REFERENCES tsig_keys(name),
    notify      INTEGER NOT NULL DEFAULT 0,     -- a secondary NOTIFY is sent to
    parent_zone TEXT,                           -- parent-update: the zone updated (NULL: the name less its first label)
    CHECK (address IS NOT NULL OR tsig_key IS NOT NULL)
);
INSERT INTO zone_remotes_new (id, zone_id, role, address, tsig_key, notify, parent_zone)
    SELECT id, zone_id, role, address, tsig_key, notify, parent_zone FROM zone_remotes;
DROP TABLE zone_remotes;
ALTER TABLE zone_remotes_new RENAME TO zone_remotes;
CREATE UNIQUE INDEX zone_remotes_unique ON zone_remotes(zone_id, role, COALESCE(address, ''));

-- The last NOTIFY to each secondary, acknowledged or given up on: the
-- serial, when, how many tries, what the secondary answered (its RCODE,
-- and a TSIG error after a slash), the error, and the source it left from.
ALTER TABLE transfer_out ADD COLUMN notify_serial INTEGER;
ALTER TABLE transfer_out ADD COLUMN notify_at INTEGER;
ALTER TABLE transfer_out ADD COLUMN notify_tries INTEGER;
ALTER TABLE transfer_out ADD COLUMN notify_answer TEXT;
ALTER TABLE transfer_out ADD COLUMN notify_error TEXT;
ALTER TABLE transfer_out ADD COLUMN notify_source TEXT;
