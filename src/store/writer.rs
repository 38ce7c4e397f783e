//! The single journal writer: group commit of waiting deliveries, one fsync per batch.

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::collections::HashSet;
use std::sync::Arc;

use sqlx::{Connection, QueryBuilder};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::{Dialect, StoreError, WriteTx, on_tx};
use crate::intake::{AlertStatus, Delivery, IncomingAlert, Routing};
use crate::policy::{ActionKind, RuleRef};
use crate::telemetry::Metrics;

pub(super) enum Message {
    Write(Job),
    /// Finish what is queued ahead of this, then stop.
    Stop,
}

pub(super) struct Job {
    pub delivery: Delivery,
    pub received_at: jiff::Timestamp,
    pub reply: oneshot::Sender<Result<Receipt, StoreError>>,
}

/// What the journal did with a delivery.
#[derive(Debug, Clone, Serialize)]
pub struct Receipt {
    /// `None` when every alert in it was already journaled.
    pub delivery_id: Option<i64>,
    pub alerts: Vec<AlertReceipt>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Journaled {
    New,
    /// Same fingerprint, status and startsAt as an alert already journaled.
    Duplicate,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertReceipt {
    pub fingerprint: String,
    pub status: &'static str,
    pub journaled: Journaled,
    pub environment: Option<String>,
    pub api_user: Option<String>,
    pub application: Option<String>,
    #[serde(serialize_with = "as_str")]
    pub action: ActionKind,
    pub rule: Option<RuleRef>,
    pub reason: Option<String>,
}

fn as_str<S: serde::Serializer>(kind: &ActionKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.as_str())
}

/// The writer's own connection.
pub(super) enum Conn {
    Sqlite(SqliteConnection),
    /// A server can restart or fail over: a broken connection is dropped, and the next batch
    /// connects again (that batch's requesters got 503, so Alertmanager re-sends).
    Postgres {
        conn: Option<PgConnection>,
        options: Box<PgConnectOptions>,
    },
}

impl Conn {
    pub(super) async fn sqlite(options: &SqliteConnectOptions) -> Result<Self, StoreError> {
        SqliteConnection::connect_with(options)
            .await
            .map(Conn::Sqlite)
            .map_err(StoreError::Open)
    }

    pub(super) async fn postgres(options: &PgConnectOptions) -> Result<Self, StoreError> {
        let conn = PgConnection::connect_with(options)
            .await
            .map_err(StoreError::Open)?;
        Ok(Conn::Postgres {
            conn: Some(conn),
            options: Box::new(options.clone()),
        })
    }

    /// SQLite: IMMEDIATE takes the write lock now, so a competing writer makes us wait
    /// (busy_timeout) here rather than fail half-way through. PostgreSQL: row locks and the
    /// unique constraint settle races between replicas; no lock is needed up front.
    async fn begin(&mut self) -> Result<WriteTx<'_>, sqlx::Error> {
        Ok(match self {
            Conn::Sqlite(c) => WriteTx::Sqlite(c.begin_with("BEGIN IMMEDIATE").await?),
            Conn::Postgres { conn, options } => {
                if conn.is_none() {
                    *conn = Some(PgConnection::connect_with(options).await?);
                }
                let c = conn.as_mut().expect("connected above");
                WriteTx::Postgres(c.begin().await?)
            }
        })
    }

    /// After a failed batch: a connection that broke is not used again.
    fn forget_if_broken(&mut self, error: &sqlx::Error) {
        let broken = matches!(
            error,
            sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::Tls(_)
        ) || matches!(error, sqlx::Error::Database(e) if e.code().is_some_and(|c| c.starts_with("57P")));
        if let Conn::Postgres { conn, .. } = self
            && broken
        {
            tracing::warn!(%error, "journal writer connection lost; reconnecting for the next batch");
            *conn = None;
        }
    }

    async fn close(self) -> Result<(), sqlx::Error> {
        match self {
            Conn::Sqlite(c) => c.close().await,
            Conn::Postgres { conn: Some(c), .. } => c.close().await,
            Conn::Postgres { conn: None, .. } => Ok(()),
        }
    }
}

pub(super) fn spawn(
    conn: Conn,
    depth: usize,
    max_batch: usize,
    metrics: Option<Arc<Metrics>>,
) -> (mpsc::Sender<Message>, JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(depth);
    let task = tokio::spawn(run(conn, receiver, max_batch, metrics));
    (sender, task)
}

async fn run(
    mut conn: Conn,
    mut queue: mpsc::Receiver<Message>,
    max_batch: usize,
    metrics: Option<Arc<Metrics>>,
) {
    let mut stopping = false;
    while !stopping {
        let mut batch = match queue.recv().await {
            Some(Message::Write(job)) => vec![job],
            Some(Message::Stop) | None => break,
        };
        while batch.len() < max_batch {
            match queue.try_recv() {
                Ok(Message::Write(job)) => batch.push(job),
                Ok(Message::Stop) => {
                    stopping = true;
                    break;
                }
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch, metrics.as_deref()).await;
    }
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, "closing the journal writer connection failed");
    }
}

