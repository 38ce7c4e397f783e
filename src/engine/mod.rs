//! The rotation engine: drains the journal, one state machine per target.
//!
//! Each pass ([`Engine::tick`]) takes in new alerts, moves every due rotation by one step, and
//! delivers due Slack messages. A step re-reads its rotation, does at most one kind of external
//! change (each idempotent by the rotation id), and journals the next phase; a crash anywhere
//! resumes from the journaled phase. Decisions about errors live in one place, [`Engine::failed`].

/// `?` for steps: an adapter error ends the step with it. (Defined before the step modules,
/// which use it.)
macro_rules! attempt {
    ($call:expr) => {
        match $call {
            Ok(value) => value,
            Err(error) => return Step::Error(error),
        }
    };
}

pub mod answer;
pub mod approval;
mod asked;
mod deliver;
mod distribute;
pub mod handover;
pub mod identity;
mod in_place;
mod ingest;
pub mod inventory;
pub mod message;
pub mod mrkdwn;

mod resolved;
pub mod retry;
mod row;
mod run;
pub mod schedule;
mod settings;
pub mod shadow;
mod silence;
mod slots;
mod steps;
pub mod sweep;
mod turns;
mod upstreams;

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tracing::Instrument as _;

use crate::adapters::AdapterError;
use crate::clock::Clock;
use crate::leader::Leadership;
pub use crate::phase::Phase;
use crate::secrets::Keys;
use crate::store::outbox::{self, Notice, NoticeKind};
use crate::store::rotations::{self, RotationRow, Transition};
use crate::store::{Db, Journal, StoreError};
use crate::telemetry::Metrics;
pub use retry::RetryPolicy;
pub use schedule::{Handover, Schedule, Scheduled, Window};
pub use settings::{EngineSettings, SlackRouting, SweepSettings};

pub use crate::adapters::Upstreams;
pub use upstreams::{Adapters, SlackOut};

pub struct Engine {
    journal: Arc<Journal>,
    /// The journal as the engine writes it: fenced by the leadership epoch when elected.
    db: Db,
    leader: Arc<Leadership>,
    metrics: Arc<Metrics>,
    adapters: Adapters,
    clock: Arc<dyn Clock>,
    keys: Keys,
    settings: EngineSettings,
    /// Woken by intake when it journals alerts, so they do not wait for the next poll.
    wake: Arc<Notify>,
    /// How many steps run at once, and which rotations are being stepped.
    slots: Arc<slots::Slots>,
    /// Taking in alerts and starting due schedules: one pass at a time (two would both start a
    /// rotation for one alert, and the journal would refuse the second).
    intake: tokio::sync::Mutex<()>,
    /// What the last checks of the issuers' identities found.
    identity: Arc<identity::IdentityHealth>,
    /// The rule table, for the nightly sweep's per-pair opt-in; `None`: nothing is swept.
    policy: Option<crate::policy::Policy>,
    /// Environments whose issuer could not name an alert's token lately, and until when their
    /// alerts wait (so an unreachable issuer is asked once a retry delay, not once an alert).
    naming_waits: std::sync::Mutex<std::collections::HashMap<String, Timestamp>>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How often the running engine prunes the journal.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub alerts: usize,
    pub steps: usize,
    pub messages: usize,
}

impl Progress {
    pub fn is_idle(&self) -> bool {
        *self == Progress::default()
    }
}

/// How a step ended.
enum Step {
    /// Journal this transition.
    Advance(Transition),
    /// An upstream refused or failed.
    Error(AdapterError),
}

impl Engine {
    pub fn new(
        journal: Arc<Journal>,
        metrics: Arc<Metrics>,
        adapters: Adapters,
        clock: Arc<dyn Clock>,
        keys: Keys,
        settings: EngineSettings,
    ) -> Self {
        Self {
            db: journal.pool().clone(),
            leader: Leadership::sole(),
            journal,
            metrics,
            adapters,
            clock,
            keys,
            slots: slots::Slots::new(settings.max_in_flight, settings.max_in_flight_per_upstream),
            settings,
            wake: Arc::new(Notify::new()),
            intake: tokio::sync::Mutex::new(()),
            identity: Arc::default(),
            policy: None,
            naming_waits: Default::default(),
        }
    }

    /// The rule table the nightly sweep asks whether a pair's superseded tokens may go.
    pub fn with_policy(mut self, policy: crate::policy::Policy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Acts only while `leader` leads, and writes fenced by its epoch.
    pub fn led_by(mut self, leader: Arc<Leadership>) -> Self {
        self.db = self.journal.pool().fenced(leader.fence());
        self.leader = leader;
        self
    }

    /// Intake calls `notify_one` on this after journaling alerts.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    pub fn journal(&self) -> &Arc<Journal> {
        &self.journal
    }

