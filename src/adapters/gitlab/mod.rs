//! GitLab personal, project and group access tokens, through GitLab's REST API
//! (docs.gitlab.com/api/personal_access_tokens/, …/project_access_tokens/,
//! …/group_access_tokens/). A target is a token by its owner and name: `api_user` is
//! `user:<id>`, `project:<id or path>` or `group:<id or path>`, `application` the token's name.
//!
//! GitLab's rotation is atomic: `POST …/rotate` revokes the token it is given and returns a new
//! one, its value shown that once. So this issuer says `revokes_on_mint`, and a lost answer is
//! recovered by rotating the new token again (`recover`): the old one is gone and nothing else
//! can show the new one's value.

mod dir;

pub use dir::TokenDir;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{
    AdapterError, Issuer, MintedToken, MintedValue, Observer, Permit, TokenInfo, TokenListing,
    Verifier,
};
use crate::clock::Clock;
use crate::domain::Target;

const UPSTREAM: &str = "gitlab";
/// GitLab's default maximum lifetime of an access token (docs.gitlab.com/user/profile/
/// personal_access_tokens/): a longer life is refused with 400, so a longer one asked for (an
/// alert's default two years) is cut to this.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(365 * 86400);

/// `[gitlab]`: where GitLab is and how long its tokens may live.
#[derive(Debug, Clone)]
pub struct GitLabSettings {
    pub url: String,
    pub timeout: Duration,
    /// The instance's maximum token lifetime (its admin setting; 365 days unless changed).
    pub max_lifetime: Duration,
    /// Alert-driven targets: where each token's file goes (`<owner>-<name>.token`).
    pub tokens_dir: Option<String>,
    /// The environments whose alerts are about GitLab tokens.
    pub environments: Vec<String>,
}

/// Whose token it is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    User(String),
    Project(String),
    Group(String),
}

impl Owner {
    fn parse(api_user: &str) -> Result<Self, AdapterError> {
        let (kind, id) = api_user.split_once(':').unwrap_or(("", ""));
        let id = id.trim();
        match kind {
            _ if id.is_empty() => Err(bad_owner(api_user)),
            "user" => Ok(Owner::User(id.to_owned())),
            "project" => Ok(Owner::Project(id.to_owned())),
            "group" => Ok(Owner::Group(id.to_owned())),
            _ => Err(bad_owner(api_user)),
        }
    }

    /// The collection of its tokens: `…/personal_access_tokens` is shared by all users (an
    /// administrator filters by `user_id`), the others are the resource's own.
    fn tokens_path(&self) -> String {
        let escaped = |id: &str| urlencoding(id);
        match self {
            Owner::User(_) => "/api/v4/personal_access_tokens".to_owned(),
            Owner::Project(id) => format!("/api/v4/projects/{}/access_tokens", escaped(id)),
            Owner::Group(id) => format!("/api/v4/groups/{}/access_tokens", escaped(id)),
        }
    }
}

fn bad_owner(api_user: &str) -> AdapterError {
    AdapterError::permanent(
        UPSTREAM,
        format!(
            "{api_user:?} does not name a GitLab token owner: write user:<id>, project:<id or path> or group:<id or path>"
        ),
    )
}

/// A project or group path (`group/project`) goes in the URL encoded, as GitLab's API asks.
fn urlencoding(id: &str) -> String {
    id.replace('%', "%25").replace('/', "%2F")
}

#[derive(Deserialize)]
struct TokenDto {
    id: u64,
    name: String,
    #[serde(default)]
    active: bool,
    #[serde(default)]
    revoked: bool,
    expires_at: Option<Date>,
    /// Only in a rotation's answer.
    token: Option<String>,
}

impl TokenDto {
    fn live(&self) -> bool {
        self.active && !self.revoked
    }

    /// GitLab's expiry is a date: the token works through that day (UTC).
    fn expires(&self) -> Timestamp {
        self.expires_at
            .and_then(|d| d.tomorrow().ok())
            .and_then(|d| d.to_zoned(TimeZone::UTC).ok())
            .map_or(Timestamp::MAX, |z| z.timestamp())
    }
}

#[derive(Clone)]
pub struct GitLabClient {
    http: reqwest::Client,
    observer: Observer,
    base_url: String,
    token: SecretString,
    max_lifetime: Duration,
    clock: Arc<dyn Clock>,
}

impl GitLabClient {
    pub fn new(settings: &GitLabSettings, token: SecretString, clock: Arc<dyn Clock>) -> Self {
        let http = crate::adapters::http_client(settings.timeout);
        Self {
            http,
            observer: Observer::default(),
            base_url: settings.url.trim_end_matches('/').to_owned(),
            token,
            max_lifetime: settings.max_lifetime,
            clock,
        }
    }

    /// Counts and times its calls into the service's metrics.
    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Option<T>, AdapterError> {
        self.observer
            .time(UPSTREAM, async {
                let response = request
                    .send()
                    .await
                    .map_err(|e| AdapterError::from_reqwest(UPSTREAM, &e.without_url()))?;
                let status = response.status();
                if status == reqwest::StatusCode::NO_CONTENT {
                    return Ok(None);
                }
                if !status.is_success() {
                    let body = response.text().await.unwrap_or_default();
                    return Err(AdapterError::from_status(UPSTREAM, status.as_u16(), &body));
                }
                response
                    .json::<T>()
                    .await
                    .map(Some)
                    .map_err(|e| AdapterError::from_reqwest(UPSTREAM, &e.without_url()))
            })
            .await
    }

