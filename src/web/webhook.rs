//! `POST /v1/alertmanager`: authenticate, parse, decide, journal durably, then answer 200.
//!
//! Nothing else happens inside the request: no Signon, Kubernetes or Slack call. Alertmanager
//! holds a delivery for at most max(group_interval, 10 s) and re-sends on anything but 2xx, so
//! the answer must be quick and must mean "it is on disk".

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::Span;

use super::{ApiError, AppState, MAX_BODY_BYTES};
use crate::intake::{self, WebhookPayload};
use crate::store::{AlertReceipt, Journaled, Receipt};
use crate::telemetry::WebhookOutcome;

#[tracing::instrument(name = "webhook", skip_all, fields(group_key, alerts))]
pub(super) async fn receive(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = std::time::Instant::now();
    let outcome = accept(&state, &headers, body).await;
    state
        .metrics
        .webhook_answered(started.elapsed().as_secs_f64());
    match outcome {
        Ok(Accepted { receipt, claimed }) => {
            let new = receipt
                .alerts
                .iter()
                .filter(|a| a.journaled == Journaled::New)
                .count();
            let duplicates = receipt.alerts.len() - new;
            let outcome = if new == 0 {
                WebhookOutcome::Duplicate
            } else {
                WebhookOutcome::Accepted
            };
            state.metrics.webhook_request(outcome);
            // One line per delivery, a warning when any alert claimed a fingerprint that is not
            // its labels' hash: a line of its own per such alert was a measurable share of a
            // webhook's CPU (bench/README.md), and many lines for one delivery a log flood.
            if claimed.count == 0 {
                tracing::info!(new, duplicates, "webhook journaled");
            } else {
                tracing::warn!(
                    new,
                    duplicates,
                    claimed_fingerprints = claimed.count,
                    first = ?claimed.first,
                    "webhook journaled; alerts' fingerprints were not the hash of their labels: \
                     each is kept beside its labels' hash"
                );
            }
            Json(Answer {
                status: outcome.as_str(),
                new,
                duplicates,
                alerts: &receipt.alerts,
            })
            .into_response()
        }
        Err(error) => {
            state.metrics.webhook_request(error.outcome);
            if error.status.is_server_error() {
                tracing::error!(status = %error.status, detail = ?error.detail, cause = ?error.cause, "webhook not journaled");
            } else {
                tracing::warn!(status = %error.status, detail = ?error.detail, "webhook rejected");
            }
            error.into_response()
        }
    }
}

/// The 200 body: what became of each alert (Alertmanager ignores it; a person testing with
/// curl, or a test, reads it).
#[derive(Serialize)]
struct Answer<'a> {
    status: &'static str,
    new: usize,
    duplicates: usize,
    alerts: &'a [AlertReceipt],
}

/// A journaled delivery, and which of its alerts claimed a fingerprint not their labels' hash.
struct Accepted {
    receipt: Receipt,
    claimed: Claimed,
}

/// How many alerts claimed a fingerprint not their labels' hash, and the first one's dedupe key
/// (`<given>:<labels' hash>`, both checked hex digits: safe to log).
struct Claimed {
    count: usize,
    first: Option<String>,
}

async fn accept(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Accepted, ApiError> {
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !state.auth.permits(authorization) {
        return Err(ApiError::unauthorized());
    }
    check_content_type(headers)?;
    let bytes = read_body(headers, body).await?;
    let payload = WebhookPayload::parse(&bytes)
        .and_then(|p| p.within(state.max_alerts))
        .map_err(|e| ApiError::bad_request(e.to_string()))?;

    let span = Span::current();
    span.record("group_key", payload.group_key.as_str());
    span.record("alerts", payload.alerts.len());
    if payload.truncated_alerts > 0 {
        tracing::warn!(
            truncated = payload.truncated_alerts,
            "Alertmanager dropped alerts from this payload (max_alerts); they were not received"
        );
        state.metrics.alerts_truncated(payload.truncated_alerts);
    }
    if let Some(version) = payload.version.as_deref().filter(|v| *v != "4") {
        tracing::warn!(
            version,
            "unexpected webhook payload version; parsed as version 4"
        );
    }

    let delivery = intake::route(payload, &state.routes);
    let claimed = {
        let mut keys = intake::claimed_fingerprints(&delivery);
        let first = keys.next().map(str::to_owned);
        Claimed {
            count: usize::from(first.is_some()) + keys.count(),
            first,
        }
    };
    let receipt = state
        .journal
        .record(delivery, jiff::Timestamp::now())
        .await
        .map_err(|e| ApiError::journal_refused(&e))?;
    // The engine need not wait for its next poll: something new is in the journal.
    if let Some(wake) = &state.wake
        && receipt.delivery_id.is_some()
    {
        wake.notify_one();
    }
    for alert in receipt
        .alerts
        .iter()
        .filter(|a| a.journaled == Journaled::New)
    {
        state.metrics.alert_received(alert.status, alert.action);
        if let Some(reason) = &alert.reason {
            tracing::warn!(fingerprint = ?alert.fingerprint, reason = ?reason, "unroutable alert journaled");
        }
    }
    Ok(Accepted { receipt, claimed })
}

/// `application/json`, with or without parameters such as `charset`.
fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("<not text>"));
    let is_json = value.is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
    });
    if is_json {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(value))
    }
}

async fn read_body(headers: &HeaderMap, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
    to_bytes(body, MAX_BODY_BYTES).await.map_err(|e| {
        if caused_by_length_limit(&e) {
            ApiError::too_large(MAX_BODY_BYTES)
        } else {
            ApiError::bad_request(format!("could not read the body: {e}"))
        }
    })
}

fn caused_by_length_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}
