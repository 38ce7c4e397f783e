# frozen_string_literal: true

# Shared by token-rotator's scripts, which Signon runs with `rails runner` in its own image (see
# README "Kubernetes and Signon"). Inputs come from TR_* environment variables; the result is
# exactly one JSON line on stdout that starts with {"token_rotator":1, — token-rotator reads it
# from the pod log. A token's value is never printed: only its id, expiry, last 8 characters and
# SHA-256 (the UI shows the last 8 characters too).
#
# Every rule is checked before anything is written. A broken rule is a refusal:
#   {"token_rotator":1,"ok":false,"refused":"<code>","error":"<what to do>"}
# and retrying cannot help. Anything else that goes wrong is {"ok":false,"error":"Class: message"}
# without "refused", which token-rotator may retry. Both exit 1. Any result may also carry
# "warning": something to act on although the run went ahead (a person's account as initiator).
#
# The rules are Signon's own, each named by the file in alphagov/signon it comes from;
# tests/signon/ runs these scripts against a Signon-shaped app that models them.

require "digest"
require "json"

module TokenRotator
  # A rule says no. `code` is the result's "refused" field; the message names the input.
  class Refusal < StandardError
    attr_reader :code

    def initialize(code, message)
      super(message)
      @code = code
    end
  end

  # oauth_access_tokens.expires_in is a 4-byte INT in Signon's db/schema.rb.
  MAX_EXPIRES_IN = 2**31 - 1

  module_function

  # Runs a script's body, which returns its result fields, and prints the one result line
  # whatever happens: nothing the body raises escapes without a line.
  def run
    result = yield
    finish(result)
  rescue Refusal => e
    finish({ ok: false, refused: e.code, error: e.message })
  rescue StandardError => e
    finish({ ok: false, error: describe_error(e) })
  end

  def finish(result)
    ok = false
    line =
      begin
        ok = result[:ok] == true
        result = result.merge(warning: @warnings.join("; ")) if @warnings&.any? && !result.key?(:warning)
        JSON.generate({ token_rotator: 1 }.merge(result))
      rescue StandardError => e
        ok = false
        JSON.generate(token_rotator: 1, ok: false, error: "the result could not be written: #{describe_error(e)}")
      end
    $stdout.puts(line)
    $stdout.flush
    exit(ok ? 0 : 1)
  end

  # "Class: message", valid UTF-8, with anything shaped like a token value cut out: a database
  # error can quote the INSERT that carried the new token (Doorkeeper's tokens are
  # SecureRandom.urlsafe_base64(32), 43 characters of [A-Za-z0-9_-]; a uid's 36 are left alone).
  TOKEN_SHAPED = /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{40,}(?![A-Za-z0-9_-])/

  def describe_error(error)
    message = error.message.to_s.dup.force_encoding(Encoding::UTF_8).scrub("?")
    "#{error.class}: #{message.gsub(TOKEN_SHAPED, '[redacted]')}"
  end

  def refuse(code, message)
    raise Refusal.new(code, message)
  end

  # Something the operator should act on although the run went ahead: the result line's
  # "warning" (whether the run succeeded or not), several joined with "; ".
  def add_warning(message)
    (@warnings ||= []) << message
  end

  # A required input: missing or blank is bad input.
  def input(name)
    value = ENV[name].to_s.strip
    refuse("bad_input", "#{name} is not set") if value.empty?
    value
  end

  # An optional input: nil when missing or blank.
  def optional(name)
    value = ENV[name].to_s.strip
    value.empty? ? nil : value
  end

  # A whole number of seconds above 0 that fits oauth_access_tokens.expires_in.
  def expires_in
    value = input("TR_EXPIRES_IN")
    unless value.match?(/\A\d+\z/) && value.to_i.positive? && value.to_i <= MAX_EXPIRES_IN
      refuse("bad_input", "TR_EXPIRES_IN must be a whole number of seconds from 1 to #{MAX_EXPIRES_IN}, not #{value.inspect}")
    end
    value.to_i
  end

  def token_id
    value = input("TR_TOKEN_ID")
    refuse("bad_input", "TR_TOKEN_ID must be a token's numeric id, not #{value.inspect}") unless value.match?(/\A\d+\z/)
    value.to_i
  end

  # The Signon user token-rotator acts as, recorded as the initiator of the token events
  # (alphagov/signon at f501a92):
  # - app/models/event_log.rb:34-35: ACCESS_TOKEN_GENERATED and ACCESS_TOKEN_REVOKED require an
  #   initiator (validated at :66), and `record_event` (:94-104) is `create!`, so without one it
  #   raises after the token was saved. The initiator is any User: `belongs_to :initiator,
  #   class_name: "User"` (:69), and record_event passes it through untouched (:101); nothing
  #   there asks for a role or a web account. So an API user may be the initiator.
  # - app/policies/authorisation_policy.rb:2-7: only a superadmin may create or revoke an API
  #   user's tokens in the UI. That gates the person signed in to the UI (current_user,
  #   app/controllers/authorisations_controller.rb:17,29); these scripts run with the app's own
  #   database access instead, which the Job's admission policy and RBAC gate. It is kept for a web
  #   user, who could do the same by hand only as a superadmin.
  # - Why an API user is recommended: Signon suspends every web user who has not signed in for
  #   User::SUSPENSION_THRESHOLD_PERIOD, 45 days (app/models/user.rb:8), daily
  #   (lib/tasks/users.rake:18-22; alphagov/govuk-helm-charts
  #   charts/app-config/values-production.yaml:3252-3253, 04:27), through
  #   User.last_signed_in_before (lib/inactive_users_suspender.rb:3), which is
  #   `web_users.not_suspended` (app/models/user.rb:102) and `web_users` is
  #   `where(api_user: false)` (:78): API users are never in it. A dedicated API user, which
  #   never signs in, stays active; a superadmin kept only for token-rotator would be suspended
  #   45 days after its last sign-in, and then every rotation is refused here.
  # - lib/devise/models/suspendable.rb:51-53: a suspended user can do nothing, so it is refused.
  def initiator
    email = optional("TR_INITIATOR")
    unless email
      refuse("initiator_missing", "TR_INITIATOR is not set: give the email of the Signon user token-rotator acts as (a " \
                                  "dedicated API user); Signon records who made or revoked a token")
    end
    user = User.unscoped.find_by(email: email)
    refuse("initiator_unknown", "TR_INITIATOR #{email}: Signon has no user with this email") unless user
    if user.suspended?
      refuse("initiator_suspended", "TR_INITIATOR #{email} is suspended in Signon; unsuspend it, or act as a dedicated API " \
                                    "user (Signon suspends web users after #{suspension_days} days without a sign-in)")
    end
    return user if api_user?(user)

    unless user.superadmin?
      refuse("initiator_not_superadmin", "TR_INITIATOR #{email} is a person's Signon account that is not a superadmin; act as " \
                                         "a dedicated API user, or a superadmin (AuthorisationPolicy)")
    end
    add_warning(web_initiator_warning(user))
    user
  end

  # app/models/user.rb:78: a web user is `api_user: false` (db/schema.rb:160, NOT NULL).
  def api_user?(user)
    user.api_user == true
  end

  # app/models/user.rb:8, read from Signon where it is defined.
  def suspension_days
    period = User.const_defined?(:SUSPENSION_THRESHOLD_PERIOD) ? User::SUSPENSION_THRESHOLD_PERIOD : 45.days
    (period / 1.day).to_i
  end

  # Devise's current_sign_in_at (db/schema.rb:165) is the latest sign-in, the column the
  # suspension compares (Devise's last_sign_in_at is the one before it). nil when the model has
  # no such column or the user never signed in.
  def last_sign_in(user)
    user.has_attribute?(:current_sign_in_at) ? user.current_sign_in_at&.utc : nil
  end

  # A superadmin web user works until Signon suspends it: say when. The suspension compares
  # dates: `date(current_sign_in_at) < date(?)` with 45 days ago (app/models/user.rb:102), so the
  # first daily run on or after the sign-in's date + 46 days suspends it.
  def web_initiator_warning(user)
    days = suspension_days
    last = last_sign_in(user)
    when_text = if last
                  "it last signed in at #{last.iso8601}, so the first daily suspension run on or after " \
                    "#{(last.to_date + days + 1).iso8601} suspends it unless it signs in before then"
                else
                  "it has never signed in, so it is suspended #{days} days after its first sign-in"
                end
    "TR_INITIATOR #{user.email} is a person's Signon account (a superadmin): Signon suspends web users who have not signed " \
      "in for #{days} days, and a suspended initiator is refused, which stops every " \
      "rotation; #{when_text}. Make a dedicated API user token-rotator's initiator instead; API users are never suspended " \
      "for inactivity"
  end

  # The initiator as check_initiator.rb reports it.
  def describe_initiator(user)
    {
      email: user.email,
      api_user: api_user?(user),
      suspended: user.suspended?,
      last_sign_in_at: last_sign_in(user)&.iso8601,
    }
  end

  # app/models/api_user.rb: ApiUser's default scope finds API users only, so a person's account
  # is told apart with User. lib/tasks/sync_kubernetes_secrets.rake syncs only
  # `ApiUser.where(suspended_at: nil)`: a suspended user's token would never reach its Secret
  # (and suspending revoked all its tokens, lib/devise/models/suspendable.rb).
  def api_user
    email = input("TR_API_USER")
    user = ApiUser.find_by(email: email)
    unless user
      if User.unscoped.find_by(email: email)
        refuse("not_an_api_user", "TR_API_USER #{email} is a person's Signon account, not an API user; " \
                                  "token-rotator only rotates API users' tokens")
      end
      refuse("api_user_unknown", "TR_API_USER #{email}: Signon has no API user with this email")
    end
    if user.suspended?
      refuse("api_user_suspended", "TR_API_USER #{email} is suspended in Signon: its sync skips suspended users, so a new " \
                                   "token would never reach its Secret; unsuspend it in Signon first")
    end
    user
  end

  # By name ("Publishing API") or parameterized name ("publishing-api", the `application` label
  # of Signon's metric, lib/collectors/global_prometheus_collector.rb). Unscoped, because
  # app/models/doorkeeper/application.rb's default scope hides retired applications, and a
  # retired one is refused by name: it gets no signin permission
  # (User#grant_application_permissions, app/models/user.rb), its tokens drop out of
  # User#authorisations (which joins the scoped application) and so out of the Secret sync.
  def application
    name = input("TR_APPLICATION")
    apps = Doorkeeper::Application.unscoped
    app = apps.find_by(name: name) || apps.to_a.find { |a| a.name.to_s.parameterize == name }
    refuse("application_unknown", "TR_APPLICATION #{name}: Signon has no application with this name or parameterized name") unless app
    refuse("application_retired", "TR_APPLICATION #{name}: application #{app.name} is retired in Signon") if app.retired?
    app
  end

  # What the lookups matched, spelled as Signon stores it. Signon's MySQL compares these columns
  # without regard to case (alphagov/signon db/schema.rb: `users` is utf8mb3_unicode_ci, :159,
  # with the unique email index at :201; `oauth_applications` is latin1, :89, whose default
  # collation is latin1_swedish_ci, https://dev.mysql.com/doc/refman/8.0/en/charset-we-sets.html,
  # with the unique name index at :102), so `find_by(email: "Publisher@…")` finds
  # "publisher@…" and `find_by(name: "content store")` finds "Content Store". Every script that
  # looks a user or an application up reports here what it found, so that token-rotator can
  # compare it, exactly, with what it asked for. "application" is null when none was asked for.
  def resolved(user, app, initiator = nil)
    found = { email: user.email, application: app&.name }
    initiator ? found.merge(initiator: initiator.email) : found
  end

  # The pair's live tokens (not revoked, not expired), the one expiring last at the end
  # (app/models/doorkeeper/access_token.rb scopes; Doorkeeper's `expired?`).
  def live_tokens(user, app)
    user.authorisations.not_revoked.where(application_id: app.id).ordered_by_expires_at.reject(&:expired?)
  end

  # The Secret Signon's own sync task writes for this pair, key bearer_token
  # (lib/tasks/sync_kubernetes_secrets.rake).
  def secret_name(user, app)
    "signon-token-#{user.name}-#{app.name}".parameterize
  end

  # Signon's Kubernetes client (lib/kubernetes/client.rb), as the sync task uses it.
  def apply_secret(name, token)
    Kubernetes::Client.new.apply_secret(name, { bearer_token: token.token })
  end

  # The ACCESS_TOKEN_GENERATED event mint.rb records says which rotation made which token; it
  # is how a rerun of a rotation finds its token instead of making another.
  def rotation_marker(key)
    "by token-rotator, rotation #{key}, token "
  end

  # [id, token] for the token rotation `key` made for this pair (token nil if it has been
  # deleted), or nil if it made none. LIKE narrows (escape "!" works in MySQL and SQLite);
  # the exact, case-sensitive prefix is checked here, since MySQL compares case-insensitively.
  def minted_by(user, app, key)
    marker = rotation_marker(key)
    messages = EventLog
      .where(uid: user.uid, event_id: EventLog::ACCESS_TOKEN_GENERATED.id, application_id: app.id)
      .where("trailing_message LIKE ? ESCAPE '!'", "#{EventLog.sanitize_sql_like(marker, '!')}%")
      .order(:id)
      .pluck(:trailing_message)
    id = messages.filter_map { |m| m.delete_prefix(marker)[/\A\d+\z/] if m.start_with?(marker) }.first
    return nil unless id

    [id.to_i, user.authorisations.find_by(id: id.to_i)]
  end

  def describe(token)
    {
      id: token.id.to_s,
      expires_at: token.expires_at&.utc&.iso8601,
      last8: token.token[-8..],
    }
  end

  def fingerprint(token)
    describe(token).merge(sha256: Digest::SHA256.hexdigest(token.token))
  end
end
