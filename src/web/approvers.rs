//! Whether a Slack user may decide on an approval request: named directly, or a member of one
//! of the rule's user groups. Slack shows the clicker an error after 3 s
//! (docs.slack.dev/interactivity/handling-user-interaction: "respond … within 3 seconds"), so
//! every group is asked at once under one deadline, and answers are kept briefly:
//! `usergroups.users.list` is Tier 2, about 20 calls a minute for the whole workspace.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::adapters::slack::{SlackApi, SlackError};

/// All group lookups together must finish within this (leaving time for the journal).
const DEADLINE: Duration = Duration::from_secs(2);
/// How long a group's members are trusted without asking Slack again.
const KEEP: Duration = Duration::from_secs(60);

/// What the approvers' list says about a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum May {
    Decide,
    NotDecide,
    /// A group could not be read in time and the user is in none that could: ask again.
    Unknown,
}

/// Group members as Slack last answered, with when; and until when Slack asked us to stop
/// reading groups (a 429 of `usergroups.users.list` counts for the whole workspace: Tier 2 is a
/// budget per method per workspace, docs.slack.dev/apis/web-api/rate-limits).
#[derive(Default)]
pub struct GroupCache {
    groups: Mutex<HashMap<String, (Instant, Vec<String>)>>,
    paused_until: Mutex<Option<Instant>>,
}

impl GroupCache {
    fn paused(&self) -> bool {
        self.paused_until
            .lock()
            .expect("lock never poisoned")
            .is_some_and(|until| Instant::now() < until)
    }

    fn pause(&self, wait: Duration) {
        *self.paused_until.lock().expect("lock never poisoned") = Some(Instant::now() + wait);
    }

    fn fresh(&self, group: &str) -> Option<Vec<String>> {
        let groups = self.groups.lock().expect("lock never poisoned");
        groups
            .get(group)
            .filter(|(at, _)| at.elapsed() < KEEP)
            .map(|(_, members)| members.clone())
    }

    fn keep(&self, group: &str, members: Vec<String>) {
        self.groups
            .lock()
            .expect("lock never poisoned")
            .insert(group.to_owned(), (Instant::now(), members));
    }
}

/// Whether `user` is among `approvers`, directly or through a user group (`S…`).
pub async fn may_decide(
    api: Option<&SlackApi>,
    cache: &GroupCache,
    approvers: &[String],
    user: &str,
) -> May {
    if approvers.iter().any(|a| a == user) {
        return May::Decide;
    }
    let groups: Vec<&String> = approvers.iter().filter(|a| a.starts_with('S')).collect();
    // What Slack said a moment ago first: a member found there needs no call at all.
    let mut unread = Vec::new();
    for group in groups {
        match cache.fresh(group) {
            Some(members) if members.iter().any(|m| m == user) => return May::Decide,
            Some(_) => {}
            None => unread.push(group.clone()),
        }
    }
    // No bot token to ask with: groups cannot count (as `check-config` says).
    let Some(api) = api else {
        return May::NotDecide;
    };
    if !unread.is_empty() && cache.paused() {
        // Slack said wait: asking again now would only lengthen the wait.
        return May::Unknown;
    }
    let mut unknown = false;
    let mut asking = JoinSet::new();
    for group in unread {
        let api = api.clone();
        asking.spawn(async move {
            let members = api.group_members(&group).await;
            (group, members)
        });
    }
    let deadline = tokio::time::sleep(DEADLINE);
    tokio::pin!(deadline);
    while !asking.is_empty() {
        tokio::select! {
            () = &mut deadline => {
                tracing::warn!(left = asking.len(), "Slack user group lookups timed out");
                asking.abort_all();
                return May::Unknown;
            }
            joined = asking.join_next() => match joined {
                Some(Ok((group, Ok(members)))) => {
                    let found = members.iter().any(|m| m == user);
                    cache.keep(&group, members);
                    if found {
                        asking.abort_all();
                        return May::Decide;
                    }
                }
                // No such group, or no groups on the workspace's plan: it has no members, and
                // asking again will not change that (`usergroups.users.list` errors).
                Some(Ok((group, Err(e @ SlackError::Rejected { .. })))) => {
                    tracing::error!(?group, error = %e, "a Slack user group among the approvers does not exist; fix the rule");
                    cache.keep(&group, Vec::new());
                }
                Some(Ok((group, Err(e)))) => {
                    if let SlackError::RateLimited(wait) = &e {
                        cache.pause(*wait);
                    }
                    tracing::warn!(?group, error = %e, "cannot read a Slack user group");
                    unknown = true;
                }
                Some(Err(_)) | None => unknown = true,
            },
        }
    }
    if unknown {
        May::Unknown
    } else {
        May::NotDecide
    }
}
