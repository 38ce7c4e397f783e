//! Names for tokens whose issuer gives them none but their value (a Synoptic token is its own
//! identifier): an HMAC of the value under a key derived from the fingerprint key, so the
//! journal, the logs and Slack can name a token without letting anyone who reads them confirm
//! a guessed token, as an unkeyed hash would.
//!
//! The fingerprint key is the install's key for exactly this (it names the tokens token-rotator
//! makes); names are journaled and looked up again later, so the key they come from must
//! outlive restarts, which it does. Each purpose gets its own key (HMAC of the purpose under the
//! fingerprint key), so a name is never also a token's fingerprint, nor another issuer's name.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Keys;

/// Names the tokens of one issuer. Cheap to clone; its key is wiped when dropped.
#[derive(Clone)]
pub struct TokenNamer {
    key: [u8; 32],
}

impl std::fmt::Debug for TokenNamer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenNamer([redacted])")
    }
}

impl Drop for TokenNamer {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.key.zeroize();
    }
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

impl TokenNamer {
    /// The namer for `purpose` (e.g. `"synoptic token id"`) under `keys`' fingerprint key.
    pub fn new(keys: &Keys, purpose: &str) -> Self {
        let label = format!("token-rotator/token-name/v1/{purpose}");
        Self {
            key: hmac(keys.fingerprint_key(), label.as_bytes()),
        }
    }

    /// 16 hex digits (64 bits) naming `value`: the same for the same value and install.
    pub fn name(&self, value: &str) -> String {
        hex::encode(&hmac(&self.key, value.as_bytes())[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    #[test]
    fn names_are_keyed_per_install_and_per_purpose() {
        let keys = Keys::random();
        let synoptic = TokenNamer::new(&keys, "synoptic token id");
        let value = "0123456789abcdef0123456789abcdef";
        let name = synoptic.name(value);
        assert_eq!(name.len(), 16);
        assert_eq!(
            name,
            TokenNamer::new(&keys, "synoptic token id").name(value)
        );
        // Another install (another key) names it otherwise: the name confirms nothing alone.
        let elsewhere = TokenNamer::new(&Keys::random(), "synoptic token id");
        assert_ne!(name, elsewhere.name(value));
        // Nor is it the token's fingerprint, or another purpose's name.
        assert_ne!(name, keys.fingerprint(&SecretString::from(value)).hmac);
        assert_ne!(name, TokenNamer::new(&keys, "other").name(value));
        assert!(!format!("{synoptic:?}").contains(&name));
    }
}
