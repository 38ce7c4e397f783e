//! The read-only status page (`GET /`, `GET /rotations/{id}`) and its JSON (`GET /v1/rotations`,
//! `GET /v1/rotations/{id}`). Server-rendered HTML with maud, which escapes every value it is
//! given, so a label can never become markup. Reads the journal through the same code as
//! `token-rotator status`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::AppState;
use crate::commands::status::{self, StatusRow, next_action, when};
use crate::store::rotations;

/// `?environment=production&state=active|ended|<phase>&refresh=<seconds>`
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    environment: Option<String>,
    state: Option<String>,
    refresh: Option<u32>,
    /// `/v1/rotations`: at most this many (default [`PAGE`], at most [`MAX_PAGE`]).
    limit: Option<usize>,
    /// `/v1/rotations`: the page after this rotation id (the `Link: rel="next"` header's).
    after: Option<String>,
}

/// `/v1/rotations` answers in pages, so a large journal is never one answer.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

impl Filter {
    fn keeps(&self, row: &StatusRow) -> bool {
        let r = &row.rotation;
        let environment = self
            .environment
            .as_deref()
            .filter(|e| !e.is_empty())
            .is_none_or(|e| r.environment == e);
        let state = match self.state.as_deref().filter(|s| !s.is_empty()) {
            None => true,
            Some("active") => r.next_attempt_at_ms.is_some(),
            Some("ended") => r.next_attempt_at_ms.is_none(),
            Some(phase) => r.phase == phase,
        };
        environment && state
    }
}

async fn load(state: &AppState) -> Result<Vec<StatusRow>, Response> {
    status::load(&state.journal).await.map_err(|e| {
        tracing::error!(error = %e, "status page: journal unreadable");
        (StatusCode::SERVICE_UNAVAILABLE, "journal unavailable").into_response()
    })
}

pub(super) async fn index(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<Filter>,
) -> Response {
    let rows = match load(&state).await {
        Ok(rows) => rows,
        Err(response) => return response,
    };
    let mut shown: Vec<&StatusRow> = rows.iter().filter(|r| filter.keeps(r)).collect();
    shown.reverse(); // newest first
    let environments: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r.rotation.environment.as_str())
        .collect();
    let body = html! {
        h1 { "token-rotator" }
        form method="get" {
            label { "environment " select name="environment" {
                option value="" { "all" }
                @for e in &environments {
                    option value=(e) selected[filter.environment.as_deref() == Some(*e)] { (e) }
                }
            } }
            " "
            label { "state " select name="state" {
                @for (value, text) in [("", "all"), ("active", "under way"), ("ended", "ended"), ("failed", "failed"), ("rolled_back", "rolled back"), ("manual", "manual")] {
                    option value=(value) selected[filter.state.as_deref().unwrap_or("") == value] { (text) }
                }
            } }
            " " button type="submit" { "filter" }
        }
        p { (shown.len()) " of " (rows.len()) " rotations" }
        table {
            thead { tr {
                th { "environment" } th { "api_user" } th { "application" } th { "decision" }
                th { "phase" } th { "next action" } th { "next / ended" } th { "last outcome" }
                th { "new token" } th { "last alert" }
            } }
            tbody {
                @for row in &shown {
                    @let r = &row.rotation;
                    tr class=(r.phase) {
                        td { (r.environment) }
                        td { a href={ "/rotations/" (r.id) } { (r.api_user) } }
                        td { (r.application) }
                        td { (r.action) }
                        td.phase { (r.phase) }
                        td { (next_action(r)) }
                        td { (when(r.next_attempt_at_ms.or(r.finished_at_ms))) }
                        td { (r.outcome.as_deref().or(r.last_error.as_deref()).unwrap_or("")) }
                        td { @if let Some(fp) = &r.new_token_fingerprint {
                            code { (fp) } " …" (r.new_token_last4.as_deref().unwrap_or("")) " until " (when(r.new_token_expires_at_ms))
                        } }
                        td { @if let Some((status, at)) = &row.last_alert { (status) " " (when(Some(*at))) } }
                    }
                }
            }
        }
    };
    page("token-rotator", filter.refresh, body).into_response()
}

