-- The rotation engine's journal. A row in `rotations` is written before every external side
-- effect it leads to, and its id is the idempotency key of those effects, so a restart resumes
-- from the phase recorded here and never repeats a mint or a revoke.

ALTER TABLE alerts ADD COLUMN handled_at_ms INTEGER;  -- when the engine took the alert in
ALTER TABLE alerts ADD COLUMN rotation_id TEXT;       -- the rotation it started or joined
CREATE INDEX alerts_unhandled ON alerts (id) WHERE handled_at_ms IS NULL;

CREATE TABLE rotations (
    id                    TEXT    PRIMARY KEY,   -- UUIDv7
    environment           TEXT    NOT NULL,
    api_user              TEXT    NOT NULL,
    application           TEXT    NOT NULL,
    action                TEXT    NOT NULL,      -- the decision: rotate | manual | ignore | silence | unroutable
    rule_name             TEXT,
    action_detail         TEXT,                  -- JSON, as decided
    phase                 TEXT    NOT NULL,
    trigger               TEXT    NOT NULL,      -- what started it: alert:<fingerprint>, cli
    created_at_ms         INTEGER NOT NULL,
    updated_at_ms         INTEGER NOT NULL,
    next_attempt_at_ms    INTEGER,               -- NULL once the phase is terminal
    attempts              INTEGER NOT NULL DEFAULT 0,  -- failed tries of the current phase
    deadline_at_ms        INTEGER,               -- old token's expiry minus the safety margin
    last_error            TEXT,
    outcome               TEXT,                  -- how it ended, in words
    -- gathered before the first side effect
    api_user_name         TEXT,
    application_uid       TEXT,
    secret_name           TEXT,
    old_token_id          TEXT,
    old_token_expires_at_ms INTEGER,
    old_token_last8       TEXT,
    old_secret_fingerprint TEXT,
    old_secret_sealed     BLOB,                  -- for rollback; deleted when the rotation ends
    -- the token we made
    new_token_id          TEXT,
    new_token_expires_at_ms INTEGER,
    new_token_fingerprint TEXT,
    new_token_last4       TEXT,
    new_token_sealed      BLOB,                  -- only between issued and distributed
    verified_at_ms        INTEGER,
    grace_until_ms        INTEGER,
    finished_at_ms        INTEGER
);

-- One active rotation per target: a second alert joins the first instead of racing it.
CREATE UNIQUE INDEX one_active_rotation_per_target ON rotations (environment, api_user, application)
    WHERE phase IN ('planned', 'issued', 'distributed', 'rolled_out', 'verified', 'grace', 'revoked', 'rolling_back');
CREATE INDEX rotations_due ON rotations (next_attempt_at_ms) WHERE next_attempt_at_ms IS NOT NULL;
CREATE INDEX rotations_by_target ON rotations (environment, api_user, application, created_at_ms);

-- One row per transition: when, from, to, why, and what caused it.
CREATE TABLE audit (
    id           INTEGER PRIMARY KEY,
    rotation_id  TEXT    NOT NULL REFERENCES rotations (id),
    at_ms        INTEGER NOT NULL,
    from_phase   TEXT,
    to_phase     TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    trigger      TEXT    NOT NULL
);
CREATE INDEX audit_by_rotation ON audit (rotation_id, id);

-- Slack outbox: written in the same transaction as the outcome, delivered (and retried) later,
-- so a Slack outage never blocks or fails a rotation.
CREATE TABLE notifications (
    id                 INTEGER PRIMARY KEY,
    rotation_id        TEXT    REFERENCES rotations (id),
    created_at_ms      INTEGER NOT NULL,
    body               TEXT    NOT NULL,         -- JSON {"text", "blocks"}
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER,                  -- NULL once delivered or given up
    delivered_at_ms    INTEGER,
    last_error         TEXT
);
CREATE INDEX notifications_due ON notifications (next_attempt_at_ms) WHERE next_attempt_at_ms IS NOT NULL;
