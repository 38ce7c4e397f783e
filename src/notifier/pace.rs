//! Slack's pace per channel: at most one post per second (`chat.postMessage`), edits at Tier 3,
//! and a rest when Slack asked for one (429 `Retry-After`) or refused.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// One `chat.postMessage` per channel per this period: Slack's 1 per second, with a margin for
/// the network's jitter.
const POST_PERIOD: Duration = Duration::from_millis(1050);
/// `chat.update` is Tier 3 (about 50 a minute).
const EDIT_PERIOD: Duration = Duration::from_millis(1200);

pub(super) struct Pace {
    posts: DefaultKeyedRateLimiter<String>,
    edits: DefaultKeyedRateLimiter<String>,
    /// Channels resting until an instant. In memory: after a restart Slack says again if it
    /// still wants us to wait.
    paused: Mutex<HashMap<String, Instant>>,
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
            edits: RateLimiter::keyed(quota(EDIT_PERIOD)),
            paused: Mutex::new(HashMap::new()),
        }
    }

    fn paused(&self, channel: &str) -> bool {
        let mut paused = self.paused.lock().expect("lock never poisoned");
        match paused.get(channel) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                paused.remove(channel);
                false
            }
            None => false,
        }
    }

    pub(super) fn pause(&self, channel: &str, wait: Duration) {
        self.paused
            .lock()
            .expect("lock never poisoned")
            .insert(channel.to_owned(), Instant::now() + wait);
    }

    /// Whether a post may go to `channel` now; takes the slot when it may.
    pub(super) fn may_post(&self, channel: &str) -> bool {
        !self.paused(channel) && self.posts.check_key(&channel.to_owned()).is_ok()
    }

    /// Whether an edit may go to `channel` now; takes the slot when it may.
    pub(super) fn may_edit(&self, channel: &str) -> bool {
        !self.paused(channel) && self.edits.check_key(&channel.to_owned()).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_post_per_channel_per_period_and_a_pause_holds_everything() {
        let pace = Pace::new();
        assert!(pace.may_post("C1"));
        assert!(
            !pace.may_post("C1"),
            "a second post within the second waits"
        );
        assert!(pace.may_post("C2"), "channels are paced apart");
        assert!(pace.may_edit("C1"), "edits have a pace of their own");
        pace.pause("C3", Duration::from_secs(60));
        assert!(!pace.may_post("C3"));
        assert!(!pace.may_edit("C3"));
    }
}
