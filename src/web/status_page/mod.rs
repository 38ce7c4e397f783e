//! The read-only status page (`GET /`, `GET /rotations/{id}`) and its JSON (`GET /v1/rotations`,
//! `GET /v1/rotations/{id}`). Server-rendered HTML with maud, which escapes every value it is
//! given, so a label can never become markup; no script, so it works the same in any browser.
//! Reads the journal through the same code as `token-rotator status`.

mod inventory;
mod json;
mod overview;
mod story;
mod style;
mod timeline;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::AppState;
use crate::report::status::{self, StatusRow, when};
use crate::store::{rotations, threads};
use overview::Class;

pub(in crate::web) use json::{rotation_json, rotations_json};
/// The pages' one stylesheet, inline: the Content-Security-Policy allows it by its hash.
pub(in crate::web) use style::CSS as STYLESHEET;

/// `?environment=production&state=active|ended|<phase>&class=<summary class>&refresh=<seconds>`
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filter {
    environment: Option<String>,
    state: Option<String>,
    /// One of the summary band's classes ([`Class::key`]).
    class: Option<String>,
    /// The list page (from 0) of [`PAGE`] rows, so the page stays small with a large journal.
    page: Option<usize>,
    refresh: Option<u32>,
    /// `/v1/rotations`: at most this many (default [`PAGE`], at most [`MAX_PAGE`]).
    limit: Option<usize>,
    /// `/v1/rotations`: the page after this rotation id (the `Link: rel="next"` header's).
    after: Option<String>,
}

/// `/v1/rotations` answers in pages, so a large journal is never one answer.
pub(super) const PAGE: usize = 100;
pub(super) const MAX_PAGE: usize = 1000;

impl Filter {
    fn keeps(&self, row: &StatusRow, now_ms: i64) -> bool {
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
        let class = self
            .class
            .as_deref()
            .filter(|c| !c.is_empty())
            .is_none_or(|c| Class::of(r, now_ms).key() == c);
        environment && state && class
    }
}

