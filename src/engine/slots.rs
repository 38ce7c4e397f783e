//! How many steps run at once: a global cap (`rotation.max_in_flight`, 32), a cap per upstream
//! (`rotation.max_in_flight_per_upstream`, 16: an environment's issuer and cluster, a schedule's
//! issuer, Alertmanager), and one claim per rotation so that two passes never step the same
//! rotation at once. A step waiting on a slow or hung upstream holds its own rotation's claim,
//! one global slot and one of its upstream's, and nothing else.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::Adapters;
use super::schedule;
use crate::store::rotations::RotationRow;

pub(super) struct Slots {
    global: Arc<Semaphore>,
    per_upstream: usize,
    upstreams: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Rotations some pass is stepping now.
    in_flight: Mutex<HashSet<String>>,
}

/// A rotation being stepped by this pass: released (for any pass to take) when dropped.
pub(super) struct Claim {
    slots: Arc<Slots>,
    id: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.slots
            .in_flight
            .lock()
            .expect("lock never poisoned")
            .remove(&self.id);
    }
}

/// A global slot and one of the upstream's, held for one step.
pub(super) struct Permits {
    _global: OwnedSemaphorePermit,
    _upstream: OwnedSemaphorePermit,
}

impl Slots {
    pub(super) fn new(max_in_flight: usize, per_upstream: usize) -> Arc<Self> {
        Arc::new(Self {
            global: Arc::new(Semaphore::new(max_in_flight.max(1))),
            per_upstream: per_upstream.max(1),
            upstreams: Mutex::default(),
            in_flight: Mutex::default(),
        })
    }

    /// The rotation, unless another pass is stepping it.
    pub(super) fn claim(self: &Arc<Self>, id: &str) -> Option<Claim> {
        let fresh = self
            .in_flight
            .lock()
            .expect("lock never poisoned")
            .insert(id.to_owned());
        fresh.then(|| Claim {
            slots: Arc::clone(self),
            id: id.to_owned(),
        })
    }

    fn upstream(&self, key: &str) -> Arc<Semaphore> {
        let mut upstreams = self.upstreams.lock().expect("lock never poisoned");
        Arc::clone(
            upstreams
                .entry(key.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_upstream))),
        )
    }

    /// Waits for a global slot and one of `upstream`'s.
    pub(super) async fn acquire(&self, upstream: &str) -> Permits {
        let upstream = self.upstream(upstream);
        let global = Arc::clone(&self.global).acquire_owned().await;
        let upstream = upstream.acquire_owned().await;
        Permits {
            _global: global.expect("never closed"),
            _upstream: upstream.expect("never closed"),
        }
    }

    /// Both slots now, or `None` (the global one first: without it nothing more can start).
    pub(super) fn try_acquire(&self, upstream: &str) -> Result<Permits, Full> {
        let global = Arc::clone(&self.global)
            .try_acquire_owned()
            .map_err(|_| Full::Global)?;
        let upstream = self
            .upstream(upstream)
            .try_acquire_owned()
            .map_err(|_| Full::Upstream)?;
        Ok(Permits {
            _global: global,
            _upstream: upstream,
        })
    }
}

/// Which cap is reached.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Full {
    Global,
    Upstream,
}

/// The upstream a rotation's steps call: its schedule's issuer, Alertmanager for a silence, or
/// its environment's issuer and cluster (`*` when the environment has none of its own).
pub(super) fn upstream_of(adapters: &Adapters, row: &RotationRow) -> String {
    if let Some(name) = schedule::name_of(row) {
        return format!("schedule:{name}");
    }
    if row.action == "silence" {
        return "alertmanager".to_owned();
    }
    let key = if adapters.environments.contains_key(&row.environment) {
        row.environment.as_str()
    } else {
        "*"
    };
    format!("environment:{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rotation_is_claimed_once_and_caps_hold() {
        let slots = Slots::new(2, 1);
        let claim = slots.claim("r1").unwrap();
        assert!(slots.claim("r1").is_none(), "in flight elsewhere");
        drop(claim);
        assert!(slots.claim("r1").is_some());

        let a = slots.try_acquire("environment:production").unwrap();
        assert_eq!(
            slots.try_acquire("environment:production").err(),
            Some(Full::Upstream),
            "one per upstream"
        );
        let b = slots.try_acquire("environment:staging").unwrap();
        assert_eq!(
            slots.try_acquire("alertmanager").err(),
            Some(Full::Global),
            "two in all"
        );
        drop((a, b));
        assert!(slots.try_acquire("alertmanager").is_ok());
    }
}
