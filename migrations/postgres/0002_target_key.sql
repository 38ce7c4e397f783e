-- One identity per token for single flight and cooldown (see migrations/sqlite/0009).
ALTER TABLE rotations ADD COLUMN target_key TEXT NOT NULL DEFAULT '';
UPDATE rotations SET target_key =
    trim(environment) || chr(10) || lower(trim(api_user)) || chr(10) ||
    lower(replace(trim(application), ' ', '-'));

DROP INDEX one_active_rotation_per_target;
CREATE UNIQUE INDEX one_active_rotation_per_target ON rotations (target_key)
    WHERE phase IN ('planned', 'issued', 'distributed', 'rolled_out', 'verified', 'grace', 'revoked',
                    'rolling_back', 'silencing', 'awaiting_approval', 'awaiting_handover');
CREATE INDEX rotations_by_target_key ON rotations (target_key, created_at_ms);
