//! Whether one pair's superseded tokens may be revoked: only when nothing can still be using
//! them. The rule table must opt the pair in, no rotation may be under way, the issuer must
//! list now what the inventory found newest, the placement must hold that newest token, and
//! every Deployment reading the placement must have rolled onto it.

use crate::adapters::{InventoriedToken, TokenInfo, TokenListing, Upstreams};
use crate::domain::{ApiUser, Application, Environment, Labels, Target};
use crate::engine::resolved::list_exactly;
use crate::policy::Mode;
use crate::store::rotations;

use super::super::row::token;
use super::super::{Engine, EngineError};

/// What became of one pair's superseded tokens. Tokens are `(id, last 8 characters)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Revoked: journaled as `rotation_id` (`retiring` first), then revoked.
    Revoked {
        tokens: Vec<(String, String)>,
        newest: (String, String),
        rotation_id: String,
    },
    /// Shadow mode: what would have been revoked.
    WouldRevoke {
        tokens: Vec<(String, String)>,
        newest: (String, String),
    },
    /// Journaled, but the revoke failed for now: the engine retries it.
    Pending {
        tokens: Vec<(String, String)>,
        rotation_id: String,
        error: String,
    },
    /// Journaled, and the revoke failed for good.
    Failed {
        tokens: Vec<(String, String)>,
        rotation_id: String,
        why: String,
    },
    /// Left alone, and why.
    Kept(String),
    /// Left alone because the rule table does not opt the pair in, and why (the digest counts
    /// these by reason instead of listing every pair, so a whole environment a rule leaves
    /// alone, such as staging, is one line).
    NotSwept(String),
}

/// A pair whose superseded tokens may go.
pub(super) struct Plan {
    pub tokens: Vec<(String, String)>,
    pub newest: (String, String),
    /// The rule that opted the pair in, and its action (the journal's `action`).
    pub rule: Option<String>,
    pub action: String,
    pub mode: Option<Mode>,
    /// Why it is safe, for the journal.
    pub why: String,
}

pub(super) enum Judged {
    Keep(Verdict),
    Revoke(Plan),
}

fn keep(why: impl Into<String>) -> Result<Judged, EngineError> {
    Ok(Judged::Keep(Verdict::Kept(why.into())))
}

