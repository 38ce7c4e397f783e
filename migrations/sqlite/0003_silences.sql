-- Silences: a `silence` decision becomes a short-lived rotation row in phase `silencing` until
-- Alertmanager has the silence, then `silenced` with the silence's id.

ALTER TABLE rotations ADD COLUMN alertname TEXT;   -- matched exactly by the silence
ALTER TABLE rotations ADD COLUMN silence_id TEXT;

-- `silencing` is active too: one silence request per target at a time.
DROP INDEX one_active_rotation_per_target;
CREATE UNIQUE INDEX one_active_rotation_per_target ON rotations (environment, api_user, application)
    WHERE phase IN ('planned', 'issued', 'distributed', 'rolled_out', 'verified', 'grace', 'revoked', 'rolling_back', 'silencing');

-- Where a delivery came from is in `deliveries.receiver`; reconcile writes its own.
