//! Which replies are known to have landed under a live parent. Slack answers `ok` to a reply
//! whose parent a person deleted (the reply is kept out of sight), so a reply's `ok` proves
//! nothing; an `ok` to the parent's next edit does: the parent was alive then, so it was alive
//! when every earlier reply was posted. Until that edit, replies and the thread messages sent
//! with them are held here, not marked told in the journal; when the edit finds the parent gone,
//! they are dropped from here and told again under the new parent ([`super::gone`]).
//!
//! Held in memory only: a restart (or a new leader) tells the unconfirmed ones again, which may
//! repeat a reply but never loses one.

use std::collections::HashMap;
use std::sync::Mutex;

/// Told in the thread but not yet confirmed by an edit of a live parent.
#[derive(Debug, Default, Clone)]
pub(super) struct Unconfirmed {
    /// The last audit row told.
    pub(super) cursor: i64,
    /// Notifications sent in the thread (carried in a reply, or messages of their own).
    pub(super) notifications: Vec<i64>,
}

#[derive(Default)]
pub(super) struct Landed(Mutex<HashMap<i64, Unconfirmed>>);

impl Landed {
    /// Where the thread's telling stands: the journal's cursor, or further if more is told
    /// and awaiting confirmation.
    pub(super) fn cursor(&self, thread: i64, journaled: i64) -> i64 {
        self.lock()
            .get(&thread)
            .map_or(journaled, |u| u.cursor.max(journaled))
    }

    /// Whether the notification was sent and awaits confirmation.
    pub(super) fn sent(&self, thread: i64, notification: i64) -> bool {
        self.lock()
            .get(&thread)
            .is_some_and(|u| u.notifications.contains(&notification))
    }

    pub(super) fn any(&self, thread: i64) -> bool {
        self.lock().contains_key(&thread)
    }

    /// Audit rows up to `cursor` and `notifications` were told in the thread.
    pub(super) fn told(&self, thread: i64, journaled: i64, cursor: i64, notifications: &[i64]) {
        let mut all = self.lock();
        let u = all.entry(thread).or_insert_with(|| Unconfirmed {
            cursor: journaled,
            notifications: Vec::new(),
        });
        u.cursor = u.cursor.max(cursor);
        u.notifications.extend_from_slice(notifications);
    }

    /// Confirmed (or lost): what was held, for the journal.
    pub(super) fn take(&self, thread: i64) -> Option<Unconfirmed> {
        self.lock().remove(&thread)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Unconfirmed>> {
        self.0.lock().expect("lock never poisoned")
    }
}
