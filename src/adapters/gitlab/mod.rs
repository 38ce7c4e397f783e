//! GitLab personal, project and group access tokens, through GitLab's REST API
//! (docs.gitlab.com/api/personal_access_tokens/, …/project_access_tokens/,
//! …/group_access_tokens/). A target is a token by its owner and name: `api_user` is
//! `user:<id>`, `project:<id or path>` or `group:<id or path>`, `application` the token's name.
//! Before anything keys on a target, its owner is resolved to GitLab's numeric id
//! ([`Issuer::canonical_target`]): `project:platform/ci` and `project:42` are one token.
//!
//! GitLab's rotation is atomic: `POST …/rotate` revokes the token it is given and returns a new
//! one, its value shown that once. So this issuer says `revokes_on_mint`, and a lost answer is
//! recovered by rotating the new token again (`recover`): the old one is gone and nothing else
//! can show the new one's value. A revoked token is never rotated: GitLab answers that by
//! revoking every live token of its family (see [`GitLabClient::rotate`]).

mod dir;
mod expiry;
mod issuer;
mod owner;
mod pages;

pub use dir::TokenDir;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{AdapterError, MintedToken, MintedValue, Observer, TokenInfo};
use crate::clock::Clock;
use owner::Owner;

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
    /// The instance's time zone (`gitlab_rails['time_zone']`, UTC unless changed): its "today"
    /// is where the maximum lifetime is counted from. GitLab's API does not tell it.
    pub time_zone: TimeZone,
    /// Alert-driven targets: where each token's file goes (`<owner>-<name>.token`).
    pub tokens_dir: Option<String>,
    /// The environments whose alerts are about GitLab tokens.
    pub environments: Vec<String>,
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
    /// GitLab's `active` (neither revoked nor expired), checked against the date as well: a
    /// token past the start of its `expires_at` is not chosen, whatever a cached answer says.
    fn live(&self, now: Timestamp) -> bool {
        self.active && !self.revoked && self.expires() > now
    }

    fn expires(&self) -> Timestamp {
        expiry::expires(self.expires_at)
    }
}

/// A project or group as `GET /projects/:id` and `GET /groups/:id` answer: its id.
#[derive(Deserialize)]
struct ResourceDto {
    id: u64,
}

#[derive(Clone)]
pub struct GitLabClient {
    http: reqwest::Client,
    observer: Observer,
    base_url: String,
    token: SecretString,
    max_lifetime: Duration,
    zone: TimeZone,
    clock: Arc<dyn Clock>,
}

impl GitLabClient {
    pub fn new(settings: &GitLabSettings, token: SecretString, clock: Arc<dyn Clock>) -> Self {
        // GitLab answers a moved project's old path with a redirect to its id, built from its
        // configured host; the token header goes along, so only to the origin we asked.
        let same_origin = reqwest::redirect::Policy::custom(|attempt| {
            let from = attempt.previous().first().map(Url::origin);
            if attempt.previous().len() > 5 {
                attempt.error("too many redirects")
            } else if from == Some(attempt.url().origin()) {
                attempt.follow()
            } else {
                attempt.stop()
            }
        });
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(same_origin)
            .build()
            .expect("a rustls provider is installed (install_crypto_provider)");
        Self {
            http,
            observer: Observer::default(),
            base_url: settings.url.trim_end_matches('/').to_owned(),
            token,
            max_lifetime: settings.max_lifetime,
            zone: settings.time_zone.clone(),
            clock,
        }
    }

