//! The nightly sweep: an issuer that renews tokens by itself and never revokes the old ones
//! leaves each night's superseded tokens valid until they expire. Once a day, at `[sweep] at`,
//! each served environment's superseded tokens (not the newest of their pair, not expired) are
//! revoked where that cannot break a consumer: the pair's placement holds the newest token, and
//! every Deployment reading it has rolled onto it (`judge`). Every revoke is journaled first, as
//! a rotation in `retiring` naming exactly the ids to revoke; one digest per environment says
//! what was revoked and what was kept, and why (`digest`). In shadow mode nothing is revoked and
//! the digest says what would have been.

mod digest;
mod judge;

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;

use super::{Engine, EngineError, Phase, SweepSettings, slots};
use crate::adapters::{AdapterError, InventoriedToken, Upstreams};
use crate::policy::Mode;
use crate::store::rotations::{self, NewRotation};
use crate::store::{StoreError, inventory, outbox, sweeps};

pub use judge::Verdict;

/// How long one call may stay under way (a Job waits for a node and its image to start).
const CALL_BUDGET: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What one sweep of one environment decided for one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairOutcome {
    pub api_user: String,
    pub application: String,
    pub verdict: Verdict,
}

/// What one sweep of one environment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub environment: String,
    pub day: Date,
    pub shadow: bool,
    pub pairs: Vec<PairOutcome>,
}

/// The local day whose sweep is due at `now`: today once `at` has passed, else yesterday. A
/// sweep missed while the service was down (or not leading) is made up when it is back; the
/// very first is the next one due (see `sweeps::first_sight`).
pub fn due_day(settings: &SweepSettings, now: Timestamp) -> Option<Date> {
    let local = now.to_zoned(settings.zone.clone());
    let today = local.date();
    // A time that does not exist that day (a clock change) is taken as the next that does.
    let due = today
        .to_datetime(settings.at)
        .to_zoned(settings.zone.clone())
        .ok()?;
    if now >= due.timestamp() {
        Some(today)
    } else {
        today.yesterday().ok()
    }
}

impl Engine {
    /// An upstream call that may be under way for a while (a Job), asked again every `poll` as
    /// a step is, up to [`CALL_BUDGET`].
    pub(super) async fn patiently<T, F, Fut>(&self, mut call: F) -> Result<T, AdapterError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, AdapterError>>,
    {
        let started = std::time::Instant::now();
        loop {
            match call().await {
                Err(AdapterError::Pending { upstream, detail })
                    if started.elapsed() < CALL_BUDGET =>
                {
                    tracing::debug!(upstream, %detail, "sweep: call under way");
                    tokio::time::sleep(self.settings.poll).await;
                }
                other => return other,
            }
        }
    }

    /// Sweeps each served environment whose sweep of the due day has not been claimed yet
    /// (claimed in the journal first: one sweep per environment and day, whichever replica or
    /// restart gets there). An environment never swept only has the due day recorded: its
    /// first sweep is the next one due. Returns what each sweep did.
    pub async fn sweep_due(&self) -> Result<Vec<SweepReport>, EngineError> {
        let sweep = &self.settings.sweep;
        if !sweep.enabled {
            return Ok(Vec::new());
        }
        let Some(day) = due_day(sweep, self.clock.now()) else {
            return Ok(Vec::new());
        };
        let mut reports = Vec::new();
        for environment in self.settings.modes.keys() {
            if self.adapters.upstreams(environment).is_err() {
                continue;
            }
            let (today, now) = (day.to_string(), self.clock.now());
            if sweeps::first_sight(&self.db, environment, &today, now).await? {
                tracing::info!(%environment, "the sweep of superseded tokens starts at its next due time, {} {}", sweep.at, sweep.zone.iana_name().unwrap_or("UTC"));
                continue;
            }
            if !sweeps::claim(&self.db, environment, &today, now).await? {
                continue;
            }
            if let Some(report) = self.sweep(environment, day).await? {
                reports.push(report);
            }
        }
        Ok(reports)
    }

