-- The last inventory of each environment's issuer: every token it still honours or reports, of
-- every user, taken daily and replaced whole in one transaction. Never a token's value: its id,
-- its last 8 characters (as the issuer's UI shows them) and what the issuer says of it.

-- One row per environment whose inventory was taken, so that an inventory with no token is
-- told apart from none taken.
CREATE TABLE token_inventories (
    environment TEXT    PRIMARY KEY,
    taken_at_ms INTEGER NOT NULL,
    tokens      INTEGER NOT NULL
);

CREATE TABLE inventoried_tokens (
    environment   TEXT    NOT NULL REFERENCES token_inventories (environment),
    api_user      TEXT    NOT NULL,
    application   TEXT    NOT NULL,
    token_id      TEXT    NOT NULL,
    created_at_ms INTEGER,
    expires_at_ms INTEGER,                                    -- NULL: never expires
    expired       INTEGER NOT NULL CHECK (expired IN (0, 1)),
    newest        INTEGER NOT NULL CHECK (newest IN (0, 1)),   -- 0: superseded in its pair
    last8         TEXT    NOT NULL,
    suspended     INTEGER NOT NULL CHECK (suspended IN (0, 1)),
    retired       INTEGER NOT NULL CHECK (retired IN (0, 1)),
    renewed_by    TEXT,                                       -- NULL: nobody renews the pair
    taken_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (environment, token_id)
);
