//! Taking journaled alerts in: each starts a rotation, joins the one under way, cancels one not
//! yet begun (a resolved alert: someone rotated by hand), or records a decision needing none.

mod batch;
mod named;

use jiff::Timestamp;

use super::{Engine, EngineError, Phase, message};
use crate::policy::Mode;
use crate::store::outbox::{Notice, NoticeKind};
use crate::store::rotations::{self, NewRotation, PendingAlert};
use crate::store::threads::ThreadKey;
use batch::{Batch, Joined};
use named::{Named, Names};

/// Alerts taken in per pass; the rest wait for the next pass.
const BATCH: i64 = 500;

impl Engine {
    /// Takes in every journaled alert not yet handled; `tick` does this first.
    /// Returns how many were taken in; an alert whose issuer could not be asked about its
    /// target waits, with every later alert of its environment (their order is kept).
    pub async fn ingest(&self) -> Result<usize, EngineError> {
        let pending = rotations::pending_alerts(&self.db, BATCH).await?;
        let mut batch = Batch::default();
        let mut names = Names::default();
        let mut taken = 0;
        for alert in &pending {
            let environment = alert.environment.as_deref().unwrap_or_default();
            if self.issuer_waits(environment) {
                continue;
            }
            if self.take_in(alert, &mut batch, &mut names).await? {
                taken += 1;
            }
        }
        batch.flush(&self.db, self.clock.now()).await?;
        Ok(taken)
    }

    /// Whether an issuer of `environment` could not be asked lately (see [`Named::Wait`]).
    fn issuer_waits(&self, environment: &str) -> bool {
        let now = self.clock.now();
        self.naming_waits
            .lock()
            .expect("lock never poisoned")
            .get(environment)
            .is_some_and(|until| *until > now)
    }

