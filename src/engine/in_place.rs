//! An alert names any owner and token. Where its distributor keeps one file per token (and
//! says so: `Distributor::requires_token_in_place`), only the token that file holds is
//! rotated, and only if the file is there: else the rotation would replace a token nobody reads
//! from there (with an issuer whose rotation revokes the old token, the one in use elsewhere)
//! for a value written where nobody reads it. A refusal fails the rotation, for a person.

use secrecy::{ExposeSecret, SecretString};

use super::row::ENGINE;
use crate::adapters::{AdapterError, Issuer, Placement, TokenInfo, TokenListing, Upstreams};
use crate::store::rotations::RotationRow;

/// The listed token `current` (what the placement holds) is, when the distributor requires
/// one; `Ok(None)` when it does not; a permanent error, saying why, when none is there.
pub(super) async fn required(
    up: &Upstreams,
    listing: &TokenListing,
    placement: &Placement,
    current: Option<&SecretString>,
    row: &RotationRow,
) -> Result<Option<TokenInfo>, AdapterError> {
    if !up.distributor.requires_token_in_place() {
        return Ok(None);
    }
    let held = current.filter(|v| !v.expose_secret().trim().is_empty());
    let in_place = match held {
        Some(value) => up.issuer.identify(listing, value).await?,
        None => None,
    };
    match in_place {
        Some(token) => Ok(Some(token)),
        None => Err(AdapterError::permanent(
            ENGINE,
            refusal(
                up.issuer.as_ref(),
                row,
                &up.distributor.describe(placement),
                held.is_some(),
            ),
        )),
    }
}

fn refusal(issuer: &dyn Issuer, row: &RotationRow, placed: &str, holds_something: bool) -> String {
    let what = if holds_something {
        format!(
            "{placed} holds no token {} lists as live for {} / {}",
            issuer.name(),
            row.api_user,
            row.application
        )
    } else {
        format!("{placed} does not exist or is empty, so nothing reads this token from there")
    };
    let revoked = if issuer.revokes_on_mint() {
        format!(" ({} revokes the old token as it rotates)", issuer.name())
    } else {
        String::new()
    };
    format!(
        "refused: {what}; rotating would replace the token in use with one nobody reads{revoked}. Rotate it by hand, or put the token in use there and send the alert again"
    )
}
