# frozen_string_literal: true

# token-rotator: an API user's live tokens for one application, and the token a rotation made.
#   rails runner /token-rotator/list.rb
# In:  TR_API_USER (email), TR_APPLICATION, optional TR_IDEMPOTENCY_KEY (a rotation id)
# Out: {"token_rotator":1,"ok":true,"api_user":{"email","name"},"application":{"name","uid"},
#       "secret":"signon-token-…","tokens":[{"id","expires_at","last8"}],
#       "minted":null|{"id","expires_at","last8","sha256","revoked"},
#       "resolved":{"email","application"}}
# "tokens" are the live ones (not revoked, not expired), the one expiring last at the end: the
# one Signon's sync task puts in the Secret. "minted" is there only with TR_IDEMPOTENCY_KEY: the
# token that rotation's mint.rb made (found by its event), or null if it made none. "resolved" is
# the user and application the lookups matched, as Signon spells them (TokenRotator.resolved: the
# match ignores case).

require_relative "common"

TokenRotator.run do
  user = TokenRotator.api_user
  app = TokenRotator.application
  key = TokenRotator.optional("TR_IDEMPOTENCY_KEY")

  result = {
    ok: true,
    api_user: { email: user.email, name: user.name },
    application: { name: app.name, uid: app.uid },
    secret: TokenRotator.secret_name(user, app),
    tokens: TokenRotator.live_tokens(user, app).map { |token| TokenRotator.describe(token) },
  }
  if key
    _id, token = TokenRotator.minted_by(user, app, key)
    result[:minted] = token && TokenRotator.fingerprint(token).merge(revoked: token.revoked?)
  end
  result.merge(resolved: TokenRotator.resolved(user, app))
end
