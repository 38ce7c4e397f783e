-- Kubernetes the way GOV.UK runs it: a token Signon made by itself can be adopted instead of
-- minting one; the consumers' Deployments are baselined before the Secret changes, so their
-- rollout can be awaited; and when the new token reached the Secret.

ALTER TABLE rotations ADD COLUMN adopted INTEGER NOT NULL DEFAULT 0;  -- 1: not minted by us
ALTER TABLE rotations ADD COLUMN rollout_baseline TEXT;              -- JSON {generations, changed}
ALTER TABLE rotations ADD COLUMN distributed_at_ms INTEGER;
