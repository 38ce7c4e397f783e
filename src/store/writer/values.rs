//! A delivery as the rows that journal it, built by the requester before it queues them: the
//! single writer is the intake's one serial step, so it only binds values and runs SQL. The
//! same rows for both databases; the ids are the writer's to assign.

use jiff::Timestamp;

use super::AlertReceipt;
use crate::domain::AlertStatus;
use crate::store::delivery::{Delivery, IncomingAlert, Routing};

pub(super) const ALERT_COLUMNS: &str = "delivery_id, received_at_ms, fingerprint, status, \
     starts_at_ms, ends_at_ms, labels, annotations, environment, api_user, application, action, \
     rule_index, rule_name, action_detail, reason, mode, slack_channel";

pub(super) const DELIVERY_COLUMNS: &str = "id, received_at_ms, receiver, group_key, status, \
     external_url, alert_count, truncated_alerts";

/// One delivery's rows, every value ready to bind.
pub(in crate::store) struct Entry {
    pub delivery: DeliveryRow,
    /// In the delivery's order.
    pub alerts: Vec<AlertRow>,
}

/// An `alerts` row in `ALERT_COLUMNS` order, less `delivery_id`.
pub(in crate::store) struct AlertRow {
    pub received_at_ms: i64,
    pub fingerprint: String,
    pub status: &'static str,
    pub starts_at_ms: i64,
    pub ends_at_ms: Option<i64>,
    pub labels: String,
    pub annotations: String,
    pub environment: Option<String>,
    pub api_user: Option<String>,
    pub application: Option<String>,
    pub action: &'static str,
    pub rule_index: Option<i64>,
    pub rule_name: Option<String>,
    pub action_detail: Option<String>,
    pub reason: Option<String>,
    pub mode: Option<&'static str>,
    pub slack_channel: Option<String>,
}

/// A `deliveries` row in `DELIVERY_COLUMNS` order, less `id`.
pub(in crate::store) struct DeliveryRow {
    pub received_at_ms: i64,
    pub receiver: String,
    pub group_key: String,
    pub status: Option<&'static str>,
    pub external_url: String,
    pub alert_count: i64,
    pub truncated_alerts: i64,
}

impl AlertRow {
    /// The alert's dedupe key: `UNIQUE (fingerprint, status, starts_at_ms)`.
    pub fn key(&self) -> (&str, &'static str, i64) {
        (&self.fingerprint, self.status, self.starts_at_ms)
    }
}

impl Entry {
    /// `receipts` are the delivery's alerts' receipts, in order (what the journal records as the
    /// decision is exactly what the requester is answered).
    pub fn new(delivery: &Delivery, receipts: &[AlertReceipt], received_at: Timestamp) -> Self {
        let received_at_ms = received_at.as_millisecond();
        Entry {
            delivery: DeliveryRow {
                received_at_ms,
                receiver: delivery.receiver.clone(),
                group_key: delivery.group_key.clone(),
                status: delivery.status.map(AlertStatus::as_str),
                external_url: delivery.external_url.clone(),
                alert_count: delivery.alerts.len() as i64,
                truncated_alerts: delivery.truncated_alerts as i64,
            },
            alerts: delivery
                .alerts
                .iter()
                .zip(receipts)
                .map(|(alert, receipt)| alert_row(received_at_ms, alert, receipt))
                .collect(),
        }
    }
}

fn alert_row(received_at_ms: i64, alert: &IncomingAlert, receipt: &AlertReceipt) -> AlertRow {
    let (action_detail, mode, slack_channel) = match &alert.routing {
        Routing::Routed { decision, .. } => (
            Some(serde_json::to_string(&decision.action).expect("actions serialize")),
            decision.mode.map(|m| m.as_str()),
            decision.slack_channel.clone(),
        ),
        Routing::Unroutable { .. } => (None, None, None),
    };
    AlertRow {
        received_at_ms,
        fingerprint: alert.fingerprint.clone(),
        status: alert.status.as_str(),
        starts_at_ms: alert.starts_at.as_millisecond(),
        ends_at_ms: alert.ends_at.map(|t| t.as_millisecond()),
        labels: serde_json::to_string(&alert.labels).expect("string maps serialize"),
        annotations: serde_json::to_string(&alert.annotations).expect("string maps serialize"),
        environment: receipt.environment.clone(),
        api_user: receipt.api_user.clone(),
        application: receipt.application.clone(),
        action: receipt.action.as_str(),
        rule_index: receipt.rule.as_ref().map(|r| r.index as i64),
        rule_name: receipt.rule.as_ref().map(|r| r.name.clone()),
        action_detail,
        reason: receipt.reason.clone(),
        mode,
        slack_channel,
    }
}
