//! The two server keys: one fingerprints tokens (HMAC-SHA256), one seals the values we must
//! keep between phases (XChaCha20-Poly1305). Both are 32 random bytes, given base64-encoded,
//! never equal, and wiped from memory when dropped.
//!
//! A sealed value names the key that sealed it (`TRk1` ‖ key id ‖ nonce ‖ ciphertext; the id
//! is the first 4 bytes of the key's SHA-256), so the sealing key can be rotated: the new key
//! seals, the previous one (`TOKEN_ROTATOR_ENCRYPTION_KEY_PREVIOUS`) still opens, and
//! `token-rotator rekey` re-seals what the journal holds, after which the previous key can go.
//! Values sealed before key ids (nonce ‖ ciphertext) are opened with either key.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::{SecretError, from_env};

pub const ENCRYPTION_KEY_VAR: &str = "TOKEN_ROTATOR_ENCRYPTION_KEY";
pub const PREVIOUS_ENCRYPTION_KEY_VAR: &str = "TOKEN_ROTATOR_ENCRYPTION_KEY_PREVIOUS";
pub const FINGERPRINT_KEY_VAR: &str = "TOKEN_ROTATOR_FINGERPRINT_KEY";
const NONCE_LEN: usize = 24;
/// The format mark of a value sealed with a key id.
const MARK: &[u8; 4] = b"TRk1";
const KEY_ID_LEN: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0} is not set (32 random bytes, base64; e.g. `head -c32 /dev/urandom | base64`)")]
    Missing(&'static str),
    #[error("{0} must be 32 bytes encoded as base64")]
    Malformed(&'static str),
    #[error("{0} and {1} are the same key: give each its own 32 random bytes")]
    Same(&'static str, &'static str),
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

/// Both keys (and a previous sealing key during a rotation of it), loaded once.
#[derive(Clone)]
pub struct Keys {
    fingerprint: [u8; 32],
    sealing: [u8; 32],
    previous: Option<[u8; 32]>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.fingerprint.zeroize();
        self.sealing.zeroize();
        if let Some(previous) = &mut self.previous {
            previous.zeroize();
        }
    }
}

fn key_id(key: &[u8; 32]) -> [u8; KEY_ID_LEN] {
    use sha2::Digest;
    let digest = Sha256::digest(key);
    [digest[0], digest[1], digest[2], digest[3]]
}

impl Keys {
    pub fn new(fingerprint: [u8; 32], sealing: [u8; 32]) -> Self {
        Self {
            fingerprint,
            sealing,
            previous: None,
        }
    }

    /// With the sealing key it replaces, which still opens what it sealed.
    pub fn with_previous(mut self, previous: [u8; 32]) -> Self {
        self.previous = Some(previous);
        self
    }

    /// Fresh random keys, for the demo and tests (their journal dies with them).
    pub fn random() -> Self {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).expect("the OS provides randomness");
        let (a, b) = bytes.split_at(32);
        Self::new(a.try_into().expect("32"), b.try_into().expect("32"))
    }

    pub fn from_env(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, KeyError> {
        let fingerprint = key(FINGERPRINT_KEY_VAR, lookup)?;
        let sealing = key(ENCRYPTION_KEY_VAR, lookup)?;
        // One key for both would let a fingerprint help break a seal, and the other way round.
        if fingerprint == sealing {
            return Err(KeyError::Same(FINGERPRINT_KEY_VAR, ENCRYPTION_KEY_VAR));
        }
        let keys = Self::new(fingerprint, sealing);
        Ok(match optional_key(PREVIOUS_ENCRYPTION_KEY_VAR, lookup)? {
            Some(previous) if previous == keys.fingerprint => {
                return Err(KeyError::Same(
                    FINGERPRINT_KEY_VAR,
                    PREVIOUS_ENCRYPTION_KEY_VAR,
                ));
            }
            Some(previous) => keys.with_previous(previous),
            None => keys,
        })
    }

    /// The fingerprint key, from which [`super::TokenNamer`] derives its own.
    pub(super) fn fingerprint_key(&self) -> &[u8; 32] {
        &self.fingerprint
    }

    /// Whether `sealed` was sealed with the current key (what `rekey` leaves alone).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        sealed.len() > MARK.len() + KEY_ID_LEN
            && &sealed[..MARK.len()] == MARK
            && sealed[MARK.len()..MARK.len() + KEY_ID_LEN] == key_id(&self.sealing)
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

    /// Encrypts `value`, bound to `context` (the rotation id and purpose), as
    /// `TRk1` ‖ key id ‖ nonce ‖ ciphertext.
    pub fn seal(&self, value: &SecretString, context: &str) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new(&self.sealing.into());
        let nonce = XNonce::generate();
        let payload = Payload {
            msg: value.expose_secret().as_bytes(),
            aad: context.as_bytes(),
        };
        let mut sealed = MARK.to_vec();
        sealed.extend(key_id(&self.sealing));
        sealed.extend(nonce.iter());
        sealed.extend(
            cipher
                .encrypt(&nonce, payload)
                .expect("encryption cannot fail"),
        );
        sealed
    }

    /// Opens a value sealed by the current key or the previous one.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<SecretString, OpenError> {
        let keys = std::iter::once(&self.sealing).chain(self.previous.as_ref());
        let marked = sealed.len() > MARK.len() + KEY_ID_LEN && &sealed[..MARK.len()] == MARK;
        if marked {
            let id = &sealed[MARK.len()..MARK.len() + KEY_ID_LEN];
            let body = &sealed[MARK.len() + KEY_ID_LEN..];
            for key in keys.clone().filter(|k| key_id(k) == id) {
                if let Ok(value) = open_with(key, body, context) {
                    return Ok(value);
                }
            }
        }
        // Sealed before key ids (or a nonce that happens to begin with the mark).
        keys.into_iter()
            .find_map(|key| open_with(key, sealed, context).ok())
            .ok_or(OpenError)
    }
}

