-- The gate's signature memo (issue 13; verify/memo.rs): per zone, the
-- SHA-256 digests of the exact verification inputs of every signature the
-- gate of the last publication found valid, serialized with a checksum.
-- Written only in the commit of the publication it describes; a memo that
-- does not read back is ignored (the next gate verifies everything).
CREATE TABLE gate_memos (
    zone_id INTEGER PRIMARY KEY REFERENCES zones(id) ON DELETE CASCADE,
    serial  INTEGER,           -- the SOA serial of the publication it describes
    made_at INTEGER NOT NULL,  -- that run's time
    entries INTEGER NOT NULL,  -- digests in it
    memo    BLOB NOT NULL      -- SignatureMemo::to_bytes
);

ALTER TABLE zones ADD COLUMN full_verified_at     INTEGER;  -- the last publication whose gate verified every signature with crypto
ALTER TABLE zones ADD COLUMN full_verify_asked_at INTEGER;  -- `signet zone reload --full-verify`: asked at (NULL: not asked, or done)
