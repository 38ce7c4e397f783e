# frozen_string_literal: true

# token-rotator's Signon scripts (deploy/signon/*.rb), run as Signon's Job runs them: a separate
# `rails runner <script>` process with TR_* set, here in a Signon-shaped Rails app
# (tests/signon/signon_app, see README.md) on a fresh SQLite database per test. Each test reads
# the one JSON line the script prints and its exit status, then checks the database.
#
#   ruby tests/signon/test_scripts.rb
#
# Needs Debian's ruby-rails, ruby-doorkeeper and ruby-sqlite3 (minitest comes with ruby).

require "erb"
require "fileutils"
require "json"
require "minitest/autorun"
require "open3"
require "rbconfig"
require "tmpdir"

APP = File.expand_path("signon_app", __dir__)
# SIGNON_SCRIPTS: another copy of the scripts (e.g. an older version, to see what the tests catch).
SCRIPTS = ENV.fetch("SIGNON_SCRIPTS", File.expand_path("../../deploy/signon", __dir__))
TMP = Dir.mktmpdir("token-rotator-signon-")
Minitest.after_run { FileUtils.remove_entry(TMP) }

ENV["RAILS_ENV"] = "production"
ENV["SIGNON_HARNESS_DB"] = File.join(TMP, "boot.sqlite3")
require File.join(APP, "config/environment")
# The helpers themselves, for the unit test of describe_error.
require File.join(SCRIPTS, "common")

TR_VARS = %w[TR_INITIATOR TR_API_USER TR_APPLICATION TR_EXPIRES_IN TR_IDEMPOTENCY_KEY
             TR_WRITE_SECRET TR_TOKEN_ID].freeze
TWO_YEARS = 63_113_904