pub(super) async fn load(state: &AppState) -> Result<Vec<StatusRow>, Response> {
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
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let mut shown: Vec<&StatusRow> = rows.iter().filter(|r| filter.keeps(r, now_ms)).collect();
    // What needs someone first, then newest first (the journal reads oldest first).
    shown.reverse();
    shown.sort_by_key(|r| Class::of(&r.rotation, now_ms));
    let environments: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r.rotation.environment.as_str())
        .collect();
    let inventories = match crate::report::tokens::load(&state.journal, None).await {
        Ok(inventories) => Some(inventories),
        Err(e) => {
            tracing::error!(error = %e, "status page: the token inventory is unreadable");
            None
        }
    };
    let expiring = overview::expiring(&rows);
    let identity = state
        .identity
        .as_ref()
        .map(|h| h.problems())
        .unwrap_or_default();
    // What Slack refuses (a channel, the bot token, a message given up): the same lines as
    // `/readyz`, so a person reading this page learns why a thread is silent.
    let slack = state
        .slack_health
        .as_ref()
        .map(|h| h.problems())
        .unwrap_or_default();
    let body = html! {
        header { h1 { "token-rotator" } }
        main {
            @if !identity.is_empty() {
                // Checked at start-up and daily: found here before a rotation needs it.
                section.identity role="alert" aria-labelledby="identity-heading" {
                    h2 #identity-heading { "The account token-rotator acts as needs attention" }
                    ul { @for problem in &identity { li { (problem) } } }
                }
            }
            @if !slack.is_empty() {
                section.slack role="alert" aria-labelledby="slack-heading" {
                    h2 #slack-heading { "Slack refuses some messages" }
                    ul { @for problem in &slack { li { (problem) } } }
                }
            }
            (overview::band(&rows, now_ms))
            div.panels {
                (overview::next_to_expire(&expiring, now_ms))
                (timeline::timeline(&expiring, inventories.as_ref().map_or(&[][..], |i| &i.tokens), now_ms))
            }
            h2 #rotations { "Rotations" }
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
                @if let Some(class) = filter.class.as_deref().filter(|c| !c.is_empty()) {
                    input type="hidden" name="class" value=(class);
                }
                " " button type="submit" { "filter" }
            }
            @let first = filter.page.unwrap_or(0).saturating_mul(PAGE);
            p { (shown.len()) " of " (rows.len()) " rotations"
                @if shown.len() > PAGE && first < shown.len() { ", rows " (first + 1) "–" ((first + PAGE).min(shown.len())) } }
            @if first > 0 && first >= shown.len() {
                // A page past the end (an old link, a shorter list now): say so, and where to go.
                p.state role="status" { "There is no page " (first / PAGE + 1) ": this list has "
                    (shown.len().div_ceil(PAGE).max(1)) " page(s). " a href="/#rotations" { "Back to the first page" } "." }
            }
            table.list {
                thead { tr {
                    th scope="col" { "environment" } th scope="col" { "api_user" } th scope="col" { "application" }
                    th scope="col" { "phase" } th scope="col" { "next / ended" } th scope="col" { "outcome" }
                } }
                tbody {
                    @for row in shown.iter().skip(first).take(PAGE) {
                        @let r = &row.rotation;
                        @let class = Class::of(r, now_ms);
                        @let outcome = r.outcome.as_deref().or(r.last_error.as_deref()).unwrap_or("");
                        tr class=(r.phase) {
                            td { (r.environment) }
                            td.trunc title=(r.api_user) { a href={ "/rotations/" (r.id) } { (r.api_user) } }
                            td.trunc title=(r.application) { (r.application) }
                            td class={ "phase c-" (class.key()) } { (r.phase) }
                            td { (when(r.next_attempt_at_ms.or(r.finished_at_ms))) }
                            td.trunc title=(outcome) { (outcome) }
                        }
                    }
                }
            }
            (pager(&filter, first, shown.len()))
            (inventory::section(inventories.as_ref(), now_ms))
        }
    };
    page("token-rotator", filter.refresh, body).into_response()
}

/// Links to the previous and next [`PAGE`] rows, keeping the filter.
fn pager(filter: &Filter, first: usize, total: usize) -> Markup {
    let link = |page: usize| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("environment", &filter.environment),
            ("state", &filter.state),
            ("class", &filter.class),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                query.append_pair(key, value);
            }
        }
        query.append_pair("page", &page.to_string());
        format!("/?{}#rotations", query.finish())
    };
    let page = first / PAGE;
    html! {
        @if total > PAGE { nav.pager aria-label="pages" {
            @if page > 0 { a rel="prev" href=(link(page - 1)) { "← newer" } " " }
            @if first + PAGE < total { a rel="next" href=(link(page + 1)) { "older →" } }
        } }
    }
}

pub(super) async fn rotation(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let pool = state.journal.pool();
    let (row, audit, threads) = match tokio::try_join!(
        rotations::rotation(pool, &id),
        rotations::audit(pool, &id),
        threads::all(pool)
    ) {
        Ok((Some(row), audit, threads)) => (row, audit, threads),
        Ok((None, _, _)) => return (StatusCode::NOT_FOUND, "no such rotation").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "status page: journal unreadable");
            return (StatusCode::SERVICE_UNAVAILABLE, "journal unavailable").into_response();
        }
    };
    let thread = threads.iter().find(|t| Some(t.id) == row.thread_id);
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let body = html! { main { (story::story(&row, &audit, thread, now_ms)) } };
    page(&format!("rotation {id}"), None, body).into_response()
}

fn page(title: &str, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh { meta http-equiv="refresh" content=(seconds.max(5)); }
                title { (title) }
                style { (style::CSS) }
            }
            body { (body) }
        }
    }
}