    /// One pass: take in new alerts, one step for each due rotation, deliver due messages.
    /// The steps run concurrently, within the caps (`Slots`); a rotation another pass is
    /// stepping is left to it. The pass ends when its steps have.
    pub async fn tick(&self) -> Result<Progress, EngineError> {
        use futures::StreamExt as _;
        let alerts = self.start_new().await?;
        let due = rotations::due_rotations(&self.db, self.clock.now()).await?;
        let claimed: Vec<_> = due
            .into_iter()
            .filter_map(|row| self.slots.claim(&row.id).map(|claim| (claim, row)))
            .collect();
        let steps = claimed.len();
        let results: Vec<_> = futures::stream::iter(claimed)
            .map(|(claim, row)| async move {
                let _permits = self
                    .slots
                    .acquire(&slots::upstream_of(&self.adapters, &row))
                    .await;
                let Some(row) = self.still_due(&row).await? else {
                    return Ok(None);
                };
                let stepped = self.step(row).await;
                drop(claim);
                stepped
            })
            .buffer_unordered(self.settings.max_in_flight.max(1))
            .collect()
            .await;
        let mut plans = Vec::new();
        for result in results {
            plans.extend(result?);
        }
        self.batch_plans(plans).await?;
        let messages = self.deliver().await?;
        Ok(Progress {
            alerts,
            steps,
            messages,
        })
    }

    /// The rotation as the journal has it now, if it is still due. The list of due rotations
    /// was read before this one was claimed: the step that held it may have ended in between,
    /// and stepping its old phase again would repeat that phase's side effect.
    async fn still_due(&self, row: &RotationRow) -> Result<Option<RotationRow>, EngineError> {
        let now = self.clock.now().as_millisecond();
        Ok(rotations::rotation(&self.db, &row.id)
            .await?
            .filter(|fresh| fresh.next_attempt_at_ms.is_some_and(|at| at <= now)))
    }

    /// New alerts and due schedules become rotations, one pass at a time.
    async fn start_new(&self) -> Result<usize, EngineError> {
        let _one = self.intake.lock().await;
        Ok(self.ingest().await? + self.start_due().await?)
    }

    /// Shadow plans go to Slack as one message, not one per target.
    async fn batch_plans(&self, plans: Vec<(RotationRow, String)>) -> Result<(), EngineError> {
        if !plans.is_empty() {
            let body = message::shadow_batch(&plans);
            outbox::enqueue(&self.db, &body, self.clock.now()).await?;
        }
        Ok(())
    }

    /// Passes until nothing is due at the clock's present time (bounded, in case of a bug).
    pub async fn run_until_idle(&self) -> Result<(), EngineError> {
        for _ in 0..1000 {
            if self.tick().await?.is_idle() {
                return Ok(());
            }
        }
        tracing::error!("engine still busy after 1000 passes");
        Ok(())
    }

    /// Exports, then prunes, what finished longer than `retention` ago (`store::retention`).
    pub async fn prune(&self) -> Result<crate::store::retention::Pruned, EngineError> {
        let cutoff = self.clock.now() - self.settings.retention;
        let pruned = crate::store::retention::prune(&self.db, cutoff.as_millisecond()).await?;
        if pruned != Default::default() {
            tracing::info!(?pruned, "journal pruned");
        }
        Ok(pruned)
    }

    /// One step; returns `(row, plan summary)` when it ended a shadow rotation with its plan.
    async fn step(&self, row: RotationRow) -> Result<Option<(RotationRow, String)>, EngineError> {
        let Some(phase) = Phase::parse(&row.phase) else {
            tracing::error!(rotation_id = %row.id, phase = %row.phase, "unknown phase in the journal");
            return Ok(None);
        };
        // Labels come from outside: `?` escapes anything that could forge a log line. The span
        // is attached to the step's future (not entered): steps run concurrently, and an
        // entered span would tag another step's lines.
        let span = tracing::info_span!("step", rotation_id = %row.id, %phase, target = ?format!("{}/{}/{}", row.environment, row.api_user, row.application));
        self.step_in(row, phase).instrument(span).await
    }

    async fn step_in(
        &self,
        row: RotationRow,
        phase: Phase,
    ) -> Result<Option<(RotationRow, String)>, EngineError> {
        // Every step may call out: a replica that lost the leadership since the pass began stops
        // here, before the call, and the pass with it.
        self.leader.ensure().await?;
        match self.run_step(&row, phase).await {
            Step::Advance(transition) => {
                let plan = (transition.to == Phase::PlannedOnly.as_str())
                    .then(|| transition.reason.clone());
                self.advance(&row, transition, None).await?;
                Ok(plan.map(|summary| (row, summary)))
            }
            Step::Error(error) => self.failed(&row, phase, error).await.map(|()| None),
        }
    }

