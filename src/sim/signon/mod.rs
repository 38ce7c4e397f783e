//! A Signon: the admin contract of `docs/signon-admin-api.md` and `GET /user.json` as gds-sso
//! calls it. Revoked and expired tokens fail verification, as in Signon.
//!
//! Signon's rules live in `world` (each citing the Signon file it models): suspended API users,
//! retired applications, people who are not API users, tokens of another user, pairs with no
//! access to replace, the initiator a script must act as. By default unknown API users,
//! applications and pairs are provisioned on first sight (with one live token that expires in
//! ten days, like the one an alert is about), so any capture can be replayed;
//! [`SignonSim::stop_provisioning`] makes only what a test put there exist.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, header};
use axum::routing::{get, post};
use serde_json::{Value, json};

mod http;
#[cfg(test)]
mod tests;
mod world;

use http::{list, mint, revoke, user_json};
pub use world::{Initiator, Refusal, SimToken};
use world::{SimApp, SimUser, World, display_name};

use super::{Faults, Running};
use crate::clock::Clock;

/// The API user the simulated Jobs act as (`[signon] initiator`); seeded in every simulated
/// Signon, as an operator creates one for token-rotator (an API user: Signon never suspends it
/// for inactivity).
pub const INITIATOR: &str = "token-rotator@digital.cabinet-office.gov.uk";

pub struct SignonSim {
    pub faults: Faults,
    /// Before every answer (the bench's latency profile).
    pub latency: Arc<super::Latency>,
    admin_token: String,
    clock: Arc<dyn Clock>,
    world: Mutex<World>,
}

impl SignonSim {
    pub fn new(admin_token: &str, clock: Arc<dyn Clock>) -> Arc<Self> {
        let sim = Arc::new(Self {
            faults: Faults::default(),
            latency: Arc::default(),
            admin_token: admin_token.to_owned(),
            clock,
            world: Mutex::new(World::default()),
        });
        sim.world()
            .users
            .insert(INITIATOR.to_owned(), user("token-rotator", true, false));
        sim
    }

    pub async fn start(self: &Arc<Self>) -> std::io::Result<Running> {
        let router = Router::new()
            .route("/api/v1/admin/api-users/tokens", get(list).post(mint))
            .route("/api/v1/admin/tokens/{id}/revoke", post(revoke))
            .route("/user.json", get(user_json))
            .with_state(Arc::clone(self));
        super::serve(super::delayed(router, Arc::clone(&self.latency))).await
    }

    /// Registers an API user with its display name (Secrets are named after it); no token, no
    /// permission yet.
    pub fn add_user(&self, email: &str, name: &str) {
        self.world()
            .users
            .insert(email.to_owned(), user(name, true, false));
    }

    /// A person's account; `superadmin` may make and revoke API users' tokens.
    pub fn add_person(&self, email: &str, name: &str, superadmin: bool) {
        self.world()
            .users
            .insert(email.to_owned(), user(name, false, superadmin));
    }

    /// An application, as its owner registered it (unless one of that name, in any spelling,
    /// exists: the unique index on the name is as case-insensitive as the lookups,
    /// `db/schema.rb`:102).
    pub fn add_application(&self, name: &str) {
        let mut world = self.world();
        if !world
            .apps
            .iter()
            .any(|a| world::collates_equal(&a.name, name))
        {
            world.apps.push(SimApp {
                name: name.to_owned(),
                uid: format!("uid-{}", crate::domain::parameterize::parameterize(name)),
                retired: false,
            });
        }
    }

    /// Renames an application, as an admin may in Signon's UI: its tokens and permissions follow
    /// it (Signon keeps them by the application's id).
    pub fn rename_application(&self, from: &str, to: &str) {
        let mut world = self.world();
        for app in world.apps.iter_mut().filter(|a| a.name == from) {
            app.name = to.to_owned();
        }
        for t in world.tokens.iter_mut().filter(|t| t.application == from) {
            t.application = to.to_owned();
        }
        for user in world.users.values_mut() {
            if user.signin.remove(from) {
                user.signin.insert(to.to_owned());
            }
        }
    }

