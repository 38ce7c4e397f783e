//! The SQLite writer: a connection of its own, every statement of a batch run on the writer's
//! thread with statements prepared once.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, ToSql};

use super::values::{ALERT_COLUMNS, AlertRow, DELIVERY_COLUMNS, DeliveryRow, Entry};
use super::{BatchWriter, Journaled, WriteError, Written};

pub(in crate::store) struct SqliteWriter {
    conn: Connection,
    /// How long a batch may wait for the write lock held by another connection (the engine's).
    busy_timeout: Duration,
}

/// The first and the longest pause between two tries for the write lock. SQLite's own busy
/// handler sleeps 1, 2, 5, 10 … 100 ms between tries, so a webhook that met the engine's
/// transaction of a millisecond waited 8, 18, 53, even 428 ms (measured in `bench/e2e.sh
/// --intake-only`, whose flat-out p99 it was); tries this close make the wait about as long as
/// the other transaction.
const FIRST_PAUSE: Duration = Duration::from_micros(50);
const LONGEST_PAUSE: Duration = Duration::from_micros(500);

impl SqliteWriter {
    /// Opens the journal the pool has already created and migrated, with the same durability:
    /// WAL (a property of the file, set by the pool) and `synchronous=FULL`, so a commit is on
    /// disk before anyone is answered.
    pub(in crate::store) fn open(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        // No busy handler: a busy journal answers at once and `write` waits its own way.
        conn.busy_handler(None)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Self { conn, busy_timeout })
    }

    /// `run`, tried again while another connection holds the journal's write lock, until
    /// `busy_timeout` has passed. A batch is all or nothing, so trying it again is safe.
    fn run_when_free(&self, entries: &[&Entry]) -> rusqlite::Result<Vec<Written>> {
        let deadline = Instant::now() + self.busy_timeout;
        let mut pause = FIRST_PAUSE;
        loop {
            match self.run(entries) {
                Err(e) if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy) => {
                    self.roll_back();
                    if Instant::now() + pause > deadline {
                        return Err(e);
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
                outcome => return outcome,
            }
        }
    }

    /// Ends a transaction `run` left open by an error; a failed BEGIN left none.
    fn roll_back(&self) {
        if !self.conn.is_autocommit()
            && let Err(e) = self.conn.execute_batch("ROLLBACK")
        {
            tracing::warn!(error = %e, "rolling back a failed journal batch failed");
        }
    }

    /// Every statement of a batch, prepared once per connection (`BEGIN` and `COMMIT` too:
    /// rusqlite's `Transaction` would parse them again for every batch).
    fn run(&self, entries: &[&Entry]) -> rusqlite::Result<Vec<Written>> {
        // IMMEDIATE takes the write lock now, so a competing writer (the engine, the CLI) makes
        // us wait (busy_timeout) here rather than fail half-way through.
        self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        // Ours until COMMIT: nobody else can insert a delivery meanwhile.
        let mut next_id: i64 = self
            .conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) + 1 FROM deliveries")?
            .query_row([], |row| row.get(0))?;
        let mut insert_alert = self.conn.prepare_cached(&format!(
            "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
             ON CONFLICT (fingerprint, status, starts_at_ms) DO NOTHING"
        ))?;
        let mut insert_delivery = self.conn.prepare_cached(&format!(
            "INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?;
        let mut answers = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut journaled = Vec::with_capacity(entry.alerts.len());
            for row in &entry.alerts {
                // DO NOTHING changes no row when the key is journaled already.
                let changed = insert_alert.execute(alert_params(&next_id, row))?;
                journaled.push(if changed == 1 {
                    Journaled::New
                } else {
                    Journaled::Duplicate
                });
            }
            let written = Written::new(next_id, journaled);
            if let Some(id) = written.delivery_id {
                insert_delivery.execute(delivery_params(&id, &entry.delivery))?;
                next_id += 1;
            }
            answers.push(written);
        }
        self.conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(answers)
    }
}

/// An alert row's parameters after its delivery's id, in `ALERT_COLUMNS` order.
fn alert_params<'a>(id: &'a i64, r: &'a AlertRow) -> [&'a dyn ToSql; 18] {
    [
        id,
        &r.received_at_ms,
        &r.fingerprint,
        &r.status,
        &r.starts_at_ms,
        &r.ends_at_ms,
        &r.labels,
        &r.annotations,
        &r.environment,
        &r.api_user,
        &r.application,
        &r.action,
        &r.rule_index,
        &r.rule_name,
        &r.action_detail,
        &r.reason,
        &r.mode,
        &r.slack_channel,
    ]
}

