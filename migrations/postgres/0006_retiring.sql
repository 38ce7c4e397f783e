-- `retiring` holds the target like any other active phase (see migrations/sqlite/0013).
DROP INDEX one_active_rotation_per_target;
CREATE UNIQUE INDEX one_active_rotation_per_target ON rotations (target_key)
    WHERE phase IN ('planned', 'issued', 'distributed', 'rolled_out', 'verified', 'grace', 'revoked',
                    'rolling_back', 'silencing', 'awaiting_approval', 'awaiting_handover', 'retiring');
