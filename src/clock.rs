//! Time as an input: the engine asks a `Clock`, so tests can run an hour's grace in a moment.

use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// A journal time (milliseconds since the epoch) as people read it in tables and Slack, in UTC;
/// `-` when there is none.
pub fn when(ms: Option<i64>) -> String {
    ms.and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .map_or_else(
            || "-".to_owned(),
            |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
        )
}

/// The real time.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// The real time moved by an offset that can be changed: a host whose clock is wrong (and is
/// then put right), for fault tests.
pub struct SkewedClock(std::sync::atomic::AtomicI64);

impl SkewedClock {
    /// Ahead of the real time by `ms` milliseconds (behind when negative).
    pub fn new(ms: i64) -> Self {
        Self(std::sync::atomic::AtomicI64::new(ms))
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clock for SkewedClock {
    fn now(&self) -> Timestamp {
        let ms = self.0.load(std::sync::atomic::Ordering::Relaxed);
        Timestamp::now()
            .checked_add(jiff::SignedDuration::from_millis(ms))
            .expect("test clocks stay within jiff's range")
    }
}

/// A clock that moves only when told to, or (once [`follow_real_time`](Self::follow_real_time)
/// is called) with real time as well.
pub struct ManualClock(Mutex<Manual>);

struct Manual {
    at: Timestamp,
    /// Real time counts from this instant on, when following it.
    since: Option<std::time::Instant>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Mutex::new(Manual {
            at: start,
            since: None,
        }))
    }

    pub fn advance(&self, by: Duration) {
        let mut manual = self.0.lock().expect("lock never poisoned");
        manual.at = manual
            .at
            .checked_add(by)
            .expect("test clocks stay within jiff's range");
    }

    /// From now on the clock also moves with real time. For a replica elected through
    /// PostgreSQL, whose clock must stay within seconds of the database's to lead: a clock
    /// standing still falls out of step as a test runs.
    pub fn follow_real_time(&self) {
        let mut manual = self.0.lock().expect("lock never poisoned");
        if manual.since.is_none() {
            manual.since = Some(std::time::Instant::now());
        }
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        let manual = self.0.lock().expect("lock never poisoned");
        match manual.since {
            None => manual.at,
            Some(since) => manual
                .at
                .checked_add(since.elapsed())
                .expect("test clocks stay within jiff's range"),
        }
    }
}
