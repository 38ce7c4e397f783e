//! `POST /v1/slack/interactions`: Approve and Reject clicks from Slack, and an `ask` rule's
//! choices.
//!
//! Slack signs each request (`X-Slack-Signature`, v0); anything unsigned, tampered or older
//! than five minutes is 401 and changes nothing. The clicking user must be one of the rule's
//! approvers (a user id, or a member of a user group id). Slack wants an answer within 3 s: the
//! decision is one journal transaction, the channel hears about it from the notifier
//! afterwards, and the clicker alone is told what came of their click (`slack_answer`).

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
use crate::engine::answer;
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
    let (outcome, text) = match decide(&state, slack, &click).await {
        Ok((outcome, text)) => (outcome, text),
        Err(e) => {
            // The log has why; the clicker is told only that nothing was decided.
            tracing::error!(error = %e, "Slack decision could not be journaled");
            (
                "journal_unavailable",
                crate::engine::answer::journal_unavailable(),
            )
        }
    };
    tracing::info!(rotation_id = ?click.rotation_id, user = ?click.user_id, outcome, "Slack click");
    if outcome != "journal_unavailable" && outcome != "try_again" {
        for wake in &slack.wake {
            wake.notify_one();
        }
    }
    // Slack shows the clicker nothing of this acknowledgement's body (slackapi/bolt-js#132):
    // the answer is journaled and sent to them alone, and Slack hears a plain 200 at once.
    super::slack_answer::answer_click(&state, slack, &click, outcome, text).await;
    StatusCode::OK.into_response()
}

/// What came of a click (a bounded label) and what its clicker is told.
async fn decide(
    state: &AppState,
    slack: &Interactions,
    click: &Click,
) -> Result<(&'static str, String), crate::store::StoreError> {
    let pool = state.journal.pool();
    let now = slack.clock.now();
    let who = Decider::slack(&click.user_id, &click.user_name);
    let Some(row) = rotations::rotation(pool, &click.rotation_id).await? else {
        return Ok(("unknown", answer::unknown()));
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
        May::NotDecide => return Ok(("refused", answer::refused(&row))),
        // Nothing happened; the button stays, and the clicker is asked to press it again.
        May::Unknown => return Ok(("try_again", answer::try_again())),
    }
    let decided = approval::decide(pool, &row.id, click.verdict, &who, now).await?;
    let label = match &decided {
        Decided::Done(Verdict::Approve) => "approved",
        Decided::Done(Verdict::Reject) => "rejected",
        Decided::Done(Verdict::HandOver) => "chose_hand_over",
        Decided::Done(Verdict::RevokeUnused) => "chose_revoke_unused",
        Decided::Done(Verdict::LetExpire) => "chose_let_expire",
        Decided::Done(Verdict::RevokeDead) => "chose_revoke_dead",
        Decided::Done(Verdict::IssueNew) => "chose_issue_new",
        Decided::NotOffered(_) => "not_offered",
        Decided::Closed { .. } => "closed",
        Decided::Unknown => "unknown",
    };
    Ok((label, answer::decided(Some(&row), click.verdict, &decided)))
}

/// An Approve or Reject click, from a `block_actions` payload.
#[derive(Debug)]
pub(super) struct Click {
    verdict: Verdict,
    /// The button's `action_id`, as journaled.
    pub(super) action: String,
    pub(super) rotation_id: String,
    pub(super) user_id: String,
    pub(super) user_name: String,
    /// Where Slack takes answers to this click (an ephemeral message to the clicker).
    pub(super) response_url: Option<String>,
    /// The conversation the button was in, for `chat.postEphemeral`.
    pub(super) channel: Option<String>,
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
        let optional = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        Ok(Some(Click {
            verdict,
            action: action["action_id"].as_str().unwrap_or_default().to_owned(),
            response_url: optional(&payload["response_url"]),
            channel: optional(&payload["channel"]["id"]),
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
