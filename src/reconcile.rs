//! Reconcile: Alertmanager sends nothing more for a group whose notification never got through
//! (and webhooks can be lost), so every `reconcile_interval` the firing alerts are read back from
//! `GET /api/v2/alerts` and fed through the same path as a webhook. An alert already journaled is
//! a duplicate and changes nothing; a new one starts what a webhook would have, with trigger
//! `reconcile` in the audit.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::Notify;

use crate::adapters::alertmanager::AlertmanagerClient;
use crate::intake::{self, WebhookPayload};
use crate::store::{Journal, Journaled};

/// The `receiver` of deliveries made by reconcile, so the engine can say where an alert came from.
pub const RECEIVER: &str = "token-rotator/reconcile";
/// The alert token-rotator acts on.
pub const ALERTNAME: &str = crate::adapters::signon::EXPIRY_ALERTNAME;

pub struct Reconciler {
    pub client: AlertmanagerClient,
    pub journal: Arc<Journal>,
    pub routes: crate::intake::Routes,
    pub wake: Option<Arc<Notify>>,
}

impl Reconciler {
    /// One pass; returns how many alerts were new to the journal.
    pub async fn once(&self) -> Result<usize, String> {
        let alerts = self
            .client
            .active_alerts(ALERTNAME)
            .await
            .map_err(|e| e.to_string())?;
        if alerts.is_empty() {
            return Ok(0);
        }
        // As Alertmanager would have sent them: firing, Go's zero endsAt.
        let body = json!({
            "receiver": RECEIVER,
            "status": "firing",
            "groupKey": "reconcile",
            "alerts": alerts.iter().map(|a| json!({
                "status": "firing",
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": a.starts_at,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": a.generator_url,
                "fingerprint": a.fingerprint,
            })).collect::<Vec<_>>(),
        });
        let mut payload =
            WebhookPayload::parse(body.to_string().as_bytes()).map_err(|e| e.to_string())?;
        // Alertmanager's API holds whatever anyone posted to it, so its alerts meet the
        // webhook's limits too; here nobody is answered, so an alert over them is left out
        // (and said) and the rest are journaled.
        let mut index = 0;
        payload.alerts.retain(|alert| {
            let checked = crate::intake::limits::check_alert(index, alert);
            index += 1;
            match checked {
                Ok(()) => true,
                Err(problem) => {
                    tracing::warn!(%problem, "reconcile leaves out an alert over the intake's limits");
                    false
                }
            }
        });
        if payload.alerts.is_empty() {
            return Ok(0);
        }
        let delivery = intake::route(payload, &self.routes);
        let claimed: Vec<&str> = intake::claimed_fingerprints(&delivery).collect();
        if !claimed.is_empty() {
            tracing::warn!(
                keys = ?claimed,
                "alerts' fingerprints were not the hash of their labels: each is kept beside its labels' hash"
            );
        }
        let receipt = self
            .journal
            .record(delivery, jiff::Timestamp::now())
            .await
            .map_err(|e| e.to_string())?;
        let new = receipt
            .alerts
            .iter()
            .filter(|a| a.journaled == Journaled::New)
            .count();
        if new > 0 {
            tracing::warn!(new, "reconcile found firing alerts no webhook had brought");
            if let Some(wake) = &self.wake {
                wake.notify_one();
            }
        }
        Ok(new)
    }

    pub async fn run(&self, interval: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = ticker.tick() => {
                    if let Err(error) = self.once().await {
                        tracing::warn!(%error, "reconcile with Alertmanager failed; next try in {interval:?}");
                    }
                }
            }
        }
    }
}
