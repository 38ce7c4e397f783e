-- Every button click from Slack and what its clicker was told: a click that changes nothing
-- (refused, too late, approvers unreadable) leaves no audit row, yet someone pressed a button.
-- `rotation_id` is the button's value as Slack sent it, not a reference: a click may name a
-- rotation long pruned, or none we ever had.
CREATE TABLE slack_clicks (
    id           INTEGER PRIMARY KEY,
    at_ms        INTEGER NOT NULL,
    rotation_id  TEXT    NOT NULL,
    user_id      TEXT    NOT NULL,
    user_name    TEXT    NOT NULL,
    action       TEXT    NOT NULL,   -- the button's action_id
    outcome      TEXT    NOT NULL,   -- approved, refused, closed, unknown, try_again, …
    answer       TEXT    NOT NULL,   -- the text shown to the clicker alone
    answered_by  TEXT                -- response_url, chat.postEphemeral, or why neither took it
);
CREATE INDEX slack_clicks_by_rotation ON slack_clicks (rotation_id, id);
