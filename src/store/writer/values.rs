//! A batch's rows as values to bind, in the column order of the statements that insert them;
//! the same for both databases.

use jiff::Timestamp;

use super::{AlertReceipt, Job};
use crate::intake::{AlertStatus, IncomingAlert, Routing};

pub(super) const ALERT_COLUMNS: &str = "delivery_id, received_at_ms, fingerprint, status, \
     starts_at_ms, ends_at_ms, labels, annotations, environment, api_user, application, action, \
     rule_index, rule_name, action_detail, reason, mode, slack_channel";

pub(super) const DELIVERY_COLUMNS: &str = "id, received_at_ms, receiver, group_key, status, \
     external_url, alert_count, truncated_alerts";

/// One alert row's values, in `ALERT_COLUMNS` order.
pub(super) type AlertValues = (
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

pub(super) fn alert_values(
    delivery_id: i64,
    received_at: Timestamp,
    alert: &IncomingAlert,
    receipt: &AlertReceipt,
) -> AlertValues {
    let (detail, mode, channel) = match &alert.routing {
        Routing::Routed { decision, .. } => (
            Some(serde_json::to_string(&decision.action).expect("actions serialize")),
            decision.mode.map(|m| m.as_str()),
            decision.slack_channel.clone(),
        ),
        Routing::Unroutable { .. } => (None, None, None),
    };
    (
        delivery_id,
        received_at.as_millisecond(),
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

/// One delivery row's values, in `DELIVERY_COLUMNS` order.
pub(super) type DeliveryValues = (
    i64,
    i64,
    String,
    String,
    Option<&'static str>,
    String,
    i64,
    i64,
);

pub(super) fn delivery_values(id: i64, job: &Job) -> DeliveryValues {
    let delivery = &job.delivery;
    (
        id,
        job.received_at.as_millisecond(),
        delivery.receiver.clone(),
        delivery.group_key.clone(),
        delivery.status.map(AlertStatus::as_str),
        delivery.external_url.clone(),
        delivery.alerts.len() as i64,
        delivery.truncated_alerts as i64,
    )
}
