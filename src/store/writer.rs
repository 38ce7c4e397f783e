//! The single journal writer: group commit of waiting deliveries, one fsync per batch.

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use std::collections::HashSet;
use std::sync::Arc;

use sqlx::{Connection, QueryBuilder, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::StoreError;
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

pub(super) async fn spawn(
    options: SqliteConnectOptions,
    depth: usize,
    max_batch: usize,
    metrics: Option<Arc<Metrics>>,
) -> Result<(mpsc::Sender<Message>, JoinHandle<()>), StoreError> {
    let conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(StoreError::Open)?;
    let (sender, receiver) = mpsc::channel(depth);
    let task = tokio::spawn(run(conn, receiver, max_batch, metrics));
    Ok((sender, task))
}

async fn run(
    mut conn: SqliteConnection,
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

async fn commit_batch(conn: &mut SqliteConnection, batch: Vec<Job>, metrics: Option<&Metrics>) {
    let started = std::time::Instant::now();
    let outcome = write_all(conn, batch.iter()).await;
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
                let single = write_all(conn, std::iter::once(&job))
                    .await
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
    conn: &mut SqliteConnection,
    jobs: impl Iterator<Item = &'a Job>,
) -> Result<Vec<Receipt>, sqlx::Error> {
    let jobs: Vec<&Job> = jobs.collect();
    // IMMEDIATE takes the write lock now, so a competing writer makes us wait (busy_timeout)
    // here rather than fail half-way through.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // The single writer owns id assignment; ids of deliveries that turn out to be pure
    // duplicates are simply never inserted.
    let last_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM deliveries")
        .fetch_one(&mut *tx)
        .await?;
    let delivery_ids: Vec<i64> = (1..=jobs.len() as i64).map(|n| last_id + n).collect();

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
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        inserted.extend(insert_alerts(&mut tx, chunk, &jobs).await?);
    }
    // The first row carrying a key is the one SQLite inserted; later ones in the batch conflicted.
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

async fn insert_alerts(
    tx: &mut Transaction<'_, Sqlite>,
    rows: &[AlertInsert<'_>],
    jobs: &[&Job],
) -> Result<Vec<DedupeKey>, sqlx::Error> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "INSERT INTO alerts (delivery_id, received_at_ms, fingerprint, status, starts_at_ms, \
         ends_at_ms, labels, annotations, environment, api_user, application, action, rule_index, \
         rule_name, action_detail, reason, mode, slack_channel) ",
    );
    query.push_values(rows, |mut values, row| {
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
        values
            .push_bind(row.delivery_id)
            .push_bind(jobs[row.job].received_at.as_millisecond())
            .push_bind(alert.fingerprint.clone())
            .push_bind(alert.status.as_str())
            .push_bind(alert.starts_at.as_millisecond())
            .push_bind(alert.ends_at.map(|t| t.as_millisecond()))
            .push_bind(serde_json::to_string(&alert.labels).expect("string maps serialize"))
            .push_bind(serde_json::to_string(&alert.annotations).expect("string maps serialize"))
            .push_bind(receipt.environment.clone())
            .push_bind(receipt.api_user.clone())
            .push_bind(receipt.application.clone())
            .push_bind(receipt.action.as_str())
            .push_bind(receipt.rule.as_ref().map(|r| r.index as i64))
            .push_bind(receipt.rule.as_ref().map(|r| r.name.clone()))
            .push_bind(detail)
            .push_bind(receipt.reason.clone())
            .push_bind(mode)
            .push_bind(channel);
    });
    // RETURNING with DO NOTHING yields exactly the rows that were inserted.
    query.push(
        " ON CONFLICT (fingerprint, status, starts_at_ms) DO NOTHING \
         RETURNING fingerprint, status, starts_at_ms",
    );
    let inserted: Vec<(String, String, i64)> = query.build_query_as().fetch_all(&mut **tx).await?;
    Ok(inserted
        .into_iter()
        .map(|(fingerprint, status, starts)| {
            let status = AlertStatus::parse(&status).map_or("firing", AlertStatus::as_str);
            (fingerprint, status, starts)
        })
        .collect())
}

async fn insert_deliveries(
    tx: &mut Transaction<'_, Sqlite>,
    jobs: &[(usize, &&Job)],
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    let mut query = QueryBuilder::<Sqlite>::new(
        "INSERT INTO deliveries (id, received_at_ms, receiver, group_key, status, external_url, \
         alert_count, truncated_alerts) ",
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
    query.build().execute(&mut **tx).await?;
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
