//! The identities the issuers act as, checked before a rotation needs them: at start-up and
//! once a day. An account that was suspended or removed (an issuer may suspend an account nobody
//! signed in with for weeks) would otherwise be found by the next rotation, days before a token
//! expires and perhaps at night. What the last check found is on `/readyz`, the status page and
//! a gauge; a change (refused, warned, accepted again) is posted to Slack once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;

use super::{Engine, EngineError, message};
use crate::adapters::{AdapterError, Issuer};
use crate::store::outbox;

/// How often the identities are checked again after the check at start-up.
pub const CHECK_EVERY: Duration = Duration::from_secs(24 * 3600);
/// How long one check may take: a Job waits for a node and its image to start.
const CHECK_BUDGET: Duration = Duration::from_secs(15 * 60);

/// What the last check of one issuer's identity found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityState {
    pub checked_at: Timestamp,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: what was checked.
    Accepted(String),
    /// Accepted for now; a person should act before it stops working.
    Warned(String),
    /// Refused, or the check could not run: every mint and revoke would fail the same way.
    Refused(String),
}

impl Verdict {
    /// A line a person must act on; `None` when accepted.
    pub fn problem(&self) -> Option<&str> {
        match self {
            Verdict::Accepted(_) => None,
            Verdict::Warned(p) | Verdict::Refused(p) => Some(p),
        }
    }
}

/// The last check of each issuer's identity, by scope ("environment production", "schedule
/// deploy-key"); shared with the web edge.
#[derive(Debug, Default)]
pub struct IdentityHealth {
    checks: Mutex<BTreeMap<String, IdentityState>>,
}

impl IdentityHealth {
    /// Every scope checked, with what its last check found.
    pub fn all(&self) -> BTreeMap<String, IdentityState> {
        self.checks.lock().expect("lock never poisoned").clone()
    }

    /// One line per scope a person must act on; empty when every identity was accepted.
    pub fn problems(&self) -> Vec<String> {
        self.all()
            .into_iter()
            .filter_map(|(scope, state)| state.verdict.problem().map(|p| format!("{scope}: {p}")))
            .collect()
    }

    /// Records a check; returns the previous verdict.
    fn record(&self, scope: &str, state: IdentityState) -> Option<Verdict> {
        self.checks
            .lock()
            .expect("lock never poisoned")
            .insert(scope.to_owned(), state)
            .map(|previous| previous.verdict)
    }
}

impl Engine {
    /// What the identity checks found, for `/readyz` and the status page.
    pub fn identity_health(&self) -> Arc<IdentityHealth> {
        Arc::clone(&self.identity)
    }

    /// Checks every issuer's identity once (an issuer shared by scopes is checked per scope: a
    /// Job in each). Posts to Slack when a verdict changes. Returns how many were checked.
    pub async fn check_identities(&self) -> Result<usize, EngineError> {
        let mut scopes: Vec<(String, Arc<dyn Issuer>)> = Vec::new();
        for (name, upstreams) in &self.adapters.environments {
            let scope = if name == "*" {
                "every environment".to_owned()
            } else {
                format!("environment {name}")
            };
            scopes.push((scope, Arc::clone(&upstreams.issuer)));
        }
        for (name, scheduled) in &self.adapters.schedules {
            scopes.push((
                format!("schedule {name}"),
                Arc::clone(&scheduled.upstreams.issuer),
            ));
        }
        let mut checked = 0;
        for (scope, issuer) in scopes {
            let now = self.clock.now();
            // Job names are short hashes of this key: one Job per scope and check.
            let key = format!("identity-{}", now.as_second());
            let verdict = match self
                .check_one(issuer.as_ref(), &format!("{key}/{scope}"))
                .await
            {
                Ok(None) => continue,
                Ok(Some(report)) => match report.warning {
                    Some(warning) => Verdict::Warned(warning),
                    None => Verdict::Accepted(report.checked),
                },
                Err(e) => Verdict::Refused(format!(
                    "{} did not accept the identity token-rotator acts as (every rotation here would fail the same way): {e}",
                    issuer.name()
                )),
            };
            checked += 1;
            match &verdict {
                Verdict::Accepted(what) => tracing::info!(%scope, "identity check: {what}"),
                Verdict::Warned(what) => tracing::warn!(%scope, "identity check: {what}"),
                Verdict::Refused(what) => tracing::error!(%scope, "identity check: {what}"),
            }
            let previous = self.identity.record(
                &scope,
                IdentityState {
                    checked_at: now,
                    verdict: verdict.clone(),
                },
            );
            if let Some(text) = change_to_post(&scope, previous.as_ref(), &verdict) {
                let body = json!({"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]});
                outbox::enqueue(&self.db, &body, now).await?;
            }
        }
        self.metrics
            .identities_refused(self.identity.problems().len());
        Ok(checked)
    }
}

impl Engine {
    /// One check, waited for: a Job runs for a while (asked again every `poll`, as a step is),
    /// up to [`CHECK_BUDGET`].
    async fn check_one(
        &self,
        issuer: &dyn Issuer,
        key: &str,
    ) -> Result<Option<crate::adapters::IdentityReport>, AdapterError> {
        let started = std::time::Instant::now();
        loop {
            match issuer.check_identity(key).await {
                Err(AdapterError::Pending { upstream, detail })
                    if started.elapsed() < CHECK_BUDGET =>
                {
                    tracing::debug!(upstream, %detail, "identity check under way");
                    tokio::time::sleep(self.settings.poll).await;
                }
                other => return other,
            }
        }
    }
}

/// The Slack line for a verdict that changed kind; nothing when it is of the same kind as last
/// time (its words name each check's Job), or a first check that was accepted (nothing to tell).
fn change_to_post(scope: &str, previous: Option<&Verdict>, now: &Verdict) -> Option<String> {
    if previous.is_some_and(|p| std::mem::discriminant(p) == std::mem::discriminant(now)) {
        return None;
    }
    let scope = message::escape(scope);
    match now {
        Verdict::Refused(why) => Some(format!(
            ":rotating_light: *token-rotator cannot act for {scope}.* {} Fix the account before a token there needs rotating.",
            message::escape(why)
        )),
        Verdict::Warned(why) => Some(format!(
            ":warning: *token-rotator's identity for {scope} will stop working.* {}",
            message::escape(why)
        )),
        Verdict::Accepted(what) if previous.is_some_and(|p| p.problem().is_some()) => {
            Some(format!(
                ":white_check_mark: token-rotator's identity for {scope} is accepted again: {}.",
                message::escape(what)
            ))
        }
        Verdict::Accepted(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_is_posted_when_it_changes_and_not_again() {
        let ok = Verdict::Accepted("fine".into());
        let refused = Verdict::Refused("suspended".into());
        assert_eq!(change_to_post("environment p", None, &ok), None);
        let first = change_to_post("environment p", Some(&ok), &refused).expect("posted");
        assert!(first.contains("cannot act for environment p") && first.contains("suspended"));
        assert_eq!(
            change_to_post("environment p", Some(&refused), &refused),
            None
        );
        let again = Verdict::Refused("suspended (jobs/another)".into());
        assert_eq!(
            change_to_post("environment p", Some(&refused), &again),
            None
        );
        let back = change_to_post("environment p", Some(&refused), &ok).expect("posted");
        assert!(back.contains("accepted again"), "{back}");
        assert!(change_to_post("s", None, &Verdict::Warned("45 days".into())).is_some());
    }
}
