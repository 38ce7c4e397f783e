-- See migrations/sqlite/0014_sweeps.sql.
CREATE TABLE sweeps (
    environment  TEXT   PRIMARY KEY,
    day          TEXT   NOT NULL,
    swept_at_ms  BIGINT NOT NULL
);
