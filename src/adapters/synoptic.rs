//! Synoptic's credential API (`/v2/auth`) as an issuer, and its data API as the verifier.
//!
//! A Synoptic token is its own identifier, so it never leaves this module in clear: tokens are
//! named `syn-<first 16 hex of SHA-256>` and looked up again by that name when one must be
//! cloned or disabled. Expiry cannot be read back (and is only hour-accurate), so the expiry
//! token-rotator asked for is what it journals. The private API key goes as `Authorization:
//! Bearer`, never in a URL.

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

const UPSTREAM: &str = "synoptic";
/// Synoptic lists at most this many tokens and cannot page.
const LIST_LIMIT: usize = 100;

/// The name a token goes by in the journal, logs and Slack.
pub fn token_id(value: &str) -> String {
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
    api_key: SecretString,
    /// A cheap data request that needs a token, e.g. `/v2/stations/latest?stid=WBB`.
    verify_path: String,
    /// Expiries are asked for relative to this clock (the engine's).
    clock: std::sync::Arc<dyn crate::clock::Clock>,
}

impl SynopticClient {
    pub fn new(
        base_url: &str,
        api_key: SecretString,
        verify_path: &str,
        timeout: Duration,
        clock: std::sync::Arc<dyn crate::clock::Clock>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("a rustls provider is installed (install_crypto_provider)");
        Self {
            http,
            observer: Observer::default(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            api_key,
            verify_path: verify_path.to_owned(),
            clock,
        }
    }

    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    /// `GET /v2/auth?<query>` with the private key; the JSON answer.
    async fn auth(&self, query: &[(&str, &str)]) -> Result<Value, AdapterError> {
        let request = self
            .http
            .get(format!("{}/v2/auth", self.base_url))
            .query(query)
            .bearer_auth(self.api_key.expose_secret());
        self.observer.time(UPSTREAM, call(request)).await
    }

    /// Every live token's value: at most 100, and exactly 100 may hide more, so that fails.
    async fn values(&self) -> Result<Vec<String>, AdapterError> {
        let answer = self.auth(&[("list", "1")]).await?;
        let tokens: Vec<String> = answer["TOKENS"]
            .as_array()
            .ok_or_else(|| AdapterError::permanent(UPSTREAM, "the list answer has no TOKENS"))?
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect();
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

    async fn value_of(&self, id: &str) -> Result<Option<String>, AdapterError> {
        Ok(self.values().await?.into_iter().find(|v| token_id(v) == id))
    }
}

async fn call(request: reqwest::RequestBuilder) -> Result<Value, AdapterError> {
    let response = request
        .send()
        .await
        .map_err(|e| AdapterError::from_reqwest(UPSTREAM, &e.without_url()))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body: Option<Value> = serde_json::from_str(&text).ok();
    let message = body
        .as_ref()
        .and_then(|b| b["SUMMARY"]["RESPONSE_MESSAGE"].as_str().map(str::to_owned));
    if !(200..300).contains(&status) {
        // Synoptic's message names the problem; the body is never echoed (it may hold a token).
        let detail = message.unwrap_or_else(|| format!("HTTP {status}"));
        return Err(AdapterError::from_status(UPSTREAM, status, &detail));
    }
    body.ok_or_else(|| AdapterError::permanent(UPSTREAM, "the answer is not JSON"))
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
    async fn list(&self, target: &Target, _key: &str) -> Result<TokenListing, AdapterError> {
        let tokens = self
            .values()
            .await?
            .iter()
            .map(|v| TokenInfo {
                id: token_id(v),
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
        let expire = expire_text(expires_at);
        let mut query = vec![("expire", expire.as_str())];
        let clone_from = match like {
            Some(id) => self.value_of(id).await?,
            None => None,
        };
        if let Some(from) = &clone_from {
            query.push(("cloneSettings", from.as_str()));
        }
        let answer = self.auth(&query).await?;
        let value = answer["TOKEN"]
            .as_str()
            .ok_or_else(|| AdapterError::permanent(UPSTREAM, "the create answer has no TOKEN"))?
            .to_owned();
        Ok(MintedToken {
            id: token_id(&value),
            expires_at,
            value: MintedValue::Held(SecretString::from(value)),
        })
    }

    async fn recover(
        &self,
        _target: &Target,
        known: &[String],
        expires_in: Duration,
        _key: &str,
    ) -> Result<Option<MintedToken>, AdapterError> {
        let new: Vec<String> = self
            .values()
            .await?
            .into_iter()
            .filter(|v| !known.contains(&token_id(v)))
            .collect();
        Ok(match new.as_slice() {
            [value] => Some(MintedToken {
                id: token_id(value),
                expires_at: minute(self.clock.now() + expires_in),
                value: MintedValue::Held(SecretString::from(value.clone())),
            }),
            _ => None,
        })
    }

    async fn revoke(
        &self,
        _permit: &Permit,
        _target: &Target,
        token_id: &str,
        _key: &str,
    ) -> Result<(), AdapterError> {
        let Some(value) = self.value_of(token_id).await? else {
            // Already disabled or expired: disabling is irrevocable, so it is done.
            return Ok(());
        };
        match self.auth(&[("disableToken", value.as_str())]).await {
            Err(AdapterError::Permanent { detail, .. }) if detail.contains("protected") => {
                Err(AdapterError::permanent(
                    UPSTREAM,
                    format!(
                        "token {token_id} is tagged `protected`: Synoptic refuses to disable it ({detail})"
                    ),
                ))
            }
            other => other.map(drop),
        }
    }
}

#[async_trait]
impl Verifier for SynopticClient {
    /// A data request with the token must say `SUMMARY.RESPONSE_MESSAGE: OK`.
    async fn verify(
        &self,
        _target: &Target,
        _application_uid: &str,
        token: &SecretString,
    ) -> Result<(), AdapterError> {
        let separator = if self.verify_path.contains('?') {
            '&'
        } else {
            '?'
        };
        let url = format!("{}{}{separator}token=", self.base_url, self.verify_path);
        let request = self.http.get(format!("{url}{}", token.expose_secret()));
        let answer = self.observer.time(UPSTREAM, call(request)).await?;
        match answer["SUMMARY"]["RESPONSE_MESSAGE"].as_str() {
            Some("OK") => Ok(()),
            other => Err(AdapterError::permanent(
                UPSTREAM,
                format!("a data request with the new token says {other:?}, not \"OK\""),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_is_utc_minutes_and_token_names_hide_the_token() {
        let at: Timestamp = "2026-11-26T10:04:59.9Z".parse().unwrap();
        assert_eq!(expire_text(minute(at)), "202611261004");
        let id = token_id("0123456789abcdef0123456789abcdef");
        assert!(id.starts_with("syn-") && id.len() == 20);
        assert!(!id.contains("0123456789abcdef"));
    }
}