    /// `false`: the alert waits for a later pass.
    async fn take_in(
        &self,
        alert: &PendingAlert,
        batch: &mut Batch,
        names: &mut Names,
    ) -> Result<bool, EngineError> {
        let pool = &self.db;
        let now = self.clock.now();
        let source = if alert.receiver == crate::reconcile::RECEIVER {
            "reconcile"
        } else {
            "alert"
        };
        let trigger = format!("{source}:{}", alert.fingerprint);
        let firing = alert.status == "firing";
        let environment = alert.environment.clone().unwrap_or_default();
        let api_user = alert.api_user.clone().unwrap_or_default();
        let application = alert.application.clone().unwrap_or_default();
        let thread = ThreadKey {
            delivery_id: Some(alert.delivery_id),
            channel: self
                .settings
                .slack
                .channel(alert.slack_channel.as_deref(), &environment),
        };
        // Fixed now: a later switch to active never runs what was decided in shadow. A rule's
        // own mode can only make it stricter; an environment this instance does not serve
        // (intake makes such alerts unroutable) would be shadow.
        let served = self
            .settings
            .modes
            .get(&environment)
            .copied()
            .unwrap_or(Mode::Shadow);
        let mode = match alert.mode.as_deref().and_then(Mode::parse) {
            Some(Mode::Shadow) => Mode::Shadow,
            _ => served,
        };

        if alert.action == "silence" && firing {
            let active = batch
                .active(pool, &environment, &api_user, &application)
                .await?;
            if let Some(active) = active {
                batch.join(alert, &active, Joined::SilenceRequest, source);
                return Ok(true);
            }
            batch.flush(pool, now).await?;
            let new = new_rotation(
                alert,
                mode,
                Phase::Silencing,
                Some(now),
                &trigger,
                "the rule says to silence it",
                None,
            )
            .told_in(thread);
            rotations::start(pool, &new, Some(alert.id), now, &[]).await?;
            return Ok(true);
        }
        let approval = alert.action == "manual" && mode == Mode::Active && asks_approval(alert);
        if alert.action != "rotate" && !approval {
            if !firing {
                batch.nothing(alert);
                return Ok(true);
            }
            let (phase, why) = match alert.action.as_str() {
                // In shadow an asking rule asks nobody: it says whom it would ask.
                "manual" if asks_approval(alert) => (
                    Phase::Manual,
                    "shadow: in active mode the rule's owners would be asked in Slack first; nothing was asked or changed".to_owned(),
                ),
                "manual" => (Phase::Manual, "needs a person".to_owned()),
                "ignore" => (Phase::Ignored, "rotates by itself".to_owned()),
                "silence" => (Phase::Silenced, "noise by rule".to_owned()),
                _ => (
                    Phase::Unroutable,
                    alert
                        .reason
                        .clone()
                        .unwrap_or_else(|| "not routable".into()),
                ),
            };
            let ended = EndedAtOnce {
                mode,
                phase,
                why,
                trigger: &trigger,
                thread,
            };
            self.ended_at_once(alert, ended, batch).await?;
            return Ok(true);
        }

        // The token as its issuer names it, whatever the alert's spelling: everything from here
        // on (single flight, cooldown, the row) keys on that.
        let decided = match self.name_token(alert, names).await {
            Named::Token(named) => Ok(named),
            Named::Wait(why) => {
                let until = now + self.settings.retry.min_delay;
                tracing::warn!(environment = ?environment, error = ?why, "the issuer could not name an alert's token; its environment's alerts wait");
                self.naming_waits
                    .lock()
                    .expect("lock never poisoned")
                    .insert(environment, until);
                return Ok(false);
            }
            _ if !firing => {
                batch.nothing(alert);
                return Ok(true);
            }
            Named::Refused(why) => Err((Phase::Unroutable, why)),
            Named::Scheduled(schedule) => Err((
                Phase::Ignored,
                format!(
                    "{} {schedule:?}, which rotates it; an alert does not rotate a token a schedule owns",
                    message::MANAGED_BY_SCHEDULE
                ),
            )),
        };
        let named = match decided {
            Ok(named) => named,
            Err((phase, why)) => {
                let ended = EndedAtOnce {
                    mode,
                    phase,
                    why,
                    trigger: &trigger,
                    thread,
                };
                self.ended_at_once(alert, ended, batch).await?;
                return Ok(true);
            }
        };
        let alert = &named;
        let api_user = alert.api_user.clone().unwrap_or_default();
        let application = alert.application.clone().unwrap_or_default();

        let active = batch
            .active(pool, &environment, &api_user, &application)
            .await?;
        match (active, firing) {
            (Some(active), true) => {
                batch.join(alert, &active, Joined::Rotation, source);
            }
            (Some(active), false)
                if active.phase == Phase::Planned.as_str()
                    || active.phase == Phase::AwaitingApproval.as_str() =>
            {
                batch.flush(pool, now).await?;
                let why = "the alert resolved before the rotation began; someone may have rotated it by hand".to_owned();
                let from = Phase::parse(&active.phase).unwrap_or(Phase::Planned);
                let mut transition =
                    self.transition(&active, from, Phase::Cancelled, why, &trigger);
                if from == Phase::AwaitingApproval {
                    transition.notify.push(Notice::new(
                        NoticeKind::ApprovalUpdate,
                        message::approval_closed(&active, "cancelled: the alert resolved"),
                    ));
                }
                self.advance(&active, transition, Some(alert.id)).await?;
            }
            (Some(active), false) => {
                batch.join(alert, &active, Joined::ResolvedDuring, source);
            }
            (None, false) => batch.nothing(alert),
            (None, true) => {
                batch.flush(pool, now).await?;
                let recent =
                    rotations::last_done(pool, &environment, &api_user, &application).await?;
                let cooling = recent.as_ref().filter(|r| {
                    r.finished_at_ms.is_some_and(|f| {
                        f + self.settings.cooldown.as_millis() as i64 > now.as_millisecond()
                    })
                });
                if let Some(done) = cooling {
                    let note = format!(
                        "alert {} arrived within the cooldown after this rotation finished; not rotating again",
                        alert.fingerprint
                    );
                    rotations::handle_alert(
                        pool,
                        alert.id,
                        Some(&done.id),
                        Some((&done.phase, &note, &trigger)),
                        now,
                    )
                    .await?;
                } else if approval {
                    let until = now + self.settings.approval_timeout;
                    let new = new_rotation(
                        alert,
                        mode,
                        Phase::AwaitingApproval,
                        Some(until),
                        &trigger,
                        if asks_owners(alert) {
                            "the rule asks the token's owners what to do first; nothing is minted before they choose"
                        } else {
                            "the rule asks a person to approve the rotation first"
                        },
                        None,
                    )
                    .told_in(thread);
                    let row = new.preview(now);
                    let notice = Notice::new(
                        NoticeKind::Approval,
                        message::approval_request(&row, until.as_millisecond()),
                    );
                    rotations::start(pool, &new, Some(alert.id), now, &[notice]).await?;
                } else {
                    let new = new_rotation(
                        alert,
                        mode,
                        Phase::Planned,
                        Some(now),
                        &trigger,
                        "the alert asks for a rotation",
                        None,
                    )
                    .told_in(thread);
                    rotations::start(pool, &new, Some(alert.id), now, &[]).await?;
                }
            }
        }
        Ok(true)
    }
}

