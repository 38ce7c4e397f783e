-- Shadow mode: a rotation carries the mode it was decided in, fixed at birth, so switching an
-- environment to active never executes a plan made in shadow. A shadow rotation ends in
-- `planned_only` with its plan.

ALTER TABLE alerts ADD COLUMN mode TEXT;        -- the rule's own mode, if it sets one
ALTER TABLE rotations ADD COLUMN mode TEXT NOT NULL DEFAULT 'active' CHECK (mode IN ('active', 'shadow'));
ALTER TABLE rotations ADD COLUMN plan TEXT;     -- JSON {steps, findings, feasible}