fn open_with(key: &[u8; 32], sealed: &[u8], context: &str) -> Result<SecretString, OpenError> {
    if sealed.len() < NONCE_LEN {
        return Err(OpenError);
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| OpenError)?;
    let cipher = XChaCha20Poly1305::new(&(*key).into());
    let payload = Payload {
        msg: ciphertext,
        aad: context.as_bytes(),
    };
    let plain = cipher.decrypt(&nonce, payload).map_err(|_| OpenError)?;
    String::from_utf8(plain)
        .map(SecretString::from)
        .map_err(|_| OpenError)
}

fn optional_key(
    var: &'static str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<[u8; 32]>, KeyError> {
    match from_env(var, lookup)? {
        None => Ok(None),
        Some(value) => {
            let bytes = STANDARD
                .decode(value.expose_secret().trim())
                .map_err(|_| KeyError::Malformed(var))?;
            bytes
                .try_into()
                .map(Some)
                .map_err(|_| KeyError::Malformed(var))
        }
    }
}

fn key(var: &'static str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<[u8; 32], KeyError> {
    optional_key(var, lookup)?.ok_or(KeyError::Missing(var))
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

    #[test]
    fn the_two_keys_must_differ() {
        let same = STANDARD.encode([7u8; 32]);
        let lookup = |var: &str| {
            [FINGERPRINT_KEY_VAR, ENCRYPTION_KEY_VAR]
                .contains(&var)
                .then(|| same.clone())
        };
        let err = Keys::from_env(&lookup).unwrap_err();
        assert!(err.to_string().contains("are the same key"), "{err}");
    }

    #[test]
    fn a_sealing_key_is_rotated_without_losing_what_the_old_one_sealed() {
        let old = Keys::random();
        let token = SecretString::from("sealed-under-the-old-key");
        let before = old.seal(&token, "r/new");
        let mut new_key = [0u8; 32];
        getrandom::fill(&mut new_key).unwrap();
        let rotated = Keys::new(old.fingerprint, new_key).with_previous(old.sealing);
        assert!(!rotated.is_current(&before));
        assert_eq!(
            rotated.open(&before, "r/new").unwrap().expose_secret(),
            "sealed-under-the-old-key"
        );
        let after = rotated.seal(&token, "r/new");
        assert!(rotated.is_current(&after));
        assert_eq!(&after[..4], b"TRk1");
        // Once the previous key is gone, only values sealed again open.
        let only_new = Keys::new(old.fingerprint, new_key);
        assert!(only_new.open(&before, "r/new").is_err());
        assert!(only_new.open(&after, "r/new").is_ok());
        // A value sealed before key ids (nonce ‖ ciphertext) still opens.
        let legacy = after[8..].to_vec();
        assert!(only_new.open(&legacy, "r/new").is_ok());
    }
}
