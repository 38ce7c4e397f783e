//! The two server keys: one fingerprints tokens (HMAC-SHA256), one seals the values we must
//! keep between phases (XChaCha20-Poly1305). Both are 32 random bytes, given base64-encoded.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::{SecretError, from_env};

pub const ENCRYPTION_KEY_VAR: &str = "TOKEN_ROTATOR_ENCRYPTION_KEY";
pub const FINGERPRINT_KEY_VAR: &str = "TOKEN_ROTATOR_FINGERPRINT_KEY";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0} is not set (32 random bytes, base64; e.g. `head -c32 /dev/urandom | base64`)")]
    Missing(&'static str),
    #[error("{0} must be 32 bytes encoded as base64")]
    Malformed(&'static str),
}

#[derive(Debug, thiserror::Error)]
#[error("sealed value cannot be opened: wrong key or corrupted journal")]
pub struct OpenError;

/// How a token is named in the journal, logs and Slack: an HMAC under a server key (so the
/// journal alone cannot confirm a guessed token) and the last four characters, for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFingerprint {
    pub hmac: String,
    pub last4: String,
}

impl std::fmt::Display for TokenFingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (…{})", self.hmac, self.last4)
    }
}

/// Both keys, loaded once.
#[derive(Clone)]
pub struct Keys {
    fingerprint: [u8; 32],
    sealing: [u8; 32],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

impl Keys {
    pub fn new(fingerprint: [u8; 32], sealing: [u8; 32]) -> Self {
        Self {
            fingerprint,
            sealing,
        }
    }

    /// Fresh random keys, for the demo and tests (their journal dies with them).
    pub fn random() -> Self {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).expect("the OS provides randomness");
        let (a, b) = bytes.split_at(32);
        Self::new(a.try_into().expect("32"), b.try_into().expect("32"))
    }

    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, KeyError> {
        Ok(Self::new(
            key(FINGERPRINT_KEY_VAR, lookup)?,
            key(ENCRYPTION_KEY_VAR, lookup)?,
        ))
    }

    pub fn fingerprint(&self, token: &SecretString) -> TokenFingerprint {
        let value = token.expose_secret();
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.fingerprint)
            .expect("HMAC takes any key length");
        mac.update(value.as_bytes());
        let hmac = hex::encode(&mac.finalize().into_bytes()[..8]);
        let last4 = value
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        TokenFingerprint { hmac, last4 }
    }

    /// Encrypts `value`, bound to `context` (the rotation id and purpose), as nonce ‖ ciphertext.
    pub fn seal(&self, value: &SecretString, context: &str) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(&self.sealing.into());
        let nonce = XNonce::generate();
        let payload = Payload {
            msg: value.expose_secret().as_bytes(),
            aad: context.as_bytes(),
        };
        let mut sealed = nonce.to_vec();
        sealed.extend(
            cipher
                .encrypt(&nonce, payload)
                .expect("encryption cannot fail"),
        );
        sealed
    }

    pub fn open(&self, sealed: &[u8], context: &str) -> Result<SecretString, OpenError> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| OpenError)?;
        let cipher = XChaCha20Poly1305::new(&self.sealing.into());
        let payload = Payload {
            msg: ciphertext,
            aad: context.as_bytes(),
        };
        let plain = cipher.decrypt(&nonce, payload).map_err(|_| OpenError)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| OpenError)
    }
}

fn key(var: &'static str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<[u8; 32], KeyError> {
    let value = from_env(var, lookup)?.ok_or(KeyError::Missing(var))?;
    let bytes = STANDARD
        .decode(value.expose_secret().trim())
        .map_err(|_| KeyError::Malformed(var))?;
    bytes.try_into().map_err(|_| KeyError::Malformed(var))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_only_with_the_same_context() {
        let keys = Keys::random();
        let token = SecretString::from("a-token-value-1234");
        let sealed = keys.seal(&token, "rotation-1/new");
        assert!(
            !sealed.windows(4).any(|w| w == b"1234"),
            "ciphertext hides the value"
        );
        assert_eq!(
            keys.open(&sealed, "rotation-1/new")
                .unwrap()
                .expose_secret(),
            "a-token-value-1234"
        );
        assert!(keys.open(&sealed, "rotation-2/new").is_err());
        assert!(Keys::random().open(&sealed, "rotation-1/new").is_err());
    }

    #[test]
    fn fingerprints_are_keyed_and_keep_the_last_four() {
        let keys = Keys::random();
        let a = keys.fingerprint(&"token-abcd".into());
        assert_eq!(a.last4, "abcd");
        assert_eq!(a.hmac.len(), 16);
        assert_eq!(a, keys.fingerprint(&"token-abcd".into()));
        assert_ne!(
            a.hmac,
            Keys::random().fingerprint(&"token-abcd".into()).hmac
        );
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        let short = Keys::from_env(&|v| (v == FINGERPRINT_KEY_VAR).then(|| "c2hvcnQ=".into()));
        assert_eq!(
            short.unwrap_err().to_string(),
            "TOKEN_ROTATOR_FINGERPRINT_KEY must be 32 bytes encoded as base64"
        );
        let missing = Keys::from_env(&|_| None).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("TOKEN_ROTATOR_FINGERPRINT_KEY is not set")
        );
    }
}
