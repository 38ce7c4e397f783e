# A small Signon-shaped Rails app, so token-rotator's scripts (deploy/signon/*.rb) can run under
# `rails runner` against real ActiveRecord and real Doorkeeper models, with Signon's own rules
# (copied from alphagov/signon, each file names its source). Debian bookworm's packages: Rails
# 6.1, Doorkeeper 5.5, sqlite3 1.4; Signon itself runs Rails 8.1, Doorkeeper 5.9.6 and MySQL.
require_relative "boot"

require "logger"
require "rails"
require "active_model/railtie"
require "active_record/railtie"
# Doorkeeper is an engine whose controllers subclass ActionController::Base.
require "action_controller/railtie"
require "action_view/railtie"
require "doorkeeper"

module SignonHarness
  class Application < Rails::Application
    config.load_defaults 6.1
    config.root = File.expand_path("..", __dir__)

    # Signon's Jobs run `rails runner` in production, which eager-loads the app.
    config.eager_load = true

    # As Signon's config/application.rb.
    config.active_record.belongs_to_required_by_default = false

    # Signon's config/application.rb: `config.autoload_lib` (so Kubernetes::Client autoloads).
    config.autoload_paths << root.join("lib").to_s
    config.eager_load_paths << root.join("lib").to_s

    # Signon reopens Doorkeeper's models in app/models/doorkeeper/; here they are required
    # explicitly after Doorkeeper's own (config/initializers/doorkeeper.rb), not autoloaded.
    Rails.autoloaders.main.ignore(root.join("app/models/doorkeeper").to_s)

    # Warnings only, on stderr: the scripts' stdout must hold their one result line, and SQL
    # logs (which would carry token values in binds) stay off.
    config.logger = Logger.new($stderr, level: Logger::WARN)
    config.log_level = :warn
    config.secret_key_base = "token-rotator-signon-harness"
  end
end
