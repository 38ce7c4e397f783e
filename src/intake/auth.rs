//! Webhook authentication as Alertmanager sends it: `http_config.authorization` (Bearer) or
//! `http_config.basic_auth` (Basic). Alertmanager does not sign webhooks, so this is all there is.
//!
//! Both sides are hashed before a constant-time compare, so neither the content nor the length of
//! the expected credential leaks through timing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::secrets::{self, SecretError};

pub const TOKEN_VAR: &str = "TOKEN_ROTATOR_WEBHOOK_TOKEN";
pub const USERNAME_VAR: &str = "TOKEN_ROTATOR_WEBHOOK_USERNAME";
pub const PASSWORD_VAR: &str = "TOKEN_ROTATOR_WEBHOOK_PASSWORD";

/// Who may POST alerts. `Disabled` exists only behind `--insecure-no-auth`.
#[derive(Clone)]
pub enum WebhookAuth {
    Disabled,
    Required {
        /// SHA-256 of the bearer token, if one is configured.
        bearer: Option<[u8; 32]>,
        /// SHA-256 of `username:password`, if Basic is configured.
        basic: Option<[u8; 32]>,
    },
}

impl std::fmt::Debug for WebhookAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookAuth::Disabled => f.write_str("WebhookAuth::Disabled"),
            WebhookAuth::Required { bearer, basic } => f
                .debug_struct("WebhookAuth::Required")
                .field("bearer", &bearer.map(|_| "[redacted]"))
                .field("basic", &basic.map(|_| "[redacted]"))
                .finish(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{USERNAME_VAR} and {PASSWORD_VAR} must be set together")]
    HalfBasic,
    #[error(
        "no webhook credential: set {TOKEN_VAR} (or {USERNAME_VAR} and {PASSWORD_VAR}), or their _FILE variants; --insecure-no-auth turns authentication off"
    )]
    Missing,
}

impl WebhookAuth {
    pub fn bearer(token: &SecretString) -> Self {
        WebhookAuth::Required {
            bearer: Some(digest(token.expose_secret().as_bytes())),
            basic: None,
        }
    }

    pub fn basic(username: &str, password: &SecretString) -> Self {
        WebhookAuth::Required {
            bearer: None,
            basic: Some(basic_digest(username, password)),
        }
    }

    /// Reads the credential from the environment through `lookup`; it is an error to have none.
    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, AuthConfigError> {
        let token = secrets::from_env(TOKEN_VAR, lookup)?;
        let username = secrets::from_env(USERNAME_VAR, lookup)?;
        let password = secrets::from_env(PASSWORD_VAR, lookup)?;
        let basic = match (username, password) {
            (Some(user), Some(pass)) => Some(basic_digest(user.expose_secret(), &pass)),
            (None, None) => None,
            _ => return Err(AuthConfigError::HalfBasic),
        };
        let bearer = token.map(|t| digest(t.expose_secret().as_bytes()));
        if bearer.is_none() && basic.is_none() {
            return Err(AuthConfigError::Missing);
        }
        Ok(WebhookAuth::Required { bearer, basic })
    }

    /// Checks an `Authorization` header value. The scheme is case-insensitive (RFC 9110).
    pub fn permits(&self, header: Option<&[u8]>) -> bool {
        let (bearer, basic) = match self {
            WebhookAuth::Disabled => return true,
            WebhookAuth::Required { bearer, basic } => (bearer, basic),
        };
        let Some(header) = header.and_then(|h| std::str::from_utf8(h).ok()) else {
            return false;
        };
        let Some((scheme, credential)) = header.trim().split_once(' ') else {
            return false;
        };
        let credential = credential.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            bearer.is_some_and(|expected| equal(&digest(credential.as_bytes()), &expected))
        } else if scheme.eq_ignore_ascii_case("basic") {
            let Ok(decoded) = STANDARD.decode(credential) else {
                return false;
            };
            basic.is_some_and(|expected| equal(&digest(&decoded), &expected))
        } else {
            false
        }
    }
}

fn basic_digest(username: &str, password: &SecretString) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(username.as_bytes());
    hasher.update(b":");
    hasher.update(password.expose_secret().as_bytes());
    hasher.finalize().into()
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_as_alertmanager_sends_them() {
        // Headers from captures 01 (Bearer) and 09 (Basic alertmanager:test-basic-password-456).
        let bearer = WebhookAuth::bearer(&"test-bearer-credential-123".into());
        assert!(bearer.permits(Some(b"Bearer test-bearer-credential-123")));
        assert!(bearer.permits(Some(b"bearer test-bearer-credential-123")));
        assert!(!bearer.permits(Some(b"Bearer test-bearer-credential-12")));
        assert!(!bearer.permits(Some(b"Basic dGVzdA==")));
        assert!(!bearer.permits(None));

        let basic = WebhookAuth::basic("alertmanager", &"test-basic-password-456".into());
        assert!(basic.permits(Some(
            b"Basic YWxlcnRtYW5hZ2VyOnRlc3QtYmFzaWMtcGFzc3dvcmQtNDU2"
        )));
        assert!(!basic.permits(Some(b"Basic bm90OnJpZ2h0")));
        assert!(!basic.permits(Some(b"Basic !!!not-base64")));
    }

    #[test]
    fn disabled_permits_anything() {
        assert!(WebhookAuth::Disabled.permits(None));
    }

    #[test]
    fn debug_output_never_shows_the_digest() {
        let auth = WebhookAuth::bearer(&"s3cret".into());
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert!(format!("{auth:?}").contains("[redacted]"));
    }

    #[test]
    fn environment_without_a_credential_is_refused() {
        let err = WebhookAuth::from_env(&|_| None).unwrap_err();
        assert!(matches!(err, AuthConfigError::Missing));
        let half = WebhookAuth::from_env(&|k| (k == USERNAME_VAR).then(|| "u".to_string()));
        assert!(matches!(half.unwrap_err(), AuthConfigError::HalfBasic));
    }
}
