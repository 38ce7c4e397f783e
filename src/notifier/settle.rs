//! Parent edits that wait for their thread to settle while the workspace's edit budget is
//! contended. `chat.update` has one budget for the whole workspace (Tier 3, about 50 a minute):
//! in a burst of threads, an edit that shows a target half-way through its rotation is spent on a
//! state that is gone a second later, and the thread needs another edit for its end. So while the
//! budget is busy, a thread whose targets are still moving is edited only once its content has
//! stood still for [`SETTLE`] (or once every target has ended); when the budget is idle every
//! change is shown at once, as before.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a moving thread's content must stand still before a contended edit shows it.
pub(super) const SETTLE: Duration = Duration::from_secs(5);

/// Per thread with an unshown change: the content last seen and since when it has stood.
#[derive(Default)]
pub(super) struct Settling(Mutex<HashMap<i64, (String, Instant)>>);

impl Settling {
    /// Whether the edit showing `digest` may go now; `Err(at)` is when it may.
    pub(super) fn ready(&self, thread: i64, digest: &str, ended: bool) -> Result<(), Instant> {
        let now = Instant::now();
        let mut all = self.0.lock().expect("lock never poisoned");
        if ended {
            return Ok(());
        }
        let since = match all.get(&thread) {
            Some((seen, since)) if seen == digest => *since,
            _ => {
                all.insert(thread, (digest.to_owned(), now));
                now
            }
        };
        let at = since + SETTLE;
        if at <= now { Ok(()) } else { Err(at) }
    }

    /// The thread's parent shows its content: nothing to wait for until it changes again.
    pub(super) fn shown(&self, thread: i64) {
        self.0.lock().expect("lock never poisoned").remove(&thread);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moving_thread_waits_for_its_content_to_stand_still_and_an_ended_one_does_not() {
        let settling = Settling::default();
        let first = settling
            .ready(1, "a", false)
            .expect_err("new content waits");
        assert!(first > Instant::now() + SETTLE - Duration::from_millis(100));
        let again = settling.ready(1, "a", false).expect_err("still waiting");
        assert_eq!(again, first, "the same content keeps its start");
        let changed = settling
            .ready(1, "b", false)
            .expect_err("a change restarts the wait");
        assert!(changed >= first);
        assert!(
            settling.ready(1, "c", true).is_ok(),
            "an ended thread is shown at once"
        );
        settling.shown(1);
        assert!(
            settling.0.lock().unwrap().is_empty(),
            "nothing kept once shown"
        );
    }
}
