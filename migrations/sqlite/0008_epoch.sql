-- The leadership epoch each phase change was written under (0: a replica that does not elect,
-- as with SQLite, or a writer that is not the engine). On PostgreSQL a phase change commits only
-- while its writer's epoch is the journal's; kept here too so both journals have one shape.
ALTER TABLE rotations ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