/// A delivery row's parameters after its id, in `DELIVERY_COLUMNS` order.
fn delivery_params<'a>(id: &'a i64, r: &'a DeliveryRow) -> [&'a dyn ToSql; 8] {
    [
        id,
        &r.received_at_ms,
        &r.receiver,
        &r.group_key,
        &r.status,
        &r.external_url,
        &r.alert_count,
        &r.truncated_alerts,
    ]
}

impl BatchWriter for SqliteWriter {
    fn write(&mut self, entries: &[&Entry]) -> Result<Vec<Written>, WriteError> {
        self.run_when_free(entries).map_err(|error| {
            // All or nothing: whatever this batch inserted goes.
            self.roll_back();
            WriteError::Sqlite(error)
        })
    }

    fn close(self: Box<Self>) -> Result<(), WriteError> {
        self.conn.close().map_err(|(_, e)| WriteError::Sqlite(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::intake::{WebhookPayload, route};
    use crate::store::Journal;
    use crate::store::writer::Job;

    fn entry(capture: usize) -> Entry {
        let body = crate::fixtures::CAPTURES[capture].body();
        let routes = (Config::builtin()).routes();
        let delivery = route(WebhookPayload::parse(&body).unwrap(), &routes);
        Job::new(&delivery, jiff::Timestamp::now()).0.entry
    }

    /// A migrated journal in `dir`, and a writer on it opened as `serve` opens it.
    async fn fresh_writer(dir: &Path) -> SqliteWriter {
        let path = dir.join("j.db");
        // The pool creates and migrates the file.
        let journal = Journal::open(
            &format!("sqlite://{}", path.display()),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        journal.close().await;
        SqliteWriter::open(&path, Duration::from_secs(1)).unwrap()
    }

    #[tokio::test]
    async fn one_batch_journals_a_repeated_alert_once_and_numbers_deliveries_without_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = fresh_writer(dir.path()).await;

        // 14 and 15 are one alert from two Alertmanager replicas; 01 is another alert.
        let (a, b, c) = (entry(13), entry(14), entry(0));
        let written = writer.write(&[&a, &b, &c]).unwrap();
        assert_eq!(written[0].journaled, [Journaled::New]);
        assert_eq!(written[0].delivery_id, Some(1));
        assert_eq!(written[1].journaled, [Journaled::Duplicate]);
        assert_eq!(written[1].delivery_id, None, "a pure duplicate takes no id");
        assert_eq!(written[2].journaled, [Journaled::New]);
        assert_eq!(written[2].delivery_id, Some(2));

        let again = writer.write(&[&c]).unwrap();
        assert_eq!(again[0].journaled, [Journaled::Duplicate]);
        let counted: (i64, i64) = writer
            .conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM alerts), (SELECT COUNT(*) FROM deliveries)",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!(counted, (2, 2));
    }

    /// The engine's connection holds the write lock: a batch waits for it and commits once it
    /// is free, and gives up with SQLite's "database is locked" when it is held past the timeout.
    #[tokio::test]
    async fn a_batch_waits_for_the_write_lock_up_to_the_busy_timeout() {
        let dir = tempfile::tempdir().unwrap();
        drop(fresh_writer(dir.path()).await);
        let path = dir.path().join("j.db");
        let mut writer = SqliteWriter::open(&path, Duration::from_millis(300)).unwrap();
        let other = Connection::open(&path).unwrap();

        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let error = writer.write(&[&entry(0)]).unwrap_err().to_string();
        assert!(error.contains("database is locked"), "{error}");

        // Released while the writer waits (well inside its 300 ms): the batch commits.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            other.execute_batch("COMMIT").unwrap();
            other
        });
        let written = writer.write(&[&entry(0)]).unwrap();
        assert_eq!(
            written[0].journaled,
            [Journaled::New],
            "nothing of the failed try stayed"
        );
        let other = release.join().unwrap();
        let alerts: i64 = other
            .query_row("SELECT COUNT(*) FROM alerts", [], |row| row.get(0))
            .unwrap();
        assert_eq!(alerts, 1);
    }

    #[tokio::test]
    async fn a_failed_batch_leaves_nothing_and_the_next_one_commits() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = fresh_writer(dir.path()).await;

        // The second entry breaks the table's CHECK on `status` after the first was inserted.
        let (good, mut bad) = (entry(0), entry(13));
        bad.alerts[0].status = "pending";
        let error = writer.write(&[&good, &bad]).unwrap_err().to_string();
        assert!(error.contains("CHECK constraint failed"), "{error}");

        // Rolled back: the good entry is new again, and the connection takes a new batch.
        let written = writer.write(&[&good]).unwrap();
        assert_eq!(written[0].journaled, [Journaled::New]);
        assert_eq!(written[0].delivery_id, Some(1));
        let alerts: i64 = writer
            .conn
            .query_row("SELECT COUNT(*) FROM alerts", [], |row| row.get(0))
            .unwrap();
        assert_eq!(alerts, 1);
    }
}
