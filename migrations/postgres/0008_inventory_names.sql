-- What a plan needs of a pair without asking the issuer: the API user's display name (the
-- Secret is named after it) and the application's client id (verification is planned against
-- it). NULL: an issuer that does not report them, or an inventory taken before they were kept.
ALTER TABLE inventoried_tokens ADD COLUMN api_user_name TEXT;
ALTER TABLE inventoried_tokens ADD COLUMN application_uid TEXT;