    async fn advance(
        &self,
        row: &RotationRow,
        transition: Transition,
        alert_id: Option<i64>,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let moved = rotations::transition(&self.db, &row.id, &transition, now, alert_id).await?;
        if moved {
            let seconds = (now.as_millisecond() - row.updated_at_ms) as f64 / 1000.0;
            let terminal = transition.next_attempt_at.is_none();
            self.metrics
                .phase_changed(transition.from, transition.to, seconds, terminal);
            tracing::info!(rotation_id = %row.id, from = transition.from, to = transition.to, reason = ?transition.reason, "phase changed");
        } else {
            tracing::warn!(rotation_id = %row.id, "{}", rotations::MOVED_ON);
        }
        Ok(())
    }

    /// The one place that decides what an error means: retry soon, roll back, or give up.
    async fn failed(
        &self,
        row: &RotationRow,
        phase: Phase,
        error: AdapterError,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        if error.is_pending() {
            tracing::debug!(rotation_id = %row.id, error = ?error.to_string(), "waiting");
            let at = now + self.settings.poll;
            rotations::wait_until(&self.db, row, &error.to_string(), at).await?;
            return Ok(());
        }
        let failures = row.attempts as u32 + 1;
        let deadline = row
            .deadline_at_ms
            .and_then(|ms| Timestamp::from_millisecond(ms).ok());
        if error.is_transient()
            && let Some(delay) = self.settings.retry.delay(failures)
        {
            let at = now + delay;
            if deadline.is_none_or(|d| at < d) {
                tracing::warn!(rotation_id = %row.id, error = ?error.to_string(), attempt = failures, "step failed; will retry");
                rotations::retry_later(&self.db, row, &error.to_string(), at, now).await?;
                self.metrics.retried(error.upstream());
                return Ok(());
            }
        }
        let mut why = if error.is_transient() {
            format!("{error}; gave up after {failures} attempts")
        } else {
            error.to_string()
        };
        // `?`: reasons quote labels and upstream answers, which come from outside.
        tracing::error!(rotation_id = %row.id, %phase, error = ?why, "step failed for good");
        // An issuer whose rotation revoked the old token leaves nothing to roll back onto:
        // putting the dead token back and revoking the live one would break every consumer.
        let revoked_by = self.words(row).revoked_at_mint;
        let to = match revoked_by {
            Some(issuer) if phase.has_new_token() => {
                why.push_str(&format!(
                    "; {issuer} revoked the old token when it rotated, so there is nothing to roll back onto: the new token …{} stays live",
                    row.new_token_last4.as_deref().unwrap_or("?")
                ));
                Phase::Failed
            }
            _ if phase.has_new_token() => Phase::RollingBack,
            _ => Phase::Failed,
        };
        let mut transition = self.transition(row, phase, to, why.clone(), "engine");
        if to == Phase::RollingBack {
            // Kept for the rolled_back message, written once the rollback is done.
            transition
                .fields
                .push(rotations::Field::Text("outcome", Some(why)));
        }
        self.advance(row, transition, None).await
    }

    /// What the providers of `row` call things, for its messages (none when it has no upstreams:
    /// an alert decided without rotating, or a schedule no longer configured).
    fn words(&self, row: &RotationRow) -> message::Words {
        let Ok(up) = self.adapters.for_row(row) else {
            return message::Words::default();
        };
        message::Words::of(up, row)
    }

    /// A transition that queues the outcome's Slack message when `to` is terminal.
    fn transition(
        &self,
        row: &RotationRow,
        from: Phase,
        to: Phase,
        reason: String,
        trigger: &str,
    ) -> Transition {
        let now = self.clock.now();
        // Shadow plans are batched per pass (see `tick`); every other end has its own message.
        let notify = (to.is_terminal() && to != Phase::PlannedOnly)
            .then(|| {
                // A failure or rollback is shown in the channel, not only in the thread.
                let kind = if matches!(to, Phase::Failed | Phase::RolledBack) {
                    NoticeKind::Broadcast
                } else {
                    NoticeKind::Outcome
                };
                Notice::new(
                    kind,
                    message::outcome(row, to, &reason, now.as_millisecond(), &self.words(row)),
                )
            })
            .into_iter()
            .collect();
        let mut fields = Vec::new();
        if to.is_terminal() {
            // Nothing sealed outlives its rotation.
            fields.push(rotations::Field::Blob("old_secret_sealed", None));
            fields.push(rotations::Field::Blob("new_token_sealed", None));
            fields.push(rotations::Field::Text("outcome", Some(reason.clone())));
        }
        Transition {
            from: from.as_str(),
            to: to.as_str(),
            reason,
            trigger: trigger.to_owned(),
            next_attempt_at: (!to.is_terminal()).then_some(now),
            fields,
            notify,
        }
    }
}
