# The parts of Signon's config/initializers/doorkeeper.rb that touch API-user tokens. No
# `hash_token_secrets`, so `token.token` is the value (as in Signon).
Doorkeeper.configure do
  orm :active_record
  access_token_expires_in 2.hours
  use_refresh_token
  grant_flows %w[authorization_code]
end

# Doorkeeper's own models first, then Signon's additions to them (app/models/doorkeeper/).
require "doorkeeper/orm/active_record/access_grant"
require "doorkeeper/orm/active_record/access_token"
require "doorkeeper/orm/active_record/application"
require Rails.root.join("app/models/doorkeeper/access_token").to_s
require Rails.root.join("app/models/doorkeeper/application").to_s
