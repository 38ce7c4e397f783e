//! The PostgreSQL writer: sqlx on a connection of its own, driven from the writer's thread.
//!
//! Every replica has one; they share the tables. The `UNIQUE (fingerprint, status,
//! starts_at_ms)` constraint settles which replica journals an alert first.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, Postgres};
use sqlx::{Connection, QueryBuilder};
use tokio::runtime::Handle;

use super::values::{ALERT_COLUMNS, AlertRow, DELIVERY_COLUMNS, Entry};
use super::{BatchWriter, Journaled, WriteError, Written};
use crate::domain::AlertStatus;

/// How long a batch may take, connecting included. A connection whose server vanished without
/// closing it (its host gone, a failover that moved the address) never answers, and nothing
/// else would end the wait: every later webhook would queue behind it for good. Beyond this the
/// connection is dropped, the batch's requesters get 503 (Alertmanager re-sends) and the next
/// batch connects afresh. Below the listener's 8 s request deadline, so the 503 is ours; far
/// above a batch's few round trips, even at 500 ms a statement.
const BATCH_DEADLINE: Duration = Duration::from_secs(5);

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
    fn write(&mut self, entries: &[&Entry]) -> Result<Vec<Written>, WriteError> {
        let Self {
            runtime,
            conn,
            options,
        } = self;
        let outcome = runtime.block_on(async {
            tokio::time::timeout(BATCH_DEADLINE, async {
                if conn.is_none() {
                    *conn = Some(PgConnection::connect_with(options).await?);
                }
                write_all(conn.as_mut().expect("connected above"), entries).await
            })
            .await
            .unwrap_or_else(|_| {
                Err(sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer from PostgreSQL within {BATCH_DEADLINE:?}"),
                )))
            })
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

type DedupeKey = (String, &'static str, i64);

fn dedupe_key(row: &AlertRow) -> DedupeKey {
    (row.fingerprint.clone(), row.status, row.starts_at_ms)
}

/// Journals a batch with a fixed number of statements whatever its size: each is a round trip.
async fn write_all(conn: &mut PgConnection, entries: &[&Entry]) -> sqlx::Result<Vec<Written>> {
    let mut tx = conn.begin().await?;
    // Ids of deliveries that turn out to be pure duplicates are simply never inserted.
    let delivery_ids: Vec<i64> = sqlx::query_scalar(
        "SELECT nextval(pg_get_serial_sequence('deliveries', 'id')) FROM generate_series(1, $1)",
    )
    .bind(entries.len() as i64)
    .fetch_all(&mut *tx)
    .await?;

    let mut rows: Vec<(i64, &AlertRow)> = entries
        .iter()
        .zip(&delivery_ids)
        .flat_map(|(entry, id)| entry.alerts.iter().map(move |row| (*id, row)))
        .collect();
    // In key order, so two replicas inserting overlapping batches lock rows in the same order
    // (PostgreSQL would otherwise abort one of them as a deadlock). Stable: among rows with
    // one key, the earliest entry's comes first and is the one inserted.
    rows.sort_by(|a, b| a.1.key().cmp(&b.1.key()));
    let mut inserted = HashSet::new();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        inserted.extend(insert_alerts(&mut tx, chunk).await?);
    }
    // Each entry's alerts in its own order: the first to carry a key the database inserted is new.
    let written: Vec<Written> = entries
        .iter()
        .zip(&delivery_ids)
        .map(|(entry, id)| {
            let journaled: Vec<Journaled> = entry
                .alerts
                .iter()
                .map(|row| {
                    if inserted.remove(&dedupe_key(row)) {
                        Journaled::New
                    } else {
                        Journaled::Duplicate
                    }
                })
                .collect();
            Written::new(*id, journaled)
        })
        .collect();
    let brought_news: Vec<(i64, &Entry)> = written
        .iter()
        .zip(entries)
        .filter_map(|(w, entry)| w.delivery_id.map(|id| (id, *entry)))
        .collect();
    if !brought_news.is_empty() {
        let mut query =
            QueryBuilder::<Postgres>::new(format!("INSERT INTO deliveries ({DELIVERY_COLUMNS}) "));
        query.push_values(&brought_news, |mut b, (id, entry)| {
            let r = &entry.delivery;
            b.push_bind(*id)
                .push_bind(r.received_at_ms)
                .push_bind(&r.receiver)
                .push_bind(&r.group_key)
                .push_bind(r.status)
                .push_bind(&r.external_url)
                .push_bind(r.alert_count)
                .push_bind(r.truncated_alerts);
        });
        query.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(written)
}

/// Inserts the rows whose key is not journaled yet; returns the keys it inserted.
async fn insert_alerts(
    tx: &mut PgConnection,
    rows: &[(i64, &AlertRow)],
) -> sqlx::Result<Vec<DedupeKey>> {
    let mut query = QueryBuilder::<Postgres>::new(format!("INSERT INTO alerts ({ALERT_COLUMNS}) "));
    query.push_values(rows, |mut b, (delivery_id, r)| {
        b.push_bind(*delivery_id)
            .push_bind(r.received_at_ms)
            .push_bind(&r.fingerprint)
            .push_bind(r.status)
            .push_bind(r.starts_at_ms)
            .push_bind(r.ends_at_ms)
            .push_bind(&r.labels)
            .push_bind(&r.annotations)
            .push_bind(&r.environment)
            .push_bind(&r.api_user)
            .push_bind(&r.application)
            .push_bind(r.action)
            .push_bind(r.rule_index)
            .push_bind(&r.rule_name)
            .push_bind(&r.action_detail)
            .push_bind(&r.reason)
            .push_bind(r.mode)
            .push_bind(&r.slack_channel);
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
