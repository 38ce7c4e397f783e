-- The sync Job a rotation asked for last (its key: the rotation id, or `<id>/rollback`), written
-- before the Job is made. A Job of that key found gone later (the CronJob's history limit deletes
-- failed ones) was made and is not made again, across restarts too.
ALTER TABLE rotations ADD COLUMN sync_requested TEXT;
