//! Signon's data and the rules it enforces on it, each citing the file of alphagov/signon (at
//! f501a92) or Doorkeeper it models. The scripts in `deploy/signon/` check the same rules in the
//! same order, so the simulator refuses what a Job in Signon's image would, with the same codes.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;

use crate::domain::parameterize::parameterize;

/// One token as Signon stores it (`oauth_access_tokens`).
#[derive(Debug, Clone)]
pub struct SimToken {
    pub id: u64,
    pub api_user: String,
    pub application: String,
    pub value: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked: bool,
    /// How many revoke requests found it: a second finds it revoked already and changes
    /// nothing, but says that someone asked twice.
    pub revokes: u32,
    /// The rotation that made it: what `mint.rb` writes into its `ACCESS_TOKEN_GENERATED`
    /// event's `trailing_message` and looks up before minting again.
    pub idempotency_key: Option<String>,
}

impl SimToken {
    pub fn last8(&self) -> &str {
        &self.value[self.value.len() - 8..]
    }

    fn live(&self, now: Timestamp) -> bool {
        !self.revoked && self.expires_at > now
    }
}

/// The user the scripts act as, as `check_initiator.rb` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Initiator {
    pub email: String,
    pub api_user: bool,
    /// Accepted, but it will stop working (a person's account).
    pub warning: Option<String>,
}

/// A `users` row: API users and people alike (`app/models/user.rb`; `ApiUser` is the same table
/// with `api_user: true`, `app/models/api_user.rb`).
#[derive(Debug, Clone)]
pub(super) struct SimUser {
    pub(super) name: String,
    pub(super) api_user: bool,
    /// `suspended_at` set (`lib/devise/models/suspendable.rb`).
    pub(super) suspended: bool,
    pub(super) superadmin: bool,
    /// Applications this user has the signin permission for (`user_application_permissions`).
    pub(super) signin: BTreeSet<String>,
    /// Made up by the simulator on first sight (see [`World::provisioning`]).
    pub(super) provisioned: bool,
}

#[derive(Debug, Clone)]
pub(super) struct SimApp {
    pub(super) name: String,
    pub(super) uid: String,
    /// `oauth_applications.retired`.
    pub(super) retired: bool,
}

/// Why Signon (or a script in its image) says no, before anything is written. `code` is the
/// script's `refused` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

pub(super) struct World {
    pub(super) users: BTreeMap<String, SimUser>,
    pub(super) apps: Vec<SimApp>,
    pub(super) tokens: Vec<SimToken>,
    /// Verification calls per token id.
    pub(super) verifications: BTreeMap<u64, u32>,
    /// Unknown API users, applications and pairs are made up on first sight (a pair with one
    /// live token expiring in ten days, as an alert's would), so any capture replays. Off: only
    /// what a test put there exists, as in Signon.
    pub(super) provisioning: bool,
}

impl Default for World {
    fn default() -> Self {
        Self {
            users: BTreeMap::new(),
            apps: Vec::new(),
            tokens: Vec::new(),
            verifications: BTreeMap::new(),
            provisioning: true,
        }
    }
}

/// Whether Signon's MySQL takes `stored` for `asked` in a `find_by`: alphagov/signon
/// `db/schema.rb` makes `users` utf8mb3_unicode_ci (:159) and `oauth_applications` latin1 (:89),
/// whose default collation is latin1_swedish_ci
/// (https://dev.mysql.com/doc/refman/8.0/en/charset-we-sets.html); `_ci` is case-insensitive
/// (https://dev.mysql.com/doc/refman/8.0/en/charset-collation-names.html). Modelled for case,
/// which is where names here differ; both collations also fold accents, left out.
pub(super) fn collates_equal(stored: &str, asked: &str) -> bool {
    stored.to_lowercase() == asked.to_lowercase()
}

impl World {
    /// The stored email `find_by(email:)` finds for `email`: any spelling of it (the unique
    /// index, `db/schema.rb`:201, is case-insensitive too, so there is at most one).
    pub(super) fn stored_email(&self, email: &str) -> Option<String> {
        self.users
            .keys()
            .find(|stored| collates_equal(stored, email))
            .cloned()
    }

