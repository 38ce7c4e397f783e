//! Slack's per-method budgets for a whole workspace (docs.slack.dev/apis/web-api/rate-limits:
//! "per API method per workspace/team per app"): `chat.update` is Tier 3 ("50+ per minute"),
//! `usergroups.users.list` Tier 2 ("20+ per minute"), each page's tier as listed on
//! docs.slack.dev/reference/methods/<method>. Past the budget: HTTP 429 with `Retry-After`, the
//! seconds until the oldest call in the minute leaves it, so the wait varies.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);

pub(super) struct Budget {
    per_minute: usize,
    calls: Mutex<VecDeque<Instant>>,
}

impl Budget {
    pub(super) fn per_minute(per_minute: usize) -> Self {
        Self {
            per_minute,
            calls: Mutex::new(VecDeque::new()),
        }
    }

    /// Takes a call from the budget, or says how many seconds until one is free.
    pub(super) fn take(&self) -> Result<(), u64> {
        let now = Instant::now();
        let mut calls = self.calls.lock().expect("lock never poisoned");
        while calls
            .front()
            .is_some_and(|at| now.duration_since(*at) >= WINDOW)
        {
            calls.pop_front();
        }
        if calls.len() >= self.per_minute {
            let oldest = *calls.front().expect("the budget is full, so not empty");
            let wait = WINDOW.saturating_sub(now.duration_since(oldest));
            return Err(wait.as_secs().max(1));
        }
        calls.push_back(now);
        Ok(())
    }
}
