-- The review hook (issue 28). A zone may have one command that every
-- verified candidate is offered to before it is published; each offer
-- and its verdict is a row of reviews. A decision binds to the
-- candidate's content (fingerprint: SHA-256 over its records but RRSIG,
-- ZONEMD and the SOA serial), so that a run that signs the same content
-- again (new signatures) finds the decision already taken.
CREATE TABLE review_hooks (
    zone_id INTEGER PRIMARY KEY REFERENCES zones(id),
    command TEXT    NOT NULL,   -- JSON array: the program, then its arguments
    timeout INTEGER NOT NULL,   -- seconds
    set_at  INTEGER NOT NULL
);

CREATE TABLE reviews (
    id          INTEGER PRIMARY KEY,
    zone_id     INTEGER NOT NULL REFERENCES zones(id),
    serial      INTEGER NOT NULL,   -- the candidate's SOA serial
    fingerprint BLOB    NOT NULL,   -- 32 bytes
    verdict     TEXT    NOT NULL CHECK (verdict IN
                    ('pending', 'approved', 'rejected', 'timed-out', 'crashed', 'superseded')),
    reason      TEXT,               -- the hook's words (its standard error), the operator's, or why
    decided_by  TEXT    CHECK (decided_by IN ('hook', 'operator', 'signet')),
    records     INTEGER NOT NULL,
    rrsigs      INTEGER NOT NULL,
    offered_at  INTEGER NOT NULL,
    decided_at  INTEGER
);
CREATE INDEX reviews_by_zone ON reviews (zone_id, id);
