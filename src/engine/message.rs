//! Slack messages for outcomes: `text` (the notification fallback) plus Block Kit `blocks`.
//! They name tokens only by their last characters; label values, reasons and anything else
//! not ours go through [`escape`], so they cannot format, link or add a line.

use serde_json::{Value, json};

use super::Phase;
use crate::store::rotations::RotationRow;

pub use super::mrkdwn::escape;
use super::mrkdwn::{link, plain};

/// "`api_user` for *application* in *environment*", leaving out what the alert did not say
/// (never an empty `**`).
pub fn target(row: &RotationRow) -> String {
    let mut who = format!("`{}`", escape(&row.api_user));
    if !row.application.trim().is_empty() {
        who.push_str(&format!(" for *{}*", escape(&row.application)));
    }
    if !row.environment.trim().is_empty() {
        who.push_str(&format!(" in *{}*", escape(&row.environment)));
    }
    who
}

/// What a rotation's providers call things: its messages use these words, never their own.
#[derive(Debug, Clone, Default)]
pub struct Words {
    /// The issuer, by its own `Issuer::name`.
    pub issuer: Option<&'static str>,
    /// Where the new token is, as its distributor says ("Secret `x`", "file `/p`").
    pub placed: Option<String>,
    /// The issuer whose rotation revoked the old token at once, if it is one.
    pub revoked_at_mint: Option<&'static str>,
}

impl Words {
    pub fn of(up: &crate::adapters::Upstreams, row: &RotationRow) -> Self {
        let placed = row.secret_name.as_ref().map(|name| {
            up.distributor
                .describe(&crate::adapters::Placement { name: name.clone() })
        });
        Words {
            issuer: Some(up.issuer.name()),
            placed,
            revoked_at_mint: up.issuer.revokes_on_mint().then(|| up.issuer.name()),
        }
    }
}

fn duration(row: &RotationRow, now_ms: i64) -> String {
    let seconds = ((now_ms - row.created_at_ms).max(0) / 1000) as u64;
    humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string()
}

fn date(ms: Option<i64>) -> String {
    ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || "unknown".to_owned(),
            |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        )
}

/// `say(date)` when the date is known, else nothing: never "expires unknown".
fn known(ms: Option<i64>, say: impl FnOnce(String) -> String) -> String {
    match ms.and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()) {
        Some(_) => say(date(ms)),
        None => String::new(),
    }
}

/// Whether the journaled decision has `key` (set, and not `false` or null).
fn flag(row: &RotationRow, key: &str) -> bool {
    serde_json::from_str::<Value>(row.action_detail.as_deref().unwrap_or("{}"))
        .ok()
        .and_then(|d| d.get(key).cloned())
        .is_some_and(|v| !v.is_null() && v != Value::Bool(false))
}

fn detail(row: &RotationRow, key: &str) -> Option<String> {
    let detail: Value = serde_json::from_str(row.action_detail.as_deref()?).ok()?;
    detail.get(key)?.as_str().map(str::to_owned)
}

/// How an alert's row about a token a schedule owns begins its reason.
pub const MANAGED_BY_SCHEDULE: &str = "managed by schedule";

