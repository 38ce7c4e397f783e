# frozen_string_literal: true

# token-rotator: a new token for an API user and application, made exactly as Signon's UI makes
# one (AuthorisationsController#create): the token, the signin permission, the EventLog entry.
#   rails runner /token-rotator/mint.rb
# In:  TR_API_USER (email), TR_APPLICATION, TR_EXPIRES_IN (seconds), TR_IDEMPOTENCY_KEY (the
#      rotation id, for the logs), TR_WRITE_SECRET ("true": apply Secret signon-token-<user>-<app>
#      now, with Signon's own Kubernetes client, as the sync task would; else leave it to the
#      sync CronJob)
# Out: {"token_rotator":1,"ok":true,"id","expires_at","last8","sha256","secret":name-or-null}
#
# token-rotator names the Job after the rotation, so a retried step finds this run instead of
# starting another; if the Job is gone, it lists the tokens and adopts the one this run made.

require_relative "common"

begin
  user = TokenRotator.api_user
  app = TokenRotator.application
  expires_in = Integer(TokenRotator.input("TR_EXPIRES_IN"))
  key = TokenRotator.input("TR_IDEMPOTENCY_KEY")
  write_secret = ENV["TR_WRITE_SECRET"] == "true"

  token = user.authorisations.build(application_id: app.id, expires_in: expires_in)
  token.save!
  user.grant_application_signin_permission(app)
  EventLog.record_event(user, EventLog::ACCESS_TOKEN_GENERATED, application: app)
  Rails.logger.info("token-rotator: minted token #{token.id} for #{user.email} / #{app.name} (rotation #{key})")

  secret = nil
  if write_secret
    secret = TokenRotator.secret_name(user, app)
    Kubernetes::Client.new.apply_secret(secret, { bearer_token: token.token })
  end

  TokenRotator.finish(
    ok: true,
    **TokenRotator.describe(token),
    sha256: Digest::SHA256.hexdigest(token.token),
    secret: secret,
  )
rescue *TokenRotator::ERRORS => e
  TokenRotator.fail_with(e)
end