pub(super) async fn rotation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let pool = state.journal.pool();
    let (row, audit) =
        match tokio::try_join!(rotations::rotation(pool, &id), rotations::audit(pool, &id)) {
            Ok((Some(row), audit)) => (row, audit),
            Ok((None, _)) => return (StatusCode::NOT_FOUND, "no such rotation").into_response(),
            Err(e) => {
                tracing::error!(error = %e, "status page: journal unreadable");
                return (StatusCode::SERVICE_UNAVAILABLE, "journal unavailable").into_response();
            }
        };
    let body = html! {
        p { a href="/" { "← all rotations" } }
        h1 { (row.api_user) " · " (row.application) " · " (row.environment) }
        dl {
            dt { "rotation" } dd { code { (row.id) } }
            dt { "decision" } dd { (row.action) @if let Some(rule) = &row.rule_name { " (rule " code { (rule) } ")" } }
            dt { "phase" } dd { (row.phase) " — next: " (next_action(&row)) }
            dt { "started by" } dd { (row.trigger) }
            dt { "Secret" } dd { (row.secret_name.as_deref().unwrap_or("-")) }
            dt { "old token" } dd { (row.old_token_id.as_deref().unwrap_or("-")) " …" (row.old_token_last8.as_deref().unwrap_or("")) " expires " (when(row.old_token_expires_at_ms)) }
            dt { "new token" } dd { (row.new_token_fingerprint.as_deref().unwrap_or("-")) " …" (row.new_token_last4.as_deref().unwrap_or("")) " expires " (when(row.new_token_expires_at_ms)) }
            dt { "outcome" } dd { (row.outcome.as_deref().or(row.last_error.as_deref()).unwrap_or("-")) }
            dt { "Slack" } dd { "posted through the incoming webhook (no permalink)" }
        }
        h2 { "Audit trail" }
        table {
            thead { tr { th { "when" } th { "from" } th { "to" } th { "why" } th { "trigger" } } }
            tbody { @for a in &audit { tr {
                td { (when(Some(a.at_ms))) } td { (a.from_phase.as_deref().unwrap_or("")) } td { (a.to_phase) }
                td { (a.reason) } td { (a.trigger) }
            } } }
        }
    };
    page(&format!("rotation {id}"), None, body).into_response()
}

pub(super) async fn rotations_json(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<Filter>,
) -> Response {
    match load(&state).await {
        Ok(rows) => {
            let limit = filter.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
            let mut kept = rows.into_iter().filter(|r| filter.keeps(r)).peekable();
            if let Some(after) = filter.after.as_deref() {
                // Everything up to and including the cursor's rotation was on earlier pages.
                while kept.next_if(|r| r.rotation.id != after).is_some() {}
                kept.next();
            }
            let page: Vec<StatusRow> = kept.by_ref().take(limit).collect();
            let mut response = Json(status::json(&page)).into_response();
            if kept.peek().is_some()
                && let Some(last) = page.last()
            {
                let mut next = format!("/v1/rotations?limit={limit}&after={}", last.rotation.id);
                for (key, value) in [
                    ("environment", &filter.environment),
                    ("state", &filter.state),
                ] {
                    if let Some(value) = value {
                        next.push_str(&format!(
                            "&{key}={}",
                            url::form_urlencoded::byte_serialize(value.as_bytes())
                                .collect::<String>()
                        ));
                    }
                }
                if let Ok(link) =
                    axum::http::HeaderValue::from_str(&format!("<{next}>; rel=\"next\""))
                {
                    response
                        .headers_mut()
                        .insert(axum::http::header::LINK, link);
                }
            }
            response
        }
        Err(response) => response,
    }
}

pub(super) async fn rotation_json(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let pool = state.journal.pool();
    match tokio::try_join!(rotations::rotation(pool, &id), rotations::audit(pool, &id)) {
        Ok((Some(row), audit)) => {
            let mut body = status::json(&[StatusRow {
                rotation: row,
                last_alert: None,
            }])[0]
                .take();
            body["audit"] = audit
                .iter()
                .map(|a| serde_json::json!({"at_ms": a.at_ms, "from": a.from_phase, "to": a.to_phase, "reason": a.reason, "trigger": a.trigger}))
                .collect();
            Json(body).into_response()
        }
        Ok((None, _)) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "not_found"})),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "journal unavailable").into_response(),
    }
}

fn page(title: &str, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                @if let Some(seconds) = refresh { meta http-equiv="refresh" content=(seconds.max(5)); }
                title { (title) }
                style { (CSS) }
            }
            body { (body) }
        }
    }
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#0b0c0c}\
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border-bottom:1px solid #b1b4b6;\
padding:.35rem .5rem;text-align:left;vertical-align:top}th{background:#f3f2f1}\
tr.failed td.phase,tr.rolled_back td.phase{color:#d4351c;font-weight:bold}\
tr.done td.phase{color:#00703c}code{font-size:.85rem}dt{font-weight:bold}dd{margin:0 0 .5rem 0}";