    /// Counts and times its calls into the service's metrics.
    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    /// One call: the response when it succeeded, else the error its status means.
    async fn call(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AdapterError> {
        let response = request
            .send()
            .await
            .map_err(|e| AdapterError::from_reqwest(UPSTREAM, &e.without_url()))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "HTTP {}: GitLab redirected elsewhere (a moved project is best named by its id)",
                    status.as_u16()
                ),
            ));
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(AdapterError::from_status(UPSTREAM, status.as_u16(), &body));
        }
        Ok(response)
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Option<T>, AdapterError> {
        self.observer
            .time(UPSTREAM, async {
                let response = self.call(request).await?;
                if response.status() == reqwest::StatusCode::NO_CONTENT {
                    return Ok(None);
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

    fn url(&self, path: &str) -> Result<Url, AdapterError> {
        Url::parse(&format!("{}{path}", self.base_url))
            .map_err(|e| AdapterError::permanent("config", format!("gitlab.url: {e}")))
    }

    /// The owner under GitLab's numeric id: `GET /projects/:id` or `GET /groups/:id` with the
    /// id or URL-encoded path (a user's id is numeric already).
    async fn resolve(&self, owner: &Owner) -> Result<Owner, AdapterError> {
        let Some(path) = owner.resource_path() else {
            return Ok(owner.clone());
        };
        let mut request = self.http.get(self.url(&path)?);
        if matches!(owner, Owner::Group(_)) {
            // The group alone, not its projects (docs.gitlab.com/api/groups/#get-a-single-group).
            request = request.query(&[("with_projects", "false")]);
        }
        match self.send::<ResourceDto>(self.with_admin(request)).await {
            Ok(Some(found)) => Ok(owner.with_id(found.id)),
            Ok(None) => Err(AdapterError::permanent(
                UPSTREAM,
                format!("GitLab answered nothing for {}", owner.label()),
            )),
            Err(AdapterError::Permanent { detail, .. }) if detail.starts_with("HTTP 404") => {
                Err(AdapterError::permanent(
                    UPSTREAM,
                    format!(
                        "api_user {:?}: GitLab has no such {} that token-rotator's token can see (404)",
                        owner.label(),
                        owner.resource().unwrap_or("owner").trim_end_matches('s'),
                    ),
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// Every live token of `owner` named `name`, from every page of GitLab's list, asked for
    /// active ones only (`state=active`: docs.gitlab.com/api/personal_access_tokens/#list-all-
    /// personal-access-tokens, …/project_access_tokens/#list-all-project-access-tokens, the same
    /// for groups; gitlabhq `lib/api/helpers/personal_access_tokens_helpers.rb`,
    /// `access_token_params`) and checked again here.
    async fn live_named(&self, owner: &Owner, name: &str) -> Result<Vec<TokenDto>, AdapterError> {
        let mut url = self.url(&owner.tokens_path())?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("state", "active")
                .append_pair("per_page", &pages::PER_PAGE.to_string());
            if let Owner::User(id) = owner {
                query.append_pair("user_id", id);
            }
        }
        let mut page = 1;
        let mut url = pages::with_page(&url, page);
        let now = self.clock.now();
        let mut live = Vec::new();
        loop {
            let request = self.with_admin(self.http.get(url.clone()));
            let (tokens, next) = self
                .observer
                .time(UPSTREAM, async {
                    let response = self.call(request).await?;
                    let next = pages::next(&url, page, response.headers())?;
                    let tokens: Vec<TokenDto> = response
                        .json()
                        .await
                        .map_err(|e| AdapterError::from_reqwest(UPSTREAM, &e.without_url()))?;
                    Ok((tokens, next))
                })
                .await?;
            live.extend(tokens.into_iter().filter(|t| t.name == name && t.live(now)));
            match next {
                Some((next_url, n)) => (url, page) = (next_url, n),
                None => return Ok(live),
            }
        }
    }

    /// `GET …/:token_id`: the token as GitLab has it now.
    async fn token(&self, owner: &Owner, token_id: &str) -> Result<TokenDto, AdapterError> {
        let request = self.http.get(self.url(&owner.token_path(token_id))?);
        match self.send(self.with_admin(request)).await {
            Ok(Some(token)) => Ok(token),
            Ok(None) => Err(AdapterError::permanent(
                UPSTREAM,
                format!("GitLab answered nothing for token {token_id}"),
            )),
            Err(AdapterError::Permanent { detail, .. }) if detail.starts_with("HTTP 404") => {
                Err(AdapterError::permanent(
                    UPSTREAM,
                    format!("GitLab has no token {token_id} of {}", owner.label()),
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /personal_access_tokens/self` with `value`: which token it is, if it works.
    async fn whoami(&self, value: &SecretString) -> Result<Option<TokenDto>, AdapterError> {
        let request = self
            .http
            .get(self.url("/api/v4/personal_access_tokens/self")?)
            .header("PRIVATE-TOKEN", value.expose_secret());
        match self.send(request).await {
            Err(AdapterError::Permanent { detail, .. }) if detail.starts_with("HTTP 401") => {
                Ok(None)
            }
            other => other,
        }
    }

    /// `POST …/:token_id/rotate`: revokes `token_id` and answers with its successor.
    ///
    /// Only a live token: rotating one already revoked (a rotation whose answer was lost, a
    /// person's revoke) makes GitLab revoke every live token of its family, the consumers'
    /// included (docs.gitlab.com/api/project_access_tokens/#rotate-a-project-access-token;
    /// gitlabhq `app/services/personal_access_tokens/revoke_token_family_service.rb`). So the
    /// token is read first and a dead one refused.
    async fn rotate(
        &self,
        owner: &Owner,
        token_id: &str,
        expires_in: Duration,
    ) -> Result<MintedToken, AdapterError> {
        let now = self.clock.now();
        let current = self.token(owner, token_id).await?;
        if !current.live(now) {
            let state = if current.revoked {
                "revoked"
            } else {
                "not active (expired)"
            };
            return Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "refusing to rotate token {token_id} of {}: GitLab says it is {state}, and rotating a revoked token makes GitLab revoke every live token of its family",
                    owner.label()
                ),
            ));
        }
        let max_days = expiry::whole_days(self.max_lifetime);
        let expires_at = expiry::date_for(now, expires_in, max_days, &self.zone);
        let request = self
            .http
            .post(self.url(&format!("{}/rotate", owner.token_path(token_id)))?)
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
    distribution: &crate::adapters::settings::ScheduleDistribution,
) -> super::Upstreams {
    use crate::adapters::settings::ScheduleDistribution;
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

/// Checks an owner as a config names it (`[[schedules]] owner`), without asking GitLab.
pub fn check_owner(api_user: &str) -> Result<(), String> {
    Owner::parse(api_user).map(|_| ()).map_err(|e| match e {
        AdapterError::Permanent { detail, .. } => detail,
        other => other.to_string(),
    })
}

fn info(t: &TokenDto) -> TokenInfo {
    TokenInfo {
        id: t.id.to_string(),
        expires_at: t.expires(),
        // GitLab never shows any part of a token's value after it is made.
        last8: String::new(),
    }
}
