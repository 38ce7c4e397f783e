-- Scheduled targets: each rotates every so often, beside the alert-driven ones. The next due
-- time is journaled, and a due target's rotation is started in the same transaction that moves
-- the due time on, so a restart neither runs it twice nor forgets it.

CREATE TABLE schedules (
    name             TEXT    PRIMARY KEY,
    next_due_at_ms   INTEGER NOT NULL,
    last_rotation_id TEXT,
    updated_at_ms    INTEGER NOT NULL
);

-- The tokens listed before a mint, for an issuer that cannot mint idempotently (Synoptic): on a
-- resumed step, a live token not among them is the one the lost mint made.
ALTER TABLE rotations ADD COLUMN known_tokens TEXT;   -- JSON array of token ids

-- Handover: a token for a consumer token-rotator cannot write to. The owner collects it once
-- through an unguessable link within the window, then confirms; the rotation waits in
-- `awaiting_handover` meanwhile (the token stays sealed in its rotation row).
CREATE TABLE handovers (
    id              TEXT    PRIMARY KEY,          -- 128 random bits, the link's only secret
    rotation_id     TEXT    NOT NULL UNIQUE REFERENCES rotations (id),
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,
    collected_at_ms INTEGER,
    confirmed_at_ms INTEGER
);

DROP INDEX one_active_rotation_per_target;
CREATE UNIQUE INDEX one_active_rotation_per_target ON rotations (environment, api_user, application)
    WHERE phase IN ('planned', 'issued', 'distributed', 'rolled_out', 'verified', 'grace', 'revoked', 'rolling_back', 'silencing', 'awaiting_approval', 'awaiting_handover');