async fn commit_batch(conn: &mut Conn, batch: Vec<Job>, metrics: Option<&Metrics>) {
    let started = std::time::Instant::now();
    let outcome = write_all(conn, batch.iter()).await;
    if let Err(error) = &outcome {
        conn.forget_if_broken(error);
    }
    if let Some(metrics) = metrics {
        metrics.journal_committed(started.elapsed().as_secs_f64());
    }
    tracing::debug!(
        size = batch.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "journal batch committed"
    );
    match outcome {
        Ok(receipts) => {
            for (job, receipt) in batch.into_iter().zip(receipts) {
                // The requester may have gone (client hung up); the write still stands.
                let _ = job.reply.send(Ok(receipt));
            }
        }
        Err(error) if batch.len() > 1 => {
            tracing::warn!(%error, size = batch.len(), "batch commit failed; retrying one by one");
            // One bad delivery must not fail the others that happened to share its batch.
            for job in batch {
                let single = write_all(conn, std::iter::once(&job)).await;
                if let Err(error) = &single {
                    conn.forget_if_broken(error);
                }
                let single = single
                    .map(|mut receipts| receipts.remove(0))
                    .map_err(StoreError::Write);
                let _ = job.reply.send(single);
            }
        }
        Err(error) => {
            for job in batch {
                let _ = job.reply.send(Err(StoreError::Write(clone_error(&error))));
            }
        }
    }
}

/// `sqlx::Error` is not `Clone`; a batch of one has one requester, so this keeps the message.
fn clone_error(error: &sqlx::Error) -> sqlx::Error {
    sqlx::Error::Protocol(error.to_string())
}

/// Rows per multi-row INSERT: 17 columns each keeps us far below SQLite's 32 766 variables.
const ROWS_PER_INSERT: usize = 1000;

/// One alert row as it will be inserted, with the delivery it belongs to.
struct AlertInsert<'a> {
    job: usize,
    delivery_id: i64,
    alert: &'a IncomingAlert,
    receipt: AlertReceipt,
}

/// Journals a batch with a fixed number of statements whatever its size: SQLite's per-statement
/// cost, not the fsync, is what limits a busy writer.
async fn write_all<'a>(
    conn: &mut Conn,
    jobs: impl Iterator<Item = &'a Job>,
) -> Result<Vec<Receipt>, sqlx::Error> {
    let jobs: Vec<&Job> = jobs.collect();
    let mut tx = conn.begin().await?;
    // Ids of deliveries that turn out to be pure duplicates are simply never inserted.
    let count = jobs.len() as i64;
    let delivery_ids: Vec<i64> = on_tx!(&mut tx, |conn, D| {
        sqlx::query_scalar(<D as Dialect>::RESERVE_DELIVERY_IDS)
            .bind(count)
            .fetch_all(&mut *conn)
            .await
    })?;

    let mut rows: Vec<AlertInsert> = jobs
        .iter()
        .enumerate()
        .flat_map(|(job, j)| {
            let delivery_id = delivery_ids[job];
            j.delivery.alerts.iter().map(move |alert| AlertInsert {
                job,
                delivery_id,
                alert,
                receipt: receipt_for(alert),
            })
        })
        .collect();
    let mut inserted = HashSet::new();
    // In key order, so two replicas inserting overlapping batches lock rows in the same order
    // (PostgreSQL would otherwise abort one of them as a deadlock).
    let mut ordered: Vec<&AlertInsert> = rows.iter().collect();
    ordered.sort_by_cached_key(|row| dedupe_key(row.alert));
    for chunk in ordered.chunks(ROWS_PER_INSERT) {
        inserted.extend(insert_alerts(&mut tx, chunk, &jobs).await?);
    }
    // The first row carrying a key is the one the database inserted; later ones in the batch conflicted.
    for row in &mut rows {
        let key = dedupe_key(row.alert);
        row.receipt.journaled = if inserted.remove(&key) {
            Journaled::New
        } else {
            Journaled::Duplicate
        };
    }

    let mut receipts: Vec<Receipt> = jobs
        .iter()
        .map(|_| Receipt {
            delivery_id: None,
            alerts: Vec::new(),
        })
        .collect();
    for row in rows {
        if row.receipt.journaled == Journaled::New {
            receipts[row.job].delivery_id = Some(row.delivery_id);
        }
        receipts[row.job].alerts.push(row.receipt);
    }
    let brought_news: Vec<(usize, &&Job)> = jobs
        .iter()
        .enumerate()
        .filter(|(i, _)| receipts[*i].delivery_id.is_some())
        .collect();
    if !brought_news.is_empty() {
        insert_deliveries(&mut tx, &brought_news, &delivery_ids).await?;
    }
    tx.commit().await?;
    Ok(receipts)
}

