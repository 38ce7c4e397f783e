//! Exact names. An issuer whose lookups ignore case (or also take a name's slug) may find a
//! spelling other than the one a target gives, and a rule written for one spelling would then
//! act on the other: rotate, revoke or silence a token no rule chose. Every listing and every
//! mint says what it matched (`Resolved`); the engine goes on only when that is exactly the
//! target's spelling.
//!
//! Canonical spellings are the target's own, as the edge parsed them (`crate::domain`): the
//! user's email in lower case (issuers that fold case store emails that way, so the stored
//! spelling of a matching account is exactly it), the application as the rule or alert names
//! it, or exactly its slug.

use super::row::ENGINE;
use crate::adapters::{AdapterError, Issuer, Resolved, TokenListing};
use crate::domain::Target;

/// Why `found` is not exactly `target`, as a sentence; `None` when it is, or when the issuer
/// looks names up exactly and said nothing.
pub(super) fn mismatch(issuer: &str, target: &Target, found: Option<&Resolved>) -> Option<String> {
    let found = found.filter(|found| !found.is_exactly(target))?;
    Some(format!(
        "{issuer} matched the target's names to API user {:?} and application {:?}, not exactly {:?} / {:?} as the target spells them: its lookup ignores case, so a rule written for one spelling would act on the other",
        found.api_user,
        found.application,
        target.api_user.as_str(),
        target.application.as_str(),
    ))
}

/// `issuer`'s listing of `target`, refused for good when its lookups matched another spelling:
/// nothing is minted, revoked or silenced on a listing of another pair. Every step that lists
/// lists through here.
pub(crate) async fn list_exactly(
    issuer: &dyn Issuer,
    target: &Target,
    key: &str,
) -> Result<TokenListing, AdapterError> {
    let listing = issuer.list(target, key).await?;
    match mismatch(issuer.name(), target, listing.resolved.as_ref()) {
        None => Ok(listing),
        Some(why) => Err(AdapterError::permanent(
            ENGINE,
            format!(
                "{why}; nothing was changed. Spell the target as {} stores it (in the rule, the schedule or the alert's labels), or correct the record there",
                issuer.name()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApiUser, Application, Environment};

    fn target(api_user: &str, application: &str) -> Target {
        Target {
            environment: Environment::parse("production").unwrap(),
            api_user: ApiUser::parse(api_user).unwrap(),
            application: Application::parse(application).unwrap(),
        }
    }

    fn found(api_user: &str, application: &str) -> Resolved {
        Resolved {
            api_user: api_user.into(),
            application: application.into(),
        }
    }

    #[test]
    fn only_the_targets_own_spelling_or_the_exact_slug_goes_on() {
        let by_name = target("publisher@alphagov.co.uk", "Content Store");
        let by_slug = target("publisher@alphagov.co.uk", "content-store");
        let stored = found("publisher@alphagov.co.uk", "Content Store");
        assert_eq!(mismatch("The issuer", &by_name, Some(&stored)), None);
        assert_eq!(mismatch("The issuer", &by_slug, Some(&stored)), None);
        // An issuer that looks names up exactly says nothing, and nothing is compared.
        assert_eq!(mismatch("The issuer", &by_name, None), None);

        for (asked, stored) in [
            (
                target("publisher@alphagov.co.uk", "content store"),
                found("publisher@alphagov.co.uk", "Content Store"),
            ),
            (
                target("publisher@alphagov.co.uk", "Content-Store"),
                found("publisher@alphagov.co.uk", "Content Store"),
            ),
            (
                target("Publisher@AlphaGov.co.uk", "Content Store"),
                found("Publisher@alphagov.co.uk", "Content Store"),
            ),
        ] {
            let why = mismatch("The issuer", &asked, Some(&stored)).expect("refused");
            assert!(why.contains(&format!("{:?}", stored.application)), "{why}");
            assert!(
                why.contains(&format!("{:?}", asked.application.as_str())),
                "{why}"
            );
        }
    }
}