    /// Only what a test put there exists from now on, as in Signon.
    pub fn stop_provisioning(&self) {
        self.world().provisioning = false;
    }

    /// Suspends a user; suspension revokes every token (`lib/devise/models/suspendable.rb`:
    /// `suspend` calls `revoke_all_authorisations`) unless `keep_tokens` (a test of what the
    /// scripts do when a token outlived its user's suspension).
    pub fn suspend(&self, email: &str, keep_tokens: bool) {
        let mut world = self.world();
        if let Some(u) = world.users.get_mut(email) {
            u.suspended = true;
        }
        if !keep_tokens {
            for t in world.tokens.iter_mut().filter(|t| t.api_user == email) {
                t.revoked = true;
            }
        }
    }

    /// Takes the signin permission on `application` away from a user, as an admin may in
    /// Signon's UI; its tokens stay live (`UserApplicationPermission` rows are apart from
    /// `oauth_access_tokens`), so `/user.json` answers without `signin`.
    pub fn remove_signin(&self, email: &str, application: &str) {
        if let Some(u) = self.world().users.get_mut(email) {
            u.signin.remove(application);
        }
    }

    /// Marks an application retired (`oauth_applications.retired`).
    pub fn retire(&self, application: &str) {
        if let Some(app) = self.world().apps.iter_mut().find(|a| a.name == application) {
            app.retired = true;
        }
    }

    /// The display name of an API user (found by any spelling of its email, as Signon's lookups
    /// do), provisioning it if new.
    pub fn user_name(&self, email: &str) -> String {
        let mut world = self.world();
        let stored = world.stored_email(email);
        match world.users.get(stored.as_deref().unwrap_or(email)) {
            Some(u) => u.name.clone(),
            None => {
                let name = display_name(email);
                world
                    .users
                    .insert(email.to_owned(), user(&name, true, false));
                name
            }
        }
    }

    /// Adds a live token, as if made earlier in Signon's UI (with its signin permission);
    /// returns its value. Makes the user and application if they are new.
    pub fn add_token(&self, api_user: &str, application: &str, expires_in: Duration) -> String {
        let now = self.clock.now();
        self.add_token_made(api_user, application, now, now + expires_in)
    }

    /// Adds a token that expires (or expired) at `at`, never revoked: a dead pair's, when `at`
    /// is past (made a day before it). Returns its value.
    pub fn add_token_expiring_at(
        &self,
        api_user: &str,
        application: &str,
        at: jiff::Timestamp,
    ) -> String {
        let now = self.clock.now();
        let made = if at < now {
            at - Duration::from_secs(86400)
        } else {
            now
        };
        self.add_token_made(api_user, application, made, at)
    }

    fn add_token_made(
        &self,
        api_user: &str,
        application: &str,
        made: jiff::Timestamp,
        expires_at: jiff::Timestamp,
    ) -> String {
        self.user_name(api_user);
        self.add_application(application);
        let mut world = self.world();
        let app = world
            .apps
            .iter()
            .find(|a| world::collates_equal(&a.name, application))
            .cloned()
            .expect("just added");
        let stored = world.stored_email(api_user).expect("just added");
        world.issue(&stored, &app, made, expires_at, None).value
    }

    pub fn tokens(&self) -> Vec<SimToken> {
        self.world().tokens.clone()
    }

    /// Tokens made by token-rotator (with a rotation's key), not seeded ones.
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

    /// `TR_INITIATOR` as the scripts check it, before anything is written.
    pub fn check_initiator(&self, email: Option<&str>) -> Result<Initiator, Refusal> {
        self.world().initiator(email)
    }

