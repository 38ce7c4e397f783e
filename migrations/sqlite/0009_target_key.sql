-- One identity per token for single flight and cooldown: environment, the API user's email
-- lower-cased (Signon's Devise folds it) and the application's parameterized name, so
-- "Publishing API" and "publishing-api" (Signon's metric label) are one target. Written by
-- token-rotator (`domain::target_key`); rows from before are keyed as well as SQL can.
ALTER TABLE rotations ADD COLUMN target_key TEXT NOT NULL DEFAULT '';
UPDATE rotations SET target_key =
    trim(environment) || char(10) || lower(trim(api_user)) || char(10) ||
    lower(replace(trim(application), ' ', '-'));

DROP INDEX one_active_rotation_per_target;
CREATE UNIQUE INDEX one_active_rotation_per_target ON rotations (target_key)
    WHERE phase IN ('planned', 'issued', 'distributed', 'rolled_out', 'verified', 'grace', 'revoked', 'rolling_back', 'silencing', 'awaiting_approval', 'awaiting_handover');
CREATE INDEX rotations_by_target_key ON rotations (target_key, created_at_ms);
