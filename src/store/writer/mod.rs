//! The single journal writer: group commit of waiting deliveries, one fsync per batch.

mod conn;
mod insert;

use serde::Serialize;
use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub(super) use conn::Conn;
use insert::{insert_alerts, insert_deliveries};

use super::{Dialect, StoreError, on_tx};
use crate::intake::{Delivery, IncomingAlert, Routing};
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
