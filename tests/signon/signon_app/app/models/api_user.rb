# alphagov/signon app/models/api_user.rb: a User flagged `api_user`, found only through this
# default scope (a person's account is not an ApiUser).
class ApiUser < User
  default_scope { where(api_user: true).order(:name) }

  # 2.years.to_i is 63_113_904 s (365.2425 days a year), not 730 days.
  DEFAULT_TOKEN_LIFE = 2.years.to_i
end