    fn with_admin(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header("PRIVATE-TOKEN", self.token.expose_secret())
    }

    /// The live tokens of `owner` named `name`.
    async fn live(&self, owner: &Owner, name: &str) -> Result<Vec<TokenDto>, AdapterError> {
        let mut request = self
            .http
            .get(format!("{}{}", self.base_url, owner.tokens_path()));
        if let Owner::User(id) = owner {
            request = request.query(&[("user_id", id)]);
        }
        let all: Vec<TokenDto> = self
            .send(self.with_admin(request))
            .await?
            .unwrap_or_default();
        Ok(all
            .into_iter()
            .filter(|t| t.name == name && t.live())
            .collect())
    }

    /// `GET /personal_access_tokens/self` with `value`: which token it is, if it works.
    async fn whoami(&self, value: &SecretString) -> Result<Option<TokenDto>, AdapterError> {
        let request = self
            .http
            .get(format!(
                "{}/api/v4/personal_access_tokens/self",
                self.base_url
            ))
            .header("PRIVATE-TOKEN", value.expose_secret());
        match self.send(request).await {
            Err(AdapterError::Permanent { detail, .. }) if detail.starts_with("HTTP 401") => {
                Ok(None)
            }
            other => other,
        }
    }

    /// `POST …/:token_id/rotate`: revokes `token_id` and answers with its successor.
    async fn rotate(
        &self,
        owner: &Owner,
        token_id: &str,
        expires_in: Duration,
    ) -> Result<MintedToken, AdapterError> {
        // Cut to the instance's limit: GitLab refuses a longer life with 400.
        let life = expires_in.min(self.max_lifetime);
        let expires_at = (self.clock.now() + life).to_zoned(TimeZone::UTC).date();
        let path = match owner {
            Owner::User(_) => format!("/api/v4/personal_access_tokens/{token_id}/rotate"),
            _ => format!("{}/{token_id}/rotate", owner.tokens_path()),
        };
        let request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .query(&[("expires_at", expires_at.to_string())]);
        let new: TokenDto = self
            .send(self.with_admin(request))
            .await?
            .ok_or_else(|| AdapterError::permanent(UPSTREAM, "rotate answered with no token"))?;
        let value = new.token.clone().ok_or_else(|| {
            AdapterError::permanent(UPSTREAM, "rotate answered without the new token's value")
        })?;
        Ok(MintedToken {
            id: new.id.to_string(),
            expires_at: new.expires(),
            value: MintedValue::Held(SecretString::from(value)),
            resolved: None,
        })
    }
}

/// A scheduled GitLab target's upstreams: GitLab as issuer and verifier; its file, or a
/// handover, as distributor (no Deployments to await).
pub fn scheduled(
    client: GitLabClient,
    distribution: &crate::config::ScheduleDistribution,
) -> super::Upstreams {
    use crate::config::ScheduleDistribution;
    let distributor: Arc<dyn super::Distributor> = match distribution {
        ScheduleDistribution::File { path, mode, owner } => {
            Arc::new(super::file::FileDistributor::new(path, *mode, *owner))
        }
        ScheduleDistribution::Handover => Arc::new(super::handover::Handed),
    };
    super::Upstreams {
        issuer: Arc::new(client.clone()),
        distributor,
        verifier: Arc::new(client),
        deployments: None,
    }
}

/// An environment whose alerts name GitLab tokens: each token in its own file in `dir`.
pub fn environment(client: GitLabClient, dir: &str) -> super::Upstreams {
    super::Upstreams {
        issuer: Arc::new(client.clone()),
        distributor: Arc::new(TokenDir::new(dir)),
        verifier: Arc::new(client),
        deployments: None,
    }
}

fn info(t: &TokenDto) -> TokenInfo {
    TokenInfo {
        id: t.id.to_string(),
        expires_at: t.expires(),
        // GitLab never shows any part of a token's value after it is made.
        last8: String::new(),
    }
}

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
        let live = self.live(&owner, target.application.as_str()).await?;
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
    /// has. That token is the live one with this name not listed before the first try; rotating
    /// it too is the only way to a value (and revokes the orphan).
    async fn recover(
        &self,
        _permit: &Permit,
        target: &Target,
        known: &[String],
        expires_in: Duration,
        _key: &str,
    ) -> Result<Option<MintedToken>, AdapterError> {
        let owner = Owner::parse(target.api_user.as_str())?;
        let live = self.live(&owner, target.application.as_str()).await?;
        let orphan = live.iter().find(|t| !known.contains(&t.id.to_string()));
        match orphan {
            Some(orphan) => Ok(Some(
                self.rotate(&owner, &orphan.id.to_string(), expires_in)
                    .await?,
            )),
            None => Ok(None),
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
        let path = match owner {
            Owner::User(_) => format!("/api/v4/personal_access_tokens/{token_id}"),
            _ => format!("{}/{token_id}", owner.tokens_path()),
        };
        let request = self.http.delete(format!("{}{path}", self.base_url));
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
        match self.whoami(token).await? {
            Some(me) if me.live() && me.name == name => Ok(format!(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_written_kind_colon_id() {
        assert_eq!(
            Owner::parse("project:42").unwrap(),
            Owner::Project("42".into())
        );
        assert_eq!(
            Owner::parse("group:platform/ops").unwrap().tokens_path(),
            "/api/v4/groups/platform%2Fops/access_tokens"
        );
        assert!(Owner::parse("42").is_err());
        assert!(Owner::parse("project:").is_err());
        assert!(Owner::parse("team:7").is_err());
    }
}
