-- Slack threads: one parent message per (delivery, channel) that started work, its rotations'
-- progress in the thread. `ts` is Slack's id of the parent, journaled so a restart keeps
-- threading; `audit_cursor` is the last audit row already told in the thread.

CREATE TABLE slack_threads (
    id            INTEGER PRIMARY KEY,
    delivery_id   INTEGER REFERENCES deliveries (id),  -- NULL: a command-line rotation
    channel       TEXT    NOT NULL,                    -- as configured: an id or a #name
    channel_id    TEXT,                                -- as Slack answered: always an id
    created_at_ms INTEGER NOT NULL,
    ts            TEXT,                                -- NULL until the parent is posted
    audit_cursor  INTEGER NOT NULL DEFAULT 0,
    parent_digest TEXT                                 -- of the parent as last posted or updated
);
CREATE UNIQUE INDEX one_thread_per_delivery_and_channel ON slack_threads (delivery_id, channel);

ALTER TABLE alerts ADD COLUMN slack_channel TEXT;        -- the rule's own channel, if it sets one
ALTER TABLE rotations ADD COLUMN thread_id INTEGER REFERENCES slack_threads (id);
-- The approval request's message (manual rules with `approval = true`), so it can be edited to
-- say who decided; and who decided.
ALTER TABLE rotations ADD COLUMN approval_ts TEXT;
ALTER TABLE rotations ADD COLUMN decided_by TEXT;

-- What kind of message a notification is: an `outcome` (told in the thread), a `broadcast`
-- (failed or rolled back: in the thread and the channel), an `approval` request with buttons,
-- an `approval_update` (the request edited to say who decided), or a `note` in the thread.
ALTER TABLE notifications ADD COLUMN kind TEXT NOT NULL DEFAULT 'outcome'
    CHECK (kind IN ('outcome', 'broadcast', 'approval', 'approval_update', 'note'));

-- `awaiting_approval` is active: a repeated alert joins the request instead of making another.
DROP INDEX one_active_rotation_per_target;
CREATE UNIQUE INDEX one_active_rotation_per_target ON rotations (environment, api_user, application)
    WHERE phase IN ('planned', 'issued', 'distributed', 'rolled_out', 'verified', 'grace', 'revoked', 'rolling_back', 'silencing', 'awaiting_approval');
