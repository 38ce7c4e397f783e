//! Shadow mode: the same decisions and the same read-only look at the world, and then a plan of
//! what would be done instead of doing it. Rotations created in shadow end in `planned_only`.
//! Nothing here can mutate: the adapters' mutating calls need a `Permit`, which shadow never has.

use jiff::Timestamp;
use serde_json::json;

use super::resolved::list_exactly;
use super::{Engine, Phase, Schedule, Step};
use crate::adapters::{
    AdapterError, InventoriedToken, Placement, TokenInfo, TokenListing, Upstreams,
};
use crate::domain::{Target, target_key};
use crate::store::inventory::{self, InventoryRow};
use crate::store::rotations::{Field, RotationRow};
use crate::store::{Db, StoreError};

/// What a rotation would do, and what the look at the world found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Plan {
    pub steps: Vec<String>,
    pub findings: Vec<String>,
    /// `false` when a step would fail (e.g. the Secret is missing).
    pub feasible: bool,
}

impl Plan {
    fn infeasible(why: String) -> Self {
        Plan {
            steps: Vec::new(),
            findings: vec![why],
            feasible: false,
        }
    }

    /// One paragraph for Slack and the status page.
    pub fn summary(&self) -> String {
        let steps: Vec<String> = self
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{}. {s}", i + 1))
            .collect();
        let verdict = if self.feasible {
            "feasible"
        } else {
            "would fail"
        };
        format!(
            "would: {} — found: {} ({verdict})",
            if steps.is_empty() {
                "nothing".to_owned()
            } else {
                steps.join(" ")
            },
            self.findings.join("; ")
        )
    }
}

/// A target's tokens as the last inventory of its environment saw them: what a plan reads
/// instead of listing when listing would write (see [`crate::adapters::Issuer::list_writes`]).
#[derive(Debug, Clone)]
pub struct Inventoried {
    pub taken_at: Timestamp,
    /// The target's rows (its application matched as [`Target::key`] matches it); empty: the
    /// inventory had no token of the pair.
    pub rows: Vec<InventoryRow>,
}

impl Inventoried {
    /// The target's rows of `environment`'s last inventory; `None`: none was taken yet.
    pub async fn read(db: &Db, target: &Target) -> Result<Option<Self>, StoreError> {
        let environment = target.environment.as_str();
        let Some(taken) = inventory::taken(db)
            .await?
            .into_iter()
            .find(|t| t.environment == environment)
        else {
            return Ok(None);
        };
        let key = target.key();
        let rows = inventory::of_user(db, environment, target.api_user.as_str())
            .await?
            .into_iter()
            .filter(|r| target_key(&r.environment, &r.api_user, &r.application) == key)
            .collect();
        Ok(Some(Inventoried {
            taken_at: Timestamp::from_millisecond(taken.taken_at_ms).unwrap_or_default(),
            rows,
        }))
    }

    /// The listing `list` would have given when the inventory was taken; `None` when the
    /// inventory lacks what a plan needs (no token of the pair, or the names of its user and
    /// application).
    fn listing(&self) -> Option<TokenListing> {
        let tokens: Vec<InventoriedToken> = self.rows.iter().map(super::inventory::token).collect();
        TokenListing::from_inventory(&tokens)
    }
}

