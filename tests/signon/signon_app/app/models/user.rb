# alphagov/signon app/models/user.rb, the parts token-rotator's scripts depend on (Devise, 2SV,
# organisations and the rest are left out). Method bodies are Signon's.
class User < ApplicationRecord
  # lib/roles.rb defines one `<role>?` per role from the `role` column; only these matter here.
  ROLES = %w[normal organisation_admin super_organisation_admin admin superadmin].freeze

  SUSPENSION_THRESHOLD_PERIOD = 45.days
  UNSUSPENSION_GRACE_PERIOD = 7.days

  validates :name, presence: true
  validates :reason_for_suspension, presence: true, if: proc { |u| u.suspended? }
  validates :role, inclusion: { in: ROLES }

  # A user's API tokens. `joins(:application)` applies Doorkeeper::Application's default scope,
  # so tokens for retired applications are not among them.
  has_many :authorisations, -> { joins(:application) }, class_name: "Doorkeeper::AccessToken", foreign_key: :resource_owner_id
  has_many :application_permissions, -> { joins(:application) }, class_name: "UserApplicationPermission", inverse_of: :user, dependent: :destroy
  has_many :supported_permissions, -> { joins(:application) }, through: :application_permissions

  after_initialize :generate_uid

  # Inactivity suspension (lib/inactive_users_suspender.rb) selects web users only: `api_user`
  # false. An API user is never suspended for not signing in.
  scope :web_users, -> { where(api_user: false) }
  scope :not_suspended, -> { where(suspended_at: nil) }
  scope :last_signed_in_before, ->(date) { web_users.not_suspended.where("date(current_sign_in_at) < date(?)", date) }
  scope :not_recently_unsuspended, -> { where(["unsuspended_at IS NULL OR unsuspended_at < ?", UNSUSPENSION_GRACE_PERIOD.ago]) }

  def generate_uid
    self.uid ||= SecureRandom.uuid # Signon: UUID.generate
  end

  ROLES.each do |role_name|
    define_method("#{role_name}?") { role == role_name } # lib/roles.rb
  end

  # lib/devise/models/suspendable.rb
  def suspended?
    suspended_at.present?
  end

  # lib/devise/models/suspendable.rb: suspending revokes every token.
  def suspend(reason)
    update(reason_for_suspension: reason, suspended_at: Time.current)
    revoke_all_authorisations
  end

  def has_access_to?(application)
    application_permissions.detect { |permission| permission.supported_permission_id == application.signin_permission.id }
  end

  def revoke_all_authorisations
    authorisations.not_revoked.find_each(&:revoke)
  end

  def grant_application_signin_permission(application)
    grant_application_permission(application, SupportedPermission::SIGNIN_NAME)
  end

  def grant_application_permission(application, supported_permission_name)
    grant_application_permissions(application, [supported_permission_name]).first
  end

  # Nothing for a retired application.
  def grant_application_permissions(application, supported_permission_names)
    return [] if application.retired?

    supported_permission_names.map do |supported_permission_name|
      supported_permission = SupportedPermission.find_by(application_id: application.id, name: supported_permission_name)
      grant_permission(supported_permission)
    end
  end

  def grant_permission(supported_permission)
    if persisted?
      application_permissions.where(supported_permission_id: supported_permission.id).first_or_create!
    else
      supported_permissions << supported_permission unless supported_permissions.include?(supported_permission)
    end
  end
end