    /// One environment's sweep of `day`, whether claimed or not: a fresh inventory (journaled
    /// as the day's), each pair with superseded tokens judged, the revokes journaled and made,
    /// one digest. `None`: the environment's issuer cannot list every token, so there is
    /// nothing to sweep from.
    pub async fn sweep(
        &self,
        environment: &str,
        day: Date,
    ) -> Result<Option<SweepReport>, EngineError> {
        let Ok(up) = self.adapters.upstreams(environment) else {
            return Ok(None);
        };
        let shadow = self.settings.modes.get(environment) != Some(&Mode::Active);
        // Job names are short hashes of this key: one inventory Job per environment and day.
        let key = format!("sweep-{day}/{environment}");
        let taken = match self.take_one(up.issuer.as_ref(), &key).await {
            Ok(Some(taken)) => taken,
            Ok(None) => return Ok(None),
            Err(e) => {
                tracing::error!(%environment, error = %e, "the sweep could not take {}'s inventory; nothing swept", up.issuer.name());
                let body = digest::not_taken(environment, day, up.issuer.name(), &e.to_string());
                let outcome = format!("nothing swept: the inventory could not be taken: {e}");
                self.sweep_ended(environment, day, &body, &outcome).await?;
                return Ok(None);
            }
        };
        let rows: Vec<_> = taken.tokens.iter().map(super::inventory::row).collect();
        inventory::replace(&self.db, environment, self.clock.now(), &rows).await?;
        let mut pairs: BTreeMap<(&str, &str), Vec<&InventoriedToken>> = BTreeMap::new();
        for token in &taken.tokens {
            pairs
                .entry((&token.api_user, &token.application))
                .or_default()
                .push(token);
        }
        let mut report = SweepReport {
            environment: environment.to_owned(),
            day,
            shadow,
            pairs: Vec::new(),
        };
        for ((api_user, application), tokens) in pairs {
            if !tokens.iter().any(|t| !t.newest && !t.expired) {
                continue;
            }
            let judged = self
                .judge(up, environment, api_user, application, &tokens, &key)
                .await?;
            let verdict = match judged {
                judge::Judged::Keep(verdict) => verdict,
                judge::Judged::Revoke(plan) if shadow || plan.mode == Some(Mode::Shadow) => {
                    Verdict::WouldRevoke {
                        tokens: plan.tokens,
                        newest: plan.newest,
                    }
                }
                judge::Judged::Revoke(plan) => {
                    self.revoke_superseded(up, environment, api_user, application, day, plan)
                        .await?
                }
            };
            report.pairs.push(PairOutcome {
                api_user: api_user.to_owned(),
                application: application.to_owned(),
                verdict,
            });
        }
        let revoked = report
            .pairs
            .iter()
            .filter(|p| matches!(p.verdict, Verdict::Revoked { .. }))
            .count();
        tracing::info!(%environment, %day, shadow, pairs = report.pairs.len(), revoked, "sweep of superseded tokens done");
        let body = digest::digest(&report, up.issuer.name());
        self.sweep_ended(environment, day, &body, &digest::outcome(&report))
            .await?;
        Ok(Some(report))
    }

    /// Posts a sweep's Slack message and journals what it did, as it ends.
    async fn sweep_ended(
        &self,
        environment: &str,
        day: Date,
        body: &serde_json::Value,
        outcome: &str,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        outbox::enqueue(&self.db, body, now).await?;
        sweeps::finished(&self.db, environment, &day.to_string(), outcome, now).await?;
        Ok(())
    }

