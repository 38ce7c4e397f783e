-- See migrations/sqlite/0010_sync_requested.sql.
ALTER TABLE rotations ADD COLUMN sync_requested TEXT;
