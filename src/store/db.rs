//! The two databases the journal runs on: SQLite (one replica, the embedded default) and
//! PostgreSQL (a journal shared by several replicas).
//!
//! The SQL is written once, in the dialect both accept (`$n` placeholders, integer milliseconds,
//! `ON CONFLICT … RETURNING`), and compiled against each native driver by [`on_pool!`] and
//! [`on_tx!`]; what differs between the two (how a writer takes the journal) is in
//! [`Db::write_tx`] and the [`Dialect`] of each. The `Any` driver would share one code path too,
//! but it would convert every row and lose SQLite's pragmas; this keeps both drivers native.
//! (The intake's group commit is the one exception, with a writer per database: see `writer`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use super::StoreError;
use super::disk_full::DiskFull;

/// Serialises writers on PostgreSQL the way `BEGIN IMMEDIATE` does on SQLite: every write
/// transaction takes this transaction-scoped advisory lock first ("tkrotwr" in ASCII).
pub(crate) const WRITE_LOCK_KEY: i64 = 0x0074_6b72_6f74_7772;

#[derive(Clone, Debug)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A handle on the journal. Writes made through a [fenced](Db::fenced) handle commit only while
/// the epoch it carries is still the journal's leadership epoch.
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pool: Pool,
    fence: Option<Fence>,
    /// Shared by every handle on this journal and its intake writer: each write refused for
    /// space, or committed, is told here, and `/readyz` reads it.
    pub(super) disk_full: Arc<DiskFull>,
}

/// The leadership epoch this replica acts under; 0 while it does not lead.
#[derive(Clone, Debug, Default)]
pub struct Fence(Arc<AtomicI64>);

impl Fence {
    pub fn set(&self, epoch: i64) {
        self.0.store(epoch, Ordering::SeqCst);
    }

    pub fn clear(&self) {
        self.set(0);
    }

    pub fn epoch(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Whether `current`, the journal's epoch, is the one this replica leads under.
    fn holds(&self, current: i64) -> Result<(), StoreError> {
        let mine = self.epoch();
        if mine == 0 || mine != current {
            return Err(StoreError::Fenced { mine, current });
        }
        Ok(())
    }
}

const CURRENT_EPOCH: &str = "SELECT epoch FROM leadership WHERE id = 1";
/// The same inside a write transaction, holding the row until it ends: a take-over (`UPDATE
/// leadership`) then waits for every write that checked the old epoch, so none of them can
/// commit after the next leader began (a plain read let one: `tests/api/fencing.rs`).
const CURRENT_EPOCH_HELD: &str = "SELECT epoch FROM leadership WHERE id = 1 FOR SHARE";

/// A write transaction on either database. A statement in it refused for space ([`on_tx!`]),
/// or its commit, is told to the journal's [`DiskFull`].
pub struct WriteTx<'c> {
    pub(super) tx: Tx<'c>,
    pub(super) disk_full: Arc<DiskFull>,
}

/// The transaction on its native driver.
pub enum Tx<'c> {
    Sqlite(Transaction<'c, Sqlite>),
    Postgres(Transaction<'c, Postgres>),
}

/// How long one PostgreSQL statement (or a transaction's begin or commit) may go unanswered.
/// A server that vanished without closing our connections (its host lost, its address moved
/// to a promoted standby) never answers, and nothing else ends the wait: the engine's pass, and
/// every pass after it, would hang on it for good. Past this the statement fails like any lost
/// connection (the engine retries its step; a phase change is journaled or not, never half) and
/// the connection is not handed out again (the pool's check of it on release waits until TCP
/// gives it up; the pool opens others meanwhile). Far above any statement of ours, even at
/// 500 ms a round trip.
/// SQLite has its own bound, the configured busy timeout.
pub(crate) const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// `query`, or a timed-out I/O error if PostgreSQL has not answered within [`ANSWER_WITHIN`].
pub(crate) async fn answered<T>(
    query: impl Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    tokio::time::timeout(ANSWER_WITHIN, query)
        .await
        .unwrap_or_else(|_| {
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from PostgreSQL within {ANSWER_WITHIN:?}"),
            )))
        })
}

/// Runs `$body` with `$pool` bound to the native pool: the body is compiled once per driver.
/// On PostgreSQL the body must answer within [`ANSWER_WITHIN`].
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match &$db.pool {
            $crate::store::Pool::Sqlite($pool) => $body,
            $crate::store::Pool::Postgres($pool) => $crate::store::answered(async { $body }).await,
        }
    };
}

/// Runs `$body` with `$conn` bound to the transaction's native connection (and `$db`, if
/// named, to the driver's type, for what the [`Dialect`] says or a `QueryBuilder`). A body
/// refused for space is told to the journal's [`DiskFull`]: PostgreSQL refuses the statement
/// that needs a new page, not the commit.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        $crate::store::on_tx!($tx, |$conn, _Db| $body)
    };
    ($tx:expr, |$conn:ident, $db:ident| $body:expr) => {{
        let write: &mut $crate::store::WriteTx<'_> = $tx;
        let outcome = match &mut write.tx {
            $crate::store::Tx::Sqlite(tx) => {
                #[allow(dead_code)]
                type $db = sqlx::Sqlite;
                let $conn = &mut **tx;
                $body
            }
            $crate::store::Tx::Postgres(tx) => {
                #[allow(dead_code)]
                type $db = sqlx::Postgres;
                let $conn = &mut **tx;
                $crate::store::answered(async { $body }).await
            }
        };
        write.disk_full.saw_refusal(&outcome);
        outcome
    }};
}

