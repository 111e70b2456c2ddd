-- The offline KSK (issue 27). The online signer keeps the periods of the
-- requests it wrote (the ZSKs it asked to have signed) and of the
-- responses it imported (the key RRsets and RRSIGs it publishes); the
-- KSK side keeps the responses it signed and the KSKs' states at the
-- start of each of their periods (its plan, from which a later request
-- takes up). An import or a signing replaces the periods of its side
-- from its first period's start on.
CREATE TABLE offline_periods (
    zone_id BIGINT NOT NULL REFERENCES zones(id),
    side    TEXT    NOT NULL CHECK (side IN ('request', 'response', 'plan')),
    start   BIGINT NOT NULL,   -- Unix seconds
    body    TEXT    NOT NULL,   -- the period's records as master-file text; a plan: the keys as JSON
    expires BIGINT,            -- a response: its RRSIGs' earliest expiration
    made_at BIGINT NOT NULL,
    PRIMARY KEY (zone_id, side, start)
);
