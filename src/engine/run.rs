//! The engine as `serve` runs it: each due rotation's step a task of its own, started as soon
//! as a slot is free, so that no pass waits for its slowest step.

use std::sync::Arc;
use std::time::Duration;

use super::{Engine, EngineError, PRUNE_EVERY, identity, inventory, slots, sweep};
use crate::store::rotations::{self, RotationRow};

impl Engine {
    /// Runs until `shutdown` completes. Unlike [`Engine::tick`], no pass waits for its slowest
    /// step: each step is a task of its own, started as soon as its rotation is due and a slot
    /// is free, so a rotation waiting on a hung upstream holds up no other. Sleeps until the
    /// next due time, intake's wake-up, a step's end, or `poll` at the longest. Steps in flight
    /// finish before it stops.
    pub async fn run(self: Arc<Self>, poll: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut pruned_at: Option<std::time::Instant> = None;
        let mut identities_checked_at: Option<std::time::Instant> = None;
        let mut inventories_taken_at: Option<std::time::Instant> = None;
        // The last due day the sweep was started for; the journal's claim per environment
        // and day keeps a restart from sweeping a day twice.
        let mut sweep_started_for: Option<jiff::civil::Date> = None;
        let mut steps = tokio::task::JoinSet::new();
        let (plans, mut planned) = tokio::sync::mpsc::unbounded_channel();
        loop {
            let started = match self.dispatch(&mut steps, &plans).await {
                Ok(started) => started,
                Err(e) => {
                    tracing::error!(error = %e, "engine pass failed; retrying");
                    0
                }
            };
            if let Err(e) = self.after_steps(&mut planned).await {
                tracing::error!(error = %e, "engine pass failed; retrying");
            }
            if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned_at = Some(std::time::Instant::now());
                if let Err(e) = self.prune().await {
                    tracing::error!(error = %e, "pruning the journal failed; will try again");
                }
            }
            // At start-up (of leading) and daily; a task of its own, since a check may be a Job.
            if identities_checked_at.is_none_or(|at| at.elapsed() >= identity::CHECK_EVERY) {
                identities_checked_at = Some(std::time::Instant::now());
                let engine = Arc::clone(&self);
                steps.spawn(async move {
                    if let Err(e) = engine.check_identities().await {
                        tracing::error!(error = %e, "checking the issuers' identities failed; will try again tomorrow");
                    }
                });
            }
            // The same for the inventories, a task of its own too (a Job each).
            if inventories_taken_at.is_none_or(|at| at.elapsed() >= inventory::TAKE_EVERY) {
                inventories_taken_at = Some(std::time::Instant::now());
                let engine = Arc::clone(&self);
                steps.spawn(async move {
                    if let Err(e) = engine.take_inventories().await {
                        tracing::error!(error = %e, "journaling the token inventories failed; will try again tomorrow");
                    }
                });
            }
            // The nightly sweep once its time of day has passed, a task of its own (a Job each).
            let due = sweep::due_day(&self.settings.sweep, self.clock.now());
            if self.settings.sweep.enabled && due.is_some() && due != sweep_started_for {
                sweep_started_for = due;
                let engine = Arc::clone(&self);
                steps.spawn(async move {
                    if let Err(e) = engine.sweep_due().await {
                        tracing::error!(error = %e, "the sweep of superseded tokens failed; will try again tomorrow");
                    }
                });
            }
            // Due now but not started: in flight, or waiting for a slot; a step's end wakes
            // the loop for those, so there is no need to spin.
            let wait = match rotations::next_due(&self.db).await {
                Ok(Some(due_ms)) => {
                    let now = self.clock.now().as_millisecond();
                    if due_ms <= now && started == 0 {
                        poll
                    } else {
                        Duration::from_millis(
                            (due_ms - now).clamp(0, poll.as_millis() as i64) as u64
                        )
                    }
                }
                _ => poll,
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = self.wake.notified() => {},
                Some(_) = steps.join_next(), if !steps.is_empty() => {},
                () = tokio::time::sleep(wait) => {},
            }
        }
        while steps.join_next().await.is_some() {}
        if let Err(e) = self.after_steps(&mut planned).await {
            tracing::error!(error = %e, "engine pass failed");
        }
        tracing::info!("engine stopped");
    }

    /// Takes in alerts and due schedules, then starts a task for each due rotation not in
    /// flight while slots allow. Returns how many it started.
    async fn dispatch(
        self: &Arc<Self>,
        steps: &mut tokio::task::JoinSet<()>,
        plans: &tokio::sync::mpsc::UnboundedSender<(RotationRow, String)>,
    ) -> Result<usize, EngineError> {
        self.start_new().await?;
        let mut started = 0;
        for row in rotations::due_rotations(&self.db, self.clock.now()).await? {
            let Some(claim) = self.slots.claim(&row.id) else {
                continue;
            };
            let permits = match self
                .slots
                .try_acquire(&slots::upstream_of(&self.adapters, &row))
            {
                Ok(permits) => permits,
                Err(slots::Full::Global) => break,
                // Its upstream is busy: the others may go on.
                Err(slots::Full::Upstream) => continue,
            };
            let engine = Arc::clone(self);
            let plans = plans.clone();
            steps.spawn(async move {
                let stepped = match engine.still_due(&row).await {
                    Ok(Some(row)) => engine.step(row).await,
                    Ok(None) => Ok(None),
                    Err(e) => Err(e),
                };
                drop((claim, permits));
                match stepped {
                    Ok(Some(plan)) => {
                        let _ = plans.send(plan);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %e, "step failed to journal; will retry"),
                }
                engine.wake.notify_one();
            });
            started += 1;
        }
        Ok(started)
    }

    /// What follows steps: their shadow plans as one message, and the outbox (webhook mode).
    async fn after_steps(
        &self,
        planned: &mut tokio::sync::mpsc::UnboundedReceiver<(RotationRow, String)>,
    ) -> Result<(), EngineError> {
        let mut plans = Vec::new();
        while let Ok(plan) = planned.try_recv() {
            plans.push(plan);
        }
        self.batch_plans(plans).await?;
        self.deliver().await?;
        Ok(())
    }
}
