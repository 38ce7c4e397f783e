//! Domain newtypes, parsed once at the edge so nothing after it re-validates.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Alert labels as Alertmanager sends them; sorted so they hash and print stably.
pub type Labels = BTreeMap<String, String>;

macro_rules! label_newtype {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Accepts any non-blank value; surrounding whitespace is not part of a label.
            pub fn parse(value: &str) -> Result<Self, EmptyValue> {
                let trimmed = value.trim();
                if trimmed.is_empty() {
                    return Err(EmptyValue($what));
                }
                Ok(Self(trimmed.to_owned()))
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
    Environment,
    "environment"
);
label_newtype!(
    /// The API user's email, as Signon's metric labels it (`api_user`).
    ApiUser,
    "api_user"
);
label_newtype!(
    /// The server application the token is for (`application`).
    Application,
    "application"
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
    fn domain_is_what_follows_the_last_at_sign() {
        let user = ApiUser::parse("signon+permissions@AlphaGov.co.uk").unwrap();
        assert_eq!(user.domain(), "alphagov.co.uk");
        assert_eq!(ApiUser::parse("no-email").unwrap().domain(), "");
    }
}