/// The message for a rotation that reached `phase`; `why` says what happened in this step.
/// Only an outcome that asks something of a person has a second line (what to do, and the
/// rotation id to do it with); the thread already says which target and delivery it is.
pub fn outcome(row: &RotationRow, phase: Phase, why: &str, now_ms: i64, words: &Words) -> Value {
    let who = target(row);
    let rule = row
        .rule_name
        .as_deref()
        .map_or_else(String::new, |r| format!(" (rule `{}`)", escape(r)));
    let new_token = row.new_token_last4.as_deref().unwrap_or("?");
    let (headline, todo) = match phase {
        Phase::Done => {
            let from = words
                .issuer
                .map_or_else(String::new, |issuer| format!(" from {issuer}"));
            let placed = words
                .placed
                .as_ref()
                .map_or_else(String::new, |p| format!(" is in {p},"));
            (
                format!(
                    ":white_check_mark: Rotated the token of {who} in {}. The new token …{new_token}{from} (expires {}){placed} passed verification; {}.",
                    duration(row, now_ms),
                    date(row.new_token_expires_at_ms),
                    escape(why),
                ),
                None,
            )
        }
        Phase::Manual => {
            let owner = detail(row, "owner").unwrap_or_default();
            let runbook = detail(row, "runbook_url").unwrap_or_default();
            let note = detail(row, "note").map_or_else(String::new, |n| format!(" {}", escape(&n)));
            (
                format!(":raising_hand: The token of {who} expires soon and needs a person{rule}."),
                Some(format!(
                    "{} please rotate it by hand: {}.{note}",
                    escape(&owner),
                    link(&runbook)
                )),
            )
        }
        // An alert about a token a schedule rotates: why says which schedule.
        Phase::Ignored if why.starts_with(MANAGED_BY_SCHEDULE) => (
            format!(
                ":zzz: Not rotating the token of {who}: it is {}.",
                escape(why)
            ),
            None,
        ),
        Phase::Ignored => (
            format!(
                ":zzz: Not rotating the token of {who}: it rotates by itself{rule}. If the alert keeps firing, it does not."
            ),
            None,
        ),
        Phase::Silenced if flag(row, "silence_until_expiry") => (
            format!(
                ":mute: Letting the token of {who} expire, as {} chose; {}.",
                escape(row.decided_by.as_deref().unwrap_or("its owner")),
                escape(why)
            ),
            None,
        ),
        Phase::Silenced => (
            format!(
                ":mute: Not rotating the token of {who}: this environment's alerts are noise{rule}; {}.",
                escape(why)
            ),
            None,
        ),
        Phase::Unroutable => (
            format!(":warning: An alert could not be acted on: {}.", escape(why)),
            Some(
                "Fix the alert rule so that it carries environment, api_user and application."
                    .to_owned(),
            ),
        ),
        Phase::Cancelled => (
            format!(
                ":heavy_minus_sign: Cancelled the rotation of {who}: {}.",
                escape(why)
            ),
            None,
        ),
        Phase::Rejected => (
            format!(
                ":no_entry_sign: Not rotating the token of {who}{rule}: {}.",
                escape(why)
            ),
            Some(format!(
                "Rotate it by hand before it expires{} if it is still in use.",
                known(row.old_token_expires_at_ms, |d| format!(" ({d})"))
            )),
        ),
        Phase::Retired if flag(row, "dead") => (
            format!(
                ":wastebasket: Revoked the expired token of {who}; its alert resolves: {}.",
                escape(why)
            ),
            None,
        ),
        Phase::Retired => (
            format!(
                ":wastebasket: Revoked the token of {who} as no longer used: {}.",
                escape(why)
            ),
            None,
        ),
        Phase::RolledBack => (
            format!(
                ":leftwards_arrow_with_hook: Rolled back the rotation of {who} after {}: {}.",
                duration(row, now_ms),
                escape(why),
            ),
            Some(format!(
                "Find out why the new token did not work, then rotate by hand or with `token-rotator rotate`.{}",
                known(row.old_token_expires_at_ms, |d| format!(
                    " The old token expires {d}."
                ))
            )),
        ),
        _ => {
            let todo = match words.revoked_at_mint {
                Some(issuer) if row.new_token_id.is_some() => format!(
                    "{issuer} revoked the old token when it rotated: make sure every consumer has the new token …{new_token}, or rotate again by hand."
                ),
                _ => format!(
                    "Follow the runbook by hand.{}",
                    known(row.old_token_expires_at_ms, |d| format!(
                        " The old token expires {d}."
                    ))
                ),
            };
            (
                format!(
                    ":x: Rotating the token of {who} failed in phase `{}`: {}.",
                    row.phase,
                    escape(why)
                ),
                Some(todo),
            )
        }
    };
    let mut text = headline.clone();
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": headline}})];
    if let Some(todo) = todo {
        text = format!("{text} {todo}");
        blocks.push(
            json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
            "{} · rotation `{}`", todo, row.id)}]}),
        );
    }
    json!({ "text": text, "blocks": blocks })
}

