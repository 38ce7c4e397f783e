//! One rotation's page tells its story: what it is, who decided, where it is told in Slack, and
//! its phases as a vertical timeline with the time spent in each and the reason for every step
//! (a retry's reason included). A shadow rotation shows the plan it would have carried out.

use maud::{Markup, html};

use super::overview::{Class, relative};
use crate::report::status::{next_action, when};
use crate::store::rotations::{AuditRow, RotationRow};
use crate::store::threads::ThreadRow;

pub(super) fn story(
    row: &RotationRow,
    audit: &[AuditRow],
    thread: Option<&ThreadRow>,
    now_ms: i64,
) -> Markup {
    let class = Class::of(row, now_ms);
    html! {
        p { a href="/" { "← all rotations" } }
        h1.trunc-wrap { (row.api_user) " · " (row.application) " · " (row.environment) }
        p class={ "state c-" (class.key()) } {
            span aria-hidden="true" { (class.mark()) } " " strong { (row.phase) } " — next: " (next_action(row))
            @if row.mode == "shadow" { " (shadow: only planned, nothing changed)" }
        }
        dl.facts {
            dt { "rotation" } dd { code { (row.id) } }
            dt { "decision" } dd { (row.action) @if let Some(rule) = &row.rule_name { " (rule " code { (rule) } ")" } }
            dt { "started by" } dd { (row.trigger) }
            @if let Some(asked) = asked(row) { dt { "asked" } dd { (asked) } }
            dt { "decided by" } dd { (row.decided_by.as_deref().unwrap_or("-")) @if let Some(choice) = choice(row) { " — " (choice) } }
            dt { "attempts" } dd { (row.attempts) }
            dt { "Secret" } dd { (row.secret_name.as_deref().unwrap_or("-")) }
            dt { "old token" } dd { (row.old_token_id.as_deref().unwrap_or("-")) " …" (row.old_token_last8.as_deref().unwrap_or("")) " expires " (when(row.old_token_expires_at_ms)) }
            dt { "new token" } dd { (row.new_token_fingerprint.as_deref().unwrap_or("-")) " …" (row.new_token_last4.as_deref().unwrap_or("")) " expires " (when(row.new_token_expires_at_ms)) }
            dt { "outcome" } dd { (row.outcome.as_deref().or(row.last_error.as_deref()).unwrap_or("-")) }
            dt { "Slack" } dd { (slack(thread)) }
        }
        @if let Some(plan) = &row.plan {
            h2 { "Plan" }
            pre.plan { (pretty(plan)) }
        }
        h2 { "Phases" }
        ol.story {
            @for (i, a) in audit.iter().enumerate() {
                @let until = audit.get(i + 1).map_or(row.finished_at_ms.unwrap_or(now_ms), |n| n.at_ms);
                @let retry = a.from_phase.as_deref() == Some(a.to_phase.as_str());
                li data-phase=(a.to_phase) class=[retry.then_some("retry")] {
                    strong.phase { (a.to_phase) }
                    @if retry { " " em { "retry" } }
                    " " time datetime=(when(Some(a.at_ms))) { (when(Some(a.at_ms))) }
                    @if until > a.at_ms { " · " span.dur { (duration(until - a.at_ms)) } }
                    br;
                    span.why { (a.reason) } " " span.who { "(" (a.trigger) ")" }
                }
            }
        }
        @if let Some(at) = row.next_attempt_at_ms { p { "Next step " (relative(at, now_ms)) "." } }
    }
}

/// The thread's permalink once Slack has answered with its channel id and ts.
fn slack(thread: Option<&ThreadRow>) -> Markup {
    match thread {
        Some(ThreadRow {
            channel_id: Some(channel),
            ts: Some(ts),
            ..
        }) => {
            let link = format!(
                "https://slack.com/archives/{channel}/p{}",
                ts.replace('.', "")
            );
            html! { a href=(link) { "thread in " (channel) } }
        }
        Some(t) => html! { "thread in " (t.channel) " (not posted yet)" },
        None => html! { "posted through the incoming webhook (no permalink)" },
    }
}

/// A shadow plan as indented JSON; kept as given if it is not JSON.
fn pretty(plan: &str) -> String {
    serde_json::from_str::<serde_json::Value>(plan)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| plan.to_owned())
}

fn duration(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms} ms"),
        1..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..172_800 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Whom a rule asked in Slack (its approvers, or an `ask` rule's owners), if it asked.
fn asked(row: &RotationRow) -> Option<String> {
    let detail: serde_json::Value = serde_json::from_str(row.action_detail.as_deref()?).ok()?;
    let approvers: Vec<&str> = detail["approvers"]
        .as_array()?
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let how = if detail["ask"].is_object() {
        "to choose: rotate and hand over, revoke as no longer used, or let it expire"
    } else {
        "to approve or reject"
    };
    Some(format!("{} {how}", approvers.join(", ")))
}

/// What an `ask` rule's owner chose, from what the decision journaled.
fn choice(row: &RotationRow) -> Option<&'static str> {
    let detail: serde_json::Value = serde_json::from_str(row.action_detail.as_deref()?).ok()?;
    if detail["create_access"] == serde_json::Value::Bool(true) {
        Some("issue a new one (its only token had expired)")
    } else if detail["dead"].is_array() && matches!(row.phase.as_str(), "retiring" | "retired") {
        Some("revoke the expired token")
    } else if detail["handover_to"].is_string() {
        Some("rotate and hand over")
    } else if detail["silence_until_expiry"] == serde_json::Value::Bool(true) {
        Some("let it expire")
    } else if matches!(row.phase.as_str(), "retiring" | "retired") {
        Some("revoke: no longer used")
    } else {
        None
    }
}
