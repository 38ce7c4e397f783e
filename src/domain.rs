//! Domain newtypes, parsed once at the edge so nothing after it re-validates.

pub mod parameterize;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Alert labels as Alertmanager sends them; sorted so they hash and print stably.
pub type Labels = BTreeMap<String, String>;

macro_rules! label_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal, $canonical:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Accepts any non-blank value, in its canonical form: surrounding whitespace is not
            /// part of a label, and each kind folds what the upstream does not tell apart.
            pub fn parse(value: &str) -> Result<Self, EmptyValue> {
                let trimmed = value.trim();
                if trimmed.is_empty() {
                    return Err(EmptyValue($what));
                }
                let canonical: fn(&str) -> String = $canonical;
                Ok(Self(canonical(trimmed)))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = EmptyValue;
            fn try_from(value: String) -> Result<Self, EmptyValue> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

label_newtype!(
    /// `integration`, `staging`, `production`…: Prometheus's external label `environment`.
    /// Compared exactly: it must name a served environment (`[environments.*]`).
    Environment,
    "environment",
    str::to_owned
);
label_newtype!(
    /// The API user's email, as Signon's metric labels it (`api_user`); lower-cased, since
    /// Signon's Devise folds the case of emails (`config/initializers/devise.rb`:
    /// `case_insensitive_keys = %i[email …]`), so `A@x` and `a@x` are one user.
    ApiUser,
    "api_user",
    str::to_lowercase
);
label_newtype!(
    /// The server application the token is for (`application`), with runs of whitespace made
    /// one space. Signon finds it by name or parameterized name, so its identity is
    /// [`Target::key`]'s parameterized form.
    Application,
    "application",
    |v| v.split_whitespace().collect::<Vec<_>>().join(" ")
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is empty")]
pub struct EmptyValue(pub &'static str);

/// What a rotation is about: one token, identified the way the alert identifies it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Target {
    pub environment: Environment,
    pub api_user: ApiUser,
    pub application: Application,
}

impl Target {
    /// The one identity of the token a target names, for single flight and cooldown:
    /// `"Publishing API"` and `"publishing-api"` (Signon's metric label) are one application.
    pub fn key(&self) -> String {
        target_key(
            self.environment.as_str(),
            self.api_user.as_str(),
            self.application.as_str(),
        )
    }
}

/// [`Target::key`] from the three parts as stored.
pub fn target_key(environment: &str, api_user: &str, application: &str) -> String {
    format!(
        "{}\n{}\n{}",
        environment.trim(),
        api_user.trim().to_lowercase(),
        crate::domain::parameterize::parameterize(application)
    )
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} / {} / {}",
            self.environment, self.api_user, self.application
        )
    }
}

impl ApiUser {
    /// The part after the last `@`, lower-cased; empty when the value is not an email.
    pub fn domain(&self) -> String {
        self.0
            .rsplit_once('@')
            .map(|(_, domain)| domain.to_ascii_lowercase())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_are_rejected_with_the_label_name() {
        assert_eq!(
            ApiUser::parse("  ").unwrap_err().to_string(),
            "api_user is empty"
        );
        assert_eq!(Environment::parse(" staging ").unwrap().as_str(), "staging");
    }

    #[test]
    fn targets_are_canonical_so_spellings_of_one_token_are_one_key() {
        let target = |user: &str, app: &str| Target {
            environment: Environment::parse("production").unwrap(),
            api_user: ApiUser::parse(user).unwrap(),
            application: Application::parse(app).unwrap(),
        };
        let plain = target("signon+permissions@alphagov.co.uk", "Publishing API");
        let variant = target(" Signon+Permissions@AlphaGov.co.uk ", "  Publishing   API ");
        assert_eq!(
            variant.api_user.as_str(),
            "signon+permissions@alphagov.co.uk"
        );
        assert_eq!(variant.application.as_str(), "Publishing API");
        assert_eq!(plain, variant);
        assert_eq!(
            plain.key(),
            "production\nsignon+permissions@alphagov.co.uk\npublishing-api"
        );
        assert_eq!(
            plain.key(),
            target("signon+permissions@alphagov.co.uk", "publishing-api").key()
        );
    }

    #[test]
    fn domain_is_what_follows_the_last_at_sign() {
        let user = ApiUser::parse("signon+permissions@AlphaGov.co.uk").unwrap();
        assert_eq!(user.domain(), "alphagov.co.uk");
        assert_eq!(ApiUser::parse("no-email").unwrap().domain(), "");
    }
}

/// An alert's state as Alertmanager sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "firing" => Some(AlertStatus::Firing),
            "resolved" => Some(AlertStatus::Resolved),
            _ => None,
        }
    }
}
