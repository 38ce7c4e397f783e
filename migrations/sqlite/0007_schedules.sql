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
