//! Synoptic's credential API as an issuer, and its data API as the verifier.
//!
//! A Synoptic token is its own identifier, so it never leaves this module in clear: tokens are
//! named `syn-<16 hex digits of an HMAC under the install's key>` ([`TokenNamer`]) and looked
//! up again by that name when one must be cloned or disabled. Expiry cannot be read back (and is only hour-accurate), so the expiry
//! token-rotator asked for is what it journals. The private API key goes as Synoptic documents
//! for the endpoint chosen: `Authorization: Bearer` on `/auth/v2/`, `?apikey=` on the legacy
//! `/v2/auth` (then the URL is a secret, and errors drop it).
//!
//! Whose tokens the list holds depends on the endpoint. On the current `/auth/v2/` tokens belong
//! to the account: "any of the active Private API Keys on your account" lists, clones and
//! disables any of them, console-made ones included (docs.synopticdata.com/account/credential-api).
//! On the legacy `/v2/auth` "only the private key used to generate a token can be used to perform
//! actions on that token" (developers.synopticdata.com/mesonet/v2/auth/). Either way a token
//! being rotated that is not listed is an error (never "already gone"), and a disabled token
//! counts as disabled only once a data request with it is refused as unauthorised.
//!
//! Because the list is the account's, two targets on one account see each other's tokens: one
//! rotation at a time per account ([`Issuer::serialisation_key`]), and a lost create answer is
//! never resolved by guessing which unlisted token is ours ([`Issuer::recover`]).

mod probe;
mod refusals;
pub mod scheduled;
pub mod settings;
mod wire;

use wire::{judge, send, summary};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    AdapterError, Issuer, MintedToken, MintedValue, Observer, Permit, TokenInfo, TokenListing,
    Verifier,
};
use crate::domain::Target;
use crate::secrets::TokenNamer;

pub use settings::{CredentialApi, SynopticSettings};

const UPSTREAM: &str = "synoptic";
/// Synoptic lists at most this many tokens and cannot page.
const LIST_LIMIT: usize = 100;
/// Synoptic expires a token "within 1 hour" after the `expire` asked for
/// (developers.synopticdata.com/mesonet/v2/auth/): asking an hour early keeps the real expiry
/// at or before the one journaled.
const EXPIRY_SLACK: Duration = Duration::from_secs(3600);

/// What [`TokenNamer`] names Synoptic tokens for.
pub const NAMES: &str = "synoptic token id";

/// The name a token went by before names were keyed: an unkeyed hash, which let anyone who
/// reads the journal confirm a guessed token. Only ever compared with, never given: a rotation
/// journaled before the change still finds its tokens. It can go once none is left.
fn legacy_token_id(value: &str) -> String {
    format!(
        "syn-{}",
        &hex::encode(Sha256::digest(value.as_bytes()))[..16]
    )
}

#[derive(Clone)]
pub struct SynopticClient {
    http: reqwest::Client,
    observer: Observer,
    base_url: String,
    credential_api: CredentialApi,
    api_key: SecretString,
    /// A data request that needs a token and always has data, e.g. `/v2/stations/metadata?stid=WBB`.
    verify_path: String,
    /// How long a disabled token may go on answering.
    disable_propagation: Duration,
    /// Expiries are asked for relative to this clock (the engine's).
    clock: Arc<dyn crate::clock::Clock>,
    /// Values of the tokens this process saw listed, by name: a token gone from the list when
    /// it is to be disabled is proved dead with its value. In memory only.
    seen: Arc<Mutex<HashMap<String, SecretString>>>,
    /// Names tokens: keyed, so a name confirms no guess.
    names: TokenNamer,
}

