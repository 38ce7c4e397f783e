//! The journal, written before anything is acknowledged: an SQLite file for one replica, or a
//! PostgreSQL database that several replicas share (see [`db`]).
//!
//! Deliveries go through one writer thread per replica that owns one connection and commits
//! whatever deliveries are waiting in one transaction ("group commit"): every commit is an
//! fsync, so batching is what lets many concurrent webhooks share one. The engine and the
//! readers use a small pool.

pub mod clicks;
mod db;
pub mod delivery;
mod disk_full;
mod file_mode;
pub mod handovers;
pub mod inventory;
mod journal_url;
pub mod outbox;
pub mod rekey;
pub mod retention;
pub mod rotations;
mod rows;
pub mod schedules;
pub mod snapshot;
pub mod sweeps;
pub mod thread_key;
pub mod threads;
mod writer;

use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::telemetry::Metrics;
pub use db::{Db, Dialect, Fence, Pool, WriteTx};
pub(crate) use db::{Tx, answered, execute, on_pool, on_tx};
use delivery::Delivery;
pub use disk_full::DISK_FULL_FOR;
pub use journal_url::{redact_url, unsupported_postgres_parameter};
pub use rows::AlertRow;
pub use writer::{AlertReceipt, Journaled, Receipt, WriteError};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How many waiting deliveries one transaction takes at most.
const MAX_BATCH: usize = 128;
/// How long closing waits for the readers' connections.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Deliveries waiting for the writer before new ones are refused with 503 (back-pressure).
const QUEUE_DEPTH: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("journal URL {url:?} is invalid: {source}")]
    Url {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot open the journal: {0}")]
    Open(#[source] sqlx::Error),
    #[error("cannot open the journal: {0}")]
    OpenWriter(#[source] rusqlite::Error),
    #[error("cannot make the journal's files {0:?} the owner's alone: {1}")]
    Files(std::path::PathBuf, #[source] std::io::Error),
    #[error("cannot migrate the journal: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("journal write failed: {0}")]
    Write(#[source] sqlx::Error),
    #[error("journal write failed: {0}")]
    Journal(#[source] writer::WriteError),
    #[error("journal read failed: {0}")]
    Read(#[source] sqlx::Error),
    #[error("this replica no longer leads (its epoch {mine}, the journal's {current}): not acting")]
    Fenced { mine: i64, current: i64 },
    #[error("this replica is a standby: not acting")]
    NotLeading,
    #[error("cannot confirm this replica still leads within {0:?}: not acting")]
    LeadershipUnconfirmed(Duration),
    #[error("journal is overloaded: {QUEUE_DEPTH} deliveries are waiting")]
    Overloaded,
    #[error("journal writer has stopped")]
    WriterGone,
    #[error("the journal's disk is full: writes are refused until space is freed")]
    DiskFull,
    #[error(
        "no journal at {0}: the service creates it when it first starts (is database_url the service's?)"
    )]
    Missing(String),
}

impl StoreError {
    /// Whether a client should try again later (503) rather than give up.
    pub fn is_unavailable(&self) -> bool {
        !matches!(self, StoreError::Url { .. })
    }
}

pub struct Journal {
    db: Db,
    writer: mpsc::Sender<writer::Message>,
    writer_task: Mutex<Option<JoinHandle<()>>>,
}

impl Journal {
    /// Opens (creating if needed) and migrates the journal at `url`: `sqlite://path` or
    /// `postgres://user@host:port/database`.
    pub async fn open(url: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        Self::open_observed(url, busy_timeout, None).await
    }

    /// Opens the journal at `url` only if it exists: a command that reads what the service
    /// journaled refuses a SQLite path that has no journal rather than create an empty one.
    pub async fn open_existing(url: &str, busy_timeout: Duration) -> Result<Self, StoreError> {
        let is_postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !is_postgres
            && let Ok(options) = SqliteConnectOptions::from_str(url)
            && !is_in_memory(url, &options)
            && !options.get_filename().exists()
        {
            return Err(StoreError::Missing(
                options.get_filename().display().to_string(),
            ));
        }
        Self::open(url, busy_timeout).await
    }

    /// The same, timing every intake commit into `metrics`.
    pub async fn open_observed(
        url: &str,
        busy_timeout: Duration,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, StoreError> {
        let invalid = |source| StoreError::Url {
            url: redact_url(url),
            source,
        };
        let (db, conn) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            // The driver would ignore it with a warning that prints its value (a password, say).
            if let Some(problem) = unsupported_postgres_parameter(url) {
                return Err(invalid(sqlx::Error::Configuration(problem.into())));
            }
            let options = PgConnectOptions::from_str(url)
                .map_err(invalid)?
                .application_name("token-rotator")
                // Our transactions last milliseconds. One left open by a replica cut off from the
                // database would hold the journal's write lock (and its rows) for the replica
                // that takes over: the server ends it instead.
                .options([("idle_in_transaction_session_timeout", "5s")]);
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(busy_timeout)
                .connect_with(options.clone())
                .await
                .map_err(StoreError::Open)?;
            // sqlx holds an advisory lock while it migrates: replicas starting together are safe.
            POSTGRES_MIGRATIONS.run(&pool).await?;
            (
                Db::new(Pool::Postgres(pool)),
                Box::new(
                    writer::PgWriter::connect(&options)
                        .await
                        .map_err(StoreError::Open)?,
                ) as Box<dyn writer::BatchWriter>,
            )
        } else {
            let options = SqliteConnectOptions::from_str(url).map_err(invalid)?;
            if is_in_memory(url, &options) {
                return Err(invalid(sqlx::Error::Configuration(
                    "the journal must be a file: an in-memory one would lose every \
                     acknowledged alert when the process ends"
                        .into(),
                )));
            }
            let file = options.get_filename().to_owned();
            file_mode::owner_only(&file).map_err(|e| StoreError::Files(file.clone(), e))?;
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // FULL: a commit is on disk before we answer 200; NORMAL could lose the last
                // commits on power loss, and Alertmanager would not re-send them.
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(busy_timeout);
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                // A COMMIT refused with SQLITE_FULL is rolled back by SQLite itself, so sqlx's
                // own ROLLBACK fails and it counts the transaction as still open: every later
                // `BEGIN IMMEDIATE` on that connection was refused (InvalidSavePointStatement)
                // until a restart. Such a connection is closed, never handed out again.
                .after_release(|conn, _| {
                    Box::pin(async move {
                        use sqlx::Connection;
                        // Runs what the dropped transaction queued (its ROLLBACK) first.
                        conn.ping().await?;
                        Ok(!conn.is_in_transaction())
                    })
                })
                .connect_with(options.clone())
                .await
                .map_err(StoreError::Open)?;
            SQLITE_MIGRATIONS.run(&pool).await?;
            let writer = writer::SqliteWriter::open(options.get_filename(), busy_timeout)
                .map_err(StoreError::OpenWriter)?;
            // The -wal and -shm files exist now; narrowed too if an old umask made them wider.
            file_mode::owner_only(&file).map_err(|e| StoreError::Files(file.clone(), e))?;
            (
                Db::new(Pool::Sqlite(pool)),
                Box::new(writer) as Box<dyn writer::BatchWriter>,
            )
        };
        let (writer, task) = writer::spawn(conn, QUEUE_DEPTH, MAX_BATCH, metrics);
        Ok(Self {
            db,
            writer,
            writer_task: Mutex::new(Some(task)),
        })
    }

    /// Journals one delivery durably; returns which of its alerts were new.
    pub async fn record(
        &self,
        delivery: Delivery,
        received_at: Timestamp,
    ) -> Result<Receipt, StoreError> {
        let (job, pending) = writer::Job::new(&delivery, received_at);
        // Freed here rather than by the writer, which is the intake's one serial step.
        drop(delivery);
        self.writer
            .try_send(writer::Message::Write(job))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::WriterGone,
            })?;
        let receipt = pending.receipt().await;
        self.db.disk_full.saw(&receipt);
        receipt
    }

    /// Whether the journal answers a query and the writer is alive.
    pub async fn ping(&self) -> Result<(), StoreError> {
        if self.writer.is_closed() {
            return Err(StoreError::WriterGone);
        }
        // Whichever write found the disk full, the intake's or the engine's.
        if self.db.disk_full.lately() {
            return Err(StoreError::DiskFull);
        }
        on_pool!(self.db, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|r| r.rows_affected()))
        .map_err(StoreError::Read)?;
        Ok(())
    }

    /// The handle the engine and the readers use (their writes are few and small).
    pub fn pool(&self) -> &Db {
        &self.db
    }

    /// Every journaled alert, oldest first.
    pub async fn alerts(&self) -> Result<Vec<AlertRow>, StoreError> {
        rows::all_alerts(&self.db).await
    }

    /// Lets the writer finish what is queued, then closes every connection.
    pub async fn close(&self) {
        let task = self.writer_task.lock().expect("lock never poisoned").take();
        if let Some(task) = task {
            // Queued behind every pending write, so those still commit.
            let _ = self.writer.send(writer::Message::Stop).await;
            let _ = task.await;
        }
        // A reader's statement still running (its request timed out) would hold the pool open;
        // every acknowledged delivery is committed by now, so stop waiting after a while.
        if tokio::time::timeout(CLOSE_GRACE, self.db.close())
            .await
            .is_err()
        {
            tracing::warn!(after = ?CLOSE_GRACE, "a journal reader was still busy; closed without it");
        }
    }
}

/// `sqlite::memory:` (which sqlx names `file:sqlx-in-memory-N`) or `?mode=memory`.
fn is_in_memory(url: &str, options: &SqliteConnectOptions) -> bool {
    let file = options.get_filename().to_string_lossy();
    file == ":memory:" || file.starts_with("file:sqlx-in-memory-") || url.contains("mode=memory")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::intake::{WebhookPayload, route};

    fn delivery(body: &[u8]) -> Delivery {
        let config = Config::builtin();
        route(WebhookPayload::parse(body).unwrap(), &config.routes())
    }

    #[tokio::test]
    async fn an_in_memory_journal_is_refused_by_name() {
        let error = Journal::open("sqlite::memory:", Duration::from_secs(1))
            .await
            .err()
            .expect("refused");
        let message = error.to_string();
        assert!(message.contains("sqlite::memory:"), "{message}");
        assert!(message.contains("must be a file"), "{message}");
    }

    #[tokio::test]
    async fn the_same_alert_twice_at_once_is_new_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("j.db").display());
        let journal = Journal::open(&url, Duration::from_secs(1)).await.unwrap();
        let a = crate::fixtures::CAPTURES[13].body(); // 14-ha-duplicate-from-replica-a
        let b = crate::fixtures::CAPTURES[14].body(); // 15-ha-duplicate-from-replica-b
        let now = Timestamp::now();
        // Whether or not they share a batch (the writer has a thread of its own; the batch case
        // is `writer::sqlite::tests`), the second is the duplicate.
        let (first, second) = tokio::join!(
            journal.record(delivery(&a), now),
            journal.record(delivery(&b), now)
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert_eq!(first.alerts[0].journaled, Journaled::New);
        assert!(first.delivery_id.is_some());
        assert_eq!(second.alerts[0].journaled, Journaled::Duplicate);
        assert_eq!(
            second.delivery_id, None,
            "a pure duplicate leaves no delivery row"
        );
        assert_eq!(journal.alerts().await.unwrap().len(), 1);
        journal.close().await;
    }
}
