//! The phases of a rotation and which follow which.
//!
//! ```text
//!   planned ─mint─▶ issued ─  place  ─▶  distributed ─rollout─▶ rolled_out ─verify─▶ verified
//!      │                │                       │                     │                  │
//!      │ resolved        └──────── error ────────┴──── error / 401 ────┘                  ▼
//!      ▼                                         ▼                                      grace
//!  cancelled                               rolling_back ─restore old, revoke new─▶ rolled_back
//!                                                                                         │ grace over
//!   planned ─error─▶ failed        grace ─revoke error─▶ failed        revoked ◀─revoke old┘
//!                                                                         │
//!   silencing ─create or extend the Alertmanager silence─▶ silenced     done
//!   decided without rotating: manual, ignored, unroutable
//!   issued ─handover link─▶ awaiting_handover ─confirmed or window over─▶ distributed
//!   awaiting_approval ─Approve─▶ planned, ─Reject─▶ rejected, ─request expires─▶ manual
//!   shadow mode: planned ─read-only look─▶ planned_only, silencing ─look─▶ planned_only
//! ```

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    Planned,
    Issued,
    Distributed,
    RolledOut,
    Verified,
    Grace,
    Revoked,
    Done,
    RollingBack,
    RolledBack,
    Silencing,
    PlannedOnly,
    Failed,
    Cancelled,
    Manual,
    Ignored,
    Silenced,
    Unroutable,
    /// A manual rule with `approval = true`: waiting for Approve or Reject in Slack.
    AwaitingApproval,
    /// Someone pressed Reject: nothing was minted.
    Rejected,
    /// The new token waits for its owner to collect it (a handover, not a Secret or file).
    AwaitingHandover,
    /// A person chose "Revoke: no longer used": the pair's live tokens are being revoked.
    Retiring,
    /// Every live token of the pair was revoked; nothing was minted.
    Retired,
}

impl Phase {
    pub const ALL: [Phase; 23] = [
        Phase::Planned,
        Phase::Issued,
        Phase::Distributed,
        Phase::RolledOut,
        Phase::Verified,
        Phase::Grace,
        Phase::Revoked,
        Phase::Done,
        Phase::RollingBack,
        Phase::RolledBack,
        Phase::Silencing,
        Phase::PlannedOnly,
        Phase::Failed,
        Phase::Cancelled,
        Phase::Manual,
        Phase::Ignored,
        Phase::Silenced,
        Phase::Unroutable,
        Phase::AwaitingApproval,
        Phase::Rejected,
        Phase::AwaitingHandover,
        Phase::Retiring,
        Phase::Retired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Planned => "planned",
            Phase::Issued => "issued",
            Phase::Distributed => "distributed",
            Phase::RolledOut => "rolled_out",
            Phase::Verified => "verified",
            Phase::Grace => "grace",
            Phase::Revoked => "revoked",
            Phase::Done => "done",
            Phase::RollingBack => "rolling_back",
            Phase::RolledBack => "rolled_back",
            Phase::Silencing => "silencing",
            Phase::PlannedOnly => "planned_only",
            Phase::Failed => "failed",
            Phase::Cancelled => "cancelled",
            Phase::Manual => "manual",
            Phase::Ignored => "ignored",
            Phase::Silenced => "silenced",
            Phase::Unroutable => "unroutable",
            Phase::AwaitingApproval => "awaiting_approval",
            Phase::Rejected => "rejected",
            Phase::AwaitingHandover => "awaiting_handover",
            Phase::Retiring => "retiring",
            Phase::Retired => "retired",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == value)
    }

    /// Nothing more will happen to a rotation in a terminal phase.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            Phase::Planned
                | Phase::Issued
                | Phase::Distributed
                | Phase::RolledOut
                | Phase::Verified
                | Phase::Grace
                | Phase::Revoked
                | Phase::RollingBack
                | Phase::Silencing
                | Phase::AwaitingApproval
                | Phase::AwaitingHandover
                | Phase::Retiring
        )
    }

    /// Whether a new token may exist that has not been put to use or revoked: an error from
    /// here on must roll back, not just stop.
    pub fn has_new_token(self) -> bool {
        matches!(
            self,
            Phase::Issued
                | Phase::AwaitingHandover
                | Phase::Distributed
                | Phase::RolledOut
                | Phase::Verified
        )
    }

    /// What the engine will do next, for `status`.
    pub fn next_action(self) -> &'static str {
        match self {
            Phase::Planned => "mint a new token",
            Phase::Issued => "put the new token where its consumers read it",
            Phase::Distributed => "wait for the consumers to roll out",
            Phase::RolledOut => "verify the new token where it is used",
            Phase::Verified => "start the grace period",
            Phase::Grace => "revoke the old token when the grace period ends",
            Phase::Revoked => "finish",
            Phase::RollingBack => "put the old token back and revoke the new one",
            Phase::Silencing => "create or extend the Alertmanager silence",
            Phase::AwaitingApproval => "wait for a decision in Slack",
            Phase::Retiring => "revoke the pair's live tokens",
            Phase::AwaitingHandover => "wait for the owner to collect and confirm the token",
            _ => "-",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_active_set_matches_the_journal_index() {
        for phase in Phase::ALL {
            assert_eq!(Phase::parse(phase.as_str()), Some(phase));
        }
        // The latest definitions of one_active_rotation_per_target.
        for migration in [
            include_str!("../migrations/sqlite/0013_retiring.sql"),
            include_str!("../migrations/postgres/0006_retiring.sql"),
        ] {
            for phase in Phase::ALL.into_iter().filter(|p| !p.is_terminal()) {
                assert!(
                    migration.contains(&format!("'{}'", phase.as_str())),
                    "{phase} is active but not in the unique index"
                );
            }
        }
    }
}
