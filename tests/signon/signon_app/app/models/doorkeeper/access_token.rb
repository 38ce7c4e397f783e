# Signon's additions to Doorkeeper's AccessToken: alphagov/signon app/models/doorkeeper/access_token.rb
# (verbatim below the shim).
module Doorkeeper
  class AccessToken < ::ActiveRecord::Base
    # Doorkeeper 5.9.6 (Signon's) has `expiration_time_sql`
    # (lib/doorkeeper/models/concerns/expiration_time_sql_math.rb); Debian's 5.5 does not, so
    # this is its SQLite expression from that file. The value is `created_at + expires_in`.
    unless respond_to?(:expiration_time_sql)
      def self.expiration_time_sql
        Arel.sql("DATETIME(#{table_name}.created_at, '+' || #{table_name}.expires_in || ' SECONDS')")
      end
    end

    scope :not_revoked, -> { where(revoked_at: nil) }
    scope :expires_after, ->(time) { where.not(expires_in: nil).where("#{sanitize_sql(expiration_time_sql)} > ?", time) }
    scope :expires_before, ->(time) { where.not(expires_in: nil).where("#{sanitize_sql(expiration_time_sql)} < ?", time) }
    scope :expired, -> { where.not(expires_in: nil).where("#{sanitize_sql(expiration_time_sql)} < ?", Time.current) }
    scope :ordered_by_expires_at, -> { order(expiration_time_sql) }
  end
end
