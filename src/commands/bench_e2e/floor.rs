//! The least time a run could take, from the calls it made and the profile's latency: the
//! critical path of one rotation (its calls' latencies one after another) and the work bound
//! of each cap (every call's latency, spread over the steps that may run at once). A figure is
//! judged as a ratio to the larger of the two.

use std::time::Duration;

use super::setup::Bench;
use crate::store::rotations::RotationRow;

pub(super) struct Floor {
    /// The mean rotation's calls, one after another.
    critical: Duration,
    /// Per cap: `environment:<name>` (its Signon and cluster, `max_in_flight_per_upstream`
    /// steps at once) and `all` (`max_in_flight`).
    bounds: Vec<(String, Duration)>,
    /// Per environment: Signon calls, Kubernetes calls, rotations.
    calls: Vec<(String, u64, u64, usize)>,
}

impl Floor {
    pub(super) fn of(bench: &Bench, rows: &[RotationRow]) -> Floor {
        let mut critical = Duration::ZERO;
        let mut bounds = Vec::new();
        let mut calls = Vec::new();
        let mut all = Duration::ZERO;
        for (environment, env) in &bench.envs {
            let rotations = rows
                .iter()
                .filter(|r| &r.environment == environment && r.phase == "done")
                .count();
            if rotations == 0 {
                // The hung one: its calls never ended.
                continue;
            }
            let (signon, kubernetes) = (env.signon.latency.calls(), env.kubernetes.latency.calls());
            let work = env.signon.latency.mean() * signon as u32
                + env.kubernetes.latency.mean() * kubernetes as u32;
            critical = critical.max(work / rotations as u32);
            bounds.push((
                format!("environment:{environment}"),
                work / bench.per_upstream as u32,
            ));
            calls.push((environment.clone(), signon, kubernetes, rotations));
            all += work;
        }
        bounds.push(("all".into(), all / bench.max_in_flight as u32));
        Floor {
            critical,
            bounds,
            calls,
        }
    }

    /// The larger of the critical path and the work bounds.
    pub(super) fn bound(&self) -> Duration {
        self.bounds
            .iter()
            .map(|(_, b)| *b)
            .fold(self.critical, Duration::max)
    }

    pub(super) fn print(&self) {
        for (environment, signon, kubernetes, rotations) in &self.calls {
            println!(
                "calls                  {environment}: {signon} to Signon, {kubernetes} to the Kubernetes API for {rotations} rotations ({:.1} + {:.1} each)",
                *signon as f64 / *rotations as f64,
                *kubernetes as f64 / *rotations as f64
            );
        }
        println!(
            "floor                  {:.1} s: critical path of one rotation {:.2} s; work bounds {}",
            self.bound().as_secs_f64(),
            self.critical.as_secs_f64(),
            self.bounds
                .iter()
                .map(|(cap, b)| format!("{cap} {:.1} s", b.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