impl SynopticClient {
    pub fn new(
        settings: &SynopticSettings,
        api_key: SecretString,
        names: TokenNamer,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Self {
        let http = crate::adapters::http_client(settings.timeout);
        Self {
            http,
            observer: Observer::default(),
            base_url: settings.url.trim_end_matches('/').to_owned(),
            credential_api: settings.credential_api,
            api_key,
            verify_path: settings.verify_path.clone(),
            disable_propagation: settings.disable_propagation,
            clock,
            seen: Arc::default(),
            names,
        }
    }

    /// The name a token goes by in the journal, logs and Slack.
    pub fn token_id(&self, value: &str) -> String {
        format!("syn-{}", self.names.name(value))
    }

    /// Whether `value` is the token named `id` (by its name, or the unkeyed one of a rotation
    /// journaled before names were keyed).
    fn is(&self, value: &str, id: &str) -> bool {
        self.token_id(value) == id || legacy_token_id(value) == id
    }

    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    /// A request to the credential endpoint with `query`, authenticated as the endpoint wants.
    fn auth_request(&self, query: &[(&str, &str)]) -> reqwest::RequestBuilder {
        let key = self.api_key.expose_secret();
        match self.credential_api {
            CredentialApi::Current => self
                .http
                .get(format!("{}/auth/v2/", self.base_url))
                .query(query)
                .bearer_auth(key),
            CredentialApi::Legacy => self
                .http
                .get(format!("{}/v2/auth", self.base_url))
                .query(query)
                .query(&[("apikey", key)]),
        }
    }

    /// The credential endpoint's JSON answer to `query`; any refusal is an error.
    async fn auth(&self, query: &[(&str, &str)]) -> Result<Value, AdapterError> {
        let answer = self.observer.time(UPSTREAM, send(self.auth_request(query)));
        judge(answer.await?)
    }

    /// Every live token this key made: at most 100, and exactly 100 may hide more, so that fails.
    async fn values(&self) -> Result<Vec<String>, AdapterError> {
        let answer = self.auth(&[("list", "1")]).await?;
        let tokens: Vec<String> = answer["TOKENS"]
            .as_array()
            .ok_or_else(|| AdapterError::permanent(UPSTREAM, "the list answer has no TOKENS"))?
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
        let mut seen = self.seen.lock().expect("lock never poisoned");
        for value in &tokens {
            seen.insert(self.token_id(value), SecretString::from(value.clone()));
        }
        drop(seen);
        if tokens.len() >= LIST_LIMIT {
            return Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "this API key has {} or more tokens and Synoptic lists only {LIST_LIMIT}: \
                     disable unused ones before rotating",
                    tokens.len()
                ),
            ));
        }
        Ok(tokens)
    }

    /// The value of the token named `id`, which must be one this key lists.
    async fn listed(&self, id: &str, why: &str) -> Result<String, AdapterError> {
        self.values()
            .await?
            .into_iter()
            .find(|v| self.is(v, id))
            .ok_or_else(|| {
                AdapterError::permanent(UPSTREAM, self.unlisted(&format!("token {id}"), why))
            })
    }
}

/// `YYYYmmddHHMM`, UTC, rounded down to the minute (what Synoptic takes).
fn expire_text(at: Timestamp) -> String {
    at.strftime("%Y%m%d%H%M").to_string()
}

fn minute(at: Timestamp) -> Timestamp {
    Timestamp::from_second(at.as_second() - at.as_second().rem_euclid(60)).unwrap_or(at)
}

