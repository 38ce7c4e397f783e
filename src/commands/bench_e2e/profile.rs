//! How long the simulated upstreams take to answer. `fast`: at once (loopback only), which
//! measures the engine's own cost. `realistic`: what a real cluster costs; the figures and where
//! they come from are in `bench/README.md`.

use std::time::Duration;

use crate::sim::kubernetes::KubernetesSim;
use crate::sim::signon::SignonSim;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    Fast,
    Realistic,
}

/// Signon's admin calls and `/user.json`: 100–300 ms (a Rails request with database work,
/// behind the cluster's ingress).
const SIGNON: (Duration, Duration) = (Duration::from_millis(100), Duration::from_millis(200));
/// The Kubernetes API: 10–50 ms for a single-object read or write.
const KUBERNETES: (Duration, Duration) = (Duration::from_millis(10), Duration::from_millis(40));

impl Profile {
    pub(super) fn apply(self, signon: &SignonSim, kubernetes: &KubernetesSim, seed: u64) {
        if self == Profile::Realistic {
            signon.latency.set(SIGNON.0, SIGNON.1, seed);
            kubernetes
                .latency
                .set(KUBERNETES.0, KUBERNETES.1, seed + 100);
        }
    }
}