/// The plan for rotating `target`, from read-only calls (list tokens, read the placement).
/// With `inventory`, the tokens are read from it and the issuer is not asked.
pub async fn plan_rotation(
    up: &Upstreams,
    target: &Target,
    settings: &super::EngineSettings,
    schedule: Option<&Schedule>,
    idempotency_key: &str,
    inventory: Option<&Inventoried>,
) -> Result<Plan, AdapterError> {
    let mut seen = Vec::new();
    let listing = match inventory {
        Some(inventoried) => {
            let taken = inventoried.taken_at.strftime("%Y-%m-%d %H:%M UTC");
            match inventoried.listing() {
                Some(listing) => {
                    if let Some(why) = super::resolved::mismatch(
                        up.issuer.name(),
                        target,
                        listing.resolved.as_ref(),
                    ) {
                        return Ok(Plan::infeasible(why));
                    }
                    seen.push(format!(
                        "tokens as {}'s inventory of {} saw them at {taken} (listing them would start a Job)",
                        up.issuer.name(),
                        target.environment
                    ));
                    listing
                }
                None => {
                    return Ok(Plan::infeasible(format!(
                        "nothing to rotate: {}'s inventory of {} at {taken} has no token for this target, and token-rotator never creates access",
                        up.issuer.name(),
                        target.environment
                    )));
                }
            }
        }
        None => match list_exactly(up.issuer.as_ref(), target, idempotency_key).await {
            Ok(listing) => listing,
            Err(e) if !e.is_transient() && !e.is_pending() => {
                return Ok(Plan::infeasible(e.to_string()));
            }
            Err(e) => return Err(e),
        },
    };
    let placement = up.distributor.placement(&listing);
    let current = match up.distributor.read(&placement).await {
        Ok(current) => current,
        Err(e) if !e.is_transient() => return Ok(Plan::infeasible(e.to_string())),
        Err(e) => return Err(e),
    };
    let in_use = match &current {
        Some(value) => match up.issuer.identify(&listing, value).await {
            Ok(found) => found,
            Err(e) if !e.is_transient() => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    let (mut findings, feasible) = findings(up, &listing, &placement, current.is_some(), in_use);
    seen.append(&mut findings);
    let findings = seen;
    Ok(Plan {
        steps: steps(
            up,
            target,
            &listing,
            &placement,
            settings,
            schedule,
            idempotency_key,
        ),
        findings,
        feasible,
    })
}

/// What the read-only look found, and whether the rotation would succeed.
fn findings(
    up: &Upstreams,
    listing: &TokenListing,
    placement: &Placement,
    placed: bool,
    in_use: Option<TokenInfo>,
) -> (Vec<String>, bool) {
    let issuer = up.issuer.name();
    let where_ = up.distributor.describe(placement);
    let mut findings = Vec::new();
    let mut feasible = true;
    if listing.tokens.is_empty() {
        // Active mode would fail here too (`steps::mint`): rotation replaces access.
        feasible = false;
        findings.push(format!(
            "nothing to rotate: {issuer} lists no live token for this target, and token-rotator never creates access"
        ));
    }
    let newest = listing.tokens.iter().max_by_key(|t| t.expires_at);
    match (placed, in_use) {
        (false, _) => {
            feasible = false;
            findings.push(format!(
                "{where_} not found: no consumer can be reading it (check the names in the alert)"
            ));
        }
        (true, Some(in_use)) => {
            findings.push(format!(
                "{where_} holds token {} (…{}) expiring {}",
                in_use.id, in_use.last8, in_use.expires_at
            ));
            if up.issuer.self_renews()
                && let Some(newest) = newest.filter(|n| n.expires_at > in_use.expires_at)
            {
                findings.push(format!(
                    "token already renewed by {issuer} — would adopt token {} (…{}) expiring {} instead of minting",
                    newest.id, newest.last8, newest.expires_at
                ));
            }
        }
        (true, None) => {
            // Active mode refuses here for a distributor that rotates only what it holds.
            feasible &= !up.distributor.requires_token_in_place();
            findings.push(format!(
                "{where_} holds a token {issuer} does not list as live for this target"
            ));
        }
    }
    (findings, feasible)
}

/// The steps an active rotation would take, each in its provider's words. Pure, so a test can
/// render every provider's plan without calling out.
pub fn steps(
    up: &Upstreams,
    target: &Target,
    listing: &TokenListing,
    placement: &Placement,
    settings: &super::EngineSettings,
    schedule: Option<&Schedule>,
    idempotency_key: &str,
) -> Vec<String> {
    let issuer = up.issuer.name();
    let asked = schedule.map_or(settings.token_life, Schedule::token_life);
    let life = up
        .issuer
        .longest_life()
        .map_or(asked, |most| asked.min(most));
    let days = |d: std::time::Duration| match d.as_secs() / 86400 {
        1 => "1 day".to_owned(),
        n => format!("{n} days"),
    };
    let old = listing.tokens.iter().max_by_key(|t| t.expires_at);
    let mut mint = format!(
        "ask {issuer} for a new token for {} / {} expiring in {} (idempotency key {idempotency_key})",
        target.api_user,
        listing.application_name,
        days(life)
    );
    let mut steps = Vec::new();
    if up.issuer.revokes_on_mint() {
        mint.push_str(&format!(
            "; {issuer}'s rotation revokes the old token at once, so consumers still on it fail until they read the new one, and there is no rolling back onto it"
        ));
    }
    steps.push(mint);
    steps.push(up.distributor.plan(placement));
    steps.push(up.verifier.plan(&listing.application_uid));
    if up.issuer.revokes_on_mint() {
        steps.push(format!("no grace: {issuer} already revoked the old token"));
    } else if schedule.is_some_and(|s| !s.disable_old) {
        steps.push(format!(
            "leave the old token to expire by itself (the schedule overlaps tokens by {} and does not disable the old one)",
            days(schedule.map_or(life, |s| s.overlap))
        ));
    } else {
        steps.push(format!(
            "keep the old token valid for {}",
            humantime::format_duration(settings.grace)
        ));
        steps.push(match old {
            Some(t) => format!("revoke the old token {} (…{}) in {issuer}", t.id, t.last8),
            None => "no old token to revoke".to_owned(),
        });
    }
    steps
}

impl Engine {
    /// planned → planned_only, for a rotation created in shadow.
    pub(super) async fn plan(&self, row: &RotationRow) -> Step {
        let target = match super::row::target(row) {
            Ok(target) => target,
            Err(e) => return Step::Error(e),
        };
        let up = match self.adapters.for_row(row) {
            Ok(up) => up,
            Err(e) => return Step::Error(e),
        };
        let schedule = self.adapters.schedule_of(row);
        let inventory = if up.issuer.list_writes() {
            match Inventoried::read(&self.db, &target).await {
                Ok(Some(inventory)) => Some(inventory),
                // Taken when the service starts leading: the plan waits for it.
                Ok(None) => {
                    return Step::Error(AdapterError::Pending {
                        upstream: up.issuer.name(),
                        detail: format!(
                            "waiting for the first inventory of {}: shadow mode reads it rather than start a list Job",
                            target.environment
                        ),
                    });
                }
                Err(e) => {
                    return Step::Error(AdapterError::Transient {
                        upstream: "journal",
                        detail: e.to_string(),
                    });
                }
            }
        } else {
            None
        };
        match plan_rotation(
            up,
            &target,
            &self.settings,
            schedule,
            &row.id,
            inventory.as_ref(),
        )
        .await
        {
            Ok(plan) => self.finish_plan(row, Phase::Planned, &plan),
            Err(e) => Step::Error(e),
        }
    }

    /// silencing → planned_only: which silence would be made or extended.
    pub(super) async fn plan_silence(&self, row: &RotationRow) -> Step {
        let matchers = match super::silence::silence_matchers(row) {
            Ok(matchers) => matchers,
            Err(e) => return Step::Error(e),
        };
        let Some(alertmanager) = &self.adapters.alertmanager else {
            let plan = Plan::infeasible("no Alertmanager is configured to silence in".into());
            return self.finish_plan(row, Phase::Silencing, &plan);
        };
        let described: Vec<String> = matchers
            .iter()
            .map(|m| format!("{}=\"{}\"", m.name, m.value))
            .collect();
        let step = match alertmanager.find_silence(&matchers).await {
            Ok(Some(existing)) => {
                format!("extend silence {} ({})", existing.id, described.join(", "))
            }
            Ok(None) => format!("create a silence {{{}}}", described.join(", ")),
            Err(e) if e.is_transient() => return Step::Error(e),
            Err(e) => {
                return self.finish_plan(row, Phase::Silencing, &Plan::infeasible(e.to_string()));
            }
        };
        let plan = Plan {
            steps: vec![step],
            findings: Vec::new(),
            feasible: true,
        };
        self.finish_plan(row, Phase::Silencing, &plan)
    }

    fn finish_plan(&self, row: &RotationRow, from: Phase, plan: &Plan) -> Step {
        let mut transition =
            self.transition(row, from, Phase::PlannedOnly, plan.summary(), "shadow");
        transition.fields.push(Field::Text(
            "plan",
            Some(json!({"mode": "shadow", "steps": plan.steps, "findings": plan.findings, "feasible": plan.feasible}).to_string()),
        ));
        Step::Advance(transition)
    }
}
