//! Slack's pace, where Slack counts it (docs.slack.dev/apis/web-api/rate-limits: limits are "per
//! API method per workspace/team per app"): `chat.postMessage` at one per second per channel
//! (its special tier), `chat.update` (Tier 3) from one budget for the whole workspace, and a rest
//! for the whole workspace when Slack answers 429 or refuses the bot token; a channel that
//! refuses rests alone.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One `chat.postMessage` per channel per this period: Slack's 1 per second, with a margin for
/// the network's jitter.
const POST_PERIOD: Duration = Duration::from_millis(1050);
/// `chat.update` is Tier 3, "50+ per minute" per workspace, "Sporadic bursts are welcome": at
/// most this many in any window of [`EDIT_WINDOW`]. A window half a second over the minute, and
/// one short of 50, keep every minute Slack may count under its budget whichever way it counts.
/// (A steady 46 a minute, one per 1.3 s with no burst, spread a burst of 20 edits that Slack
/// takes at once over 26 s.)
const EDITS_PER_WINDOW: usize = 49;
const EDIT_WINDOW: Duration = Duration::from_millis(60_500);

pub(super) struct Pace {
    /// When each channel last had a post.
    posts: Mutex<HashMap<String, Instant>>,
    /// The workspace's edits within the last [`EDIT_WINDOW`], oldest first.
    edits: Mutex<VecDeque<Instant>>,
    /// The soonest a call refused by the pace may go: the loop sleeps until then rather than a
    /// whole poll, so a channel's next post leaves when its second is up.
    soonest: Mutex<Option<Instant>>,
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
        Self {
            posts: Mutex::new(HashMap::new()),
            edits: Mutex::new(VecDeque::new()),
            soonest: Mutex::new(None),
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

    /// A call held back may go at `at`: the loop wakes then.
    pub(super) fn free_at(&self, at: Instant) {
        let mut soonest = self.soonest.lock().expect("lock never poisoned");
        if soonest.is_none_or(|s| at < s) {
            *soonest = Some(at);
        }
    }

    /// How long the loop may sleep: `poll`, or less when a call the pace refused may go sooner.
    pub(super) fn sleep(&self, poll: Duration) -> Duration {
        let soonest = self.soonest.lock().expect("lock never poisoned").take();
        soonest.map_or(poll, |at| {
            at.saturating_duration_since(Instant::now()).min(poll)
        })
    }

    /// Whether a post may go to `channel` now; takes the slot when it may.
    pub(super) fn may_post(&self, channel: &str) -> bool {
        if self.paused(channel) {
            return false;
        }
        let now = Instant::now();
        let mut posts = self.posts.lock().expect("lock never poisoned");
        if let Some(next) = posts.get(channel).map(|last| *last + POST_PERIOD)
            && next > now
        {
            drop(posts);
            self.free_at(next);
            return false;
        }
        posts.insert(channel.to_owned(), now);
        true
    }

    /// A post to `channel` was answered. Slack counts a post when it arrives, so the channel's
    /// next second starts from the answer: a post held up on the way cannot bring the next one
    /// within a second of it.
    pub(super) fn sent(&self, channel: &str) {
        self.posts
            .lock()
            .expect("lock never poisoned")
            .insert(channel.to_owned(), Instant::now());
    }

    /// Whether the workspace's edit budget is contended: a fifth of this window's edits spent.
    pub(super) fn edits_busy(&self) -> bool {
        let now = Instant::now();
        self.edits
            .lock()
            .expect("lock never poisoned")
            .iter()
            .filter(|at| now.duration_since(**at) < EDIT_WINDOW)
            .count()
            >= EDITS_PER_WINDOW / 5
    }

    /// Whether an edit may go to `channel` now; takes the workspace's slot when it may.
    pub(super) fn may_edit(&self, channel: &str) -> bool {
        if self.paused(channel) {
            return false;
        }
        let now = Instant::now();
        let mut edits = self.edits.lock().expect("lock never poisoned");
        while edits
            .front()
            .is_some_and(|at| now.duration_since(*at) >= EDIT_WINDOW)
        {
            edits.pop_front();
        }
        if edits.len() >= EDITS_PER_WINDOW {
            let next = *edits.front().expect("the window is full, so not empty") + EDIT_WINDOW;
            drop(edits);
            self.free_at(next);
            return false;
        }
        edits.push_back(now);
        true
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
        assert!(
            pace.sleep(Duration::from_millis(200)) <= POST_PERIOD,
            "the loop wakes when C1's second is up"
        );
        for i in 0..EDITS_PER_WINDOW {
            assert!(
                pace.may_edit(&format!("C{i}")),
                "a burst of edits goes at once"
            );
        }
        assert!(
            !pace.may_edit("C1"),
            "chat.update is Tier 3 for the workspace: past the minute's budget every channel waits"
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
