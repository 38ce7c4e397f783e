//! The single journal writer: group commit of waiting deliveries, one fsync per batch.
//!
//! It runs on a thread of its own and commits synchronously. With SQLite every statement of a
//! batch then runs on that thread: sqlx's SQLite driver sends each statement, and each row it
//! returns, to a worker thread of its own, and at intake rates those hand-offs cost more than
//! the SQL (see `bench/README.md`). PostgreSQL keeps sqlx, driven from this thread.

mod postgres;
mod sqlite;
mod values;

use serde::Serialize;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub(super) use postgres::PgWriter;
pub(super) use sqlite::SqliteWriter;
use values::Entry;

use super::StoreError;
use crate::policy::{ActionKind, RuleRef};
use crate::store::delivery::{Delivery, IncomingAlert, Routing};
use crate::telemetry::Metrics;

pub(super) enum Message {
    Write(Job),
    /// Finish what is queued ahead of this, then stop.
    Stop,
}

pub(super) struct Job {
    pub entry: Entry,
    pub reply: oneshot::Sender<Result<Written, StoreError>>,
}

impl Job {
    /// The job that journals `delivery`, and the requester's side of it.
    pub fn new(delivery: &Delivery, received_at: jiff::Timestamp) -> (Self, Pending) {
        let receipts: Vec<AlertReceipt> = delivery.alerts.iter().map(receipt_for).collect();
        let (reply, answer) = oneshot::channel();
        let entry = Entry::new(delivery, &receipts, received_at);
        (Self { entry, reply }, Pending { receipts, answer })
    }
}

/// A requester waiting for its job: the receipts it will be answered with, each `Duplicate`
/// until the writer says otherwise.
pub(super) struct Pending {
    receipts: Vec<AlertReceipt>,
    answer: oneshot::Receiver<Result<Written, StoreError>>,
}

impl Pending {
    pub async fn receipt(self) -> Result<Receipt, StoreError> {
        let written = self.answer.await.map_err(|_| StoreError::WriterGone)??;
        let mut alerts = self.receipts;
        for (alert, journaled) in alerts.iter_mut().zip(written.journaled) {
            alert.journaled = journaled;
        }
        Ok(Receipt {
            delivery_id: written.delivery_id,
            alerts,
        })
    }
}

/// What the writer did with one entry.
#[derive(Debug)]
pub(super) struct Written {
    /// `None` when every alert in it was already journaled.
    pub delivery_id: Option<i64>,
    /// Per alert, in the entry's order.
    pub journaled: Vec<Journaled>,
}

impl Written {
    /// A delivery that brought nothing new is not journaled itself, so takes no id.
    pub fn new(id: i64, journaled: Vec<Journaled>) -> Self {
        Self {
            delivery_id: journaled.contains(&Journaled::New).then_some(id),
            journaled,
        }
    }
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

/// One database's way of journaling a batch.
pub(super) trait BatchWriter: Send + 'static {
    /// Journals `entries` in one transaction, all or nothing: one answer per entry, in order. An
    /// alert already journaled (by an earlier delivery, or earlier in this batch) is a duplicate.
    fn write(&mut self, entries: &[&Entry]) -> Result<Vec<Written>, WriteError>;

    fn close(self: Box<Self>) -> Result<(), WriteError>;
}

/// Why a batch was not journaled.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Postgres(#[from] sqlx::Error),
}

pub(super) fn spawn(
    writer: Box<dyn BatchWriter>,
    depth: usize,
    max_batch: usize,
    metrics: Option<Arc<Metrics>>,
) -> (mpsc::Sender<Message>, JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(depth);
    let task = tokio::task::spawn_blocking(move || run(writer, receiver, max_batch, metrics));
    (sender, task)
}

fn run(
    mut writer: Box<dyn BatchWriter>,
    mut queue: mpsc::Receiver<Message>,
    max_batch: usize,
    metrics: Option<Arc<Metrics>>,
) {
    let mut stopping = false;
    while !stopping {
        let mut batch = match queue.blocking_recv() {
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
        commit_batch(writer.as_mut(), batch, metrics.as_deref());
    }
    if let Err(e) = writer.close() {
        tracing::warn!(error = %e, "closing the journal writer connection failed");
    }
}

fn commit_batch(writer: &mut dyn BatchWriter, batch: Vec<Job>, metrics: Option<&Metrics>) {
    let started = std::time::Instant::now();
    let outcome = writer.write(&batch.iter().map(|job| &job.entry).collect::<Vec<_>>());
    if let Some(metrics) = metrics {
        metrics.journal_committed(started.elapsed().as_secs_f64());
    }
    tracing::debug!(
        size = batch.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "journal batch committed"
    );
    match outcome {
        Ok(written) => {
            for (job, written) in batch.into_iter().zip(written) {
                // The requester may have gone (client hung up); the write still stands.
                let _ = job.reply.send(Ok(written));
            }
        }
        Err(error) if batch.len() > 1 => {
            tracing::warn!(%error, size = batch.len(), "batch commit failed; retrying one by one");
            // One bad delivery must not fail the others that happened to share its batch.
            for job in batch {
                let single = writer
                    .write(&[&job.entry])
                    .map(|mut written| written.remove(0))
                    .map_err(StoreError::Journal);
                let _ = job.reply.send(single);
            }
        }
        Err(error) => {
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(Err(StoreError::Journal(error)));
            }
        }
    }
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