    /// `ApiUser.find_by(email:)`, with the email as Signon stores it: the default scope keeps
    /// people out (`app/models/api_user.rb`); a suspended API user is refused, since Signon's
    /// sync skips them (`lib/tasks/sync_kubernetes_secrets.rake`: `ApiUser.where(suspended_at:
    /// nil)`) and the new token could never reach its Secret.
    pub(super) fn api_user(&mut self, asked: &str) -> Result<(String, SimUser), Refusal> {
        let email = self.stored_email(asked).unwrap_or_else(|| asked.to_owned());
        let email = email.as_str();
        if self.provisioning && !self.users.contains_key(email) {
            let user = SimUser {
                name: display_name(email),
                api_user: true,
                suspended: false,
                superadmin: false,
                signin: BTreeSet::new(),
                provisioned: true,
            };
            self.users.insert(email.to_owned(), user);
        }
        match self.users.get(email) {
            None => Err(Refusal::new(
                "api_user_unknown",
                format!("Signon has no API user with email {email:?}"),
            )),
            Some(u) if !u.api_user => Err(Refusal::new(
                "not_an_api_user",
                format!("{email} is a person's account, not an API user"),
            )),
            Some(u) if u.suspended => Err(Refusal::new(
                "api_user_suspended",
                format!(
                    "API user {email} is suspended: Signon's sync skips suspended users, so a new token would never reach its Secret"
                ),
            )),
            Some(u) => Ok((email.to_owned(), u.clone())),
        }
    }

    /// By name (any spelling: [`collates_equal`]) or by parameterized name (the metric's label, `global_prometheus_collector.rb`);
    /// a retired application gets no permission (`User#grant_application_permissions` returns
    /// early) and no Secret (`kubernetes:sync_app_secrets` skips it), so it is refused.
    pub(super) fn application(&mut self, name: &str) -> Result<SimApp, Refusal> {
        let found = self
            .apps
            .iter()
            .find(|a| collates_equal(&a.name, name) || parameterize(&a.name) == name)
            .cloned();
        let app = match found {
            Some(app) => app,
            None if self.provisioning => {
                let app = SimApp {
                    name: name.to_owned(),
                    uid: format!("uid-{}", parameterize(name)),
                    retired: false,
                };
                self.apps.push(app.clone());
                app
            }
            None => {
                return Err(Refusal::new(
                    "application_unknown",
                    format!("Signon has no application named {name:?}"),
                ));
            }
        };
        if app.retired {
            return Err(Refusal::new(
                "application_retired",
                format!("application {:?} is retired in Signon", app.name),
            ));
        }
        Ok(app)
    }

    /// The user a script acts as, as `deploy/signon/common.rb` checks it. Signon records an
    /// initiator with `ACCESS_TOKEN_GENERATED` and `ACCESS_TOKEN_REVOKED`
    /// (`app/models/event_log.rb`), any user. An API user is the one Signon will not suspend:
    /// `InactiveUsersSuspender` (`lib/inactive_users_suspender.rb`) takes only
    /// `last_signed_in_before`, which is `web_users` (`app/models/user.rb`, 45 days,
    /// `SUSPENSION_THRESHOLD_PERIOD`). A person's account must be a superadmin
    /// (`app/policies/authorisation_policy.rb`) and is accepted with a warning.
    pub(super) fn initiator(&self, email: Option<&str>) -> Result<Initiator, Refusal> {
        let Some(email) = email.filter(|e| !e.trim().is_empty()) else {
            return Err(Refusal::new(
                "initiator_missing",
                "TR_INITIATOR is not set: Signon records who made or revoked a token ([signon] initiator)",
            ));
        };
        let stored = self.stored_email(email);
        let email = stored.as_deref().unwrap_or(email);
        match self.users.get(email) {
            None => Err(Refusal::new(
                "initiator_unknown",
                format!("Signon has no user with email {email:?} to act as ([signon] initiator)"),
            )),
            Some(u) if u.suspended => Err(Refusal::new(
                "initiator_suspended",
                format!("initiator {email} is suspended in Signon"),
            )),
            Some(u) if u.api_user => Ok(Initiator {
                email: email.to_owned(),
                api_user: true,
                warning: None,
            }),
            Some(u) if !u.superadmin => Err(Refusal::new(
                "initiator_not_superadmin",
                format!(
                    "initiator {email} is a person's account and not a superadmin; act as an API user made for token-rotator"
                ),
            )),
            Some(_) => Ok(Initiator {
                email: email.to_owned(),
                api_user: false,
                warning: Some(format!(
                    "initiator {email} is a person's account: Signon suspends it after 45 days without a sign-in, and then refuses every mint and revoke; act as an API user made for token-rotator"
                )),
            }),
        }
    }

