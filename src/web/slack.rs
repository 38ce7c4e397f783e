//! `POST /v1/slack/interactions`: Approve and Reject clicks from Slack, and an `ask` rule's
//! choices.
//!
//! Slack signs each request (`X-Slack-Signature`, v0); anything unsigned, tampered or older
//! than five minutes is 401 and changes nothing. The clicking user must be one of the rule's
//! approvers (a user id, or a member of a user group id). Slack wants an answer within 3 s: the
//! decision is one journal transaction, and Slack hears about it from the notifier afterwards.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::AppState;
use super::approvers::{GroupCache, May, may_decide};
use crate::adapters::slack::{SlackApi, signature};
use crate::clock::Clock;
use crate::engine::approval::{self, Decided, Decider, Verdict};
use crate::engine::message::{
    APPROVE, HAND_OVER, ISSUE_NEW, LET_EXPIRE, REJECT, REVOKE_DEAD, REVOKE_UNUSED,
};
use crate::store::rotations;

/// Largest interaction body accepted; a block_actions payload is a few KiB.
pub const MAX_INTERACTION_BYTES: usize = 64 * 1024;

/// What the interactions endpoint needs; absent without a signing secret (the route is 404).
pub struct Interactions {
    pub signing_secret: SecretString,
    /// For approvers given as user groups.
    pub api: Option<SlackApi>,
    /// The journal's clock (signatures are checked against the real time).
    pub clock: Arc<dyn Clock>,
    /// Woken after a decision: the engine (to start) and the notifier (to say so).
    pub wake: Vec<Arc<Notify>>,
    /// User groups' members, kept briefly.
    pub groups: GroupCache,
}

fn answer(status: StatusCode, error: &str, detail: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": error, "detail": detail.into()})),
    )
        .into_response()
}

pub async fn interaction(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(slack) = &state.slack else {
        return answer(
            StatusCode::NOT_FOUND,
            "not_configured",
            "Slack interactions are off: set TOKEN_ROTATOR_SLACK_SIGNING_SECRET",
        );
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = signature::verify(
        &slack.signing_secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        jiff::Timestamp::now().as_second(),
    ) {
        tracing::warn!(reason = %e, "Slack interaction refused");
        return answer(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string());
    }
    let click = match Click::parse(&body) {
        Ok(Some(click)) => click,
        // Signed, but not a click of ours (another interaction type): nothing to do.
        Ok(None) => return StatusCode::OK.into_response(),
        Err(detail) => return answer(StatusCode::BAD_REQUEST, "bad_request", detail),
    };
    match decide(&state, slack, &click).await {
        Ok(Outcome::TryAgain) => {
            tracing::warn!(rotation_id = ?click.rotation_id, user = ?click.user_id, "Slack decision not taken: the approvers' user groups could not be read");
            // Nothing journaled; Slack shows the clicker this answer, and the button stays.
            Json(json!({
                "response_type": "ephemeral",
                "replace_original": false,
                "text": "Could not check the approvers' Slack user groups just now: nothing was decided. Please try again.",
            }))
            .into_response()
        }
        Ok(outcome) => {
            tracing::info!(rotation_id = ?click.rotation_id, user = ?click.user_id, outcome = outcome.describe(), "Slack decision");
            for wake in &slack.wake {
                wake.notify_one();
            }
            StatusCode::OK.into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "Slack decision could not be journaled");
            // The log has why; Slack shows the clicker only that it failed.
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                super::error::JOURNAL_UNAVAILABLE,
            )
        }
    }
}

/// What happened to a click.
enum Outcome {
    Decided(Decided),
    NotAllowed,
    /// The approvers could not be checked: nothing happened, the clicker is asked to retry.
    TryAgain,
}

impl Outcome {
    fn describe(&self) -> &'static str {
        match self {
            Outcome::Decided(Decided::Done(Verdict::Approve)) => "approved",
            Outcome::Decided(Decided::Done(Verdict::Reject)) => "rejected",
            Outcome::Decided(Decided::Done(Verdict::HandOver)) => "chose hand-over",
            Outcome::Decided(Decided::Done(Verdict::RevokeUnused)) => "chose revoke",
            Outcome::Decided(Decided::Done(Verdict::LetExpire)) => "chose let expire",
            Outcome::Decided(Decided::Done(Verdict::RevokeDead)) => "chose revoke the dead token",
            Outcome::Decided(Decided::Done(Verdict::IssueNew)) => "approved a new token",
            Outcome::Decided(Decided::NotOffered(_)) => "not offered; nothing changed",
            Outcome::Decided(Decided::Closed { .. }) => "already closed; nothing changed",
            Outcome::Decided(Decided::Unknown) => "no such request",
            Outcome::NotAllowed => "not an approver; refused",
            Outcome::TryAgain => "approvers unknown; try again",
        }
    }
}

async fn decide(
    state: &AppState,
    slack: &Interactions,
    click: &Click,
) -> Result<Outcome, crate::store::StoreError> {
    let pool = state.journal.pool();
    let now = slack.clock.now();
    let who = Decider::slack(&click.user_id, &click.user_name);
    let Some(row) = rotations::rotation(pool, &click.rotation_id).await? else {
        return Ok(Outcome::Decided(Decided::Unknown));
    };
    let approvers = approval::approvers(&row);
    match may_decide(
        slack.api.as_ref(),
        &slack.groups,
        &approvers,
        &click.user_id,
    )
    .await
    {
        May::Decide => {}
        May::NotDecide => {
            approval::refuse(pool, &row, &who, now).await?;
            return Ok(Outcome::NotAllowed);
        }
        May::Unknown => return Ok(Outcome::TryAgain),
    }
    approval::decide(pool, &row.id, click.verdict, &who, now)
        .await
        .map(Outcome::Decided)
}

/// An Approve or Reject click, from a `block_actions` payload.
#[derive(Debug)]
struct Click {
    verdict: Verdict,
    rotation_id: String,
    user_id: String,
    user_name: String,
}

impl Click {
    /// `Ok(None)` for a well-formed payload that is not one of our buttons.
    fn parse(body: &[u8]) -> Result<Option<Click>, String> {
        let payload = form_urlencoded::parse(body)
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v.into_owned())
            .ok_or("the body has no `payload` form field")?;
        let payload: Value =
            serde_json::from_str(&payload).map_err(|e| format!("`payload` is not JSON: {e}"))?;
        if payload["type"] != "block_actions" {
            return Ok(None);
        }
        let Some(action) = payload["actions"].as_array().and_then(|a| a.first()) else {
            return Err("block_actions without actions".into());
        };
        let verdict = match action["action_id"].as_str() {
            Some(APPROVE) => Verdict::Approve,
            Some(REJECT) => Verdict::Reject,
            Some(HAND_OVER) => Verdict::HandOver,
            Some(REVOKE_UNUSED) => Verdict::RevokeUnused,
            Some(LET_EXPIRE) => Verdict::LetExpire,
            Some(REVOKE_DEAD) => Verdict::RevokeDead,
            Some(ISSUE_NEW) => Verdict::IssueNew,
            _ => return Ok(None),
        };
        let field = |v: &Value, what: &str| {
            v.as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("block_actions without {what}"))
        };
        let user = &payload["user"];
        Ok(Some(Click {
            verdict,
            rotation_id: field(&action["value"], "the button's value")?,
            user_id: field(&user["id"], "user.id")?,
            user_name: user["username"]
                .as_str()
                .or(user["name"].as_str())
                .unwrap_or("?")
                .to_owned(),
        }))
    }
}
