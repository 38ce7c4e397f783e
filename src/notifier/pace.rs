//! Slack's pace, where Slack counts it (docs.slack.dev/apis/web-api/rate-limits: limits are "per
//! API method per workspace/team per app"): `chat.postMessage` at one per second per channel
//! (its special tier), `chat.update` (Tier 3) from one budget for the whole workspace, and a rest
//! for the whole workspace when Slack answers 429 or refuses the bot token; a channel that
//! refuses rests alone.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// One `chat.postMessage` per channel per this period: Slack's 1 per second, with a margin for
/// the network's jitter.
const POST_PERIOD: Duration = Duration::from_millis(1050);
/// `chat.update` is Tier 3, "50+ per minute" per workspace: 46 a minute leaves a margin.
const EDIT_PERIOD: Duration = Duration::from_millis(1300);

pub(super) struct Pace {
    posts: DefaultKeyedRateLimiter<String>,
    edits: DefaultDirectRateLimiter,
    /// The whole workspace rests until then. In memory: after a restart Slack says again if it
    /// still wants us to wait.
    workspace: Mutex<Option<Instant>>,
    /// Channels resting alone (one refused us) until an instant.
    channels: Mutex<HashMap<String, Instant>>,
}

fn resting(until: Option<&Instant>) -> bool {
    until.is_some_and(|u| *u > Instant::now())
}

impl Pace {
    pub(super) fn new() -> Self {
        let quota = |period| {
            Quota::with_period(period)
                .expect("a non-zero period")
                .allow_burst(NonZeroU32::MIN)
        };
        Self {
            posts: RateLimiter::keyed(quota(POST_PERIOD)),
            edits: RateLimiter::direct(quota(EDIT_PERIOD)),
            workspace: Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn paused(&self, channel: &str) -> bool {
        resting(self.workspace.lock().expect("lock never poisoned").as_ref())
            || resting(
                self.channels
                    .lock()
                    .expect("lock never poisoned")
                    .get(channel),
            )
    }

    /// Nothing goes to Slack for `wait` (a 429, a refused token).
    pub(super) fn pause_workspace(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut workspace = self.workspace.lock().expect("lock never poisoned");
        if workspace.is_none_or(|u| u < until) {
            *workspace = Some(until);
        }
    }

    /// Nothing goes to `channel` for `wait` (the channel refused us).
    pub(super) fn pause_channel(&self, channel: &str, wait: Duration) {
        self.channels
            .lock()
            .expect("lock never poisoned")
            .insert(channel.to_owned(), Instant::now() + wait);
    }

    /// Whether a post may go to `channel` now; takes the slot when it may.
    pub(super) fn may_post(&self, channel: &str) -> bool {
        !self.paused(channel) && self.posts.check_key(&channel.to_owned()).is_ok()
    }

    /// Whether an edit may go to `channel` now; takes the workspace's slot when it may.
    pub(super) fn may_edit(&self, channel: &str) -> bool {
        !self.paused(channel) && self.edits.check().is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_are_paced_per_channel_and_edits_per_workspace() {
        let pace = Pace::new();
        assert!(pace.may_post("C1"));
        assert!(
            !pace.may_post("C1"),
            "a second post within the second waits"
        );
        assert!(pace.may_post("C2"), "posts are paced per channel");
        assert!(pace.may_edit("C1"));
        assert!(
            !pace.may_edit("C2"),
            "chat.update is Tier 3 for the workspace: another channel waits too"
        );
    }

    #[test]
    fn a_429_rests_the_whole_workspace_and_a_refusal_only_its_channel() {
        let pace = Pace::new();
        pace.pause_channel("C3", Duration::from_secs(60));
        assert!(!pace.may_post("C3"));
        assert!(pace.may_post("C4"), "another channel goes on");
        pace.pause_workspace(Duration::from_secs(60));
        assert!(!pace.may_post("C5"), "a 429 in one channel rests them all");
        assert!(!pace.may_edit("C5"));
    }
}
