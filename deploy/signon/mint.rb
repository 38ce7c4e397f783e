# frozen_string_literal: true

# token-rotator: a new token for an API user and application, made as Signon's UI makes one
# (AuthorisationsController#create, app/controllers/authorisations_controller.rb): the token,
# the signin permission, and the ACCESS_TOKEN_GENERATED event naming who did it. Here the three
# are one transaction, so a failure in any leaves none behind.
#   rails runner /token-rotator/mint.rb
# In:  TR_INITIATOR (email of the Signon user token-rotator acts as: a dedicated API user, or a
#      superadmin, see TokenRotator.initiator), TR_API_USER (email), TR_APPLICATION,
#      TR_EXPIRES_IN (seconds), TR_IDEMPOTENCY_KEY (the rotation id), TR_WRITE_SECRET ("true":
#      apply Secret signon-token-<user>-<app> now with Signon's own Kubernetes client, as its
#      sync task would; else leave it to the sync CronJob)
# Out: {"token_rotator":1,"ok":true,"id","expires_at","last8","sha256","secret":name-or-null,
#       "replayed":bool,"resolved":{"email","application","initiator"}} (and "warning" when the
#      initiator is a person's account). "resolved": whom the lookups matched, as Signon spells
#      them (TokenRotator.resolved: the match ignores case); token-rotator compares it with what
#      it asked for, and revokes a token made for another spelling.
#
# One token per rotation: the event records "by token-rotator, rotation <key>, token <id>", so a
# rerun with the same TR_IDEMPOTENCY_KEY finds the token it made, mints nothing and answers that
# token with "replayed":true (applying the Secret again if asked: the first apply may have failed).

require_relative "common"

TokenRotator.run do
  initiator = TokenRotator.initiator
  TokenRotator.input("TR_API_USER")
  TokenRotator.input("TR_APPLICATION")
  expires_in = TokenRotator.expires_in
  key = TokenRotator.input("TR_IDEMPOTENCY_KEY")
  user = TokenRotator.api_user
  app = TokenRotator.application

  # Rotation replaces access, it never creates it: a pair with no live token and no signin
  # permission (User#has_access_to?, app/models/user.rb) has nothing to rotate.
  if TokenRotator.live_tokens(user, app).empty? && !user.has_access_to?(app)
    TokenRotator.refuse("no_access", "TR_API_USER #{user.email} has no live token and no signin permission for TR_APPLICATION " \
                                     "#{app.name}: there is nothing to rotate, and token-rotator never grants new access")
  end

  token, replayed = ActiveRecord::Base.transaction do
    # Locks the user's row (MySQL; SQLite locks the whole database on write) so two runs of one
    # rotation cannot both find no token and both mint.
    user.lock!
    id, token = TokenRotator.minted_by(user, app, key)
    if id
      problem = if token.nil? then "no longer exists"
                elsif token.revoked? then "has been revoked"
                elsif token.expired? then "has expired"
                end
      if problem
        TokenRotator.refuse("token_unknown", "TR_IDEMPOTENCY_KEY #{key}: this rotation already made token #{id} for " \
                                             "#{user.email} and #{app.name}, which #{problem}; start a new rotation")
      end
      next [token, true]
    end

    token = user.authorisations.build(application_id: app.id, expires_in: expires_in)
    token.save!
    user.grant_application_signin_permission(app)
    EventLog.record_event(user, EventLog::ACCESS_TOKEN_GENERATED,
                          initiator: initiator, application: app,
                          trailing_message: "#{TokenRotator.rotation_marker(key)}#{token.id}")
    [token, false]
  end

  secret = nil
  if ENV["TR_WRITE_SECRET"] == "true"
    secret = TokenRotator.secret_name(user, app)
    begin
      TokenRotator.apply_secret(secret, token)
    rescue StandardError => e
      # The token stays (it is committed and named here), so a rerun of this rotation adopts it.
      next { ok: false, error: "the token was made but Secret #{secret} could not be written: #{TokenRotator.describe_error(e)}",
             **TokenRotator.fingerprint(token), secret: nil, replayed: replayed,
             resolved: TokenRotator.resolved(user, app, initiator) }
    end
  end

  { ok: true, **TokenRotator.fingerprint(token), secret: secret, replayed: replayed,
    resolved: TokenRotator.resolved(user, app, initiator) }
end
