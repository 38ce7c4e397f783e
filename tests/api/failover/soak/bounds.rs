//! What counts as flat: a bound for each slope, each generous, and why.

use super::sample::{self, Pairs, Sample, Trends};

/// Connections one replica can hold: its pool's (`max_connections(8)` in `src/store/mod.rs`), its
/// journal writer's and its election's (`src/leader/postgres.rs`).
const CONNECTIONS_PER_REPLICA: u64 = 8 + 1 + 1;

/// The bounds, each generous: a leak grows steadily, day after day, while noise goes up and
/// down. No process lives more than two days (the leader is killed daily), so a slope cannot
/// see what one process leaks over its own life; it catches what grows across restarts: what
/// a replica builds from the journal it starts on, connections and rows left behind.
pub fn assert_flat(samples: &[Sample], trends: &Trends) {
    let first = &samples[1];
    // Memory: under 5 % of the first day's per day (the day-to-day noise is ~1 %).
    let rss_bound = (first.rss_kib[0] + first.rss_kib[1]) as f64 / 2.0 * 0.05;
    for (name, slope) in each_process(&trends.rss_kib, &trends.killed[0]) {
        assert!(
            slope < rss_bound,
            "{name}'s RSS grows {slope:.0} KiB a day (bound {rss_bound:.0})"
        );
    }
    // Descriptors: under 4 a day. The noise: a leader holds ~10 more than a standby (pooled
    // connections, upstreams), a busy one more than an idle one. One carried over per
    // rotation would add 8 a day here, per delivery ~40.
    for (name, slope) in each_process(&trends.fds, &trends.killed[1]) {
        assert!(
            slope < 4.0,
            "{name}'s open descriptors grow {slope:.2} a day"
        );
    }
    // The journal keeps every alert and rotation (400 days by default), so it grows with the
    // work: no faster than twice the first day's growth, which also paid for every table's
    // and index's first pages.
    let first_growth = (first.journal_bytes - samples[0].journal_bytes) as f64;
    let journal = sample::slope(&trends.journal_bytes);
    assert!(
        journal < 2.0 * first_growth,
        "the journal grows {journal:.0} bytes a day, over twice the first day's {first_growth:.0}"
    );
    // Connections: under 2 a day (pools open connections on demand: a few up or down day to
    // day), and never more than both replicas can hold: a killed leader's left behind would
    // add ~10 a day.
    let connections = sample::slope(&trends.connections);
    assert!(
        connections < 2.0,
        "PostgreSQL connections grow {connections:.2} a day"
    );
    let most = samples.iter().map(|s| s.connections).max().unwrap();
    assert!(
        most <= 2 * CONNECTIONS_PER_REPLICA,
        "{most} PostgreSQL connections: more than two replicas hold"
    );
}

/// A figure's slopes by replica, by role, and of the leader just before each kill.
fn each_process(pairs: &Pairs, killed: &[f64]) -> [(&'static str, f64); 5] {
    let [[r0, r1], [leader, standby]] = pairs.slopes();
    [
        ("replica 0", r0),
        ("replica 1", r1),
        ("the leader", leader),
        ("the standby", standby),
        ("the leader before its kill", sample::slope(killed)),
    ]
}