/// Runs one writing statement on the pool: how many rows it changed, or a write error. Either
/// is told to the journal's [`DiskFull`] ([`Db::saw_statement`]).
macro_rules! execute {
    ($db:expr, $query:expr) => {{
        let db: &$crate::store::Db = $db;
        let outcome = $crate::store::on_pool!(db, |pool| $query
            .execute(pool)
            .await
            .map(|r| r.rows_affected()));
        db.saw_statement(&outcome);
        outcome.map_err($crate::store::StoreError::Write)
    }};
}

pub(crate) use {execute, on_pool, on_tx};

/// What the two databases do differently, beyond [`Db::write_tx`].
pub trait Dialect {
    /// Which database this is, for logs and `/readyz`.
    const NAME: &'static str;
}

impl Dialect for Sqlite {
    const NAME: &'static str = "sqlite";
}

impl Dialect for Postgres {
    const NAME: &'static str = "postgres";
}

impl Db {
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            fence: None,
            disk_full: Arc::default(),
        }
    }

    /// This handle's writes commit only while `fence` holds the journal's leadership epoch.
    pub fn fenced(&self, fence: Fence) -> Self {
        Self {
            pool: self.pool.clone(),
            fence: Some(fence),
            disk_full: Arc::clone(&self.disk_full),
        }
    }

    /// After a statement outside a transaction ([`execute!`]): a refusal for space is told, and
    /// so is a statement that changed rows (it was written; one that matched nothing wrote
    /// nothing, and says nothing about the disk).
    pub(super) fn saw_statement(&self, outcome: &Result<u64, sqlx::Error>) {
        match outcome {
            Ok(0) => {}
            Ok(_) => self.disk_full.wrote(),
            Err(_) => self.disk_full.saw_refusal(outcome),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => Sqlite::NAME,
            Pool::Postgres(_) => Postgres::NAME,
        }
    }

    /// The SQLite pool, for tests that write what the engine never would.
    pub fn as_sqlite(&self) -> Option<&SqlitePool> {
        match &self.pool {
            Pool::Sqlite(pool) => Some(pool),
            Pool::Postgres(_) => None,
        }
    }

    pub fn is_shared(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    /// The epoch written with each phase change: the fence's, or 0 for an unfenced writer.
    pub fn epoch(&self) -> i64 {
        self.fence.as_ref().map_or(0, Fence::epoch)
    }

    /// A transaction that writes. SQLite: `BEGIN IMMEDIATE` takes the write lock up front
    /// (waiting out the busy timeout) instead of upgrading a read half-way through, which SQLite
    /// refuses at once when another writer committed meanwhile. PostgreSQL: the same, with an
    /// advisory lock every replica's writers share. A fenced handle then checks its epoch under
    /// that lock, so a replica that lost the leadership cannot write a phase change.
    pub async fn write_tx(&self) -> Result<WriteTx<'static>, StoreError> {
        let tx = self.begin().await;
        self.disk_full.saw_begin(&tx);
        Ok(WriteTx {
            tx: tx?,
            disk_full: Arc::clone(&self.disk_full),
        })
    }

    async fn begin(&self) -> Result<Tx<'static>, StoreError> {
        match &self.pool {
            Pool::Sqlite(pool) => Ok(Tx::Sqlite(
                pool.begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(StoreError::Write)?,
            )),
            Pool::Postgres(pool) => {
                let (tx, current) = answered(async {
                    let mut tx = pool.begin().await?;
                    sqlx::query("SELECT pg_advisory_xact_lock($1)")
                        .bind(WRITE_LOCK_KEY)
                        .execute(&mut *tx)
                        .await?;
                    let current = match &self.fence {
                        Some(_) => Some(
                            sqlx::query_scalar::<_, i64>(CURRENT_EPOCH_HELD)
                                .fetch_one(&mut *tx)
                                .await?,
                        ),
                        None => None,
                    };
                    Ok((tx, current))
                })
                .await
                .map_err(StoreError::Write)?;
                if let (Some(fence), Some(current)) = (&self.fence, current) {
                    fence.holds(current)?;
                }
                Ok(Tx::Postgres(tx))
            }
        }
    }

    /// Whether this handle may still act: its fence holds the journal's current epoch (always
    /// true on SQLite, where one replica owns the file). Read before every side effect.
    pub async fn still_leading(&self) -> Result<(), StoreError> {
        let (Pool::Postgres(pool), Some(fence)) = (&self.pool, &self.fence) else {
            return Ok(());
        };
        let current: i64 = answered(sqlx::query_scalar(CURRENT_EPOCH).fetch_one(pool))
            .await
            .map_err(StoreError::Read)?;
        fence.holds(current)
    }

    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

impl WriteTx<'_> {
    /// Commits, telling the journal's [`DiskFull`] whether there was room: SQLite refuses the
    /// commit (its WAL cannot grow), PostgreSQL an earlier statement ([`on_tx!`]).
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        let committed = match self.tx {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => answered(tx.commit()).await,
        };
        match &committed {
            Ok(()) => self.disk_full.wrote(),
            Err(_) => self.disk_full.saw_refusal(&committed),
        }
        committed
    }
}
