//! Shadow mode: the same decisions and the same read-only look at the world, and then a plan of
//! what would be done instead of doing it. Rotations created in shadow end in `planned_only`.
//! Nothing here can mutate: the adapters' mutating calls need a `Permit`, which shadow never has.

use serde_json::json;

use super::{Engine, Phase, Step};
use crate::adapters::alertmanager::Matcher;
use crate::adapters::parameterize::secret_name;
use crate::adapters::{AdapterError, Placement, Upstreams};
use crate::domain::Target;
use crate::store::rotations::{Field, RotationRow};

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

/// The plan for rotating `target`, from read-only calls (list tokens, read the Secret).
pub async fn plan_rotation(
    up: &Upstreams,
    target: &Target,
    settings: &super::EngineSettings,
    idempotency_key: &str,
) -> Result<Plan, AdapterError> {
    let listing = match up.issuer.list(target, idempotency_key).await {
        Ok(listing) => listing,
        Err(e) if !e.is_transient() && !e.is_pending() => {
            return Ok(Plan::infeasible(e.to_string()));
        }
        Err(e) => return Err(e),
    };
    let placement = Placement {
        name: secret_name(&listing.api_user_name, &listing.application_name),
    };
    let current = match up.distributor.read(&placement).await {
        Ok(current) => current,
        Err(e) if !e.is_transient() => return Ok(Plan::infeasible(e.to_string())),
        Err(e) => return Err(e),
    };
    let mut findings = Vec::new();
    let mut feasible = true;
    let old = listing.tokens.iter().max_by_key(|t| t.expires_at);
    if listing.tokens.is_empty() {
        // Active mode would fail here too (`steps::mint`): rotation replaces access.
        feasible = false;
        findings.push(
            "nothing to rotate: Signon lists no live token for this API user and application, and token-rotator never creates access"
                .to_owned(),
        );
    }
    match &current {
        None => {
            feasible = false;
            findings.push(format!(
                "Secret {} not found: no consumer can be reading it (check the API user's name)",
                placement.name
            ));
        }
        Some(value) => {
            use secrecy::ExposeSecret;
            let value = value.expose_secret();
            let last8 = &value[value.len().saturating_sub(8)..];
            match listing.tokens.iter().find(|t| t.last8 == last8) {
                Some(in_use) => {
                    findings.push(format!(
                        "Secret {} holds token {} (…{}) expiring {}",
                        placement.name, in_use.id, in_use.last8, in_use.expires_at
                    ));
                    if let Some(newest) = old.filter(|n| n.expires_at > in_use.expires_at) {
                        findings.push(format!(
                            "token already renewed by Signon — would adopt token {} (…{}) expiring {} instead of minting",
                            newest.id, newest.last8, newest.expires_at
                        ));
                    }
                }
                None => findings.push(format!(
                    "Secret {} holds a token Signon does not list as live",
                    placement.name
                )),
            }
        }
    }
    let steps = vec![
        format!(
            "mint a token for {} / {} expiring in {} days (idempotency key {idempotency_key})",
            target.api_user,
            listing.application_name,
            settings.token_life.as_secs() / 86400
        ),
        format!(
            "apply Secret {} key bearer_token (field manager token-rotator)",
            placement.name
        ),
        format!(
            "verify with GET /user.json?client_id={}",
            listing.application_uid
        ),
        format!(
            "keep the old token valid for {}",
            humantime::format_duration(settings.grace)
        ),
        match old {
            Some(t) => format!("revoke the old token {} (…{})", t.id, t.last8),
            None => "no old token to revoke".to_owned(),
        },
    ];
    Ok(Plan {
        steps,
        findings,
        feasible,
    })
}

impl Engine {
    /// planned → planned_only, for a rotation created in shadow.
    pub(super) async fn plan(&self, row: &RotationRow) -> Step {
        let target = match super::steps::target(row) {
            Ok(target) => target,
            Err(e) => return Step::Error(e),
        };
        let up = match self.adapters.for_row(row) {
            Ok(up) => up,
            Err(e) => return Step::Error(e),
        };
        match plan_rotation(up, &target, &self.settings, &row.id).await {
            Ok(plan) => self.finish_plan(row, Phase::Planned, &plan),
            Err(e) => Step::Error(e),
        }
    }

    /// silencing → planned_only: which silence would be made or extended.
    pub(super) async fn plan_silence(&self, row: &RotationRow, matchers: &[Matcher]) -> Step {
        let Some(alertmanager) = &self.adapters.alertmanager else {
            let plan = Plan::infeasible("no Alertmanager is configured to silence in".into());
            return self.finish_plan(row, Phase::Silencing, &plan);
        };
        let described: Vec<String> = matchers
            .iter()
            .map(|m| format!("{}=\"{}\"", m.name, m.value))
            .collect();
        let step = match alertmanager.find_silence(matchers).await {
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