type DedupeKey = (String, &'static str, i64);

fn dedupe_key(alert: &IncomingAlert) -> DedupeKey {
    (
        alert.fingerprint.clone(),
        alert.status.as_str(),
        alert.starts_at.as_millisecond(),
    )
}

const INSERT_ALERTS: &str = "INSERT INTO alerts (delivery_id, received_at_ms, fingerprint, \
     status, starts_at_ms, ends_at_ms, labels, annotations, environment, api_user, application, \
     action, rule_index, rule_name, action_detail, reason, mode, slack_channel) ";
// RETURNING with DO NOTHING yields exactly the rows that were inserted.
const ON_DUPLICATE_ALERT: &str = " ON CONFLICT (fingerprint, status, starts_at_ms) DO NOTHING \
     RETURNING fingerprint, status, starts_at_ms";

async fn insert_alerts(
    tx: &mut WriteTx<'_>,
    rows: &[&AlertInsert<'_>],
    jobs: &[&Job],
) -> Result<Vec<DedupeKey>, sqlx::Error> {
    let values = rows.iter().map(|row| alert_values(row, jobs));
    let inserted: Vec<(String, String, i64)> = on_tx!(tx, |conn, D| {
        let mut query = QueryBuilder::<D>::new(INSERT_ALERTS);
        query.push_values(values, |mut b, v| {
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
        query.push(ON_DUPLICATE_ALERT);
        query.build_query_as().fetch_all(&mut *conn).await
    })?;
    Ok(inserted
        .into_iter()
        .map(|(fingerprint, status, starts)| {
            let status = AlertStatus::parse(&status).map_or("firing", AlertStatus::as_str);
            (fingerprint, status, starts)
        })
        .collect())
}

/// One alert row's values, in `INSERT_ALERTS` order.
type AlertValues = (
    i64,
    i64,
    String,
    &'static str,
    i64,
    Option<i64>,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    &'static str,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<&'static str>,
    Option<String>,
);

fn alert_values(row: &AlertInsert<'_>, jobs: &[&Job]) -> AlertValues {
    let alert = row.alert;
    let receipt = &row.receipt;
    let (detail, mode, channel) = match &alert.routing {
        Routing::Routed { decision, .. } => (
            Some(serde_json::to_string(&decision.action).expect("actions serialize")),
            decision.mode.map(|m| m.as_str()),
            decision.slack_channel.clone(),
        ),
        Routing::Unroutable { .. } => (None, None, None),
    };
    (
        row.delivery_id,
        jobs[row.job].received_at.as_millisecond(),
        alert.fingerprint.clone(),
        alert.status.as_str(),
        alert.starts_at.as_millisecond(),
        alert.ends_at.map(|t| t.as_millisecond()),
        serde_json::to_string(&alert.labels).expect("string maps serialize"),
        serde_json::to_string(&alert.annotations).expect("string maps serialize"),
        receipt.environment.clone(),
        receipt.api_user.clone(),
        receipt.application.clone(),
        receipt.action.as_str(),
        receipt.rule.as_ref().map(|r| r.index as i64),
        receipt.rule.as_ref().map(|r| r.name.clone()),
        detail,
        receipt.reason.clone(),
        mode,
        channel,
    )
}

async fn insert_deliveries(
    tx: &mut WriteTx<'_>,
    jobs: &[(usize, &&Job)],
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    on_tx!(tx, |conn, D| {
        let mut query = QueryBuilder::<D>::new(
            "INSERT INTO deliveries (id, received_at_ms, receiver, group_key, status, \
             external_url, alert_count, truncated_alerts) ",
        );
        query.push_values(jobs, |mut values, (index, job)| {
            let delivery = &job.delivery;
            values
                .push_bind(ids[*index])
                .push_bind(job.received_at.as_millisecond())
                .push_bind(delivery.receiver.clone())
                .push_bind(delivery.group_key.clone())
                .push_bind(delivery.status.map(AlertStatus::as_str))
                .push_bind(delivery.external_url.clone())
                .push_bind(delivery.alerts.len() as i64)
                .push_bind(delivery.truncated_alerts as i64);
        });
        query
            .build()
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(())
}

/// The receipt of one alert, before we know whether it is new.
fn receipt_for(alert: &IncomingAlert) -> AlertReceipt {
    let (target, action, rule, reason) = match &alert.routing {
        Routing::Routed { target, decision } => (
            Some(target),
            decision.action.kind(),
            decision.rule.clone(),
            None,
        ),
        Routing::Unroutable { reason } => {
            (None, ActionKind::Unroutable, None, Some(reason.clone()))
        }
    };
    // An unroutable alert still shows whatever it did carry, for the person who looks at it.
    let from_labels = |name: &str| alert.labels.get(name).filter(|v| !v.is_empty()).cloned();
    AlertReceipt {
        fingerprint: alert.fingerprint.clone(),
        status: alert.status.as_str(),
        journaled: Journaled::Duplicate,
        environment: target.map_or_else(
            || from_labels("environment"),
            |t| Some(t.environment.to_string()),
        ),
        api_user: target.map_or_else(|| from_labels("api_user"), |t| Some(t.api_user.to_string())),
        application: target.map_or_else(
            || from_labels("application"),
            |t| Some(t.application.to_string()),
        ),
        action,
        rule,
        reason,
    }
}
