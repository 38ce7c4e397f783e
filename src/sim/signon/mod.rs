//! A Signon: the admin contract of `docs/signon-admin-api.md` and `GET /user.json` as gds-sso
//! calls it. Revoked and expired tokens fail verification, as in Signon.
//!
//! Unknown API users and applications are provisioned on first sight (with one live token that
//! expires in ten days, like the one an alert is about), so any capture can be replayed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use serde_json::json;

mod http;

use http::{list, mint, revoke, user_json};

use super::{Faults, Running};
use crate::adapters::parameterize::parameterize;
use crate::clock::Clock;

/// One token as Signon stores it (`oauth_access_tokens`).
#[derive(Debug, Clone)]
pub struct SimToken {
    pub id: u64,
    pub api_user: String,
    pub application: String,
    pub value: String,
    pub expires_at: Timestamp,
    pub revoked: bool,
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone)]
struct SimApp {
    name: String,
    uid: String,
}

#[derive(Default)]
struct World {
    users: BTreeMap<String, String>,
    apps: Vec<SimApp>,
    tokens: Vec<SimToken>,
    /// Verification calls per token id.
    verifications: BTreeMap<u64, u32>,
}

pub struct SignonSim {
    pub faults: Faults,
    admin_token: String,
    clock: Arc<dyn Clock>,
    world: Mutex<World>,
}

