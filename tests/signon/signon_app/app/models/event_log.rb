# alphagov/signon app/models/event_log.rb: the token events and the inactivity suspension's
# (their lines are verbatim), the real validations and `record_event`. ACCESS_TOKEN_GENERATED
# and ACCESS_TOKEN_REVOKED require an initiator, which may be any User (`belongs_to :initiator,
# class_name: "User"`); `record_event` calls `create!`, so a missing one raises "Validation
# failed: Initiator can't be blank" after whatever the caller already saved.
require "ipaddr"

class EventLog < ApplicationRecord
  EVENTS = [
    ACCOUNT_AUTOSUSPENDED = LogEntry.new(id: 4, description: "Account auto-suspended", require_uid: true),
    ACCESS_TOKEN_REGENERATED = LogEntry.new(id: 28, description: "Access token re-generated", require_uid: true, require_application: true), # deprecated
    ACCESS_TOKEN_GENERATED = LogEntry.new(id: 29, description: "Access token generated", require_uid: true, require_application: true, require_initiator: true, access_limited: true),
    ACCESS_TOKEN_REVOKED = LogEntry.new(id: 30, description: "Access token revoked", require_uid: true, require_application: true, require_initiator: true, access_limited: true),
    ACCESS_TOKENS_DELETED = LogEntry.new(id: 44, description: "Access tokens deleted", require_uid: true, access_limited: true),
    ACCESS_TOKEN_AUTO_GENERATED = LogEntry.new(id: 48, description: "Access token automatically generated as existing token due to expire in two weeks", require_uid: true, require_application: true, access_limited: true),
  ].freeze

  EVENTS_REQUIRING_UID = EVENTS.select(&:require_uid?)
  EVENTS_REQUIRING_INITIATOR = EVENTS.select(&:require_initiator?)
  EVENTS_REQUIRING_APPLICATION = EVENTS.select(&:require_application?)

  VALID_OPTIONS = %i[initiator application application_id trailing_message ip_address user_agent_id user_agent_string user_email_string].freeze

  validates :uid, presence: { if: proc { |event_log| EVENTS_REQUIRING_UID.include? event_log.entry } }
  validates :event_id, presence: true
  validate :validate_event_mappable
  validates :initiator_id,   presence: { if: proc { |event_log| EVENTS_REQUIRING_INITIATOR.include? event_log.entry } }
  validates :application_id, presence: { if: proc { |event_log| EVENTS_REQUIRING_APPLICATION.include? event_log.entry } }

  belongs_to :initiator, class_name: "User"
  belongs_to :user, class_name: "User", foreign_key: :uid, primary_key: :uid
  belongs_to :application, class_name: "Doorkeeper::Application"

  # Test-only fault (not Signon's): makes the event fail after the token was saved, to show
  # that mint.rb rolls the token and the permission back with it.
  before_create { raise "harness: event log write failed" if ENV["HARNESS_FAIL_EVENT_LOG"] == "1" }

  def entry
    EVENTS.detect { |event| event.id == event_id }
  end

  def self.record_event(user, event, options = {})
    if options[:ip_address]
      options[:ip_address] = convert_ip_address_to_integer(options[:ip_address])
    end
    attributes = {
      uid: user&.uid,
      event_id: event.id,
    }.merge!(options.slice(*VALID_OPTIONS))

    EventLog.create!(attributes)
  end

  def self.convert_ip_address_to_integer(ip_address_string)
    IPAddr.new(ip_address_string).to_i
  end

  private

  def validate_event_mappable
    unless entry
      errors.add(:event_id, "must have a corresponding `LogEntry` for #{event_id}")
    end
  end
end
