//! The PostgreSQL writer: sqlx on a connection of its own, driven from the writer's thread.
//!
//! Every replica has one; they share the tables. The `UNIQUE (fingerprint, status,
//! starts_at_ms)` constraint settles which replica journals an alert first.

use std::collections::HashSet;

use sqlx::postgres::{PgConnectOptions, PgConnection, Postgres};
use sqlx::{Connection, QueryBuilder};
use tokio::runtime::Handle;

use super::values::{ALERT_COLUMNS, DELIVERY_COLUMNS, alert_values, delivery_values};
use super::{BatchWriter, Job, Journaled, Receipt, WriteError, receipt_for};
use crate::intake::{AlertStatus, IncomingAlert};

/// Rows per multi-row INSERT: 18 columns each keeps us far below the protocol's 65 535 binds.
const ROWS_PER_INSERT: usize = 1000;

pub(in crate::store) struct PgWriter {
    runtime: Handle,
    /// A server can restart or fail over: a broken connection is dropped, and the next batch
    /// connects again (that batch's requesters got 503, so Alertmanager re-sends).
    conn: Option<PgConnection>,
    options: PgConnectOptions,
}

impl PgWriter {
    pub(in crate::store) async fn connect(options: &PgConnectOptions) -> sqlx::Result<Self> {
        Ok(Self {
            runtime: Handle::current(),
            conn: Some(PgConnection::connect_with(options).await?),
            options: options.clone(),
        })
    }
}

impl BatchWriter for PgWriter {
    fn write(&mut self, jobs: &[&Job]) -> Result<Vec<Receipt>, WriteError> {
        let Self {
            runtime,
            conn,
            options,
        } = self;
        let outcome = runtime.block_on(async {
            if conn.is_none() {
                *conn = Some(PgConnection::connect_with(options).await?);
            }
            write_all(conn.as_mut().expect("connected above"), jobs).await
        });
        if let Err(error) = &outcome
            && is_broken(error)
        {
            tracing::warn!(%error, "journal writer connection lost; reconnecting for the next batch");
            *conn = None;
        }
        Ok(outcome?)
    }

    fn close(self: Box<Self>) -> Result<(), WriteError> {
        match self.conn {
            Some(conn) => Ok(self.runtime.block_on(conn.close())?),
            None => Ok(()),
        }
    }
}

/// Whether the connection is unusable after `error` (rather than the batch being refused).
fn is_broken(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)
    ) || matches!(error, sqlx::Error::Database(e) if e.code().is_some_and(|c| c.starts_with("57P")))
}

/// One alert row as it will be inserted.
struct AlertInsert<'a> {
    alert: &'a IncomingAlert,
    values: super::values::AlertValues,
}

type DedupeKey = (String, &'static str, i64);

fn dedupe_key(alert: &IncomingAlert) -> DedupeKey {
    (
        alert.fingerprint.clone(),
        alert.status.as_str(),
        alert.starts_at.as_millisecond(),
    )
}

/// Journals a batch with a fixed number of statements whatever its size: each is a round trip.
async fn write_all(conn: &mut PgConnection, jobs: &[&Job]) -> sqlx::Result<Vec<Receipt>> {
    let mut tx = conn.begin().await?;
    // Ids of deliveries that turn out to be pure duplicates are simply never inserted.
    let delivery_ids: Vec<i64> = sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence('deliveries', 'id')) FROM generate_series(1, $1)",
    )
    .bind(jobs.len() as i64)
    .fetch_all(&mut *tx)
    .await?;

    let mut receipts: Vec<Receipt> = jobs
        .iter()
        .map(|job| Receipt {
            delivery_id: None,
            alerts: job.delivery.alerts.iter().map(receipt_for).collect(),
        })
        .collect();
    let mut rows: Vec<AlertInsert> =
        jobs.iter()
            .enumerate()
            .flat_map(|(index, job)| {
                let (receipts, delivery_id) = (&receipts, delivery_ids[index]);
                job.delivery.alerts.iter().zip(&receipts[index].alerts).map(
                    move |(alert, receipt)| AlertInsert {
                        alert,
                        values: alert_values(delivery_id, job.received_at, alert, receipt),
                    },
                )
            })
            .collect();
    // In key order, so two replicas inserting overlapping batches lock rows in the same order
    // (PostgreSQL would otherwise abort one of them as a deadlock). Stable: among rows with
    // one key, the earliest job's comes first and is the one inserted.
    rows.sort_by_cached_key(|row| dedupe_key(row.alert));
    let mut inserted = HashSet::new();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        inserted.extend(insert_alerts(&mut tx, chunk).await?);
    }
    // Each job's alerts in its own order: the first to carry a key the database inserted is new.
    for (index, job) in jobs.iter().enumerate() {
        let receipt = &mut receipts[index];
        for (alert, alert_receipt) in job.delivery.alerts.iter().zip(&mut receipt.alerts) {
            if inserted.remove(&dedupe_key(alert)) {
                alert_receipt.journaled = Journaled::New;
                receipt.delivery_id = Some(delivery_ids[index]);
            }
        }
    }
    let brought_news: Vec<usize> = (0..jobs.len())
        .filter(|index| receipts[*index].delivery_id.is_some())
        .collect();
    if !brought_news.is_empty() {
        let mut query =
            QueryBuilder::<Postgres>::new(format!("INSERT INTO deliveries ({DELIVERY_COLUMNS}) "));
        query.push_values(&brought_news, |mut b, index| {
            let v = delivery_values(delivery_ids[*index], jobs[*index]);
            b.push_bind(v.0)
                .push_bind(v.1)
                .push_bind(v.2)
                .push_bind(v.3)
                .push_bind(v.4)
                .push_bind(v.5)
                .push_bind(v.6)
                .push_bind(v.7);
        });
        query.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(receipts)
}

/// Inserts the rows whose key is not journaled yet; returns the keys it inserted.
async fn insert_alerts(
    tx: &mut PgConnection,
    rows: &[AlertInsert<'_>],
) -> sqlx::Result<Vec<DedupeKey>> {
    let mut query = QueryBuilder::<Postgres>::new(format!("INSERT INTO alerts ({ALERT_COLUMNS}) "));
    query.push_values(rows, |mut b, row| {
        let v = row.values.clone();
        b.push_bind(v.0)
            .push_bind(v.1)
            .push_bind(v.2)
            .push_bind(v.3)
            .push_bind(v.4)
            .push_bind(v.5)
            .push_bind(v.6)
            .push_bind(v.7)
            .push_bind(v.8)
            .push_bind(v.9)
            .push_bind(v.10)
            .push_bind(v.11)
            .push_bind(v.12)
            .push_bind(v.13)
            .push_bind(v.14)
            .push_bind(v.15)
            .push_bind(v.16)
            .push_bind(v.17);
    });
    // RETURNING with DO NOTHING yields exactly the rows that were inserted.
    query.push(
        " ON CONFLICT (fingerprint, status, starts_at_ms) DO NOTHING \
         RETURNING fingerprint, status, starts_at_ms",
    );
    let inserted: Vec<(String, String, i64)> = query.build_query_as().fetch_all(tx).await?;
    Ok(inserted
        .into_iter()
        .map(|(fingerprint, status, starts)| {
            let status = AlertStatus::parse(&status).map_or("firing", AlertStatus::as_str);
            (fingerprint, status, starts)
        })
        .collect())
}