impl SignonSim {
    pub fn new(admin_token: &str, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Self {
            faults: Faults::default(),
            admin_token: admin_token.to_owned(),
            clock,
            world: Mutex::new(World::default()),
        })
    }

    pub async fn start(self: &Arc<Self>) -> std::io::Result<Running> {
        let router = Router::new()
            .route("/api/v1/admin/api-users/tokens", get(list).post(mint))
            .route("/api/v1/admin/tokens/{id}/revoke", post(revoke))
            .route("/user.json", get(user_json))
            .with_state(Arc::clone(self));
        super::serve(router).await
    }

    /// Registers an API user with its display name (Secrets are named after it).
    pub fn add_user(&self, email: &str, name: &str) {
        self.world().users.insert(email.to_owned(), name.to_owned());
    }

    /// The display name of an API user, provisioning it if new.
    pub fn user_name(&self, email: &str) -> String {
        ensure_user(&mut self.world(), email)
    }

    /// Adds a live token, as if made earlier; returns its value.
    pub fn add_token(&self, api_user: &str, application: &str, expires_in: Duration) -> String {
        let now = self.clock.now();
        let mut world = self.world();
        ensure_user(&mut world, api_user);
        let app = ensure_app(&mut world, application);
        issue(&mut world, api_user, &app, now + expires_in, None).value
    }

    pub fn tokens(&self) -> Vec<SimToken> {
        self.world().tokens.clone()
    }

    /// Tokens newly made through the admin API (not seeded ones, not idempotent replays).
    pub fn minted(&self) -> Vec<SimToken> {
        self.tokens()
            .into_iter()
            .filter(|t| t.idempotency_key.is_some())
            .collect()
    }

    pub fn revoked(&self) -> Vec<SimToken> {
        self.tokens().into_iter().filter(|t| t.revoked).collect()
    }

    /// Whether Signon would accept this token now.
    pub fn is_live(&self, value: &str) -> bool {
        let now = self.clock.now();
        self.world()
            .tokens
            .iter()
            .any(|t| t.value == value && !t.revoked && t.expires_at > now)
    }

    pub fn verifications(&self, token_id: u64) -> u32 {
        self.world()
            .verifications
            .get(&token_id)
            .copied()
            .unwrap_or(0)
    }

    /// An API user's live tokens for an application, as the admin contract lists them. The
    /// first look at a pair with no tokens gives it the token the alert is about (ten days left).
    pub fn admin_list(&self, api_user: &str, application: &str) -> serde_json::Value {
        let now = self.clock.now();
        let mut world = self.world();
        let name = ensure_user(&mut world, api_user);
        let app = ensure_app(&mut world, application);
        let has_any = world
            .tokens
            .iter()
            .any(|t| t.api_user == api_user && t.application == app.name);
        if !has_any {
            issue(
                &mut world,
                api_user,
                &app,
                now + Duration::from_secs(10 * 86400),
                None,
            );
        }
        let tokens: Vec<_> = world
            .tokens
            .iter()
            .filter(|t| t.api_user == api_user && t.application == app.name)
            .filter(|t| !t.revoked && t.expires_at > now)
            .map(|t| {
                json!({
                    "id": t.id.to_string(),
                    "expires_at": t.expires_at,
                    "last8": &t.value[t.value.len() - 8..],
                })
            })
            .collect();
        json!({
            "api_user": {"email": api_user, "name": name},
            "application": {"name": app.name, "uid": app.uid},
            "tokens": tokens,
        })
    }

    /// Mints, or finds the token already minted with `key`: `(token, created)`.
    pub fn admin_mint(
        &self,
        api_user: &str,
        application: &str,
        expires_in: Duration,
        key: &str,
    ) -> Result<(SimToken, bool), &'static str> {
        let now = self.clock.now();
        let mut world = self.world();
        if let Some(existing) = world
            .tokens
            .iter()
            .find(|t| t.idempotency_key.as_deref() == Some(key))
        {
            return Ok((existing.clone(), false));
        }
        if !world.users.contains_key(api_user) {
            return Err("no such API user");
        }
        let app = ensure_app(&mut world, application);
        let token = issue(
            &mut world,
            api_user,
            &app,
            now + expires_in,
            Some(key.to_owned()),
        );
        Ok((token, true))
    }

    /// Revokes a token by id; revoking a revoked token succeeds.
    pub fn admin_revoke(&self, id: &str) -> Result<(), &'static str> {
        let mut world = self.world();
        let token = world
            .tokens
            .iter_mut()
            .find(|t| t.id.to_string() == id)
            .ok_or("no such token")?;
        token.revoked = true;
        Ok(())
    }

    /// What `kubernetes:sync_token_secrets` writes: for each API user and application with a
    /// live token, the longest-lived one, as `(user name, application name, value)`.
    pub fn longest_lived(&self) -> Vec<(String, String, String)> {
        let now = self.clock.now();
        let world = self.world();
        let mut best: BTreeMap<(String, String), &SimToken> = BTreeMap::new();
        for t in world
            .tokens
            .iter()
            .filter(|t| !t.revoked && t.expires_at > now)
        {
            let key = (t.api_user.clone(), t.application.clone());
            if best.get(&key).is_none_or(|b| b.expires_at < t.expires_at) {
                best.insert(key, t);
            }
        }
        best.into_iter()
            .map(|((user, app), t)| {
                let name = world.users.get(&user).cloned().unwrap_or(user);
                (name, app, t.value.clone())
            })
            .collect()
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().expect("lock never poisoned")
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        bearer(headers) == Some(self.admin_token.as_str())
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn ensure_user(world: &mut World, email: &str) -> String {
    world
        .users
        .entry(email.to_owned())
        .or_insert_with(|| {
            // "short-url-manager@…" → "Short Url Manager": a plausible display name.
            let local = email.split('@').next().unwrap_or(email);
            local
                .split(['-', '.', '_', '+'])
                .filter(|w| !w.is_empty())
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect::<String>())
                        .unwrap_or_default()
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .clone()
}

/// Finds an application by name or by its parameterized name (Signon's metric label).
fn ensure_app(world: &mut World, name: &str) -> SimApp {
    if let Some(app) = world
        .apps
        .iter()
        .find(|a| a.name == name || parameterize(&a.name) == name)
    {
        return app.clone();
    }
    let app = SimApp {
        name: name.to_owned(),
        uid: format!("uid-{}", parameterize(name)),
    };
    world.apps.push(app.clone());
    app
}

fn issue(
    world: &mut World,
    api_user: &str,
    app: &SimApp,
    expires_at: Timestamp,
    idempotency_key: Option<String>,
) -> SimToken {
    // Doorkeeper: SecureRandom.urlsafe_base64(32).
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    let token = SimToken {
        id: world.tokens.len() as u64 + 1,
        api_user: api_user.to_owned(),
        application: app.name.clone(),
        value: URL_SAFE_NO_PAD.encode(bytes),
        expires_at,
        revoked: false,
        idempotency_key,
    };
    world.tokens.push(token.clone());
    token
}
