# frozen_string_literal: true

# Shared by token-rotator's scripts, which Signon runs with `rails runner` in its own image (see
# README "Kubernetes and Signon"). Inputs come from TR_* environment variables; the result is
# exactly one JSON line on stdout that starts with {"token_rotator":1, — token-rotator reads it
# from the pod log. A token's value is never printed: only its id, expiry, last 8 characters and
# SHA-256 (the UI shows the last 8 characters too).

require "digest"
require "json"

module TokenRotator
  module_function

  def finish(result)
    $stdout.puts(JSON.generate({ token_rotator: 1 }.merge(result)))
    $stdout.flush
    exit(result[:ok] ? 0 : 1)
  end

  def fail_with(error)
    finish(ok: false, error: "#{error.class}: #{error.message}")
  end

  def input(name)
    value = ENV.fetch(name)
    raise ArgumentError, "#{name} is empty" if value.strip.empty?

    value
  end

  def api_user
    ApiUser.find_by!(email: input("TR_API_USER"))
  end

  # By name ("Publishing API") or parameterized name ("publishing-api", as Signon's metric says).
  def application
    name = input("TR_APPLICATION")
    Doorkeeper::Application.find_by(name: name) ||
      Doorkeeper::Application.all.find { |app| app.name.parameterize == name } ||
      raise(ActiveRecord::RecordNotFound, "no application named #{name}")
  end

  # The Secret Signon's own sync task writes for this pair (lib/tasks/sync_kubernetes_secrets.rake).
  def secret_name(user, app)
    "signon-token-#{user.name}-#{app.name}".parameterize
  end

  def describe(token)
    {
      id: token.id.to_s,
      expires_at: token.expires_at&.utc&.iso8601,
      last8: token.token[-8..],
    }
  end

  ERRORS = [KeyError, ArgumentError, ActiveRecord::RecordNotFound, ActiveRecord::RecordInvalid].freeze
end
