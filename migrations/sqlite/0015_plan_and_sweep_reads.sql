-- What a plan needs of a pair without asking the issuer: the API user's display name (the
-- Secret is named after it) and the application's client id (verification is planned against
-- it). NULL: an issuer that does not report them, or an inventory taken before they were kept.
ALTER TABLE inventoried_tokens ADD COLUMN api_user_name TEXT;
ALTER TABLE inventoried_tokens ADD COLUMN application_uid TEXT;

-- What each environment's last sweep did, as one sentence (NULL: its first sight, which sweeps
-- nothing, or a sweep still under way), for the status page, `token-rotator tokens` and the
-- metrics.
ALTER TABLE sweeps ADD COLUMN outcome TEXT;
ALTER TABLE sweeps ADD COLUMN finished_at_ms INTEGER;
