-- See migrations/sqlite/0012_token_inventory.sql.
CREATE TABLE token_inventories (
    environment TEXT   PRIMARY KEY,
    taken_at_ms BIGINT NOT NULL,
    tokens      BIGINT NOT NULL
);

CREATE TABLE inventoried_tokens (
    environment   TEXT   NOT NULL REFERENCES token_inventories (environment),
    api_user      TEXT   NOT NULL,
    application   TEXT   NOT NULL,
    token_id      TEXT   NOT NULL,
    created_at_ms BIGINT,
    expires_at_ms BIGINT,
    expired       BIGINT NOT NULL CHECK (expired IN (0, 1)),
    newest        BIGINT NOT NULL CHECK (newest IN (0, 1)),
    last8         TEXT   NOT NULL,
    suspended     BIGINT NOT NULL CHECK (suspended IN (0, 1)),
    retired       BIGINT NOT NULL CHECK (retired IN (0, 1)),
    renewed_by    TEXT,
    taken_at_ms   BIGINT NOT NULL,
    PRIMARY KEY (environment, token_id)
);
