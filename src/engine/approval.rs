//! Approve / Reject for manual rules with `approval = true`, and the owners' choice for rules with
//! `ask = true` (rotate and hand over, revoke as no longer used, let it expire). The rotation
//! waits in `awaiting_approval` until someone decides (in Slack or with `token-rotator approve`)
//! or the request expires; a decision is one guarded transition, so a second click changes
//! nothing. Nothing is minted before a decision.

use jiff::Timestamp;

use super::{Engine, Phase, Step, message};
use crate::store::outbox::{Notice, NoticeKind};
use crate::store::rotations::{self, Field, RotationRow, Transition};
use crate::store::{Db, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
    /// Mint a new token and hand it to the chooser through a one-time link.
    HandOver,
    /// Revoke the pair's live tokens: nobody uses them any more.
    RevokeUnused,
    /// Silence the alert in Alertmanager until the token expires.
    LetExpire,
    /// A dead pair: revoke its expired tokens (its alert then resolves).
    RevokeDead,
    /// A dead pair: issue a new token, creating access again.
    IssueNew,
}

impl Verdict {
    pub fn past(self) -> &'static str {
        match self {
            Verdict::Approve => "approved",
            Verdict::Reject => "rejected",
            Verdict::HandOver => "chose to rotate and hand over",
            Verdict::RevokeUnused => "chose to revoke it as no longer used",
            Verdict::LetExpire => "chose to let it expire",
            Verdict::RevokeDead => "chose to revoke the expired token",
            Verdict::IssueNew => "approved issuing a new token",
        }
    }

    /// The button as Slack shows it.
    pub fn button(self) -> &'static str {
        match self {
            Verdict::Approve => "Approve",
            Verdict::Reject => "Reject",
            Verdict::HandOver => "Rotate and hand over",
            Verdict::RevokeUnused => "Revoke: no longer used",
            Verdict::LetExpire => "Let it expire",
            Verdict::RevokeDead => "Revoke the expired token",
            Verdict::IssueNew => "Issue a new one",
        }
    }

    /// The answers a request offers: a dead pair's, an `ask` rule's, or Approve and Reject.
    fn offered(row: &RotationRow) -> &'static [Verdict] {
        let detail: serde_json::Value = row
            .action_detail
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok())
            .unwrap_or_default();
        if detail["dead"].is_array() {
            &[Verdict::RevokeDead, Verdict::IssueNew]
        } else if detail["ask"].is_object() {
            &[Verdict::HandOver, Verdict::RevokeUnused, Verdict::LetExpire]
        } else {
            &[Verdict::Approve, Verdict::Reject]
        }
    }
}

/// Who decided: how Slack shows them (`<@U…>`) and how the audit names them (`slack:U… (name)`).
#[derive(Debug, Clone)]
pub struct Decider {
    pub shown: String,
    pub audit: String,
    /// Their Slack member id: where a handed-over token's link goes. `None` on the command line.
    pub slack_id: Option<String>,
}

impl Decider {
    pub fn slack(user_id: &str, name: &str) -> Self {
        Self {
            shown: message::mention(user_id),
            audit: format!("slack:{user_id} ({name})"),
            slack_id: Some(user_id.to_owned()),
        }
    }

    pub fn cli(name: &str) -> Self {
        Self {
            shown: format!("{} (command line)", message::escape(name)),
            audit: format!("cli:{name}"),
            slack_id: None,
        }
    }
}

/// What a decision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// Journaled: the rotation starts (Approve) or ends `rejected`.
    Done(Verdict),
    /// Someone already decided, or the request expired or was cancelled: nothing changed.
    Closed { phase: String, by: Option<String> },
    /// No approval request has this id.
    Unknown,
    /// This request does not offer that (Approve on an `ask` rule, a choice on an `approval`
    /// one, or a hand-over asked for from the command line): nothing changed.
    NotOffered(String),
}

/// The journaled decision with `key` set to `value`: what the engine reads on from here.
fn detail_with(row: &RotationRow, key: &str, value: serde_json::Value) -> String {
    let mut detail: serde_json::Value = row
        .action_detail
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_else(|| serde_json::json!({}));
    detail[key] = value;
    detail.to_string()
}

