//! Election by a PostgreSQL session advisory lock on a dedicated connection. A killed leader's
//! session ends with its socket, so a standby (trying every `L/5`) takes over within `L/5`;
//! PostgreSQL ends a silent leader's session after `L` (`idle_session_timeout`), which frees the
//! lock then.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};

use super::Leadership;
use crate::clock::Clock;
use crate::telemetry::Metrics;

/// The session advisory lock the leader holds ("tkrotldr" in ASCII).
const LEADER_LOCK_KEY: i64 = 0x746b_726f_746c_6472;

pub(super) struct Election {
    pub(super) leadership: Arc<Leadership>,
    pub(super) options: PgConnectOptions,
    pub(super) lease: Duration,
    pub(super) holder: String,
    pub(super) metrics: Arc<Metrics>,
    pub(super) clock: Arc<dyn Clock>,
}

impl Election {
    pub(super) async fn run(self, mut stop: watch::Receiver<bool>) {
        // The connection, and with it the lock, is dropped with each term.
        let leadership = Arc::clone(&self.leadership);
        super::elect(&leadership, &self.metrics, self.lease, &mut stop, || {
            self.term()
        })
        .await;
        tracing::info!("leader election stopped; the lock is released");
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
        // Run the proof once now, so the connection has it prepared: its first run on a new
        // connection costs a second round trip (prepare, then execute), and the first proof
        // after taking over must come back within L/2 - L/5 like every other. On a link where
        // a statement takes 0.15 L, the two trips made every new leader step down at once.
        timeout(self.lease / 2, proof(&mut conn))
            .await
            .map_err(|_| "reading the epoch timed out".to_owned())?
            .map_err(|e| e.to_string())?;
        loop {
            // Never take the lock with a wrong clock: holding it would keep the others out too.
            timeout(
                self.lease / 2,
                self.leadership.clock_agrees(&mut conn, &*self.clock),
            )
            .await
            .map_err(|_| "reading the database's clock timed out".to_owned())??;
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
        let (holder, metrics) = (&self.holder, &self.metrics);
        let epoch =
            super::take_over(&self.leadership, &mut conn, holder, metrics, self.lease / 2).await?;

        let mut deadline = Instant::now() + self.lease / 2;
        loop {
            tokio::time::sleep(every).await;
            // One statement a renewal: on a slow link a second round trip (the clock apart from
            // the epoch) would miss the deadline by itself.
            let check = timeout_at(deadline, async {
                let before = self.clock.now().as_millisecond();
                let (current, database) = proof(&mut conn).await.map_err(Refusal::Database)?;
                let after = self.clock.now().as_millisecond();
                self.leadership
                    .note_clock(super::skew::judge_reading(before, after, database))
                    .map_err(Refusal::Clock)?;
                Ok(current)
            })
            .await;
            match check {
                Ok(Err(Refusal::Clock(why))) => return Err(why),
                Ok(Ok(current)) if current == epoch => deadline = Instant::now() + self.lease / 2,
                Ok(Ok(current)) => return Err(format!("epoch {current} took over from {epoch}")),
                // Most likely the session is gone, and the lock with it.
                Ok(Err(Refusal::Database(e))) => return Err(format!("lost the database: {e}")),
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

/// The leadership's epoch, with the database's clock (milliseconds, as the statement ran):
/// proof that this session still reaches the journal, whether another replica took over, and
/// what to compare this replica's clock with.
async fn proof(conn: &mut PgConnection) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "SELECT epoch, (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
         FROM leadership WHERE id = 1",
    )
    .fetch_one(conn)
    .await
}

/// Why a renewal failed.
enum Refusal {
    /// This replica's clock no longer agrees with the database's.
    Clock(String),
    Database(sqlx::Error),
}