/// An alert decided without rotating, as its row ends at once.
struct EndedAtOnce<'a> {
    mode: Mode,
    phase: Phase,
    why: String,
    trigger: &'a str,
    thread: ThreadKey,
}

impl Engine {
    /// Journals `alert`'s row, ended at once, with its message.
    async fn ended_at_once(
        &self,
        alert: &PendingAlert,
        ended: EndedAtOnce<'_>,
        batch: &mut Batch,
    ) -> Result<(), EngineError> {
        let (pool, now, phase) = (&self.db, self.clock.now(), ended.phase);
        let why = if phase == Phase::Unroutable {
            format!("{} (labels {})", ended.why, alert.labels)
        } else {
            ended.why
        };
        let new = new_rotation(
            alert,
            ended.mode,
            phase,
            None,
            ended.trigger,
            &why,
            Some(why.clone()),
        )
        .told_in(ended.thread);
        let row = new.preview(now);
        let body = message::outcome(&row, phase, &why, now.as_millisecond(), &self.words(&row));
        batch.flush(pool, now).await?;
        let notice = Notice::new(NoticeKind::Outcome, body);
        rotations::start(pool, &new, Some(alert.id), now, &[notice]).await?;
        self.metrics.ended_at_once(phase.as_str());
        Ok(())
    }
}

fn new_rotation(
    alert: &PendingAlert,
    mode: Mode,
    phase: Phase,
    next_attempt_at: Option<Timestamp>,
    trigger: &str,
    reason: &str,
    outcome: Option<String>,
) -> NewRotation {
    NewRotation {
        id: uuid::Uuid::now_v7().to_string(),
        environment: alert.environment.clone().unwrap_or_default(),
        api_user: alert.api_user.clone().unwrap_or_default(),
        application: alert.application.clone().unwrap_or_default(),
        action: alert.action.clone(),
        rule_name: alert.rule_name.clone(),
        action_detail: alert.action_detail.clone(),
        phase: phase.as_str(),
        trigger: trigger.to_owned(),
        mode: mode.as_str(),
        alertname: serde_json::from_str::<serde_json::Value>(&alert.labels)
            .ok()
            .and_then(|labels| labels["alertname"].as_str().map(str::to_owned)),
        next_attempt_at,
        outcome,
        reason: reason.to_owned(),
        thread: None,
    }
}

/// A rule with `ask = true`: its owners choose what happens, not just yes or no.
fn asks_owners(alert: &PendingAlert) -> bool {
    alert
        .action_detail
        .as_deref()
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .is_some_and(|d| d["ask"].is_object())
}

/// A manual rule with `approval = true` or `ask = true` (its decision, as journaled with the
/// alert): a person decides in Slack before anything happens.
fn asks_approval(alert: &PendingAlert) -> bool {
    alert
        .action_detail
        .as_deref()
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .is_some_and(|d| d["approval"].as_bool() == Some(true) || d["ask"].is_object())
}
