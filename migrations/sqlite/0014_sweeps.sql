-- The nightly sweep of superseded tokens: the last local day each environment was swept, claimed
-- before the sweep acts, so a restart or a second replica never sweeps one day twice.
CREATE TABLE sweeps (
    environment  TEXT    PRIMARY KEY,
    day          TEXT    NOT NULL,   -- the sweep's local date, YYYY-MM-DD
    swept_at_ms  INTEGER NOT NULL
);
