//! Approve / Reject for manual rules with `approval = true`. The rotation waits in
//! `awaiting_approval` until someone decides (in Slack or with `token-rotator approve`) or the
//! request expires; a decision is one guarded transition, so a second click changes nothing.

use jiff::Timestamp;

use super::{Engine, Phase, Step, message};
use crate::store::outbox::{self, Notice, NoticeKind};
use crate::store::rotations::{self, Field, RotationRow, Transition};
use crate::store::{Db, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Approve,
    Reject,
}

impl Verdict {
    fn past(self) -> &'static str {
        match self {
            Verdict::Approve => "approved",
            Verdict::Reject => "rejected",
        }
    }
}

/// Who decided: how Slack shows them (`<@U…>`) and how the audit names them (`slack:U… (name)`).
#[derive(Debug, Clone)]
pub struct Decider {
    pub shown: String,
    pub audit: String,
}

impl Decider {
    pub fn slack(user_id: &str, name: &str) -> Self {
        Self {
            shown: message::mention(user_id),
            audit: format!("slack:{user_id} ({name})"),
        }
    }

    pub fn cli(name: &str) -> Self {
        Self {
            shown: format!("{} (command line)", message::escape(name)),
            audit: format!("cli:{name}"),
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
        let phase = if row.phase == Phase::AwaitingApproval.as_str() {
            "expired".to_owned()
        } else {
            row.phase.clone()
        };
        let by = row.decided_by.clone();
        let text = format!(
            "{} pressed {} on the request for `{}` / *{}*, but it is closed ({}{}): nothing changed.",
            who.shown,
            if verdict == Verdict::Approve {
                "Approve"
            } else {
                "Reject"
            },
            message::escape(&row.api_user),
            message::escape(&row.application),
            phase,
            by.as_deref().map_or_else(String::new, |b| format!(
                ", decided by {}",
                message::escape(b)
            )),
        );
        let notice = Notice::new(NoticeKind::Note, message::note(&text));
        outbox::enqueue_for(pool, Some(&row.id), &notice, now).await?;
        return Ok(Decided::Closed { phase, by });
    }
    let what = format!("{} by {} at {}", verdict.past(), who.shown, when(now));
    let (to, next, closed) = match verdict {
        Verdict::Approve => (Phase::Planned, Some(now), format!("{what}; rotating now")),
        Verdict::Reject => (
            Phase::Rejected,
            None,
            format!("{what}; nothing was changed"),
        ),
    };
    let mut fields = vec![Field::Text("decided_by", Some(who.audit.clone()))];
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

/// Says in the thread that `who` may not decide on `row`; nothing else changes.
pub async fn refuse(
    pool: &Db,
    row: &RotationRow,
    who: &Decider,
    now: Timestamp,
) -> Result<(), StoreError> {
    let allowed: Vec<String> = approvers(row).iter().map(|a| message::mention(a)).collect();
    let text = format!(
        ":no_entry: {} may not decide on the rotation of `{}` / *{}*; rule `{}` allows {}. Nothing changed.",
        who.shown,
        message::escape(&row.api_user),
        message::escape(&row.application),
        message::escape(row.rule_name.as_deref().unwrap_or("?")),
        allowed.join(", ")
    );
    let notice = Notice::new(NoticeKind::Note, message::note(&text));
    outbox::enqueue_for(pool, Some(&row.id), &notice, now).await
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
