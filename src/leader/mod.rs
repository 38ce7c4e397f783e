//! Which replica acts. Every replica takes webhooks and journals them; only the leader runs
//! rotations, the scheduler, reconcile and Slack threads.
//!
//! On SQLite there is one replica, and it leads. On PostgreSQL one replica is elected, by a
//! session advisory lock ([`postgres`], the default) or a Kubernetes Lease ([`lease`]). Taking
//! over bumps the journal's `leadership.epoch`; every engine write checks that epoch under the
//! journal's write lock (see [`Db::write_tx`]), and the engine asks [`Leadership::ensure`] before
//! every step, so a replica that lost the leadership between deciding and acting neither acts
//! nor journals.
//!
//! Both elections share one timing, for a lease `L` (default 10 s): the leader proves it still
//! holds the lock every `L/5` and steps down when no proof has succeeded for `L/2`; a standby
//! can take over only once the leader has been silent for a whole `L`. So a leader cut off has
//! stopped acting at least `L/2` before any standby starts.

mod lease;
mod postgres;
mod skew;

pub use skew::MAX_CLOCK_SKEW;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use tokio::sync::watch;
use tokio::time::timeout;

use crate::adapters::kubernetes::Cluster;
use crate::clock::Clock;
use crate::store::{Db, Fence, StoreError};
use crate::telemetry::Metrics;

/// What `/readyz` and the metric say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Acting, under this epoch (0 on SQLite, which does not elect).
    Leader {
        epoch: i64,
    },
    Standby,
}

pub struct Leadership {
    role: watch::Sender<Role>,
    fence: Fence,
    /// Present when elected: the fenced handle [`ensure`](Self::ensure) reads the epoch with.
    elected: Option<(Db, Duration)>,
    /// Why this replica refuses to lead because of its clock, for `/readyz`; `None` when its
    /// clock agrees with the database's (or was not yet compared).
    clock_problem: std::sync::Mutex<Option<String>>,
}

impl Leadership {
    /// The only replica (SQLite): leads from the start, forever.
    pub fn sole() -> Arc<Self> {
        Arc::new(Self {
            role: watch::Sender::new(Role::Leader { epoch: 0 }),
            fence: Fence::default(),
            elected: None,
            clock_problem: std::sync::Mutex::new(None),
        })
    }

    /// Elected through PostgreSQL at `url` (the journal's database); starts as a standby. The
    /// election runs until `stop` is set, then lets go of the lock. `clock` is the one the engine
    /// compares deadlines with: it must agree with the database's to lead ([`skew`]).
    pub fn postgres(
        url: &str,
        db: &Db,
        lease: Duration,
        holder: String,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        stop: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(|source| StoreError::Url {
            url: crate::store::redact_url(url),
            source,
        })?;
        let this = Self::standby(db, lease, &metrics);
        let election = postgres::Election {
            leadership: Arc::clone(&this),
            options: options.application_name("token-rotator-leader"),
            lease,
            holder,
            metrics,
            clock,
        };
        tokio::spawn(election.run(stop));
        Ok(this)
    }