/// The ids allowed to decide on `row` (Slack user ids and user group ids).
pub fn approvers(row: &RotationRow) -> Vec<String> {
    row.action_detail
        .as_deref()
        .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .and_then(|d| {
            d["approvers"].as_array().map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

fn when(now: Timestamp) -> String {
    now.strftime("%Y-%m-%d %H:%M UTC").to_string()
}

/// Records `verdict` by `who` on the request `rotation_id`, if it is still open at `now`.
pub async fn decide(
    pool: &Db,
    rotation_id: &str,
    verdict: Verdict,
    who: &Decider,
    now: Timestamp,
) -> Result<Decided, StoreError> {
    let Some(row) = rotations::rotation(pool, rotation_id).await? else {
        return Ok(Decided::Unknown);
    };
    let open = row.phase == Phase::AwaitingApproval.as_str()
        && row
            .next_attempt_at_ms
            .is_some_and(|until| until > now.as_millisecond());
    if !open {
        // Nobody else needs to hear of a late click: its clicker is told (`answer::decided`).
        let phase = if row.phase == Phase::AwaitingApproval.as_str() {
            "expired".to_owned()
        } else {
            row.phase.clone()
        };
        return Ok(Decided::Closed {
            phase,
            by: row.decided_by.clone(),
        });
    }
    let offered = Verdict::offered(&row);
    if !offered.contains(&verdict) {
        let names: Vec<&str> = offered.iter().map(|v| v.button()).collect();
        return Ok(Decided::NotOffered(format!(
            "this request offers {}",
            names.join(", ")
        )));
    }
    let mut fields = vec![Field::Text("decided_by", Some(who.audit.clone()))];
    let what = format!("{} by {} at {}", verdict.past(), who.shown, when(now));
    let closed = format!("{what}; {}", verdict.follows());
    let (to, next) = match verdict {
        Verdict::Approve => (Phase::Planned, Some(now)),
        Verdict::Reject => (Phase::Rejected, None),
        Verdict::HandOver => {
            let Some(to) = &who.slack_id else {
                return Ok(Decided::NotOffered(
                    "a hand-over sends its link to whoever chose it in Slack: choose it there"
                        .into(),
                ));
            };
            fields.push(Field::Text(
                "action_detail",
                Some(detail_with(&row, "handover_to", serde_json::json!(to))),
            ));
            (Phase::Planned, Some(now))
        }
        Verdict::RevokeUnused => (Phase::Retiring, Some(now)),
        Verdict::RevokeDead => {
            let ids: Vec<serde_json::Value> = serde_json::from_str::<serde_json::Value>(
                row.action_detail.as_deref().unwrap_or("{}"),
            )
            .ok()
            .and_then(|d| d["dead"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|t| t["id"].clone())
            .collect();
            fields.push(Field::Text(
                "action_detail",
                Some(detail_with(&row, "revoke_only", serde_json::json!(ids))),
            ));
            (Phase::Retiring, Some(now))
        }
        Verdict::IssueNew => {
            fields.push(Field::Text(
                "action_detail",
                Some(detail_with(&row, "create_access", serde_json::json!(true))),
            ));
            (Phase::Planned, Some(now))
        }
        Verdict::LetExpire => {
            fields.push(Field::Text(
                "action_detail",
                Some(detail_with(
                    &row,
                    "silence_until_expiry",
                    serde_json::json!(true),
                )),
            ));
            (Phase::Silencing, Some(now))
        }
    };
    if to.is_terminal() {
        fields.push(Field::Text("outcome", Some(closed.clone())));
    }
    let transition = Transition {
        from: Phase::AwaitingApproval.as_str(),
        to: to.as_str(),
        reason: format!("{} by {}", verdict.past(), who.audit),
        trigger: who.audit.clone(),
        next_attempt_at: next,
        fields,
        notify: vec![Notice::new(
            NoticeKind::ApprovalUpdate,
            message::approval_closed(&row, &closed),
        )],
    };
    if rotations::transition(pool, &row.id, &transition, now, None).await? {
        Ok(Decided::Done(verdict))
    } else {
        // Someone else decided between our read and our write.
        let row = rotations::rotation(pool, rotation_id).await?;
        Ok(Decided::Closed {
            phase: row.as_ref().map_or_else(String::new, |r| r.phase.clone()),
            by: row.and_then(|r| r.decided_by),
        })
    }
}

/// awaiting_approval → manual: Slack refused the request with its buttons (`code`), so no click
/// can ever come. Rather than wait out the approval timeout for clicks nobody can make, or show
/// the request as text that looks like a question nobody can answer, it becomes a person's job
/// at once, as an unanswered request would later: the audit, the status page and a message in
/// the channel say why. `Ok(false)`: it was decided or closed meanwhile, and stays as it is.
pub async fn buttons_refused(
    pool: &Db,
    rotation_id: &str,
    code: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let Some(row) = rotations::rotation(pool, rotation_id).await? else {
        return Ok(false);
    };
    let why = format!(
        "the approval request could not be shown with its buttons (Slack refused it: {}), so nobody can approve or reject it in Slack; rotate it by hand",
        message::escape(code)
    );
    let text = format!(":warning: Rotation of {}: {why}.", message::target(&row));
    let transition = Transition {
        from: Phase::AwaitingApproval.as_str(),
        to: Phase::Manual.as_str(),
        reason: why.clone(),
        trigger: "slack".into(),
        next_attempt_at: None,
        fields: vec![Field::Text("outcome", Some(why))],
        notify: vec![Notice::new(NoticeKind::Broadcast, message::note(&text))],
    };
    rotations::transition(pool, &row.id, &transition, now, None).await
}

impl Engine {
    /// awaiting_approval → manual: nobody decided in time, so it is a person's job after all.
    pub(super) fn expire_approval(&self, row: &RotationRow) -> Step {
        let why = format!(
            "nobody approved or rejected within {}; rotate it by hand",
            humantime::format_duration(self.settings.approval_timeout)
        );
        let mut transition = self.transition(
            row,
            Phase::AwaitingApproval,
            Phase::Manual,
            why.clone(),
            "engine",
        );
        transition.notify.push(Notice::new(
            NoticeKind::ApprovalUpdate,
            message::approval_closed(row, &format!("expired: {why}")),
        ));
        Step::Advance(transition)
    }
}
