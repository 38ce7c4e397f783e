# alphagov/signon lib/inactive_users_suspender.rb, run daily by `rake users:suspend_inactive`:
# suspends every web user whose last sign-in is older than 45 days and revokes their tokens.
# Signon's body, without PermissionUpdater, ReauthEnforcer and the suspension email (not
# modelled here).
class InactiveUsersSuspender
  def suspend
    inactive_users = User.not_recently_unsuspended.last_signed_in_before(User::SUSPENSION_THRESHOLD_PERIOD.ago).each do |user|
      user.suspended_at = Time.current
      user.reason_for_suspension = reason
      user.save!(validate: false)

      user.revoke_all_authorisations

      EventLog.record_event(user, EventLog::ACCOUNT_AUTOSUSPENDED)
    end

    inactive_users.count
  end

private

  def reason
    "User has not logged in for #{User::SUSPENSION_THRESHOLD_PERIOD.inspect} since" \
      " #{(User::SUSPENSION_THRESHOLD_PERIOD + 1.day).ago.strftime('%d %B %Y')}"
  end
end
