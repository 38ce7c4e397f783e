# frozen_string_literal: true

# token-rotator: every token of every API user that Signon still honours or reports, for the
# inventory and for the sweep that revokes tokens a rotation superseded.
#   rails runner /token-rotator/inventory.rb
# In:  nothing
# Out: {"token_rotator":1,"ok":true,"tokens":[{"api_user":email,"api_user_name",
#       "api_user_suspended":bool,"application":name,"application_slug","application_uid","application_retired":bool,
#       "id","created_at","expires_at","expired":bool,"newest":bool,"last8","secret"}]}
#
# Which tokens: every not-revoked token of every API user, expired ones included ("expired":
# true). That is the set behind Signon's signon_api_user_token_expiry_timestamp_seconds metric,
# which the expiry alert reads: `ApiUser.all` and each user's `authorisations.not_revoked`
# (alphagov/signon lib/collectors/global_prometheus_collector.rb:28-35). Two differences, both
# marked rather than hidden:
# - Suspended API users are in it too (ApiUser.all); "api_user_suspended" marks them, since
#   Signon's sync skips them (lib/tasks/sync_kubernetes_secrets.rake:6).
# - Tokens of retired applications are in it, marked "application_retired". The metric leaves
#   them out only because `authorisations` joins the application under its default scope
#   (app/models/user.rb:63, app/models/doorkeeper/application.rb:7), yet such a token is still
#   not revoked. A token whose application was deleted is left out (it belongs to no pair).
# A person's OAuth tokens (web users signing in to applications) are not API users' and are
# never listed (app/models/api_user.rb:2).
#
# "newest" marks, per API user and application, the token Signon's sync task puts in the pair's
# Secret: of the not-revoked ones, the one expiring last (`ordered_by_expires_at` then `last`,
# lib/tasks/sync_kubernetes_secrets.rake:9-10). Any other token of the pair is superseded. Two
# tokens expiring at the same second are ordered by id, the later one newest. A token without
# an expiry sorts first, as NULL does in MySQL's ascending order.
#
# Order: api_user (email), then application (name), then expiry, then id; compared here in Ruby,
# byte by byte, so that the order does not depend on the database's collation. No token value:
# only the last 8 characters, as list.rb. All of it is one line, however many tokens (each
# entry is a few hundred bytes).

require_relative "common"

TokenRotator.run do
  # ApiUser's default scope (app/models/api_user.rb:2) selects API users; its ordering is dropped.
  api_users = ApiUser.unscope(:order)
  users = api_users.to_a.index_by(&:id)
  # Unscoped: the default scope hides retired applications.
  apps = Doorkeeper::Application.unscoped.to_a.index_by(&:id)
  tokens = Doorkeeper::AccessToken.not_revoked.where(resource_owner_id: api_users.select(:id)).to_a

  rows = tokens.filter_map do |token|
    user = users[token.resource_owner_id]
    app = apps[token.application_id]
    [user, app, token] if user && app
  end
  rows.sort_by! do |user, app, token|
    expiry = token.expires_at ? [1, token.expires_at.to_r] : [0, 0]
    [user.email.to_s, app.name.to_s, expiry, token.id]
  end

  entries = rows.each_with_index.map do |(user, app, token), index|
    following = rows[index + 1]
    newest = following.nil? || following[0].id != user.id || following[1].id != app.id
    {
      api_user: user.email,
      api_user_name: user.name,
      api_user_suspended: user.suspended?,
      application: app.name,
      application_slug: app.name.to_s.parameterize,
      application_uid: app.uid,
      application_retired: app.retired? == true,
      id: token.id.to_s,
      created_at: token.created_at&.utc&.iso8601,
      expires_at: token.expires_at&.utc&.iso8601,
      expired: token.expired? == true,
      newest: newest,
      last8: token.token[-8..],
      secret: TokenRotator.secret_name(user, app),
    }
  end

  { ok: true, tokens: entries }
end