class SignonScriptsTest < Minitest::Test
  Run = Struct.new(:line, :status, :stdout, :stderr)

  # Each test gets its own copy of one database, built (schema and seed) on first use.
  def setup
    @db = File.join(TMP, "#{name}.sqlite3")
    @secrets = File.join(TMP, "#{name}.secrets.jsonl")
    FileUtils.cp(self.class.template, @db)
    connect(@db)
    find_world
  end

  # --- the world ------------------------------------------------------------------------------

  def self.template
    @template ||= File.join(TMP, "template.sqlite3").tap { |path| new("template").build(path) }
  end

  def connect(path)
    ActiveRecord::Base.establish_connection(adapter: "sqlite3", database: path)
    ActiveRecord::Base.descendants.each { |model| model.reset_column_information unless model.abstract_class? }
  end

  def build(path)
    connect(path)
    ActiveRecord::Migration.verbose = false
    ActiveRecord::Base.transaction do
      load_schema
      seed
    end
  end

  def load_schema
    # Doorkeeper's own migration for oauth_applications, oauth_access_grants, oauth_access_tokens.
    template = File.join(Gem::Specification.find_by_name("doorkeeper").gem_dir,
                         "lib/generators/doorkeeper/templates/migration.rb.erb")
    eval(ERB.new(File.read(template)).result_with_hash(migration_version: "[6.1]"), TOPLEVEL_BINDING, template)
    CreateDoorkeeperTables.new.migrate(:up)
    load File.join(APP, "db/schema.rb")
    ActiveRecord::Base.descendants.each { |model| model.reset_column_information unless model.abstract_class? }
  end

  def seed
    publishing_api = make_app("Publishing API")
    email_alert_api = make_app("Email Alert API")
    make_app("Old Publisher").update!(retired: true)

    # The initiator token-rotator should act as: a dedicated API user, no superadmin, never signed in.
    api_user("token-rotator@alphagov.co.uk", "Token Rotator")
    User.create!(email: "admin@digital.cabinet-office.gov.uk", name: "Admin", role: "superadmin",
                 current_sign_in_at: 10.days.ago)
    User.create!(email: "normal@digital.cabinet-office.gov.uk", name: "Normal", role: "normal")
    User.create!(email: "gone@digital.cabinet-office.gov.uk", name: "Gone", role: "superadmin",
                 suspended_at: Time.current, reason_for_suspension: "left")
    User.create!(email: "person@digital.cabinet-office.gov.uk", name: "A Person")

    # The pair an alert is about: a live token expiring in ~30 days, and (as for tokens made
    # before Signon granted the permission with them) no signin permission.
    api = api_user("short-url-manager@alphagov.co.uk", "Short URL Manager")
    make_token(api, publishing_api, created: 700.days.ago)
    make_token(api, email_alert_api, created: 10.days.ago)
    make_token(api_user("content-tagger@alphagov.co.uk", "Content Tagger"), publishing_api, created: 10.days.ago)
    api_user("no-access@alphagov.co.uk", "No Access")
    # Permission, no token: rotation may mint.
    api_user("permitted@alphagov.co.uk", "Permitted").grant_application_signin_permission(publishing_api)
    suspended = api_user("suspended@alphagov.co.uk", "Suspended")
    make_token(suspended, publishing_api, created: 10.days.ago)
    suspended.suspend("no longer used") # revokes its tokens (lib/devise/models/suspendable.rb)
  end

  def find_world
    @publishing_api = Doorkeeper::Application.find_by!(name: "Publishing API")
    @email_alert_api = Doorkeeper::Application.find_by!(name: "Email Alert API")
    @old_publisher = Doorkeeper::Application.unscoped.find_by!(name: "Old Publisher")
    @initiator = ApiUser.find_by!(email: "token-rotator@alphagov.co.uk")
    @admin, @normal, @gone_admin, @person = %w[admin normal gone person].map do |local|
      User.find_by!(email: "#{local}@digital.cabinet-office.gov.uk")
    end
    @api, @other, @no_access, @permitted, @suspended =
      %w[short-url-manager content-tagger no-access permitted suspended].map { |local| ApiUser.find_by!(email: "#{local}@alphagov.co.uk") }
    @old_token = @api.authorisations.find_by!(application_id: @publishing_api.id)
    @other_app_token = @api.authorisations.find_by!(application_id: @email_alert_api.id)
    @others_token = @other.authorisations.find_by!(application_id: @publishing_api.id)
  end

  def make_app(name)
    Doorkeeper::Application.create!(name: name, redirect_uri: "https://#{name.parameterize}.example/auth/gds/callback")
  end

  def api_user(email, name)
    ApiUser.create!(email: email, name: name, api_user: true)
  end

  def make_token(user, app, created:, expires_in: TWO_YEARS)
    user.authorisations.create!(application_id: app.id, expires_in: expires_in, created_at: created)
  end

  def mint_env(**extra)
    { "TR_INITIATOR" => @initiator.email, "TR_API_USER" => @api.email, "TR_APPLICATION" => "Publishing API",
      "TR_EXPIRES_IN" => TWO_YEARS.to_s, "TR_IDEMPOTENCY_KEY" => "rot-1", "TR_WRITE_SECRET" => "true" }.merge(extra)
  end

  def revoke_env(token, **extra)
    { "TR_INITIATOR" => @initiator.email, "TR_API_USER" => @api.email, "TR_APPLICATION" => "Publishing API",
      "TR_TOKEN_ID" => token.id.to_s }.merge(extra)
  end

  # --- running a script as the Job does ------------------------------------------------------------

  # `bin/rails runner <script>` in the app, TR_* exactly as given (nil unsets). Checks what every
  # run must do: exactly one line on stdout and it is the result, the exit status matches "ok",
  # and no token value appears in stdout or stderr.
  def run_script(script, env)
    check_run(script, *Open3.capture3(script_env(env), RbConfig.ruby, "bin/rails", "runner",
                                      File.join(SCRIPTS, "#{script}.rb"), chdir: APP))
  end

  # Several runs that write nothing (refusals), side by side to save time: [script, env] pairs.
  def run_scripts(runs)
    threads = runs.map do |script, env|
      Thread.new do
        Open3.capture3(script_env(env), RbConfig.ruby, "bin/rails", "runner", File.join(SCRIPTS, "#{script}.rb"), chdir: APP)
      end
    end
    runs.zip(threads).map { |(script, _env), thread| check_run(script, *thread.value) }
  end

  def script_env(env)
    TR_VARS.to_h { |var| [var, nil] }
           .merge("RAILS_ENV" => "production", "SIGNON_HARNESS_DB" => @db, "HARNESS_K8S_SECRETS" => @secrets,
                  "HARNESS_K8S_FAIL" => nil, "HARNESS_FAIL_EVENT_LOG" => nil)
           .merge(env)
  end

  def check_run(script, stdout, stderr, status)
    results = stdout.lines.select { |l| l.start_with?('{"token_rotator":1,') }
    assert_equal 1, results.size, "#{script}: one result line\nstdout: #{stdout}\nstderr: #{stderr}"
    assert_equal 1, stdout.lines.size, "#{script}: nothing else on stdout\nstdout: #{stdout}"
    line = JSON.parse(results.first)
    assert_equal(line["ok"] ? 0 : 1, status.exitstatus, "#{script}: exit status\n#{stdout}#{stderr}")
    token_values.each do |value|
      refute_includes stdout, value, "#{script} printed a token value"
      refute_includes stderr, value, "#{script} logged a token value"
    end
    Run.new(line, status.exitstatus, stdout, stderr)
  end

  def token_values
    Doorkeeper::AccessToken.unscoped.pluck(:token, :refresh_token).flatten.compact
  end

  def counts
    { tokens: Doorkeeper::AccessToken.unscoped.count, live: Doorkeeper::AccessToken.unscoped.where(revoked_at: nil).count,
      permissions: UserApplicationPermission.count, secrets: secrets_applied.size,
      users: User.unscoped.order(:id).pluck(:id, :role, :suspended_at, :current_sign_in_at, :updated_at) }
      .merge(EventLog.table_exists? ? { events: EventLog.count } : {})
  end

  def secrets_applied
    File.exist?(@secrets) ? File.readlines(@secrets).map { |l| JSON.parse(l) } : []
  end

  def assert_refused(code, run)
    assert_equal false, run.line["ok"], run.stdout
    assert_equal code, run.line["refused"], run.stdout
    assert_equal 1, run.status
    refute_empty run.line["error"].to_s
  end

  def assert_nothing_written(before)
    assert_equal before, counts, "nothing may be written"
  end

  def permitted?(user, app)
    UserApplicationPermission.exists?(user_id: user.id, supported_permission_id: app.signin_permission.id)
  end

  # --- mint ------------------------------------------------------------------------------------------

  def test_mint_makes_token_permission_and_event_with_initiator_and_writes_the_secret
    before = counts
    refute permitted?(@api, @publishing_api), "a pair with a live token but no permission may rotate"
    run = run_script("mint", mint_env)

    assert_equal true, run.line["ok"], run.stdout
    assert_equal before[:tokens] + 1, counts[:tokens]
    token = Doorkeeper::AccessToken.find(run.line["id"].to_i)
    assert_equal [@api.id, @publishing_api.id, TWO_YEARS], [token.resource_owner_id, token.application_id, token.expires_in]
    assert_equal token.expires_at.utc.iso8601, run.line["expires_at"]
    assert_equal token.token[-8..], run.line["last8"]
    assert_equal Digest::SHA256.hexdigest(token.token), run.line["sha256"]
    assert_equal "signon-token-short-url-manager-publishing-api", run.line["secret"]
    assert_equal false, run.line["replayed"]
    assert_equal %w[token_rotator ok id expires_at last8 sha256 secret replayed resolved], run.line.keys
    assert_equal({ "email" => @api.email, "application" => "Publishing API", "initiator" => @initiator.email },
                 run.line["resolved"])

    assert permitted?(@api, @publishing_api), "the signin permission is granted, as the UI does"
    events = EventLog.where(event_id: EventLog::ACCESS_TOKEN_GENERATED.id).to_a
    assert_equal 1, events.size
    assert_equal [@api.uid, @initiator.id, @publishing_api.id, "by token-rotator, rotation rot-1, token #{token.id}"],
                 [events[0].uid, events[0].initiator_id, events[0].application_id, events[0].trailing_message]

    assert_equal [{ "name" => "signon-token-short-url-manager-publishing-api", "type" => "Opaque",
                    "data" => { "bearer_token" => token.token } }], secrets_applied
  end

  def test_mint_without_write_secret_leaves_the_secret_to_the_sync
    run = run_script("mint", mint_env("TR_WRITE_SECRET" => nil))
    assert_equal [true, nil], [run.line["ok"], run.line["secret"]]
    assert_empty secrets_applied
  end

  def test_mint_rerun_with_the_same_key_replays_the_same_token
    first = run_script("mint", mint_env)
    before = counts
    second = run_script("mint", mint_env)

    assert_equal true, second.line["ok"], second.stdout
    assert_equal true, second.line["replayed"]
    assert_equal first.line.except("replayed"), second.line.except("replayed")
    assert_equal before.merge(secrets: before[:secrets] + 1), counts, "no second token or event; the Secret applied again"
    assert_equal 1, EventLog.where(event_id: EventLog::ACCESS_TOKEN_GENERATED.id).count

    # Another rotation is another token.
    third = run_script("mint", mint_env("TR_IDEMPOTENCY_KEY" => "rot-2"))
    assert_equal false, third.line["replayed"]
    refute_equal first.line["id"], third.line["id"]
  end

  def test_mint_whose_secret_apply_fails_names_the_token_and_the_rerun_adopts_it
    before = counts
    failed = run_script("mint", mint_env("HARNESS_K8S_FAIL" => "1"))

    assert_equal false, failed.line["ok"]
    refute failed.line.key?("refused"), "not a refusal: the rotation retries"
    assert_match(/\Athe token was made but Secret signon-token-short-url-manager-publishing-api could not be written: Kubeclient::HttpError: /,
                 failed.line["error"])
    token = Doorkeeper::AccessToken.find(failed.line["id"].to_i)
    refute token.revoked?
    assert_equal [token.token[-8..], Digest::SHA256.hexdigest(token.token), nil, false],
                 failed.line.values_at("last8", "sha256", "secret", "replayed")
    assert_equal before[:tokens] + 1, counts[:tokens]
    assert_empty secrets_applied

    retried = run_script("mint", mint_env)
    assert_equal [true, true, failed.line["id"]], retried.line.values_at("ok", "replayed", "id")
    assert_equal "signon-token-short-url-manager-publishing-api", retried.line["secret"]
    assert_equal token.token, secrets_applied.last.dig("data", "bearer_token")
    assert_equal before[:tokens] + 1, counts[:tokens], "still one new token"
  end

  def test_mint_of_a_key_whose_token_was_revoked_since_is_refused
    first = run_script("mint", mint_env)
    Doorkeeper::AccessToken.find(first.line["id"].to_i).revoke
    before = counts
    run = run_script("mint", mint_env)
    assert_refused "token_unknown", run
    assert_includes run.line["error"], "rot-1"
    assert_nothing_written before
  end

  # --- the initiator --------------------------------------------------------------------------------

  def test_an_api_user_may_be_the_initiator_and_is_recorded_as_such_without_a_warning
    refute @initiator.superadmin?, "an API user needs no role"
    minted = run_script("mint", mint_env)
    revoked = run_script("revoke", revoke_env(@old_token))
    [minted, revoked].each do |run|
      assert_equal true, run.line["ok"], run.stdout
      refute run.line.key?("warning"), run.stdout
    end
    assert_equal [[EventLog::ACCESS_TOKEN_GENERATED.id, @initiator.id], [EventLog::ACCESS_TOKEN_REVOKED.id, @initiator.id]],
                 EventLog.order(:id).pluck(:event_id, :initiator_id)
  end

  def test_a_superadmin_person_may_act_but_every_result_warns_of_the_suspension_after_45_days
    signed_in = @admin.current_sign_in_at.utc
    minted = run_script("mint", mint_env("TR_INITIATOR" => @admin.email))
    revoked = run_script("revoke", revoke_env(@other_app_token, "TR_INITIATOR" => @admin.email, "TR_APPLICATION" => nil))
    refused = run_script("mint", mint_env("TR_INITIATOR" => @admin.email, "TR_API_USER" => @suspended.email))

    assert_equal [true, true], [minted.line["ok"], revoked.line["ok"]]
    assert_refused "api_user_suspended", refused
    [minted, revoked, refused].each do |run|
      warning = run.line["warning"].to_s
      assert_includes warning, "TR_INITIATOR #{@admin.email} is a person's Signon account", run.stdout
      assert_includes warning, "45 days", run.stdout
      assert_includes warning, "last signed in at #{signed_in.iso8601}", run.stdout
      # date(current_sign_in_at) < date(45 days ago): the first run 46 days after the sign-in's date.
      assert_includes warning, "run on or after #{(signed_in.to_date + 46).iso8601} suspends it", run.stdout
      assert_includes warning, "dedicated API user", run.stdout
    end
    assert_equal "warning", minted.line.keys.last
    assert_equal [@admin.id, @admin.id], EventLog.order(:id).pluck(:initiator_id)
  end

  def test_a_superadmin_person_who_never_signed_in_is_warned_too
    @admin.update!(current_sign_in_at: nil)
    run = run_script("check_initiator", { "TR_INITIATOR" => @admin.email })
    assert_equal [true, nil], [run.line["ok"], run.line.dig("initiator", "last_sign_in_at")]
    assert_includes run.line["warning"], "it has never signed in, so it is suspended 45 days after its first sign-in"
  end

  def test_initiator_refusals_write_nothing
    before = counts
    cases = { nil => "initiator_missing", " " => "initiator_missing", "nobody@example.gov.uk" => "initiator_unknown",
              @normal.email => "initiator_not_superadmin", @person.email => "initiator_not_superadmin",
              @gone_admin.email => "initiator_suspended", @suspended.email => "initiator_suspended" }
    runs = run_scripts(cases.keys.map { |initiator| ["mint", mint_env("TR_INITIATOR" => initiator)] } +
                       [["revoke", revoke_env(@old_token, "TR_INITIATOR" => nil)],
                        ["revoke", revoke_env(@old_token, "TR_INITIATOR" => @normal.email)],
                        ["revoke", revoke_env(@old_token, "TR_INITIATOR" => @suspended.email)]])
    (cases.values + %w[initiator_missing initiator_not_superadmin initiator_suspended]).zip(runs).each do |code, run|
      assert_refused code, run
      assert_includes run.line["error"], "TR_INITIATOR"
      refute run.line.key?("warning"), run.stdout
    end
    assert_nothing_written before
    refute @old_token.reload.revoked?
  end

  def test_inactivity_suspension_takes_a_person_initiator_but_never_an_api_user
    # Both last signed in long ago (an API user's sign-in is only possible in a test).
    @admin.update!(current_sign_in_at: 50.days.ago)
    @initiator.update!(current_sign_in_at: 100.days.ago)
    suspended = InactiveUsersSuspender.new.suspend

    assert_equal 1, suspended
    assert @admin.reload.suspended?, "a web user 50 days without a sign-in is suspended"
    refute @initiator.reload.suspended?, "API users are outside web_users"
    person, api = run_scripts([["check_initiator", { "TR_INITIATOR" => @admin.email }],
                               ["check_initiator", { "TR_INITIATOR" => @initiator.email }]])
    assert_refused "initiator_suspended", person
    assert_equal [true, true], [api.line["ok"], api.line.dig("initiator", "api_user")]
  end

  # --- check_initiator ------------------------------------------------------------------------------

  def test_check_initiator_reports_the_initiator_or_refuses_and_writes_nothing
    before = counts
    cases = { nil => "initiator_missing", "nobody@example.gov.uk" => "initiator_unknown",
              @normal.email => "initiator_not_superadmin", @gone_admin.email => "initiator_suspended",
              @suspended.email => "initiator_suspended" }
    api, person, *refusals = run_scripts(([@initiator.email, @admin.email] + cases.keys)
                                           .map { |initiator| ["check_initiator", { "TR_INITIATOR" => initiator }] })

    assert_equal({ "token_rotator" => 1, "ok" => true,
                   "initiator" => { "email" => @initiator.email, "api_user" => true, "suspended" => false, "last_sign_in_at" => nil },
                   "resolved" => { "initiator" => @initiator.email } },
                 api.line)
    assert_equal %w[token_rotator ok initiator resolved warning], person.line.keys
    assert_equal({ "email" => @admin.email, "api_user" => false, "suspended" => false,
                   "last_sign_in_at" => @admin.current_sign_in_at.utc.iso8601 }, person.line["initiator"])
    assert_includes person.line["warning"], "45 days"
    cases.values.zip(refusals).each { |code, run| assert_refused code, run }
    assert_nothing_written before
  end

  def test_api_user_and_application_refusals_write_nothing
    before = counts
    {
      { "TR_API_USER" => @suspended.email } => "api_user_suspended",
      { "TR_API_USER" => @person.email } => "not_an_api_user",
      { "TR_API_USER" => "nobody@alphagov.co.uk" } => "api_user_unknown",
      { "TR_APPLICATION" => "Old Publisher" } => "application_retired",
      { "TR_APPLICATION" => "old-publisher" } => "application_retired",
      { "TR_APPLICATION" => "No Such API" } => "application_unknown",
      { "TR_API_USER" => @no_access.email } => "no_access",
    }.then { |cases| cases.zip(run_scripts(cases.keys.map { |env| ["mint", mint_env(**env)] })) }
     .each do |(env, code), run|
      assert_refused code, run
      assert_includes run.line["error"], env.keys.first
    end
    assert_nothing_written before
  end

  def test_bad_input_is_refused
    before = counts
    runs = ["abc", "0", "1.5", "", (2**31).to_s].map { |v| ["mint", mint_env("TR_EXPIRES_IN" => v)] } +
           [["mint", mint_env("TR_IDEMPOTENCY_KEY" => nil)], ["mint", mint_env("TR_API_USER" => nil)],
            ["revoke", revoke_env(@old_token, "TR_TOKEN_ID" => "12a")], ["list", { "TR_API_USER" => @api.email }]]
    run_scripts(runs).each { |run| assert_refused "bad_input", run }
    assert_nothing_written before
  end

  def test_a_pair_with_permission_but_no_token_may_mint
    run = run_script("mint", mint_env("TR_API_USER" => @permitted.email, "TR_APPLICATION" => "publishing-api"))
    assert_equal [true, "signon-token-permitted-publishing-api"], run.line.values_at("ok", "secret")
    assert_equal 1, @permitted.authorisations.count
  end

  def test_token_life_is_expires_in_seconds_from_creation
    run = run_script("mint", mint_env("TR_EXPIRES_IN" => "63113904"))
    token = Doorkeeper::AccessToken.find(run.line["id"].to_i)
    assert_equal ApiUser::DEFAULT_TOKEN_LIFE, 63_113_904
    assert_equal (token.created_at + 63_113_904).utc.iso8601, run.line["expires_at"]
    assert_in_delta Time.now.to_i + 63_113_904, Time.iso8601(run.line["expires_at"]).to_i, 60
  end

  # --- faults ---------------------------------------------------------------------------------------

  def test_a_failure_inside_the_transaction_rolls_back_token_and_permission
    before = counts
    run = run_script("mint", mint_env("HARNESS_FAIL_EVENT_LOG" => "1"))
    assert_equal false, run.line["ok"]
    refute run.line.key?("refused")
    assert_equal "RuntimeError: harness: event log write failed", run.line["error"]
    assert_nothing_written before
    refute permitted?(@api, @publishing_api)
  end

  def test_an_unexpected_exception_still_prints_one_error_line
    ActiveRecord::Base.connection.drop_table(:event_logs)
    EventLog.reset_column_information
    before = counts
    run = run_script("mint", mint_env)
    assert_equal false, run.line["ok"]
    refute run.line.key?("refused")
    assert_match(/\AActiveRecord::StatementInvalid: .*event_logs/, run.line["error"])
    assert_nothing_written before
  end

  def test_error_messages_never_carry_a_token_value
    value = @old_token.token
    error = ActiveRecord::RecordNotUnique.new("Duplicate entry '#{value}' for key 'index_oauth_access_tokens_on_token'")
    described = TokenRotator.describe_error(error)
    refute_includes described, value
    assert_equal "ActiveRecord::RecordNotUnique: Duplicate entry '[redacted]' for key 'index_oauth_access_tokens_on_token'", described
    assert_includes TokenRotator.describe_error(RuntimeError.new("user #{@api.uid}")), @api.uid, "a uid is not a token"
  end

  def test_no_script_prints_a_token_value
    # run_script checks every run; this one runs every script once on the same pair.
    minted = run_script("mint", mint_env)
    listed = run_script("list", { "TR_API_USER" => @api.email, "TR_APPLICATION" => "Publishing API", "TR_IDEMPOTENCY_KEY" => "rot-1" })
    revoked = run_script("revoke", revoke_env(@old_token, "TR_IDEMPOTENCY_KEY" => "rot-1"))
    inventory = run_script("inventory", {})
    checked = run_script("check_initiator", { "TR_INITIATOR" => @initiator.email })
    output = [minted, listed, revoked, inventory, checked].map { |r| r.stdout + r.stderr }.join
    token_values.each { |value| refute_includes output, value }
    assert_includes output, @old_token.token[-8..], "only the last 8 characters"
  end

  # --- revoke ---------------------------------------------------------------------------------------

  def test_revoke_once_records_the_event_and_twice_records_nothing
    run = run_script("revoke", revoke_env(@old_token, "TR_IDEMPOTENCY_KEY" => "rot-1"))
    assert_equal({ "token_rotator" => 1, "ok" => true, "id" => @old_token.id.to_s, "revoked" => true, "already_revoked" => false,
                   "resolved" => { "email" => @api.email, "application" => "Publishing API", "initiator" => @initiator.email } },
                 run.line)
    assert @old_token.reload.revoked?
    events = EventLog.where(event_id: EventLog::ACCESS_TOKEN_REVOKED.id).to_a
    assert_equal [[@api.uid, @initiator.id, @publishing_api.id, "by token-rotator, rotation rot-1"]],
                 events.map { |e| [e.uid, e.initiator_id, e.application_id, e.trailing_message] }

    before = counts
    again = run_script("revoke", revoke_env(@old_token))
    assert_equal [true, true], again.line.values_at("ok", "already_revoked")
    assert_nothing_written before
  end

  def test_revoke_without_a_key_or_application
    run = run_script("revoke", revoke_env(@other_app_token, "TR_APPLICATION" => nil))
    assert_equal [true, false], run.line.values_at("ok", "already_revoked")
    assert_equal({ "email" => @api.email, "application" => nil, "initiator" => @initiator.email }, run.line["resolved"])
    assert_equal "by token-rotator", EventLog.last.trailing_message
  end

  def test_revoke_of_another_users_or_another_applications_token_is_refused
    before = counts
    runs = run_scripts([["revoke", revoke_env(@others_token)], ["revoke", revoke_env(@other_app_token)],
                        ["revoke", revoke_env(@old_token, "TR_TOKEN_ID" => "999999")]])
    runs.each { |run| assert_refused "token_unknown", run }
    assert_nothing_written before
    refute @others_token.reload.revoked?
    refute @other_app_token.reload.revoked?
  end

  # --- list -----------------------------------------------------------------------------------------

  def test_list_shows_live_tokens_by_expiry_and_the_token_a_rotation_made
    minted = run_script("mint", mint_env("TR_WRITE_SECRET" => nil))
    revoked = make_token(@api, @publishing_api, created: 1.day.ago)
    revoked.revoke
    make_token(@api, @publishing_api, created: 800.days.ago) # expired
    list_env = { "TR_API_USER" => @api.email, "TR_APPLICATION" => "publishing-api" }

    # Reads only, side by side: with the rotation's key, without a key, and with keys of
    # rotations that made nothing (LIKE wildcards and case must not match rot-1).
    keys = ["rot-1", nil, "rot-2", "rot_1", "ROT-1"]
    run, keyless, *others = run_scripts(keys.map { |key| ["list", list_env.merge("TR_IDEMPOTENCY_KEY" => key)] })
    assert_equal true, run.line["ok"], run.stdout
    assert_equal({ "email" => @api.email, "name" => "Short URL Manager" }, run.line["api_user"])
    assert_equal({ "name" => "Publishing API", "uid" => @publishing_api.uid }, run.line["application"])
    assert_equal({ "email" => @api.email, "application" => "Publishing API" }, run.line["resolved"])
    assert_equal "signon-token-short-url-manager-publishing-api", run.line["secret"]
    assert_equal [@old_token.id.to_s, minted.line["id"]], run.line["tokens"].map { |t| t["id"] }
    assert_equal %w[id expires_at last8], run.line["tokens"][0].keys
    assert_equal minted.line.slice("id", "expires_at", "last8", "sha256").merge("revoked" => false), run.line["minted"]

    assert_equal run.line.except("minted"), keyless.line
    keys.drop(2).zip(others).each do |key, other|
      assert other.line.key?("minted"), key
      assert_nil other.line["minted"], key
    end
  end

  def test_list_refusals
    cases = {
      { "TR_API_USER" => @suspended.email, "TR_APPLICATION" => "Publishing API" } => "api_user_suspended",
      { "TR_API_USER" => @person.email, "TR_APPLICATION" => "Publishing API" } => "not_an_api_user",
      { "TR_API_USER" => @api.email, "TR_APPLICATION" => "Old Publisher" } => "application_retired",
      { "TR_API_USER" => @api.email, "TR_APPLICATION" => "nope" } => "application_unknown",
    }
    cases.values.zip(run_scripts(cases.keys.map { |env| ["list", env] })).each { |code, run| assert_refused code, run }
  end

  # --- what a lookup matched ------------------------------------------------------------------------

  # Signon's MySQL finds a user or an application by any spelling of its name (the schema's NOCASE
  # columns do the same here, see db/schema.rb): every script says what it found, as stored, so
  # that token-rotator can see a spelling other than the one it asked for.
  def test_every_lookup_reports_what_it_matched_as_signon_spells_it
    shouted = @api.email.upcase
    assert_equal [@api.id], ApiUser.where(email: shouted).pluck(:id), "lookups ignore case, as in Signon"
    content_store = make_app("Content Store")
    make_token(@api, content_store, created: 10.days.ago)
    expected = { "email" => @api.email, "application" => "Content Store" }

    listed, by_slug, checked = run_scripts([
      ["list", { "TR_API_USER" => shouted, "TR_APPLICATION" => "content store" }],
      ["list", { "TR_API_USER" => @api.email, "TR_APPLICATION" => "content-store" }],
      ["check_initiator", { "TR_INITIATOR" => @initiator.email.capitalize }],
    ])
    assert_equal [true, expected], listed.line.values_at("ok", "resolved"), listed.stdout
    assert_equal expected, by_slug.line["resolved"], by_slug.stdout
    assert_equal({ "initiator" => @initiator.email }, checked.line["resolved"], checked.stdout)

    with_initiator = expected.merge("initiator" => @initiator.email)
    minted = run_script("mint", mint_env("TR_API_USER" => shouted, "TR_APPLICATION" => "CONTENT STORE",
                                         "TR_INITIATOR" => @initiator.email.upcase))
    assert_equal [true, with_initiator], minted.line.values_at("ok", "resolved"), minted.stdout
    assert_equal [@api.id, content_store.id],
                 Doorkeeper::AccessToken.find(minted.line["id"].to_i).then { |t| [t.resource_owner_id, t.application_id] }
    revoked = run_script("revoke", revoke_env(Doorkeeper::AccessToken.find(minted.line["id"].to_i),
                                              "TR_API_USER" => shouted, "TR_APPLICATION" => "content Store"))
    assert_equal [true, with_initiator], revoked.line.values_at("ok", "resolved"), revoked.stdout
  end

  # --- inventory ------------------------------------------------------------------------------------

  def test_inventory_lists_exactly_every_not_revoked_token_of_every_api_user
    newer = make_token(@api, @publishing_api, created: 1.day.ago)
    make_token(@api, @publishing_api, created: 2.days.ago).revoke
    expired = make_token(@api, @publishing_api, created: 800.days.ago)
    only_expired = make_token(@permitted, @email_alert_api, created: 800.days.ago)
    # A token of a suspended API user that is not revoked (suspending revoked the earlier one).
    suspended_token = make_token(@suspended, @email_alert_api, created: 5.days.ago)
    retired_token = Doorkeeper::AccessToken.create!(resource_owner_id: @other.id, application_id: @old_publisher.id,
                                                    expires_in: TWO_YEARS, created_at: 3.days.ago)
    # Doorkeeper's never-expiring token (no expires_in): it sorts first, as NULL does in MySQL's
    # `ordered_by_expires_at`, so the sync would pick the other.
    never_expires = make_token(@other, @email_alert_api, created: 1.day.ago, expires_in: nil)
    expiring = make_token(@other, @email_alert_api, created: 400.days.ago)
    # A person's own OAuth token (signing in to an application) is not an API user's.
    Doorkeeper::AccessToken.create!(resource_owner_id: @person.id, application_id: @publishing_api.id, expires_in: 7200)
    before = counts

    run = run_script("inventory", {})

    assert_equal true, run.line["ok"], run.stdout
    assert_equal %w[token_rotator ok tokens], run.line.keys
    # [api user, application, token, expired, newest, user suspended, application retired], in
    # order: email, application name, expiry.
    expected = [
      [@other, @email_alert_api, never_expires, false, false, false, false],
      [@other, @email_alert_api, expiring, false, true, false, false],
      [@other, @old_publisher, retired_token, false, true, false, true],
      [@other, @publishing_api, @others_token, false, true, false, false],
      [@permitted, @email_alert_api, only_expired, true, true, false, false], # the Secret still holds it
      [@api, @email_alert_api, @other_app_token, false, true, false, false],
      [@api, @publishing_api, expired, true, false, false, false],
      [@api, @publishing_api, @old_token, false, false, false, false],
      [@api, @publishing_api, newer, false, true, false, false],
      [@suspended, @email_alert_api, suspended_token, false, true, true, false],
    ]
    assert_equal(expected.map { |user, app, token, *marks| [user.email, app.name, token.id.to_s, *marks] },
                 run.line["tokens"].map do |t|
                   t.values_at("api_user", "application", "id", "expired", "newest", "api_user_suspended", "application_retired")
                 end)
    expected.zip(run.line["tokens"]).each do |(user, app, token), entry|
      assert_equal({ "api_user" => user.email, "api_user_name" => user.name, "api_user_suspended" => user.suspended?,
                     "application" => app.name, "application_slug" => app.name.parameterize,
                     "application_uid" => app.uid, "application_retired" => app.retired?, "id" => token.id.to_s,
                     "created_at" => token.created_at.utc.iso8601, "expires_at" => token.expires_at&.utc&.iso8601,
                     "expired" => token.expired? == true, "newest" => entry["newest"], "last8" => token.token[-8..],
                     "secret" => "signon-token-#{user.name}-#{app.name}".parameterize }, entry)
    end
    assert_equal "signon-token-short-url-manager-publishing-api", run.line["tokens"][8]["secret"]
    assert_nil run.line["tokens"][0]["expires_at"]
    token_values.each { |value| refute_includes run.stdout, value }
    assert_nothing_written before
  end

  def test_inventory_of_no_tokens_is_an_empty_list
    Doorkeeper::AccessToken.unscoped.update_all(revoked_at: Time.current)
    run = run_script("inventory", {})
    assert_equal({ "token_rotator" => 1, "ok" => true, "tokens" => [] }, run.line)
  end

  # --- the scripts themselves ---------------------------------------------------------------------------

  # Each parses (`ruby -c`), and the ConfigMap the Jobs mount holds every one of them.
  def test_every_script_parses_and_is_in_the_config_map
    scripts = Dir.children(SCRIPTS).select { |f| f.end_with?(".rb") }.sort
    assert_includes scripts, "inventory.rb"
    assert_includes scripts, "check_initiator.rb"
    scripts.each do |script|
      out, status = Open3.capture2e(RbConfig.ruby, "-c", File.join(SCRIPTS, script))
      assert status.success?, "#{script}: #{out}"
    end
    kustomization = File.join(SCRIPTS, "kustomization.yaml")
    skip "no kustomization.yaml beside #{SCRIPTS}" unless File.exist?(kustomization)
    require "yaml"
    files = YAML.safe_load(File.read(kustomization)).fetch("configMapGenerator").flat_map { |g| g.fetch("files") }
    assert_equal scripts, files.sort
  end
end
