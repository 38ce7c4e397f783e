//! A batch's rows, inserted with one multi-row statement per table whatever the batch's size.

use sqlx::QueryBuilder;

use super::{AlertInsert, DedupeKey, Job};
use crate::intake::{AlertStatus, Routing};
use crate::store::{WriteTx, on_tx};

const INSERT_ALERTS: &str = "INSERT INTO alerts (delivery_id, received_at_ms, fingerprint, \
     status, starts_at_ms, ends_at_ms, labels, annotations, environment, api_user, application, \
     action, rule_index, rule_name, action_detail, reason, mode, slack_channel) ";
// RETURNING with DO NOTHING yields exactly the rows that were inserted.
const ON_DUPLICATE_ALERT: &str = " ON CONFLICT (fingerprint, status, starts_at_ms) DO NOTHING \
     RETURNING fingerprint, status, starts_at_ms";

pub(super) async fn insert_alerts(
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

pub(super) async fn insert_deliveries(
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