/// Tokens as people recognise them: "12 (…abcd1234), 13 (…efgh5678)".
pub(super) fn shown(tokens: &[(String, String)]) -> String {
    tokens
        .iter()
        .map(|(id, last8)| token(id, last8))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Engine {
    /// Judges one pair of the inventory `tokens` (all of the pair's, at least one superseded).
    /// Every check only reads; an upstream that cannot answer keeps the pair, saying why.
    pub(super) async fn judge(
        &self,
        up: &Upstreams,
        environment: &str,
        api_user: &str,
        application: &str,
        tokens: &[&InventoriedToken],
        key: &str,
    ) -> Result<Judged, EngineError> {
        let Some(newest) = tokens.iter().find(|t| t.newest) else {
            return keep("the inventory names no newest token for the pair");
        };
        if newest.expired {
            return keep(format!(
                "its newest token, {}, is expired",
                token(&newest.id, &newest.last8)
            ));
        }
        let Some(policy) = &self.policy else {
            return keep("no rule table to opt the pair in");
        };
        let mut labels = Labels::new();
        labels.insert("environment".into(), environment.to_owned());
        labels.insert("api_user".into(), api_user.to_owned());
        labels.insert("application".into(), application.to_owned());
        if let Some(alertname) = up.issuer.expiry_alertname() {
            labels.insert("alertname".into(), alertname.to_owned());
        }
        let decided = policy.sweeps(&labels);
        let Some(rule) = decided.rule.clone() else {
            return Ok(Judged::Keep(Verdict::NotSwept(
                "no rule matches, so not swept".into(),
            )));
        };
        if !decided.sweep {
            return Ok(Judged::Keep(Verdict::NotSwept(format!(
                "rule `{rule}` does not sweep (sweep = false)"
            ))));
        }
        if let Some(active) =
            rotations::active_rotation(&self.db, environment, api_user, application).await?
        {
            return keep(format!(
                "a rotation is under way ({}, {})",
                active.id, active.phase
            ));
        }
        let target = match (
            Environment::parse(environment),
            ApiUser::parse(api_user),
            Application::parse(application),
        ) {
            (Ok(environment), Ok(api_user), Ok(application)) => Target {
                environment,
                api_user,
                application,
            },
            _ => return keep("the inventory names the pair with an empty field"),
        };
        let shadow = self.settings.modes.get(environment) != Some(&Mode::Active)
            || decided.mode == Some(Mode::Shadow);
        let listing = if shadow && up.issuer.list_writes() {
            // Shadow writes nothing per pair: the inventory just taken stands in for a list
            // Job, and the check below that the issuer still lists the same newest is moot.
            match TokenListing::from_inventory(tokens.iter().copied()) {
                Some(listing) => listing,
                None => return keep("the inventory does not name the pair's user and application"),
            }
        } else {
            let pair_key = format!("{key}/{api_user}/{application}");
            match self
                .patiently(|| list_exactly(up.issuer.as_ref(), &target, &pair_key))
                .await
            {
                Ok(listing) => listing,
                Err(e) => return keep(format!("could not list its tokens: {e}")),
            }
        };
        // The issuer's newest now must be the inventory's: one made since is not in place yet.
        let Some(listed_newest) = listing.tokens.iter().max_by_key(|t| t.expires_at) else {
            return keep(format!("{} lists no live token now", up.issuer.name()));
        };
        if listed_newest.id != newest.id {
            return keep(format!(
                "{} lists {} as newest now, not {} as the inventory did",
                up.issuer.name(),
                token(&listed_newest.id, &listed_newest.last8),
                token(&newest.id, &newest.last8)
            ));
        }
        let superseded: Vec<(String, String)> = tokens
            .iter()
            .filter(|t| !t.newest && !t.expired && t.id != newest.id)
            .filter(|t| listing.tokens.iter().any(|l| l.id == t.id))
            .map(|t| (t.id.clone(), t.last8.clone()))
            .collect();
        if superseded.is_empty() {
            return keep("its superseded tokens are no longer live");
        }
        let placement = up.distributor.placement(&listing);
        let where_ = up.distributor.describe(&placement);
        let value = match up.distributor.read(&placement).await {
            Ok(Some(value)) => value,
            Ok(None) => return keep(format!("{where_} holds no token")),
            Err(e) => return keep(format!("could not read {where_}: {e}")),
        };
        let in_place: Option<TokenInfo> = match self
            .patiently(|| up.issuer.identify(&listing, &value))
            .await
        {
            Ok(found) => found,
            Err(e) => return keep(format!("could not tell which token {where_} holds: {e}")),
        };
        match in_place {
            Some(t) if t.id == newest.id => {}
            Some(t) => {
                return keep(format!(
                    "{where_} still holds {}, not the newest {}: its consumers may use it",
                    token(&t.id, &t.last8),
                    token(&newest.id, &newest.last8)
                ));
            }
            None => {
                return keep(format!(
                    "{where_} holds a token {} does not list as live",
                    up.issuer.name()
                ));
            }
        }
        let rolled = match &up.deployments {
            None => "nothing rolls out from it".to_owned(),
            Some(deployments) => {
                let baseline = match deployments.baseline(&placement.name).await {
                    Ok(baseline) => baseline,
                    Err(e) => return keep(format!("could not list its consumers: {e}")),
                };
                // Only a restart makes a pod read a changed Secret (environment variables are
                // read at start). Reloader restarts those it watches when the Secret changes;
                // nothing shows that any other was restarted since the newest token arrived.
                if let Some(name) = baseline.unwatched.iter().next() {
                    return keep(format!(
                        "Deployment `{name}` reads {where_} but is not rolled when it changes \
                         (no Reloader annotation): nothing shows it restarted onto the newest token"
                    ));
                }
                // As `kubectl rollout status`: every consumer's newest pod template fully
                // rolled out, no old pods left, none past its progress deadline.
                let state = match deployments.check(&baseline, false).await {
                    Ok(state) => state,
                    Err(e) => return keep(format!("could not read its consumers' rollout: {e}")),
                };
                if let Some(stuck) = state.exceeded.first() {
                    return keep(stuck.clone());
                }
                if !state.waiting.is_empty() {
                    return keep(format!(
                        "Deployment(s) {} reading {where_} are mid-rollout",
                        state
                            .waiting
                            .iter()
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                match baseline.generations.len() {
                    0 => "no Deployment reads it".to_owned(),
                    n => {
                        format!("its {n} Deployment(s) are rolled by Reloader and fully rolled out")
                    }
                }
            }
        };
        Ok(Judged::Revoke(Plan {
            newest: (newest.id.clone(), newest.last8.clone()),
            why: format!(
                "{where_} holds the newest, {}, and {rolled}",
                token(&newest.id, &newest.last8)
            ),
            tokens: superseded,
            rule: Some(rule),
            action: decided.action.map_or("rotate", |a| a.as_str()).to_owned(),
            mode: decided.mode,
        }))
    }
}
