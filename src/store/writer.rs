//! The single journal writer: group commit of waiting deliveries, one fsync per batch.

use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{Connection, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::StoreError;
use crate::intake::{AlertStatus, Delivery, IncomingAlert, Routing};
use crate::policy::{ActionKind, RuleRef};

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
) -> Result<(mpsc::Sender<Message>, JoinHandle<()>), StoreError> {
    let conn = SqliteConnection::connect_with(&options)
        .await
        .map_err(StoreError::Open)?;
    let (sender, receiver) = mpsc::channel(depth);
    let task = tokio::spawn(run(conn, receiver, max_batch));
    Ok((sender, task))
}

async fn run(mut conn: SqliteConnection, mut queue: mpsc::Receiver<Message>, max_batch: usize) {
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
        commit_batch(&mut conn, batch).await;
    }
    if let Err(e) = conn.close().await {
        tracing::warn!(error = %e, "closing the journal writer connection failed");
    }
}

async fn commit_batch(conn: &mut SqliteConnection, batch: Vec<Job>) {
    let outcome = write_all(conn, batch.iter()).await;
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

async fn write_all<'a>(
    conn: &mut SqliteConnection,
    jobs: impl Iterator<Item = &'a Job>,
) -> Result<Vec<Receipt>, sqlx::Error> {
    // IMMEDIATE takes the write lock now, so a competing writer makes us wait (busy_timeout)
    // here rather than fail half-way through.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let mut receipts = Vec::new();
    for job in jobs {
        receipts.push(write_delivery(&mut tx, &job.delivery, job.received_at).await?);
    }
    tx.commit().await?;
    Ok(receipts)
}

async fn write_delivery(
    tx: &mut Transaction<'_, Sqlite>,
    delivery: &Delivery,
    received_at: jiff::Timestamp,
) -> Result<Receipt, sqlx::Error> {
    let received_ms = received_at.as_millisecond();
    let delivery_id: i64 = sqlx::query_scalar(
        "INSERT INTO deliveries (received_at_ms, receiver, group_key, status, external_url, \
         alert_count, truncated_alerts) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(received_ms)
    .bind(&delivery.receiver)
    .bind(&delivery.group_key)
    .bind(delivery.status.map(AlertStatus::as_str))
    .bind(&delivery.external_url)
    .bind(delivery.alerts.len() as i64)
    .bind(delivery.truncated_alerts as i64)
    .fetch_one(&mut **tx)
    .await?;

    let mut alerts = Vec::with_capacity(delivery.alerts.len());
    for alert in &delivery.alerts {
        alerts.push(write_alert(tx, delivery_id, received_ms, alert).await?);
    }
    let any_new = alerts.iter().any(|a| a.journaled == Journaled::New);
    if !any_new {
        // Nothing new: the delivery itself is a duplicate and leaves no trace.
        sqlx::query("DELETE FROM deliveries WHERE id = $1")
            .bind(delivery_id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(Receipt {
        delivery_id: any_new.then_some(delivery_id),
        alerts,
    })
}

async fn write_alert(
    tx: &mut Transaction<'_, Sqlite>,
    delivery_id: i64,
    received_ms: i64,
    alert: &IncomingAlert,
) -> Result<AlertReceipt, sqlx::Error> {
    let (target, action, rule, detail, reason) = match &alert.routing {
        Routing::Routed { target, decision } => (
            Some(target),
            decision.action.kind(),
            decision.rule.clone(),
            Some(serde_json::to_string(&decision.action).expect("actions serialize")),
            None,
        ),
        Routing::Unroutable { reason } => (
            None,
            ActionKind::Unroutable,
            None,
            None,
            Some(reason.clone()),
        ),
    };
    // An unroutable alert still shows whatever it did carry, for the person who looks at it.
    let from_labels = |name: &str| alert.labels.get(name).filter(|v| !v.is_empty()).cloned();
    let environment = target.map_or_else(
        || from_labels("environment"),
        |t| Some(t.environment.to_string()),
    );
    let api_user = target.map_or_else(|| from_labels("api_user"), |t| Some(t.api_user.to_string()));
    let application = target.map_or_else(
        || from_labels("application"),
        |t| Some(t.application.to_string()),
    );
    let inserted = sqlx::query(
        "INSERT INTO alerts (delivery_id, received_at_ms, fingerprint, status, starts_at_ms, \
         ends_at_ms, labels, annotations, environment, api_user, application, action, rule_index, \
         rule_name, action_detail, reason) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (fingerprint, status, starts_at_ms) DO NOTHING",
    )
    .bind(delivery_id)
    .bind(received_ms)
    .bind(&alert.fingerprint)
    .bind(alert.status.as_str())
    .bind(alert.starts_at.as_millisecond())
    .bind(alert.ends_at.map(|t| t.as_millisecond()))
    .bind(serde_json::to_string(&alert.labels).expect("string maps serialize"))
    .bind(serde_json::to_string(&alert.annotations).expect("string maps serialize"))
    .bind(&environment)
    .bind(&api_user)
    .bind(&application)
    .bind(action.as_str())
    .bind(rule.as_ref().map(|r| r.index as i64))
    .bind(rule.as_ref().map(|r| r.name.clone()))
    .bind(detail)
    .bind(&reason)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(AlertReceipt {
        fingerprint: alert.fingerprint.clone(),
        status: alert.status.as_str(),
        journaled: if inserted == 1 {
            Journaled::New
        } else {
            Journaled::Duplicate
        },
        environment,
        api_user,
        application,
        action,
        rule,
        reason,
    })
}