#[async_trait]
impl Issuer for SynopticClient {
    fn name(&self) -> &'static str {
        "Synoptic"
    }

    /// Tokens sharing this account's list rotate one at a time: the engine keys on the
    /// endpoint and a keyed name of the private key (never the key itself).
    fn serialisation_key(&self) -> Option<String> {
        Some(format!(
            "synoptic account {} key {}",
            self.base_url,
            self.names.name(self.api_key.expose_secret())
        ))
    }

    /// Synoptic lists tokens by value: the account's (current endpoint) or the key's (legacy).
    async fn identify(
        &self,
        listing: &TokenListing,
        placed: &SecretString,
    ) -> Result<Option<TokenInfo>, AdapterError> {
        match listing.by_last8(placed) {
            Some(t) => Ok(Some(t)),
            None => Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "{}; its settings cannot be copied and it cannot be disabled from here, so \
                     replace it once by hand with a token this key can manage",
                    self.unlisted("the token in place", "copy or disable")
                ),
            )),
        }
    }

    async fn list(&self, target: &Target, _key: &str) -> Result<TokenListing, AdapterError> {
        let tokens = self
            .values()
            .await?
            .iter()
            .map(|v| TokenInfo {
                id: self.token_id(v),
                // Not readable from Synoptic; the engine knows what it asked for.
                expires_at: Timestamp::MAX,
                last8: v[v.len().saturating_sub(8)..].to_owned(),
            })
            .collect();
        Ok(TokenListing {
            api_user_name: target.api_user.to_string(),
            application_uid: String::new(),
            application_name: target.application.to_string(),
            tokens,
            // Tokens are listed by exact value: no name is looked up.
            resolved: None,
        })
    }

    async fn mint(
        &self,
        _permit: &Permit,
        _target: &Target,
        expires_in: Duration,
        _key: &str,
        like: Option<&str>,
    ) -> Result<MintedToken, AdapterError> {
        let expires_at = minute(self.clock.now() + expires_in);
        let expire = expire_text(expires_at - EXPIRY_SLACK);
        let mut query = vec![("expire", expire.as_str())];
        // Settings must come from the old token: a new one without its restrictions is a
        // different token, so an unlisted old token stops the rotation here.
        let clone_from = match like {
            Some(id) => Some(self.listed(id, "copy the settings of").await?),
            None => None,
        };
        if let Some(from) = &clone_from {
            query.push(("cloneSettings", from.as_str()));
        }
        let answer = self
            .auth(&query)
            .await
            .map_err(|e| match (&clone_from, like) {
                // A refusal may echo the token whose settings were asked for.
                (Some(from), Some(id)) => wire::hide_in(e, from, id),
                _ => e,
            })?;
        let value = answer["TOKEN"]
            .as_str()
            .ok_or_else(|| AdapterError::permanent(UPSTREAM, "the create answer has no TOKEN"))?
            .to_owned();
        Ok(MintedToken {
            id: self.token_id(&value),
            expires_at,
            value: MintedValue::Held(SecretString::from(value)),
            resolved: None,
        })
    }

    /// Synoptic lists token values and nothing else: no creation time, no expiry ("cannot be
    /// queried", developers.synopticdata.com/mesonet/v2/auth/), no maker. So a token listed now
    /// but not before the lost try cannot be tied to this rotation (on a shared account it may
    /// be another target's, or a person's made in the console meanwhile). None: mint. Any: a
    /// person decides, told the candidates by their keyed names only.
    async fn recover(
        &self,
        _permit: &Permit,
        _target: &Target,
        known: &[String],
        _expires_in: Duration,
        _key: &str,
    ) -> Result<Option<MintedToken>, AdapterError> {
        let candidates: Vec<String> = self
            .values()
            .await?
            .iter()
            .filter(|v| !known.iter().any(|id| self.is(v, id)))
            .map(|v| self.token_id(v))
            .collect();
        if candidates.is_empty() {
            return Ok(None);
        }
        Err(AdapterError::permanent(
            UPSTREAM,
            format!(
                "an earlier try to make the new token got no answer, and Synoptic now lists {} \
                 token{} it did not list before that try ({}). Synoptic's list gives no creation \
                 time, expiry or maker, so none can be tied to this rotation: it may be the one \
                 the lost answer made, or one made meanwhile on the same account. Nothing adopted \
                 or minted: check them in the Synoptic console, disable the one this rotation \
                 made if nobody uses it, then rotate again",
                candidates.len(),
                if candidates.len() == 1 { "" } else { "s" },
                candidates.join(", ")
            ),
        ))
    }

    async fn revoke(
        &self,
        _permit: &Permit,
        _target: &Target,
        token_id: &str,
        _key: &str,
    ) -> Result<(), AdapterError> {
        let Some(value) = self
            .values()
            .await?
            .into_iter()
            .find(|v| self.is(v, token_id))
        else {
            // The engine rotates only a token this key listed when the rotation began (one it
            // cannot manage stops it there), so a token gone from the list since has expired
            // or was disabled. When its value is known here, a data request proves it.
            let seen = self
                .seen
                .lock()
                .expect("lock never poisoned")
                .values()
                .find(|v| self.is(v.expose_secret(), token_id))
                .cloned();
            return match seen {
                Some(value) => self.prove_dead(token_id, &value).await,
                None => Ok(()),
            };
        };
        let answer = self
            .observer
            .time(
                UPSTREAM,
                send(self.auth_request(&[("disableToken", value.as_str())])),
            )
            .await?;
        let value = SecretString::from(value);
        // A refusal (4xx but a bad key's 401 or a 429) says something about the token.
        if (400..500).contains(&answer.status) && ![401, 429].contains(&answer.status) {
            return self.disable_refused(token_id, &value, answer).await;
        }
        judge(answer)?;
        self.prove_dead(token_id, &value).await
    }
}

#[async_trait]
impl Verifier for SynopticClient {
    /// A data request with the token must be answered as a good token's is.
    async fn verify(
        &self,
        _target: &Target,
        _application_uid: &str,
        token: &SecretString,
    ) -> Result<String, AdapterError> {
        match self.probe(token).await? {
            probe::Probe::Answered => Ok(format!(
                "Synoptic answers a data request with the new token ({})",
                self.verify_path
            )),
            probe::Probe::Refused(why) => Err(AdapterError::permanent(
                UPSTREAM,
                format!("a data request with the new token is refused: {why}"),
            )),
        }
    }

    fn plan(&self, _application_uid: &str) -> String {
        format!("verify with a Synoptic data request ({})", self.verify_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_is_utc_minutes_and_token_names_hide_the_token() {
        let at: Timestamp = "2026-11-26T10:04:59.9Z".parse().unwrap();
        assert_eq!(expire_text(minute(at)), "202611261004");
        crate::install_crypto_provider();
        let keys = crate::secrets::Keys::random();
        let client = |keys: &crate::secrets::Keys| {
            SynopticClient::new(
                &SynopticSettings::at("http://127.0.0.1:1"),
                SecretString::from("key"),
                TokenNamer::new(keys, NAMES),
                Arc::new(crate::clock::SystemClock),
            )
        };
        let value = "0123456789abcdef0123456789abcdef";
        let id = client(&keys).token_id(value);
        assert!(id.starts_with("syn-") && id.len() == 20);
        assert!(!id.contains("0123456789abcdef"));
        // Keyed: not the unkeyed hash anyone could compute from a guess, and another install's
        // name for the same token differs.
        assert_ne!(id, legacy_token_id(value));
        assert_ne!(id, client(&crate::secrets::Keys::random()).token_id(value));
        // A rotation journaled with the unkeyed name still finds its token.
        assert!(client(&keys).is(value, &legacy_token_id(value)));
        assert!(client(&keys).is(value, &id));
        assert!(!client(&keys).is("another", &id));
    }
}
