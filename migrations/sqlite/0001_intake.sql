-- Intake journal: every webhook delivery that brought something new, and every alert in it with
-- the decision the rule table made. Times are integer Unix milliseconds (they sort and compare
-- the same on every database; see reference/rust-stack.md §1).

CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    received_at_ms   INTEGER NOT NULL,
    receiver         TEXT    NOT NULL,
    group_key        TEXT    NOT NULL,
    status           TEXT,
    -- differs between HA replicas; kept for the audit trail, never used to dedupe
    external_url     TEXT    NOT NULL,
    alert_count      INTEGER NOT NULL,
    truncated_alerts INTEGER NOT NULL
);

CREATE TABLE alerts (
    id             INTEGER PRIMARY KEY,
    -- deferred: a batch inserts its alerts first, then only the deliveries that brought one
    delivery_id    INTEGER NOT NULL REFERENCES deliveries (id) DEFERRABLE INITIALLY DEFERRED,
    received_at_ms INTEGER NOT NULL,
    fingerprint    TEXT    NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('firing', 'resolved')),
    starts_at_ms   INTEGER NOT NULL,
    ends_at_ms     INTEGER,
    labels         TEXT    NOT NULL, -- JSON object
    annotations    TEXT    NOT NULL, -- JSON object
    -- the target; for an unroutable alert, whichever of these labels it did carry
    environment    TEXT,
    api_user       TEXT,
    application    TEXT,
    -- the decision
    action         TEXT    NOT NULL CHECK (action IN ('rotate', 'manual', 'ignore', 'silence', 'unroutable')),
    rule_index     INTEGER,
    rule_name      TEXT,
    action_detail  TEXT,             -- JSON: the rule's action with its fields, as decided
    reason         TEXT,             -- why an alert is unroutable
    -- a retry, a repeat or another HA replica delivering the same alert is the same row
    UNIQUE (fingerprint, status, starts_at_ms)
);

CREATE INDEX alerts_by_target ON alerts (environment, api_user, application);
CREATE INDEX alerts_by_delivery ON alerts (delivery_id);
