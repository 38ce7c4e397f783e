//! Which replica acts. Every replica takes webhooks and journals them; only the leader runs
//! rotations, the scheduler, reconcile and Slack threads.
//!
//! On SQLite there is one replica, and it leads. On PostgreSQL the leader is the replica whose
//! dedicated connection holds a session advisory lock. Taking it over bumps the journal's
//! `leadership.epoch`; every engine write checks that epoch under the journal's write lock (see
//! [`Db::write_tx`]), and the engine asks [`Leadership::ensure`] before every step, so a replica
//! that lost the lock between deciding and acting neither acts nor journals.
//!
//! Timing, for a lease `L` (default 10 s): the lock connection is checked every `L/5`. The leader
//! steps down when no check has succeeded for `L/2`; PostgreSQL ends the leader's session once it
//! has heard nothing for `L` (`idle_session_timeout`), which frees the lock; a standby tries for
//! it every `L/5`. So a leader cut off from the database has stopped acting at least `L/2` before
//! any standby can start, and a killed leader's session ends with its socket, so a standby takes
//! over within `L/5`.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};

use crate::store::{Db, Fence, StoreError};
use crate::telemetry::Metrics;

/// The session advisory lock the leader holds ("tkrotldr" in ASCII).
const LEADER_LOCK_KEY: i64 = 0x746b_726f_746c_6472;

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
}

impl Leadership {
    /// The only replica (SQLite): leads from the start, forever.
    pub fn sole() -> Arc<Self> {
        Arc::new(Self {
            role: watch::Sender::new(Role::Leader { epoch: 0 }),
            fence: Fence::default(),
            elected: None,
        })
    }

    /// Elected through PostgreSQL at `url` (the journal's database); starts as a standby. The
    /// election runs until `stop` is set, then lets go of the lock.
    pub fn postgres(
        url: &str,
        db: &Db,
        lease: Duration,
        holder: String,
        metrics: Arc<Metrics>,
        stop: watch::Receiver<bool>,
    ) -> Result<Arc<Self>, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(|source| StoreError::Url {
            url: crate::store::redact_url(url),
            source,
        })?;
        let fence = Fence::default();
        let this = Arc::new(Self {
            role: watch::Sender::new(Role::Standby),
            elected: Some((db.fenced(fence.clone()), lease)),
            fence,
        });
        metrics.leadership(false, 0);
        let election = Election {
            leadership: Arc::clone(&this),
            options: options.application_name("token-rotator-leader"),
            lease,
            holder,
            metrics,
        };
        tokio::spawn(election.run(stop));
        Ok(this)
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
            return Err(StoreError::Fenced {
                mine: 0,
                current: -1,
            });
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

struct Election {
    leadership: Arc<Leadership>,
    options: PgConnectOptions,
    lease: Duration,
    holder: String,
    metrics: Arc<Metrics>,
}

impl Election {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let every = self.lease / 5;
        while !*stop.borrow() {
            let outcome = tokio::select! {
                outcome = self.term() => outcome,
                _ = stop.wait_for(|s| *s) => Ok(()),
            };
            // Whatever ended the term, stop acting first; the connection (and with it the lock)
            // is already gone, dropped with the term.
            self.step_down();
            if let Err(why) = outcome {
                tracing::warn!(reason = %why, "leader election: not leading");
                tokio::select! {
                    () = tokio::time::sleep(every) => {},
                    _ = stop.wait_for(|s| *s) => {},
                }
            }
        }
        tracing::info!("leader election stopped; the lock is released");
    }

    fn step_down(&self) {
        if self.leadership.is_leader() {
            tracing::warn!("stepping down: no longer leading");
        }
        self.leadership.fence.clear();
        self.leadership.role.send_replace(Role::Standby);
        self.metrics.leadership(false, 0);
    }

    /// One connection's life: wait for the lock, lead while it holds. Ends with why it ended.
    async fn term(&self) -> Result<(), String> {
        let every = self.lease / 5;
        let mut conn = timeout(self.lease, PgConnection::connect_with(&self.options))
            .await
            .map_err(|_| "connecting timed out".to_owned())?
            .map_err(|e| format!("cannot connect: {e}"))?;
        // The server ends this session (and frees the lock) when it hears nothing for a lease:
        // between statements, or half-way through one (a message cut off mid-protocol leaves
        // the session in an implicit transaction, which only the second setting covers).
        let lease_ms = self.lease.as_millis();
        for setting in [
            "idle_session_timeout",
            "idle_in_transaction_session_timeout",
        ] {
            let set = format!("SET {setting} = {lease_ms}");
            sqlx::query(sqlx::AssertSqlSafe(set))
                .execute(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        loop {
            let got: bool = timeout(self.lease / 2, async {
                sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(LEADER_LOCK_KEY)
                    .fetch_one(&mut conn)
                    .await
            })
            .await
            .map_err(|_| "the lock request timed out".to_owned())?
            .map_err(|e| e.to_string())?;
            if got {
                break;
            }
            tokio::time::sleep(every).await;
        }
        let epoch: i64 = timeout(
            self.lease,
            sqlx::query_scalar(
                "UPDATE leadership SET epoch = epoch + 1, holder = $1, since_ms = $2 \
                 WHERE id = 1 RETURNING epoch",
            )
            .bind(&self.holder)
            .bind(jiff::Timestamp::now().as_millisecond())
            .fetch_one(&mut conn),
        )
        .await
        .map_err(|_| "taking over timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        self.leadership.fence.set(epoch);
        self.leadership.role.send_replace(Role::Leader { epoch });
        self.metrics.leadership(true, epoch);
        tracing::info!(epoch, holder = %self.holder, "leading");

        let mut deadline = Instant::now() + self.lease / 2;
        loop {
            tokio::time::sleep(every).await;
            let check = timeout_at(deadline, async {
                sqlx::query_scalar::<_, i64>("SELECT epoch FROM leadership WHERE id = 1")
                    .fetch_one(&mut conn)
                    .await
            })
            .await;
            match check {
                Ok(Ok(current)) if current == epoch => deadline = Instant::now() + self.lease / 2,
                Ok(Ok(current)) => return Err(format!("epoch {current} took over from {epoch}")),
                // Most likely the session is gone, and the lock with it.
                Ok(Err(e)) => return Err(format!("lost the database: {e}")),
                Err(_) => {
                    return Err(format!(
                        "no answer from the database for {:?}",
                        self.lease / 2
                    ));
                }
            }
        }
    }
}
