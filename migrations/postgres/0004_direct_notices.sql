-- A `direct` notification: a message to one person alone (a handover link), its body sealed
-- until the notifier sends it and wiped after.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check
    CHECK (kind IN ('outcome', 'broadcast', 'approval', 'approval_update', 'note', 'direct'));
