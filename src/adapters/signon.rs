//! Signon over HTTP: the admin contract of `docs/signon-admin-api.md` (Signon has no mint API
//! of its own) and `GET /user.json`, the call gds-sso makes to validate a bearer token.

use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use super::{
    AdapterError, Issuer, MintedToken, MintedValue, Observer, Permit, Resolved, TokenInfo,
    TokenListing, Verifier,
};
use crate::domain::Target;

const UPSTREAM: &str = "signon";

/// The alert Signon's token expiry metric raises (`global:signon_api_user_token_expires_in_seconds`).
pub const EXPIRY_ALERTNAME: &str = "SignonApiUserTokenExpirySoon";

/// Admin API and verification client for one Signon.
#[derive(Clone)]
pub struct SignonClient {
    http: reqwest::Client,
    observer: Observer,
    base_url: String,
    admin_token: SecretString,
}

#[derive(Deserialize)]
struct ListingDto {
    api_user: ApiUserDto,
    application: ApplicationDto,
    tokens: Vec<TokenDto>,
    resolved: ResolvedDto,
}

/// Whom and what Signon's lookups matched, as it spells them: its MySQL ignores case, so
/// another spelling than the one asked for may be found (`docs/signon-admin-api.md`).
#[derive(Deserialize)]
struct ResolvedDto {
    email: String,
    application: String,
}

impl From<ResolvedDto> for Resolved {
    fn from(dto: ResolvedDto) -> Self {
        Resolved {
            api_user: dto.email,
            application: dto.application,
        }
    }
}

#[derive(Deserialize)]
struct ApiUserDto {
    name: String,
}

#[derive(Deserialize)]
struct ApplicationDto {
    name: String,
    uid: String,
}

#[derive(Deserialize)]
struct TokenDto {
    id: String,
    expires_at: Timestamp,
    last8: String,
}

#[derive(Serialize)]
struct MintRequest<'a> {
    api_user: &'a str,
    application: &'a str,
    expires_in: u64,
    idempotency_key: &'a str,
}

#[derive(Deserialize)]
struct MintedDto {
    id: String,
    token: String,
    expires_at: Timestamp,
    resolved: ResolvedDto,
}

#[derive(Deserialize)]
struct UserJson {
    user: UserDto,
}

#[derive(Deserialize)]
struct UserDto {
    email: String,
    /// The user's permissions on the token's application (Signon's
    /// `app/presenters/user_o_auth_presenter.rb`; `[]` when suspended).
    #[serde(default)]
    permissions: Vec<String>,
    /// `user.suspended?` (same presenter).
    #[serde(default)]
    disabled: bool,
}

impl SignonClient {
    pub fn new(base_url: &str, admin_token: SecretString, timeout: Duration) -> Self {
        let http = crate::adapters::http_client(timeout);
        Self {
            http,
            observer: Observer::default(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            admin_token,
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
    ) -> Result<T, AdapterError> {
        self.observer.time(UPSTREAM, Self::call(request)).await
    }

    async fn call<T: for<'de> Deserialize<'de>>(
        request: reqwest::RequestBuilder,
    ) -> Result<T, AdapterError> {
        let response = request
            .send()
            .await
            .map_err(|e| AdapterError::from_reqwest(UPSTREAM, &e))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(AdapterError::from_status(UPSTREAM, status.as_u16(), &body));
        }
        response
            .json::<T>()
            .await
            .map_err(|e| AdapterError::from_reqwest(UPSTREAM, &e))
    }

    /// Checks a token the way gds-sso does: `GET /user.json?client_id=<server app uid>` must be
    /// 200 and name the API user. A 401 means the token does not work: permanent.
    pub async fn verify(
        &self,
        application_uid: &str,
        api_user_email: &str,
        token: &SecretString,
    ) -> Result<(), AdapterError> {
        let request = self
            .http
            .get(format!("{}/user.json", self.base_url))
            .query(&[("client_id", application_uid)])
            .bearer_auth(token.expose_secret());
        let user = self.send::<UserJson>(request).await?.user;
        if !user.email.eq_ignore_ascii_case(api_user_email) {
            return Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "/user.json names {:?}, not the API user {api_user_email:?}",
                    user.email
                ),
            ));
        }
        // Signon answers 200 for a suspended user's live token, saying `disabled: true`; no
        // consuming app should trust it.
        if user.disabled {
            return Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "/user.json says the API user {api_user_email:?} is disabled (suspended in Signon): the consuming app would refuse the token"
                ),
            ));
        }
        // gds-sso's `authorise_user!("signin")` (`lib/gds-sso/controller_methods.rb`) answers
        // 403 "you don't seem to have the signin permission" to a user without it.
        if !user.permissions.iter().any(|p| p == "signin") {
            return Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "/user.json says the API user {api_user_email:?} lacks the signin permission on this application: gds-sso refuses the token"
                ),
            ));
        }
        Ok(())
    }
}