    /// The pair's live tokens (`not_revoked`, not expired), by expiry
    /// (`app/models/doorkeeper/access_token.rb`: `ordered_by_expires_at`).
    pub(super) fn live(&self, email: &str, app: &str, now: Timestamp) -> Vec<SimToken> {
        let mut live: Vec<SimToken> = self
            .tokens
            .iter()
            .filter(|t| t.api_user == email && t.application == app && t.live(now))
            .cloned()
            .collect();
        live.sort_by_key(|t| t.expires_at);
        live
    }

    /// A made-up pair gets the token its alert is about, and the permission that came with it.
    pub(super) fn provision_pair(
        &mut self,
        user: &SimUser,
        email: &str,
        app: &SimApp,
        now: Timestamp,
    ) {
        let has_any = self
            .tokens
            .iter()
            .any(|t| t.api_user == email && t.application == app.name);
        if self.provisioning && user.provisioned && !has_any {
            self.issue(
                email,
                app,
                now,
                now + std::time::Duration::from_secs(10 * 86400),
                None,
            );
        }
    }

    /// The token a rotation made, by the key `mint.rb` records in its event.
    pub(super) fn minted_by(&self, email: &str, app: &str, key: &str) -> Option<SimToken> {
        self.tokens
            .iter()
            .find(|t| {
                t.api_user == email
                    && t.application == app
                    && t.idempotency_key.as_deref() == Some(key)
            })
            .cloned()
    }

    /// Rotation replaces access, it never creates it: a pair with no live token and no signin
    /// permission is refused (`User#has_access_to?`, `app/models/user.rb`).
    pub(super) fn has_access(&self, email: &str, app: &str, now: Timestamp) -> Result<(), Refusal> {
        let permitted = self
            .users
            .get(email)
            .is_some_and(|u| u.signin.contains(app));
        if permitted || !self.live(email, app, now).is_empty() {
            Ok(())
        } else {
            Err(Refusal::new(
                "no_access",
                format!(
                    "{email} has no live token and no signin permission for {app}: nothing to rotate, and token-rotator never creates access"
                ),
            ))
        }
    }

    /// `AuthorisationsController#create`: save the token, grant the signin permission (none for
    /// a retired app), record the event; one transaction here as in `mint.rb`.
    pub(super) fn issue(
        &mut self,
        email: &str,
        app: &SimApp,
        now: Timestamp,
        expires_at: Timestamp,
        idempotency_key: Option<String>,
    ) -> SimToken {
        // Doorkeeper: SecureRandom.urlsafe_base64(32).
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the OS provides randomness");
        let token = SimToken {
            id: self.tokens.len() as u64 + 1,
            api_user: email.to_owned(),
            application: app.name.clone(),
            value: URL_SAFE_NO_PAD.encode(bytes),
            created_at: now,
            expires_at,
            revoked: false,
            revokes: 0,
            idempotency_key,
        };
        self.tokens.push(token.clone());
        if !app.retired
            && let Some(user) = self.users.get_mut(email)
        {
            user.signin.insert(app.name.clone());
        }
        token
    }

