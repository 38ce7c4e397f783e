# frozen_string_literal: true

# token-rotator: revoke one of an API user's tokens as Signon's UI does
# (AuthorisationsController#revoke, app/controllers/authorisations_controller.rb): Doorkeeper's
# `revoke` and the ACCESS_TOKEN_REVOKED event naming who did it, in one transaction. Revoking a
# revoked token succeeds and records nothing.
#   rails runner /token-rotator/revoke.rb
# In:  TR_INITIATOR (email of the Signon user token-rotator acts as: a dedicated API user, or a
#      superadmin, see TokenRotator.initiator), TR_API_USER (email; the token must be theirs),
#      TR_TOKEN_ID, TR_APPLICATION (the token must be for it; if unset, any of the user's
#      tokens), optional TR_IDEMPOTENCY_KEY (the rotation id, recorded)
# Out: {"token_rotator":1,"ok":true,"id","revoked":true,"already_revoked":bool,
#       "resolved":{"email","application" (null without TR_APPLICATION),"initiator"}} (and
#      "warning" when the initiator is a person's account). "resolved": whom the lookups matched,
#      as Signon spells them (TokenRotator.resolved: the match ignores case). The token id binds
#      the revoke to the user (and application) found: another's token is refused.

require_relative "common"

TokenRotator.run do
  initiator = TokenRotator.initiator
  TokenRotator.input("TR_API_USER")
  id = TokenRotator.token_id
  key = TokenRotator.optional("TR_IDEMPOTENCY_KEY")
  user = TokenRotator.api_user
  app = TokenRotator.optional("TR_APPLICATION") && TokenRotator.application

  # Only the user's own tokens, as the UI loads them (`@api_user.authorisations.find`).
  token = user.authorisations.find_by(id: id)
  unless token && (app.nil? || token.application_id == app.id)
    for_app = app ? " for TR_APPLICATION #{app.name}" : ""
    TokenRotator.refuse("token_unknown", "TR_TOKEN_ID #{id} is not a token of TR_API_USER #{user.email}#{for_app}")
  end

  already = ActiveRecord::Base.transaction do
    # Locks the token's row, so of two concurrent revokes only the first records an event.
    token.lock!
    next true if token.revoked?

    token.revoke
    EventLog.record_event(user, EventLog::ACCESS_TOKEN_REVOKED,
                          initiator: initiator, application: token.application,
                          trailing_message: "by token-rotator#{", rotation #{key}" if key}")
    false
  end

  { ok: true, id: token.id.to_s, revoked: true, already_revoked: already,
    resolved: TokenRotator.resolved(user, app, initiator) }
end