/// Checks a new token as the consuming app's gds-sso will: against Signon's `/user.json`, with
/// the server app's OAuth client id from its `signon-app-<app>` Secret when the cluster has one
/// (what gds-sso itself is configured with), else from Signon's listing.
pub struct SignonVerifier {
    pub signon: SignonClient,
    pub apps: Option<crate::adapters::kubernetes::Deployments>,
}

#[async_trait]
impl Verifier for SignonVerifier {
    async fn verify(
        &self,
        target: &Target,
        application_uid: &str,
        token: &SecretString,
    ) -> Result<String, AdapterError> {
        let from_secret = match &self.apps {
            Some(apps) => apps.app_oauth_id(target.application.as_str()).await?,
            None => None,
        };
        let (uid, whence) = match from_secret {
            Some(uid) => (
                uid,
                format!(
                    "signon-app-{}",
                    crate::domain::parameterize::parameterize(target.application.as_str())
                ),
            ),
            None => (application_uid.to_owned(), "Signon's listing".to_owned()),
        };
        self.signon
            .verify(&uid, target.api_user.as_str(), token)
            .await?;
        Ok(format!(
            "Signon accepts the new token for this API user and application (GET /user.json, client_id from {whence})"
        ))
    }

    fn plan(&self, application_uid: &str) -> String {
        format!("verify with Signon: GET /user.json?client_id={application_uid}")
    }
}

#[async_trait]
impl Issuer for SignonClient {
    fn name(&self) -> &'static str {
        "Signon"
    }

    fn expiry_alertname(&self) -> Option<&'static str> {
        Some(EXPIRY_ALERTNAME)
    }

    /// Signon renews internal API users' tokens by itself, nightly.
    fn self_renews(&self) -> bool {
        true
    }

    async fn list(&self, target: &Target, _key: &str) -> Result<TokenListing, AdapterError> {
        let request = self
            .http
            .get(format!("{}/api/v1/admin/api-users/tokens", self.base_url))
            .query(&[
                ("api_user", target.api_user.as_str()),
                ("application", target.application.as_str()),
            ])
            .bearer_auth(self.admin_token.expose_secret());
        let listing: ListingDto = self.send(request).await?;
        Ok(TokenListing {
            api_user_name: listing.api_user.name,
            application_uid: listing.application.uid,
            application_name: listing.application.name,
            tokens: listing
                .tokens
                .into_iter()
                .map(|t| TokenInfo {
                    id: t.id,
                    expires_at: t.expires_at,
                    last8: t.last8,
                })
                .collect(),
            resolved: Some(listing.resolved.into()),
        })
    }

    async fn mint(
        &self,
        _permit: &Permit,
        target: &Target,
        expires_in: Duration,
        idempotency_key: &str,
        _like: Option<&str>,
    ) -> Result<MintedToken, AdapterError> {
        let request = self
            .http
            .post(format!("{}/api/v1/admin/api-users/tokens", self.base_url))
            .bearer_auth(self.admin_token.expose_secret())
            .json(&MintRequest {
                api_user: target.api_user.as_str(),
                application: target.application.as_str(),
                expires_in: expires_in.as_secs(),
                idempotency_key,
            });
        let minted: MintedDto = self.send(request).await?;
        Ok(MintedToken {
            id: minted.id,
            value: MintedValue::Held(SecretString::from(minted.token)),
            expires_at: minted.expires_at,
            resolved: Some(minted.resolved.into()),
        })
    }

    async fn revoke(
        &self,
        _permit: &Permit,
        _target: &Target,
        token_id: &str,
        _key: &str,
    ) -> Result<(), AdapterError> {
        let request = self
            .http
            .post(format!(
                "{}/api/v1/admin/tokens/{token_id}/revoke",
                self.base_url
            ))
            .bearer_auth(self.admin_token.expose_secret());
        let _: serde_json::Value = self.send(request).await?;
        Ok(())
    }
}
