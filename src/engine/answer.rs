//! What the person who pressed a button is told, and only they: Slack shows nothing for a
//! `block_actions` acknowledgement's body (slackapi/bolt-js#132), so each answer is sent to the
//! clicker alone afterwards. An answer names people and groups by id in code spans and never
//! mentions them (`<@…>`, `<!subteam^…>`): a refused click must not ping every approver.

use super::approval::{Decided, Verdict, approvers};
use super::message::{escape, target};
use crate::store::rotations::RotationRow;

impl Verdict {
    /// What happens next, once chosen.
    pub fn follows(self) -> &'static str {
        match self {
            Verdict::Approve => "rotating now",
            Verdict::Reject => "nothing was changed",
            Verdict::HandOver => "minting a new token for them to collect",
            Verdict::RevokeUnused => "revoking its live tokens",
            Verdict::LetExpire => "silencing its alert until the token expires",
            Verdict::RevokeDead => "revoking it",
            Verdict::IssueNew => "minting it now",
        }
    }
}

/// The answer to a click on `row` (`None`: no request has the button's id) that was decided.
pub fn decided(row: Option<&RotationRow>, verdict: Verdict, decided: &Decided) -> String {
    let Some(row) = row else {
        return unknown();
    };
    let on = target(row);
    match decided {
        Decided::Done(Verdict::HandOver) => format!(
            ":white_check_mark: You chose to rotate {on} and hand the token over: minting it now; its one-time link comes to you in a direct message."
        ),
        Decided::Done(v) => format!(
            ":white_check_mark: You {} the rotation of {on}: {}.",
            v.past(),
            v.follows()
        ),
        Decided::Closed { phase, by } => format!(
            ":information_source: You pressed {} on the request for {on}, but it is closed ({}{}): nothing changed.",
            verdict.button(),
            escape(phase),
            by.as_deref()
                .map_or_else(String::new, |b| format!(", decided by `{}`", escape(b))),
        ),
        Decided::Unknown => unknown(),
        Decided::NotOffered(why) => format!(
            ":information_source: {} is not a choice on the request for {on} ({}): nothing changed.",
            verdict.button(),
            escape(why)
        ),
    }
}

/// A button whose request is gone (pruned after it finished) or was never ours.
pub fn unknown() -> String {
    ":grey_question: This button belongs to a request token-rotator does not have (finished and pruned long ago, or never made here): nothing changed.".into()
}

/// The answer to someone who is not among `row`'s approvers: who is, by id, without a ping.
pub fn refused(row: &RotationRow) -> String {
    let allowed: Vec<String> = approvers(row)
        .iter()
        .map(|a| {
            let kind = if a.starts_with('S') {
                "user group"
            } else {
                "user"
            };
            format!("{kind} `{}`", escape(a))
        })
        .collect();
    let allowed = if allowed.is_empty() {
        "nobody in Slack".to_owned()
    } else {
        allowed.join(", ")
    };
    format!(
        ":no_entry: You may not decide on the rotation of {}: rule `{}` allows {allowed}. Nothing changed; ask one of them.",
        target(row),
        escape(row.rule_name.as_deref().unwrap_or("?")),
    )
}

/// The approvers' user groups could not be read in time: nothing was decided.
pub fn try_again() -> String {
    ":hourglass: Could not check the approvers' Slack user groups just now: nothing was decided. Please try again in a minute.".into()
}

/// The journal could not take the decision: nothing was decided.
pub fn journal_unavailable() -> String {
    ":warning: token-rotator could not record your choice (its journal is unavailable): nothing was decided. Please try again in a minute.".into()
}