/// Most targets one shadow message lists; Slack allows 50 blocks and the rest are summarised.
const MAX_PLANS_LISTED: usize = 40;

/// One message for the shadow plans of one pass, each target's steps listed.
pub fn shadow_batch(plans: &[(RotationRow, String)]) -> Value {
    let header = format!(
        ":ghost: *shadow — nothing was changed.* token-rotator planned {} target(s):",
        plans.len()
    );
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": header}})];
    for (row, summary) in plans.iter().take(MAX_PLANS_LISTED) {
        let text: String = format!("{}: {}", target(row), escape(summary))
            .chars()
            .take(2900)
            .collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    if plans.len() > MAX_PLANS_LISTED {
        let more = format!(
            "…and {} more: see `token-rotator status` or the status page.",
            plans.len() - MAX_PLANS_LISTED
        );
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]}));
    }
    let targets: Vec<String> = plans.iter().map(|(row, _)| target(row)).collect();
    json!({
        "text": format!("{header} {}. Nothing was changed; switch the environment to mode = \"active\" to let it act.", targets.join(", ")),
        "blocks": blocks,
    })
}

/// `action_id`s of the approval buttons; their `value` is the rotation id.
pub const APPROVE: &str = "approve";
pub const REJECT: &str = "reject";
/// The choices of an `ask` rule.
pub const HAND_OVER: &str = "hand_over";
pub const REVOKE_UNUSED: &str = "revoke_unused";
pub const LET_EXPIRE: &str = "let_expire";
/// The choices about a dead pair (its only tokens expired, never revoked).
pub const REVOKE_DEAD: &str = "revoke_dead";
pub const ISSUE_NEW: &str = "issue_new";

