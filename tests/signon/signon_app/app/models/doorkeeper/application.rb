# Signon's additions to Doorkeeper's Application: alphagov/signon app/models/doorkeeper/application.rb
# (the parts the scripts meet).
module Doorkeeper
  class Application < ::ActiveRecord::Base
    has_many :supported_permissions, dependent: :destroy
    has_many :event_logs, class_name: "EventLog"

    # A retired application is invisible by default: `Doorkeeper::Application.find_by(name:)`
    # does not find it, and neither does `User#authorisations` (which joins the application).
    default_scope { not_retired.ordered_by_name }

    scope :ordered_by_name, -> { order("oauth_applications.name") }
    scope :retired, -> { where(retired: true) }
    scope :not_retired, -> { where(retired: false) }

    # Every application gets a "signin" permission when it is made.
    after_create :create_signin_supported_permission

    def signin_permission
      supported_permissions.signin.first
    end

    private

    def create_signin_supported_permission
      supported_permissions.delegated.signin.create!
    end
  end
end
