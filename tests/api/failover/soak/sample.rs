//! What the soak measures once a simulated day: each replica's resident memory and open file
//! descriptors (from `/proc`), the journal's size and the database's connections (from
//! PostgreSQL itself); and the least-squares slope of each over the days.

use std::time::Duration;

use sqlx::Connection;

/// One day's figures.
pub struct Sample {
    pub day: u32,
    /// `VmRSS` of `/proc/PID/status`, KiB, per replica.
    pub rss_kib: [u64; 2],
    /// Entries of `/proc/PID/fd` (files, sockets, pipes), per replica.
    pub fds: [u64; 2],
    /// How long each replica's process had run (each is restarted every other day).
    pub ages: [Duration; 2],
    /// `pg_database_size` of the shared journal, bytes.
    pub journal_bytes: u64,
    /// Connections to the journal's database (`pg_stat_activity`), the sampler's own left out.
    pub connections: u64,
    /// Which replica led when the day ended, and how long it took over after the kill.
    pub leader: usize,
    pub takeover: Option<Duration>,
    /// Alerts acknowledged and rotations ended, so far.
    pub acknowledged: usize,
    pub ended: usize,
    /// The leader killed that day, just before: which, its RSS (KiB) and descriptors. Like
    /// with like from day to day: a leader of a day's standing, in the middle of a day's work.
    pub killed: Option<(usize, u64, u64)>,
}

/// The RSS (KiB) and descriptors of one process.
pub fn process(pid: u32) -> (u64, u64) {
    (rss_kib(pid), fds(pid))
}

/// The two processes' RSS and descriptors, the journal's size and its connections, now.
pub async fn measure(pids: [u32; 2], db_url: &str) -> ([u64; 2], [u64; 2], u64, u64) {
    let rss = pids.map(rss_kib);
    let fds = pids.map(fds);
    let mut conn = sqlx::PgConnection::connect(db_url).await.unwrap();
    let (size,): (i64,) = sqlx::query_as("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let (connections,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    (rss, fds, size as u64, connections as u64)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("process {pid} is gone: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for {pid}"))
}

fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("process {pid} is gone: {e}"))
        .count() as u64
}

/// The least-squares slope of `values` (one a day) per day.
pub fn slope(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = values.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in values.iter().enumerate() {
        let dx = x as f64 - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    sxy / sxx
}

/// One figure of each replica over the days, two ways: by replica (each restarted every other
/// day, so it saw-tooths between a fresh standby and a leader of a day's standing) and by role
/// (the leader's figure and the standby's, like with like).
pub struct Pairs {
    pub by_replica: [Vec<f64>; 2],
    pub by_role: [Vec<f64>; 2],
}

impl Pairs {
    fn of(samples: &[&Sample], figure: impl Fn(&Sample, usize) -> f64) -> Self {
        Self {
            by_replica: [0, 1].map(|i| samples.iter().map(|s| figure(s, i)).collect()),
            by_role: [0, 1].map(|role| {
                samples
                    .iter()
                    .map(|s| figure(s, if role == 0 { s.leader } else { 1 - s.leader }))
                    .collect()
            }),
        }
    }

    /// The slopes, by replica then by role.
    pub fn slopes(&self) -> [[f64; 2]; 2] {
        [
            [slope(&self.by_replica[0]), slope(&self.by_replica[1])],
            [slope(&self.by_role[0]), slope(&self.by_role[1])],
        ]
    }
}

/// The figures over the days from day 2 on (day 1 starts from nothing: every table's and
/// index's first pages, the processes' first allocations), in the units of [`Sample`].
pub struct Trends {
    pub rss_kib: Pairs,
    pub fds: Pairs,
    /// The killed leader's RSS and descriptors.
    pub killed: [Vec<f64>; 2],
    pub journal_bytes: Vec<f64>,
    pub connections: Vec<f64>,
}

pub fn trends(samples: &[Sample]) -> Trends {
    let from_day_2: Vec<&Sample> = samples.iter().filter(|s| s.day >= 2).collect();
    Trends {
        rss_kib: Pairs::of(&from_day_2, |s, i| s.rss_kib[i] as f64),
        fds: Pairs::of(&from_day_2, |s, i| s.fds[i] as f64),
        killed: [
            from_day_2
                .iter()
                .filter_map(|s| s.killed.map(|k| k.1 as f64))
                .collect(),
            from_day_2
                .iter()
                .filter_map(|s| s.killed.map(|k| k.2 as f64))
                .collect(),
        ],
        journal_bytes: from_day_2.iter().map(|s| s.journal_bytes as f64).collect(),
        connections: from_day_2.iter().map(|s| s.connections as f64).collect(),
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// The per-day table and the slopes, as `bench/README.md` shows them.
pub fn print(samples: &[Sample], trends: &Trends, day: Duration) {
    let days = |age: Duration| age.as_secs_f64() / day.as_secs_f64();
    println!(
        "day | killed: RSS MiB, fds | leader | takeover | RSS r0 MiB (age) | RSS r1 MiB (age) | fds r0 | fds r1 | journal MiB | PG connections | alerts acked | rotations ended"
    );
    for s in samples {
        println!(
            "{} | {} | r{} | {} | {:.1} ({:.1} d) | {:.1} ({:.1} d) | {} | {} | {:.2} | {} | {} | {}",
            s.day,
            s.killed.map_or("—".into(), |(i, rss, fds)| format!(
                "r{i}: {:.1}, {fds}",
                rss as f64 / 1024.0
            )),
            s.leader,
            s.takeover
                .map_or("—".into(), |t| format!("{:.2} s", t.as_secs_f64())),
            s.rss_kib[0] as f64 / 1024.0,
            days(s.ages[0]),
            s.rss_kib[1] as f64 / 1024.0,
            days(s.ages[1]),
            s.fds[0],
            s.fds[1],
            s.journal_bytes as f64 / MIB,
            s.connections,
            s.acknowledged,
            s.ended,
        );
    }
    let last = samples.last().map_or(0, |s| s.day);
    let [rss, rss_role] = trends.rss_kib.slopes();
    let [fds, fds_role] = trends.fds.slopes();
    println!(
        "slope per day over days 2-{last}: RSS r0 {:+.2} MiB, r1 {:+.2} MiB (leader {:+.2}, standby {:+.2}); \
         fds r0 {:+.2}, r1 {:+.2} (leader {:+.2}, standby {:+.2}); journal {:+.3} MiB; PG connections {:+.2}",
        rss[0] / 1024.0,
        rss[1] / 1024.0,
        rss_role[0] / 1024.0,
        rss_role[1] / 1024.0,
        fds[0],
        fds[1],
        fds_role[0],
        fds_role[1],
        slope(&trends.journal_bytes) / MIB,
        slope(&trends.connections),
    );
    println!(
        "the leader just before its kill: RSS {:+.2} MiB, fds {:+.2} a day",
        slope(&trends.killed[0]) / 1024.0,
        slope(&trends.killed[1]),
    );
}

#[test]
fn a_steady_rise_has_its_slope_and_a_sawtooth_almost_none() {
    assert!((slope(&[1.0, 3.0, 5.0, 7.0]) - 2.0).abs() < 1e-9);
    let sawtooth = slope(&[10.0, 12.0, 10.0, 12.0, 10.0, 12.0]);
    assert!(sawtooth.abs() < 0.4, "{sawtooth}");
}