    /// Elected by holding the Lease `name` in `cluster`'s namespace; the journal (`db`, on
    /// PostgreSQL) still carries the epoch every write is fenced by, and the clock `clock` must
    /// agree with to lead.
    #[expect(
        clippy::too_many_arguments,
        reason = "each is a separate input of the election"
    )]
    pub fn kubernetes(
        cluster: Cluster,
        name: String,
        db: &Db,
        lease: Duration,
        holder: String,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        stop: watch::Receiver<bool>,
    ) -> Arc<Self> {
        let this = Self::standby(db, lease, &metrics);
        let election = lease::Election {
            leadership: Arc::clone(&this),
            cluster,
            name,
            db: db.clone(),
            lease,
            holder,
            metrics,
            clock,
            held: std::sync::Mutex::new(None),
        };
        tokio::spawn(election.run(stop));
        this
    }

    fn standby(db: &Db, lease: Duration, metrics: &Metrics) -> Arc<Self> {
        let fence = Fence::default();
        metrics.leadership(false, 0);
        Arc::new(Self {
            role: watch::Sender::new(Role::Standby),
            elected: Some((db.fenced(fence.clone()), lease)),
            fence,
            clock_problem: std::sync::Mutex::new(None),
        })
    }

    /// Acts from now on, under `epoch`.
    fn lead(&self, epoch: i64, holder: &str, metrics: &Metrics) {
        self.fence.set(epoch);
        self.role.send_replace(Role::Leader { epoch });
        metrics.leadership(true, epoch);
        tracing::info!(epoch, %holder, "leading");
    }

    /// Stops acting (already, or now).
    fn step_down(&self, metrics: &Metrics) {
        if self.is_leader() {
            tracing::warn!("stepping down: no longer leading");
        }
        self.fence.clear();
        self.role.send_replace(Role::Standby);
        metrics.leadership(false, 0);
    }

    /// Why this replica's clock keeps it from leading, if it does.
    pub fn clock_problem(&self) -> Option<String> {
        self.clock_problem
            .lock()
            .expect("lock never poisoned")
            .clone()
    }

    /// Compares `clock` with the database's through `executor`; `Err` (and `/readyz` says so)
    /// when they differ by more than [`MAX_CLOCK_SKEW`].
    async fn clock_agrees<'c>(
        &self,
        executor: impl sqlx::PgExecutor<'c>,
        clock: &dyn Clock,
    ) -> Result<(), String> {
        self.note_clock(skew::check(executor, clock).await)
    }

    /// Keeps what a clock check found for `/readyz`, and passes the verdict on.
    fn note_clock(&self, verdict: Result<(), String>) -> Result<(), String> {
        let mut problem = self.clock_problem.lock().expect("lock never poisoned");
        match &verdict {
            Ok(()) => *problem = None,
            Err(why) if why.starts_with(skew::SKEWED) => *problem = Some(why.clone()),
            // The database did not answer: nothing learnt about the clocks.
            Err(_) => {}
        }
        verdict
    }

    pub fn role(&self) -> Role {
        *self.role.borrow()
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role(), Role::Leader { .. })
    }

    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// The fence the engine's writes carry.
    pub fn fence(&self) -> Fence {
        self.fence.clone()
    }

    /// Before a side effect: this replica still leads, as far as the journal knows right now.
    pub async fn ensure(&self) -> Result<(), StoreError> {
        let Some((db, lease)) = &self.elected else {
            return Ok(());
        };
        if !self.is_leader() {
            return Err(StoreError::NotLeading);
        }
        let budget = *lease / 2;
        timeout(budget, db.still_leading())
            .await
            .map_err(|_| StoreError::LeadershipUnconfirmed(budget))?
    }

    /// Completes when this replica leads (at once, if it does).
    pub async fn leading(&self) {
        let mut role = self.subscribe();
        let _ = role.wait_for(|r| matches!(r, Role::Leader { .. })).await;
    }

    /// Completes when this replica stops leading.
    pub async fn lost(&self) {
        let mut role = self.subscribe();
        let _ = role.wait_for(|r| *r == Role::Standby).await;
    }
}

/// Terms one after another until `stop`: each waits for the leadership and holds it until it
/// ends, saying why; whatever ended it, this replica stops acting before the next begins.
async fn elect<Fut>(
    leadership: &Leadership,
    metrics: &Metrics,
    lease: Duration,
    stop: &mut watch::Receiver<bool>,
    term: impl Fn() -> Fut,
) where
    Fut: Future<Output = Result<(), String>>,
{
    loop {
        // `wait_for` also ends when the sender is gone (the service dropped without stopping
        // us): that is a stop too, never a reason to spin.
        let outcome = tokio::select! {
            outcome = term() => Some(outcome),
            _ = stop.wait_for(|s| *s) => None,
        };
        leadership.step_down(metrics);
        match outcome {
            None => return,
            Some(Ok(())) => {}
            Some(Err(why)) => {
                tracing::warn!(reason = %why, "leader election: not leading");
                tokio::select! {
                    () = tokio::time::sleep(lease / 5) => {},
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    }
}

/// Takes the journal's leadership over — the next epoch, which every fenced write then checks —
/// and starts acting under it.
async fn take_over<'c>(
    leadership: &Leadership,
    executor: impl sqlx::PgExecutor<'c>,
    holder: &str,
    metrics: &Metrics,
    budget: Duration,
) -> Result<i64, String> {
    let bump = sqlx::query_scalar(
        "UPDATE leadership SET epoch = epoch + 1, holder = $1, since_ms = $2 WHERE id = 1 \
         RETURNING epoch",
    )
    .bind(holder)
    .bind(jiff::Timestamp::now().as_millisecond())
    .fetch_one(executor);
    let epoch = timeout(budget, bump)
        .await
        .map_err(|_| "taking over the journal timed out".to_owned())?
        .map_err(|e| format!("taking over the journal: {e}"))?;
    leadership.lead(epoch, holder, metrics);
    Ok(epoch)
}
