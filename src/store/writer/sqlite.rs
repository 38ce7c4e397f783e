//! The SQLite writer: a connection of its own, every statement of a batch run on the writer's
//! thread with statements prepared once.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};

use super::values::{ALERT_COLUMNS, DELIVERY_COLUMNS, alert_values, delivery_values};
use super::{BatchWriter, Job, Journaled, Receipt, WriteError, receipt_for};

pub(in crate::store) struct SqliteWriter {
    conn: Connection,
}

impl SqliteWriter {
    /// Opens the journal the pool has already created and migrated, with the same durability:
    /// WAL (a property of the file, set by the pool) and `synchronous=FULL`, so a commit is on
    /// disk before anyone is answered.
    pub(in crate::store) fn open(path: &Path, busy_timeout: Duration) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Self { conn })
    }
}

impl BatchWriter for SqliteWriter {
    fn write(&mut self, jobs: &[&Job]) -> Result<Vec<Receipt>, WriteError> {
        // IMMEDIATE takes the write lock now, so a competing writer (the engine, the CLI) makes
        // us wait (busy_timeout) here rather than fail half-way through.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Ours until COMMIT: nobody else can insert a delivery meanwhile.
        let mut next_id: i64 = tx.query_row(
            "SELECT COALESCE(MAX(id), 0) + 1 FROM deliveries",
            [],
            |row| row.get(0),
        )?;
        let mut receipts = Vec::with_capacity(jobs.len());
        {
            let mut insert_alert = tx.prepare_cached(&format!(
                "INSERT INTO alerts ({ALERT_COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18) \
                 ON CONFLICT (fingerprint, status, starts_at_ms) DO NOTHING"
            ))?;
            let mut insert_delivery = tx.prepare_cached(&format!(
                "INSERT INTO deliveries ({DELIVERY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))?;
            for job in jobs {
                let mut receipt = Receipt {
                    delivery_id: None,
                    alerts: Vec::with_capacity(job.delivery.alerts.len()),
                };
                for alert in &job.delivery.alerts {
                    let mut alert_receipt = receipt_for(alert);
                    let v = alert_values(next_id, job.received_at, alert, &alert_receipt);
                    // DO NOTHING changes no row when the key is journaled already.
                    let changed = insert_alert.execute(params![
                        v.0, v.1, v.2, v.3, v.4, v.5, v.6, v.7, v.8, v.9, v.10, v.11, v.12, v.13,
                        v.14, v.15, v.16, v.17
                    ])?;
                    if changed == 1 {
                        alert_receipt.journaled = Journaled::New;
                        receipt.delivery_id = Some(next_id);
                    }
                    receipt.alerts.push(alert_receipt);
                }
                // A delivery that brought nothing new leaves no row (and takes no id).
                if receipt.delivery_id.is_some() {
                    let v = delivery_values(next_id, job);
                    insert_delivery.execute(params![v.0, v.1, v.2, v.3, v.4, v.5, v.6, v.7])?;
                    next_id += 1;
                }
                receipts.push(receipt);
            }
        }
        tx.commit()?;
        Ok(receipts)
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

    fn job(capture: usize) -> Job {
        let body = crate::fixtures::CAPTURES[capture].body();
        let policy = Config::builtin().policy;
        Job {
            delivery: route(WebhookPayload::parse(&body).unwrap(), None, &policy),
            received_at: jiff::Timestamp::now(),
            reply: tokio::sync::oneshot::channel().0,
        }
    }

    #[tokio::test]
    async fn one_batch_journals_a_repeated_alert_once_and_numbers_deliveries_without_gaps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        // The pool creates and migrates the file; the writer opens it as `serve` does.
        let journal = Journal::open(
            &format!("sqlite://{}", path.display()),
            Duration::from_secs(1),
        )
        .await
        .unwrap();
        journal.close().await;
        let mut writer = SqliteWriter::open(&path, Duration::from_secs(1)).unwrap();

        // 14 and 15 are one alert from two Alertmanager replicas; 01 is another alert.
        let (a, b, c) = (job(13), job(14), job(0));
        let receipts = writer.write(&[&a, &b, &c]).unwrap();
        assert_eq!(receipts[0].alerts[0].journaled, Journaled::New);
        assert_eq!(receipts[0].delivery_id, Some(1));
        assert_eq!(receipts[1].alerts[0].journaled, Journaled::Duplicate);
        assert_eq!(
            receipts[1].delivery_id, None,
            "a pure duplicate takes no id"
        );
        assert_eq!(receipts[2].alerts[0].journaled, Journaled::New);
        assert_eq!(receipts[2].delivery_id, Some(2));

        let again = writer.write(&[&c]).unwrap();
        assert_eq!(again[0].alerts[0].journaled, Journaled::Duplicate);
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
}
