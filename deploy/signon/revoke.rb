# frozen_string_literal: true

# token-rotator: revoke one of an API user's tokens, as Signon's UI does
# (AuthorisationsController#revoke), recording ACCESS_TOKEN_REVOKED. Revoking a revoked token
# succeeds and records nothing.
#   rails runner /token-rotator/revoke.rb
# In:  TR_API_USER (email; the token must be theirs), TR_TOKEN_ID
# Out: {"token_rotator":1,"ok":true,"id","revoked":true,"already_revoked":bool}

require_relative "common"

begin
  user = TokenRotator.api_user
  token = user.authorisations.find(Integer(TokenRotator.input("TR_TOKEN_ID")))
  already = token.revoked?
  unless already
    token.revoke
    EventLog.record_event(user, EventLog::ACCESS_TOKEN_REVOKED, application: token.application)
  end
  TokenRotator.finish(ok: true, id: token.id.to_s, revoked: true, already_revoked: already)
rescue *TokenRotator::ERRORS => e
  TokenRotator.fail_with(e)
end