    /// Journals the revoke as a rotation in `retiring` naming exactly the ids (the journal's
    /// one-active-rotation-per-target index refuses it if a rotation started meanwhile), then
    /// takes its step at once; a step that must be retried is left to the engine's passes.
    async fn revoke_superseded(
        &self,
        up: &Upstreams,
        environment: &str,
        api_user: &str,
        application: &str,
        day: Date,
        plan: judge::Plan,
    ) -> Result<Verdict, EngineError> {
        let now = self.clock.now();
        let id = uuid::Uuid::now_v7().to_string();
        // Held before the row exists, so the dispatcher never steps it beside us.
        let Some(claim) = self.slots.claim(&id) else {
            return Ok(Verdict::Kept("the rotation could not be claimed".into()));
        };
        let ids: Vec<&str> = plan.tokens.iter().map(|(id, _)| id.as_str()).collect();
        let new = NewRotation {
            id: id.clone(),
            environment: environment.to_owned(),
            api_user: api_user.to_owned(),
            application: application.to_owned(),
            action: plan.action.clone(),
            rule_name: plan.rule.clone(),
            action_detail: Some(serde_json::json!({ "revoke_only": ids }).to_string()),
            phase: Phase::Retiring.as_str(),
            trigger: format!("sweep:{day}"),
            alertname: up.issuer.expiry_alertname().map(str::to_owned),
            mode: Mode::Active.as_str(),
            next_attempt_at: Some(now),
            outcome: None,
            reason: format!(
                "the nightly sweep: revoking superseded {}; {}",
                judge::shown(&plan.tokens),
                plan.why
            ),
            thread: None,
        };
        match rotations::start(&self.db, &new, None, now, &[]).await {
            Ok(()) => {}
            Err(StoreError::Write(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                return Ok(Verdict::Kept("a rotation is under way".into()));
            }
            Err(e) => return Err(e.into()),
        }
        // Stepped here while a Job is under way (no attempt spent), so the digest can say how
        // it ended; a failure to retry later is left to the engine's passes.
        let started = std::time::Instant::now();
        while let Some(row) = rotations::rotation(&self.db, &id).await? {
            let waiting = row.phase == Phase::Retiring.as_str() && row.attempts == 0;
            if !waiting || started.elapsed() >= CALL_BUDGET {
                break;
            }
            if row.last_error.is_some() {
                tokio::time::sleep(self.settings.poll).await;
            }
            let _permits = self
                .slots
                .acquire(&slots::upstream_of(&self.adapters, &row))
                .await;
            self.step(row).await?;
        }
        drop(claim);
        let row = rotations::rotation(&self.db, &id).await?;
        let (phase, outcome, error) = row.map_or_else(Default::default, |r| {
            (r.phase, r.outcome.unwrap_or_default(), r.last_error)
        });
        Ok(if phase == Phase::Retired.as_str() {
            Verdict::Revoked {
                tokens: plan.tokens,
                newest: plan.newest,
                rotation_id: id,
            }
        } else if phase == Phase::Retiring.as_str() {
            Verdict::Pending {
                tokens: plan.tokens,
                rotation_id: id,
                error: error.unwrap_or_default(),
            }
        } else {
            Verdict::Failed {
                tokens: plan.tokens,
                rotation_id: id,
                why: outcome,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn london(at: &str) -> SweepSettings {
        SweepSettings {
            enabled: true,
            at: jiff::civil::Time::strptime("%H:%M", at).unwrap(),
            zone: jiff::tz::TimeZone::get("Europe/London").unwrap(),
        }
    }

    #[test]
    fn the_due_day_is_today_once_the_local_time_has_passed() {
        let s = london("02:00");
        let at = |t: &str| t.parse::<Timestamp>().unwrap();
        // Winter: London is UTC.
        assert_eq!(
            due_day(&s, at("2026-12-06T01:59:00Z")),
            Some(jiff::civil::date(2026, 12, 5))
        );
        assert_eq!(
            due_day(&s, at("2026-12-06T02:00:00Z")),
            Some(jiff::civil::date(2026, 12, 6))
        );
        // Summer: 02:00 in London is 01:00 UTC.
        assert_eq!(
            due_day(&s, at("2026-07-01T01:00:00Z")),
            Some(jiff::civil::date(2026, 7, 1))
        );
        assert_eq!(
            due_day(&s, at("2026-07-01T00:59:00Z")),
            Some(jiff::civil::date(2026, 6, 30))
        );
        // 01:30 does not exist on the morning the clocks go forward: due at 02:30 BST.
        let gap = london("01:30");
        assert_eq!(
            due_day(&gap, at("2026-03-29T01:29:00Z")),
            Some(jiff::civil::date(2026, 3, 28))
        );
        assert_eq!(
            due_day(&gap, at("2026-03-29T01:30:00Z")),
            Some(jiff::civil::date(2026, 3, 29))
        );
    }
}