    /// `user.authorisations.find(id)`: a token of another user is not found
    /// (`app/models/user.rb` scopes `authorisations` to the owner); Doorkeeper's `revoke` of a
    /// revoked token changes nothing. Returns whether it was revoked already.
    pub(super) fn revoke(&mut self, email: Option<&str>, id: &str) -> Result<bool, Refusal> {
        let token = self
            .tokens
            .iter_mut()
            .find(|t| t.id.to_string() == id && email.is_none_or(|e| e == t.api_user))
            .ok_or_else(|| {
                Refusal::new(
                    "token_unknown",
                    match email {
                        Some(e) => format!("{e} has no token with id {id}"),
                        None => format!("no token with id {id}"),
                    },
                )
            })?;
        let already = token.revoked;
        token.revoked = true;
        token.revokes += 1;
        Ok(already)
    }

    /// `rake kubernetes:sync_token_secrets`: for each API user that is not suspended, per
    /// application, the live token that expires last (`lib/tasks/sync_kubernetes_secrets.rake`,
    /// commit b6e60420), as `(user name, application name, value)`.
    pub(super) fn longest_lived(&self, now: Timestamp) -> Vec<(String, String, String)> {
        let mut best: BTreeMap<(String, String), &SimToken> = BTreeMap::new();
        for t in self.tokens.iter().filter(|t| t.live(now)) {
            let active = self
                .users
                .get(&t.api_user)
                .is_some_and(|u| u.api_user && !u.suspended);
            if !active {
                continue;
            }
            let key = (t.api_user.clone(), t.application.clone());
            if best.get(&key).is_none_or(|b| b.expires_at < t.expires_at) {
                best.insert(key, t);
            }
        }
        best.into_iter()
            .map(|((user, app), t)| (self.users[&user].name.clone(), app, t.value.clone()))
            .collect()
    }
}

impl World {
    /// `inventory.rb`: every not-revoked token of every API user (`ApiUser.all`, suspended ones
    /// marked), expired ones included, of any application (retired ones marked), by user email,
    /// application name, expiry and id; the last of each pair (the one expiring last, the one
    /// Signon's sync puts in the Secret) is the newest.
    pub(super) fn inventory(&self, now: Timestamp) -> Vec<serde_json::Value> {
        let mut rows: Vec<(&SimToken, &SimUser, &SimApp)> = self
            .tokens
            .iter()
            .filter(|t| !t.revoked)
            .filter_map(|t| {
                let user = self.users.get(&t.api_user).filter(|u| u.api_user)?;
                let app = self.apps.iter().find(|a| a.name == t.application)?;
                Some((t, user, app))
            })
            .collect();
        rows.sort_by(|(a, _, _), (b, _, _)| {
            (&a.api_user, &a.application, a.expires_at, a.id).cmp(&(
                &b.api_user,
                &b.application,
                b.expires_at,
                b.id,
            ))
        });
        let pair = |t: &SimToken| (t.api_user.clone(), t.application.clone());
        rows.iter()
            .enumerate()
            .map(|(i, (token, user, app))| {
                let newest = rows
                    .get(i + 1)
                    .is_none_or(|(next, _, _)| pair(next) != pair(token));
                serde_json::json!({
                    "api_user": token.api_user,
                    "api_user_name": user.name,
                    "api_user_suspended": user.suspended,
                    "application": app.name,
                    "application_slug": parameterize(&app.name),
                    "application_uid": app.uid,
                    "application_retired": app.retired,
                    "id": token.id.to_string(),
                    "created_at": token.created_at,
                    "expires_at": token.expires_at,
                    "expired": token.expires_at <= now,
                    "newest": newest,
                    "last8": token.last8(),
                    "secret": crate::domain::parameterize::secret_name(&user.name, &app.name),
                })
            })
            .collect()
    }
}

/// "short-url-manager@…" → "Short Url Manager": a plausible display name for a made-up user.
pub(super) fn display_name(email: &str) -> String {
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
}
