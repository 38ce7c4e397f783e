//! The GitLab client as the engine uses it: issuer and verifier.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use super::owner::Owner;
use super::{GitLabClient, UPSTREAM, info};
use crate::adapters::{
    AdapterError, Issuer, MintedToken, Permit, TokenInfo, TokenListing, Verifier,
};
use crate::domain::{ApiUser, Target};

#[async_trait]
impl Issuer for GitLabClient {
    fn name(&self) -> &'static str {
        "GitLab"
    }

    fn revokes_on_mint(&self) -> bool {
        true
    }

    fn longest_life(&self) -> Option<Duration> {
        Some(self.max_lifetime)
    }

    /// `project:platform/ci`, `project:42` and `project: 42` are one token's owner: GitLab's
    /// numeric id and kind are its one name (`project:42`), asked of GitLab by id or path.
    async fn canonical_target(&self, target: &Target) -> Result<Target, AdapterError> {
        let owner = self
            .resolve(&Owner::parse(target.api_user.as_str())?)
            .await?;
        let api_user = ApiUser::parse(&owner.label())
            .map_err(|e| AdapterError::permanent(UPSTREAM, e.to_string()))?;
        Ok(Target {
            api_user,
            ..target.clone()
        })
    }

    /// GitLab lists no part of a value: ask GitLab which token the value in place is.
    async fn identify(
        &self,
        listing: &TokenListing,
        placed: &SecretString,
    ) -> Result<Option<TokenInfo>, AdapterError> {
        let Some(token) = self.whoami(placed).await? else {
            return Ok(None);
        };
        let id = token.id.to_string();
        Ok(listing.tokens.iter().find(|t| t.id == id).cloned())
    }

    async fn list(&self, target: &Target, _key: &str) -> Result<TokenListing, AdapterError> {
        let owner = Owner::parse(target.api_user.as_str())?;
        let live = self.live_named(&owner, target.application.as_str()).await?;
        Ok(TokenListing {
            api_user_name: target.api_user.to_string(),
            application_uid: target.api_user.to_string(),
            application_name: target.application.to_string(),
            tokens: live.iter().map(info).collect(),
            // Owners are addressed by exact path or id, tokens by exact name.
            resolved: None,
        })
    }

    /// Rotates `like`, the token in use: GitLab rotation replaces a token, it never creates one.
    async fn mint(
        &self,
        _permit: &Permit,
        target: &Target,
        expires_in: Duration,
        _idempotency_key: &str,
        like: Option<&str>,
    ) -> Result<MintedToken, AdapterError> {
        let owner = Owner::parse(target.api_user.as_str())?;
        let old = like.ok_or_else(|| {
            AdapterError::permanent(
                UPSTREAM,
                "no live token to rotate: GitLab's rotation replaces a token, it never creates one",
            )
        })?;
        self.rotate(&owner, old, expires_in).await
    }

    /// A rotation whose answer was lost revoked the old token and made one whose value nobody
    /// has. That token is the live one with this name not listed before the first try (every
    /// page read, revoked ones left out); rotating it too is the only way to a value (and
    /// revokes the orphan). More than one such token cannot be told apart: a person chooses.
    async fn recover(
        &self,
        _permit: &Permit,
        target: &Target,
        known: &[String],
        expires_in: Duration,
        _key: &str,
    ) -> Result<Option<MintedToken>, AdapterError> {
        let owner = Owner::parse(target.api_user.as_str())?;
        let live = self.live_named(&owner, target.application.as_str()).await?;
        let orphans: Vec<String> = live
            .iter()
            .map(|t| t.id.to_string())
            .filter(|id| !known.contains(id))
            .collect();
        match orphans.as_slice() {
            [] => Ok(None),
            [orphan] => Ok(Some(self.rotate(&owner, orphan, expires_in).await?)),
            many => Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "{} live tokens named {:?} appeared since the first try (ids {}); which one the lost rotation made cannot be told, so none is rotated",
                    many.len(),
                    target.application.as_str(),
                    many.join(", ")
                ),
            )),
        }
    }

    /// `DELETE …/:token_id`: 204; a token already gone (404) is revoked as far as we care.
    async fn revoke(
        &self,
        _permit: &Permit,
        target: &Target,
        token_id: &str,
        _key: &str,
    ) -> Result<(), AdapterError> {
        let owner = Owner::parse(target.api_user.as_str())?;
        let request = self.http.delete(self.url(&owner.token_path(token_id))?);
        match self
            .send::<serde_json::Value>(self.with_admin(request))
            .await
        {
            Ok(_) => Ok(()),
            Err(AdapterError::Permanent { detail, .. }) if detail.starts_with("HTTP 404") => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Verifier for GitLabClient {
    /// The new token must authenticate as itself: `GET /personal_access_tokens/self` with it
    /// answers 200, active, with the token's name.
    async fn verify(
        &self,
        target: &Target,
        _application_uid: &str,
        token: &SecretString,
    ) -> Result<String, AdapterError> {
        let name = target.application.as_str();
        let now = self.clock.now();
        match self.whoami(token).await? {
            Some(me) if me.live(now) && me.name == name => Ok(format!(
                "GitLab accepts the new token: GET /personal_access_tokens/self answers for token {} ({name:?}, active)",
                me.id
            )),
            Some(me) => Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "the new token authenticates as token {} ({:?}), not a live {name:?}",
                    me.id, me.name
                ),
            )),
            None => Err(AdapterError::permanent(
                UPSTREAM,
                "GitLab refuses the new token (401 from GET /personal_access_tokens/self)",
            )),
        }
    }

    fn plan(&self, _application_uid: &str) -> String {
        "verify with GitLab: GET /personal_access_tokens/self with the new token".to_owned()
    }
}