    /// An API user's live tokens for an application, as `list.rb` and the admin contract list
    /// them; with `key`, also the token that rotation made (`minted`). `resolved` is what the
    /// lookups matched, as stored (they ignore case, as Signon's MySQL does).
    pub fn admin_list(
        &self,
        api_user: &str,
        application: &str,
        key: Option<&str>,
    ) -> Result<Value, Refusal> {
        let now = self.clock.now();
        let mut world = self.world();
        let (stored, user) = world.api_user(api_user)?;
        let api_user = stored.as_str();
        let app = world.application(application)?;
        world.provision_pair(&user, api_user, &app, now);
        let tokens: Vec<Value> = world
            .live(api_user, &app.name, now)
            .iter()
            .map(
                |t| json!({"id": t.id.to_string(), "expires_at": t.expires_at, "last8": t.last8()}),
            )
            .collect();
        let mut listing = json!({
            "api_user": {"email": api_user, "name": user.name},
            "application": {"name": app.name, "uid": app.uid},
            "tokens": tokens,
            "resolved": {"email": api_user, "application": app.name},
        });
        if let Some(key) = key {
            listing["minted"] = match world.minted_by(api_user, &app.name, key) {
                Some(t) => json!({
                    "id": t.id.to_string(), "expires_at": t.expires_at, "last8": t.last8(),
                    "sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(t.value.as_bytes())),
                    "revoked": t.revoked,
                }),
                None => Value::Null,
            };
        }
        Ok(listing)
    }

    /// Mints, or finds the token already minted with `key`: `(token, created)`. Checks in
    /// `mint.rb`'s order: user, application, the key, then that the pair has access to replace.
    pub fn admin_mint(
        &self,
        api_user: &str,
        application: &str,
        expires_in: Duration,
        key: &str,
    ) -> Result<(SimToken, bool), Refusal> {
        let now = self.clock.now();
        let mut world = self.world();
        let (stored, user) = world.api_user(api_user)?;
        let api_user = stored.as_str();
        let app = world.application(application)?;
        world.provision_pair(&user, api_user, &app, now);
        if let Some(existing) = world.minted_by(api_user, &app.name, key) {
            // Never a dead token as this rotation's (mint.rb refuses the same way).
            if existing.revoked || existing.expires_at <= now {
                return Err(Refusal {
                    code: "token_unknown",
                    message: format!(
                        "token {} that rotation {key} made is revoked or expired; start a new rotation",
                        existing.id
                    ),
                });
            }
            return Ok((existing, false));
        }
        world.has_access(api_user, &app.name, now)?;
        let token = world.issue(api_user, &app, now, now + expires_in, Some(key.to_owned()));
        Ok((token, true))
    }

    /// Revokes a token by id, one of `api_user`'s (and `application`'s) where given: `(whether
    /// it was revoked already, what the lookups matched as revoke.rb reports it)`.
    pub fn admin_revoke(
        &self,
        api_user: Option<&str>,
        application: Option<&str>,
        id: &str,
    ) -> Result<(bool, Value), Refusal> {
        let mut world = self.world();
        let stored = match api_user {
            Some(email) => Some(world.api_user(email)?.0),
            None => None,
        };
        let api_user = stored.as_deref();
        let mut found_app = None;
        if let Some(name) = application {
            let app = world.application(name)?;
            found_app = Some(app.name.clone());
            let elsewhere = world
                .tokens
                .iter()
                .any(|t| t.id.to_string() == id && t.application != app.name);
            if elsewhere {
                return Err(Refusal {
                    code: "token_unknown",
                    message: format!("token {id} is not a token for {}", app.name),
                });
            }
        }
        let already = world.revoke(api_user, id)?;
        let resolved = json!({"email": api_user, "application": found_app});
        Ok((already, resolved))
    }

    /// `inventory.rb`'s `tokens`: every not-revoked token of every API user, expired ones
    /// included; never a value.
    pub fn inventory(&self) -> Vec<Value> {
        self.world().inventory(self.clock.now())
    }

    /// What `kubernetes:sync_token_secrets` writes, as `(user name, application name, value)`.
    pub fn longest_lived(&self) -> Vec<(String, String, String)> {
        self.world().longest_lived(self.clock.now())
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().expect("lock never poisoned")
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        bearer(headers) == Some(self.admin_token.as_str())
    }
}

fn user(name: &str, api_user: bool, superadmin: bool) -> SimUser {
    SimUser {
        name: name.to_owned(),
        api_user,
        suspended: false,
        superadmin,
        signin: Default::default(),
        provisioned: false,
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}