/// The Approve/Reject request of a manual rule with `approval = true`.
pub fn approval_request(row: &RotationRow, until_ms: i64) -> Value {
    let who = target(row);
    let rule = row.rule_name.as_deref().map_or_else(String::new, |r| {
        format!(" Rule `{}` asks first.", escape(r))
    });
    let approvers = serde_json::from_str::<Value>(row.action_detail.as_deref().unwrap_or("{}"))
        .ok()
        .and_then(|d| {
            d["approvers"].as_array().map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(mention)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
        })
        .unwrap_or_default();
    let detail: Value =
        serde_json::from_str(row.action_detail.as_deref().unwrap_or("{}")).unwrap_or_default();
    if let Some(dead) = detail["dead"].as_array() {
        return dead_request(row, until_ms, dead, &approvers);
    }
    if let Some(ask) = super::row::ask_of(row) {
        return ask_request(row, until_ms, &ask, &approvers);
    }
    let headline = format!(
        ":raised_hand: The token of {who} expires soon. Rotate it now?{rule} Approve mints a new token, puts it in place, verifies it and revokes the old one; Reject leaves it to a person."
    );
    let context = format!(
        "May decide: {approvers} · open until {} · rotation `{}`",
        date(Some(until_ms)),
        row.id
    );
    json!({
        "text": format!("The token of {who} expires soon: approve its rotation?"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
            {"type": "actions", "block_id": "decision", "elements": [
                {"type": "button", "action_id": APPROVE, "style": "primary", "value": row.id,
                 "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": REJECT, "style": "danger", "value": row.id,
                 "text": {"type": "plain_text", "text": "Reject"}},
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    })
}

/// A dead pair's question: its only tokens expired and were never revoked, so its alert fires
/// until one is; revoking them ends that, issuing a new one creates access again.
fn dead_request(row: &RotationRow, until_ms: i64, dead: &[Value], owners: &str) -> Value {
    let who = target(row);
    let tokens: Vec<String> = dead
        .iter()
        .map(|t| {
            format!(
                "`{}` …{} (expired {})",
                escape(t["id"].as_str().unwrap_or("?")),
                escape(t["last8"].as_str().unwrap_or("")),
                date(t["expired_at_ms"].as_i64())
            )
        })
        .collect();
    let headline = format!(
        ":skull: {who} has no live token: only {}, never revoked, so its alert fires until it is. Nobody can be using it.\n\
         • *Revoke the expired token*: the alert resolves.\n\
         • *Issue a new one*: creates access again (a new token placed as a rotation would place it).",
        tokens.join(", ")
    );
    let context = format!(
        "May choose: {owners} · open until {} · rotation `{}`",
        date(Some(until_ms)),
        row.id
    );
    json!({
        "text": format!("{who} has only an expired token: revoke it, or issue a new one?"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
            {"type": "actions", "block_id": "decision", "elements": [
                {"type": "button", "action_id": REVOKE_DEAD, "style": "primary", "value": row.id,
                 "text": {"type": "plain_text", "text": "Revoke the expired token"}},
                {"type": "button", "action_id": ISSUE_NEW, "value": row.id,
                 "text": {"type": "plain_text", "text": "Issue a new one"}},
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    })
}

/// An `ask` rule's question: nothing is minted before one of three choices.
fn ask_request(row: &RotationRow, until_ms: i64, ask: &crate::policy::Ask, owners: &str) -> Value {
    let who = target(row);
    let window = humantime::format_duration(ask.handover_window);
    let old = match ask.old_token {
        crate::policy::OldToken::Revoke => "revoked once they confirm the consumer has switched",
        crate::policy::OldToken::Expire => "left to expire",
    };
    let headline = format!(
        ":raised_hand: The token of {who} expires soon, and it is not one token-rotator may rotate by itself: is it still used?\n\
         • *Rotate and hand over*: a new token for you to collect through a one-time link in a direct message (open {window}); the old one is {old}.\n\
         • *Revoke: no longer used*: every live token of this pair is revoked; the alert resolves.\n\
         • *Let it expire*: the alert is silenced until the token expires."
    );
    let context = format!(
        "May choose: {owners} · open until {} · rotation `{}`",
        date(Some(until_ms)),
        row.id
    );
    let button = |id: &str, text: &str| {
        json!({"type": "button", "action_id": id, "value": row.id,
               "text": {"type": "plain_text", "text": text}})
    };
    let mut revoke = button(REVOKE_UNUSED, "Revoke: no longer used");
    revoke["style"] = json!("danger");
    // Slack asks the clicker to confirm before it sends the click (Block Kit's confirm object).
    revoke["confirm"] = json!({
        "title": {"type": "plain_text", "text": "Revoke every live token?"},
        "text": {"type": "plain_text", "text": format!(
            "Every live token of {} for {} will be revoked. Anything still using one stops working.",
            plain(&row.api_user), plain(&row.application))},
        "confirm": {"type": "plain_text", "text": "Revoke"},
        "deny": {"type": "plain_text", "text": "Cancel"},
        "style": "danger",
    });
    let mut hand_over = button(HAND_OVER, "Rotate and hand over");
    hand_over["style"] = json!("primary");
    json!({
        "text": format!("The token of {who} expires soon: rotate and hand over, revoke, or let it expire?"),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": headline}},
            {"type": "actions", "block_id": "decision", "elements": [
                hand_over, revoke, button(LET_EXPIRE, "Let it expire"),
            ]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    })
}

/// The request once decided (or expired, or cancelled), without buttons. `what` is our own
/// words (with a mention of who decided), so it is not escaped.
pub fn approval_closed(row: &RotationRow, what: &str) -> Value {
    let text = format!(
        ":ballot_box_with_check: Rotation of {}: {what}.",
        target(row)
    );
    json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!("rotation `{}`", row.id)}]},
        ],
    })
}

/// A remark in a rotation's thread.
pub fn note(text: &str) -> Value {
    json!({
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    })
}

/// `<@U…>` for a user, `<!subteam^S…>` for a user group: Slack renders both as names.
pub fn mention(id: &str) -> String {
    if id.starts_with('S') {
        format!("<!subteam^{id}>")
    } else {
        format!("<@{id}>")
    }
}
