-- A `direct` notification: a message to one person alone (a handover link), its body sealed
-- until the notifier sends it and wiped after. SQLite cannot alter a CHECK: the table is
-- rebuilt with the same columns and rows.
CREATE TABLE notifications_rebuilt (
    id                 INTEGER PRIMARY KEY,
    rotation_id        TEXT    REFERENCES rotations (id),
    created_at_ms      INTEGER NOT NULL,
    body               TEXT    NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER,
    delivered_at_ms    INTEGER,
    last_error         TEXT,
    kind               TEXT    NOT NULL DEFAULT 'outcome'
        CHECK (kind IN ('outcome', 'broadcast', 'approval', 'approval_update', 'note', 'direct'))
);
INSERT INTO notifications_rebuilt
    (id, rotation_id, created_at_ms, body, attempts, next_attempt_at_ms, delivered_at_ms,
     last_error, kind)
SELECT id, rotation_id, created_at_ms, body, attempts, next_attempt_at_ms, delivered_at_ms,
       last_error, kind
FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_rebuilt RENAME TO notifications;
CREATE INDEX notifications_due ON notifications (next_attempt_at_ms) WHERE next_attempt_at_ms IS NOT NULL;
