# frozen_string_literal: true

# token-rotator: an API user's live tokens for one application.
#   rails runner /token-rotator/list.rb
# In:  TR_API_USER (email), TR_APPLICATION
# Out: {"token_rotator":1,"ok":true,"api_user":{"email","name"},"application":{"name","uid"},
#       "secret":"signon-token-…","tokens":[{"id","expires_at","last8"}]}

require_relative "common"

begin
  user = TokenRotator.api_user
  app = TokenRotator.application
  live = user.authorisations.not_revoked.where(application_id: app.id)
             .ordered_by_expires_at.reject(&:expired?)
  TokenRotator.finish(
    ok: true,
    api_user: { email: user.email, name: user.name },
    application: { name: app.name, uid: app.uid },
    secret: TokenRotator.secret_name(user, app),
    tokens: live.map { |token| TokenRotator.describe(token) },
  )
rescue *TokenRotator::ERRORS => e
  TokenRotator.fail_with(e)
end
