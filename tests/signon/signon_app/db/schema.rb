# The test database. Doorkeeper's tables come from Doorkeeper's own migration template (see
# load_schema in tests/signon/test_scripts.rb); this adds Signon's columns to oauth_applications
# and Signon's own tables, as in alphagov/signon db/schema.rb (only the columns used here).
#
# Case: Signon's MySQL compares users.email and oauth_applications.name without regard to case
# (db/schema.rb: `users` is utf8mb3_unicode_ci, :159; `oauth_applications` is latin1, :89, whose
# default collation is latin1_swedish_ci), so `find_by` finds any spelling of a name. SQLite's
# NOCASE collation on the same two columns does the same for ASCII, which is where it matters:
# the scripts' lookups then match as Signon's do, and the tests see what they report.
ActiveRecord::Schema.define do
  change_column :oauth_applications, :name, :string, null: false, collation: "NOCASE"

  # Signon's extra oauth_applications columns.
  add_column :oauth_applications, :retired, :boolean, default: false, null: false
  add_column :oauth_applications, :api_only, :boolean, default: false, null: false
  add_column :oauth_applications, :supports_push_updates, :boolean, default: true
  add_index :oauth_applications, :name, unique: true, name: "unique_application_name"

  create_table :users do |t|
    t.string :email, null: false, collation: "NOCASE"
    t.string :name, null: false
    t.string :uid, null: false
    t.string :role, default: "normal", null: false
    t.boolean :api_user, default: false, null: false
    t.datetime :current_sign_in_at
    t.datetime :suspended_at
    t.datetime :unsuspended_at
    t.string :reason_for_suspension
    t.timestamps
    t.index :email, unique: true
  end

  create_table :event_logs do |t|
    t.integer :application_id
    t.datetime :created_at, null: false
    t.integer :event_id
    t.integer :initiator_id
    t.decimal :ip_address, precision: 38
    t.text :trailing_message
    t.string :uid
    t.integer :user_agent_id
    t.text :user_agent_string
    t.string :user_email_string
    t.index [:uid, :created_at]
  end

  create_table :supported_permissions do |t|
    t.integer :application_id, null: false
    t.boolean :default, default: false, null: false
    t.boolean :delegated, default: false
    t.boolean :grantable_from_ui, default: true, null: false
    t.string :name
    t.timestamps
    t.index [:application_id, :name], unique: true
  end

  create_table :user_application_permissions do |t|
    t.integer :application_id, null: false
    t.datetime :last_synced_at
    t.integer :supported_permission_id, null: false
    t.integer :user_id, null: false
    t.timestamps
    t.index [:user_id, :application_id, :supported_permission_id], unique: true, name: "index_app_permissions_on_user_and_app_and_supported_permission"
  end
end
