# frozen_string_literal: true

# token-rotator: may the initiator mint.rb and revoke.rb act as still act, and for how long? The
# same checks they make first (TokenRotator.initiator), and nothing else: it reads one user and
# writes nothing. token-rotator runs it at start-up and daily, so that an initiator Signon has
# suspended, or a person's account on its way to suspension, is reported before a rotation
# needs it.
#   rails runner /token-rotator/check_initiator.rb
# In:  TR_INITIATOR (email of the Signon user token-rotator acts as)
# Out: {"token_rotator":1,"ok":true,"initiator":{"email","api_user":bool,"suspended":false,
#       "last_sign_in_at":time-or-null},"resolved":{"initiator"},"warning":text (only for a
#       person's account)}
#      or the refusal: initiator_missing, initiator_unknown, initiator_suspended,
#      initiator_not_superadmin.
# "last_sign_in_at" is Signon's current_sign_in_at, the sign-in its inactivity suspension
# counts from (null for a user who never signed in, as a dedicated API user never does).
# "resolved": the email of the user TR_INITIATOR matched, as Signon spells it (the match ignores
# case, TokenRotator.resolved).

require_relative "common"

TokenRotator.run do
  user = TokenRotator.initiator
  { ok: true, initiator: TokenRotator.describe_initiator(user), resolved: { initiator: user.email } }
end
