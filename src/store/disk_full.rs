//! A full disk under the journal: which errors mean it, and how long `/readyz` says so.
//!
//! SQLite answers `SQLITE_FULL` (13, "database or disk is full") when the WAL or the file cannot
//! grow (<https://www.sqlite.org/rescode.html#full>); PostgreSQL answers SQLSTATE 53100
//! `disk_full` (<https://www.postgresql.org/docs/current/errcodes-appendix.html>). Nothing of the
//! failed write stays (a batch is all or nothing), so the client is told to try again.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use super::{StoreError, WriteError};

/// How long after the last write refused for space `/readyz` still says the disk is full, when
/// no write has succeeded since. Past it the replica says it is ready again, so a load balancer
/// that stopped sending webhooks sends one more, which tells whether there is room now.
pub const DISK_FULL_FOR: Duration = Duration::from_secs(10);

/// SQLite's primary result code for a full disk.
const SQLITE_FULL: i32 = 13;
/// PostgreSQL's SQLSTATE for a full disk.
const PG_DISK_FULL: &str = "53100";

impl StoreError {
    /// Whether the database refused this write for want of disk space.
    pub fn is_disk_full(&self) -> bool {
        match self {
            StoreError::Write(e) | StoreError::Journal(WriteError::Postgres(e)) => sqlx_full(e),
            StoreError::Journal(WriteError::Sqlite(e)) => {
                e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
            }
            _ => false,
        }
    }
}

fn sqlx_full(error: &sqlx::Error) -> bool {
    let Some(database) = error.as_database_error() else {
        return false;
    };
    match database.code() {
        // SQLite's extended codes keep the primary code in the low byte.
        Some(code) => {
            code == PG_DISK_FULL || code.parse::<i32>().is_ok_and(|c| c & 0xff == SQLITE_FULL)
        }
        None => false,
    }
}

/// When a journal write last failed for want of space (milliseconds since the epoch), until a
/// write succeeds. One per journal, shared by every handle on it ([`super::Db`]): the intake's
/// writer and the engine's transactions both report here, so `/readyz` says the disk is full
/// whichever of them found it so. Any committed write clears it, whoever made it: on PostgreSQL
/// a write that fits in a page already allocated succeeds on a full disk, so readiness may come
/// back before the next refusal sets it again; that errs towards "ready", and a webhook that
/// then cannot be journaled is still answered 503 saying why.
#[derive(Debug, Default)]
pub(super) struct DiskFull(AtomicI64);

impl DiskFull {
    /// After each write the journal took or refused.
    pub(super) fn saw<T>(&self, outcome: &Result<T, StoreError>) {
        match outcome {
            Ok(_) => self.wrote(),
            Err(e) if e.is_disk_full() => self.refused(),
            Err(_) => {}
        }
    }

    /// After a statement or commit on the engine's pool: only a refusal counts here, since a
    /// statement's success inside a transaction is not yet a write ([`DiskFull::wrote`] is
    /// called once the transaction commits).
    pub(super) fn saw_refusal<T>(&self, outcome: &Result<T, sqlx::Error>) {
        if let Err(e) = outcome
            && sqlx_full(e)
        {
            self.refused();
        }
    }

    /// After beginning a write transaction: only a refusal counts (nothing is written yet).
    pub(super) fn saw_begin<T>(&self, outcome: &Result<T, StoreError>) {
        if let Err(e) = outcome
            && e.is_disk_full()
        {
            self.refused();
        }
    }

    /// A write committed: there was room for it.
    pub(super) fn wrote(&self) {
        self.0.store(0, Ordering::Relaxed);
    }

    fn refused(&self) {
        let now = jiff::Timestamp::now().as_millisecond();
        self.0.store(now, Ordering::Relaxed);
    }

    /// Whether a write failed for space lately, and none succeeded since.
    pub(super) fn lately(&self) -> bool {
        let at = self.0.load(Ordering::Relaxed);
        let window = i64::try_from(DISK_FULL_FOR.as_millis()).unwrap_or(i64::MAX);
        at != 0 && jiff::Timestamp::now().as_millisecond() - at < window
    }
}
