//! Scheduled targets: tokens rotated every so often (a credential API's own advice, e.g. every
//! 1–30 days with up to one period of overlap), not on an alert. Each has its own issuer and distributor; the
//! journal keeps its next due time; a due target starts a rotation with trigger
//! `schedule:<name>` in the same transaction that moves the due time on. A due time outside the
//! maintenance window waits for the window's next opening; jitter spreads targets apart.

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use sha2::{Digest, Sha256};

use super::{Engine, EngineError, Phase};
use crate::adapters::Upstreams;
use crate::store::rotations::{NewRotation, RotationRow};
use crate::store::schedules;
use crate::store::threads::ThreadKey;

/// A scheduled target as configured (`[[schedules]]`).
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    /// The target it rotates: `(environment, api_user, application)`, as its issuer names it
    /// (a credential API: the schedule's name; an access token: its owner and its name).
    pub environment: String,
    pub api_user: String,
    pub application: String,
    pub every: Duration,
    /// How long the old token stays valid after the new one is made (default: one period).
    pub overlap: Duration,
    pub window: Option<Window>,
    /// The most a due time is pushed later, by a fixed amount per target.
    pub jitter: Duration,
    /// Disable the old token after the grace period (else it dies at its own expiry).
    pub disable_old: bool,
    /// The token is handed to a person instead of written anywhere.
    pub handover: Option<Handover>,
}

/// A handover: who is told to collect the token, and for how long the link works.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// A Slack member id: the link goes to that person alone, as a direct message.
    pub owner: String,
    pub window: Duration,
}

impl Schedule {
    /// The new token's life: one period, and one overlap after it.
    pub fn token_life(&self) -> Duration {
        self.every + self.overlap
    }

    /// This target's share of the jitter: the same on every run and after every restart.
    fn offset(&self) -> Duration {
        if self.jitter.is_zero() {
            return Duration::ZERO;
        }
        let hash = Sha256::digest(self.name.as_bytes());
        let fraction =
            u64::from_be_bytes(hash[..8].try_into().expect("8 bytes")) as f64 / u64::MAX as f64;
        Duration::from_secs_f64(self.jitter.as_secs_f64() * fraction)
    }
}

/// A scheduled target with what it talks to.
pub struct Scheduled {
    pub schedule: Schedule,
    pub upstreams: Upstreams,
}

/// The schedule a rotation belongs to, from its trigger.
pub fn name_of(row: &RotationRow) -> Option<&str> {
    row.trigger.strip_prefix("schedule:")
}

/// A weekly maintenance window: `Mon-Fri 09:00-16:00 Europe/London` (days: `Mon-Fri`,
/// `Mon,Wed,Fri` or `daily`; times in the zone, start before end).
#[derive(Debug, Clone)]
pub struct Window {
    days: [bool; 7],
    start: Time,
    end: Time,
    zone: TimeZone,
    text: String,
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Monday),
    ("tue", Weekday::Tuesday),
    ("wed", Weekday::Wednesday),
    ("thu", Weekday::Thursday),
    ("fri", Weekday::Friday),
    ("sat", Weekday::Saturday),
    ("sun", Weekday::Sunday),
];

fn day(text: &str) -> Result<usize, String> {
    let lower = text.to_ascii_lowercase();
    DAYS.iter()
        .position(|(name, _)| lower.starts_with(name) && name.len() <= lower.len())
        .ok_or_else(|| format!("{text:?} is not a day (Mon … Sun)"))
}

impl Window {
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [days, times, zone] = parts.as_slice() else {
            return Err(format!(
                "window {text:?} is not like \"Mon-Fri 09:00-16:00 Europe/London\""
            ));
        };
        let mut allowed = [false; 7];
        if days.eq_ignore_ascii_case("daily") {
            allowed = [true; 7];
        } else {
            for part in days.split(',') {
                match part.split_once('-') {
                    Some((from, to)) => {
                        let (from, to) = (day(from)?, day(to)?);
                        let mut d = from;
                        loop {
                            allowed[d] = true;
                            if d == to {
                                break;
                            }
                            d = (d + 1) % 7;
                        }
                    }
                    None => allowed[day(part)?] = true,
                }
            }
        }
        let (start, end) = times
            .split_once('-')
            .ok_or_else(|| format!("window times {times:?} are not like 09:00-16:00"))?;
        let time =
            |t: &str| Time::strptime("%H:%M", t).map_err(|e| format!("window time {t:?}: {e}"));
        let (start, end) = (time(start)?, time(end)?);
        if start >= end {
            return Err(format!(
                "window {times:?}: the start must be before the end"
            ));
        }
        let zone = TimeZone::get(zone).map_err(|e| format!("window time zone {zone:?}: {e}"))?;
        Ok(Self {
            days: allowed,
            start,
            end,
            zone,
            text: text.to_owned(),
        })
    }

    /// The first instant at or after `at` inside the window.
    pub fn next_open(&self, at: Timestamp) -> Timestamp {
        let local = at.to_zoned(self.zone.clone());
        for ahead in 0..8 {
            let Ok(date) = local.date().checked_add(jiff::Span::new().days(ahead)) else {
                break;
            };
            let index = date.weekday().to_monday_zero_offset() as usize;
            if !self.days[index] {
                continue;
            }
            let (Ok(open), Ok(close)) = (
                date.to_datetime(self.start).to_zoned(self.zone.clone()),
                date.to_datetime(self.end).to_zoned(self.zone.clone()),
            ) else {
                continue;
            };
            if close.timestamp() > at {
                return open.timestamp().max(at);
            }
        }
        at
    }
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Engine {
    /// Starts the rotation of every scheduled target that is due now, inside its window, and
    /// not already rotating. Returns how many started.
    pub(super) async fn start_due(&self) -> Result<usize, EngineError> {
        let pool = &self.db;
        let now = self.clock.now();
        let mut started = 0;
        for scheduled in self.adapters.schedules.values() {
            let s = &scheduled.schedule;
            let first = now + s.offset();
            let due = schedules::due(pool, &s.name, first, now).await?;
            if due > now {
                continue;
            }
            if let Some(window) = &s.window
                && window.next_open(now) > now
            {
                continue;
            }
            // The token as its issuer names it (two spellings of one token are one target); an
            // issuer that cannot be asked now is asked again on a later pass, and a target that
            // names no token starts as written, for its rotation to fail saying why.
            let (api_user, application) = match self.scheduled_token(scheduled).await {
                Ok(Some(target)) => (target.api_user.to_string(), target.application.to_string()),
                Ok(None) => (s.api_user.clone(), s.application.clone()),
                Err(e) if e.is_transient() || e.is_pending() => {
                    tracing::warn!(schedule = %s.name, error = ?e.to_string(), "the issuer could not name the schedule's token; asking again later");
                    continue;
                }
                Err(_) => (s.api_user.clone(), s.application.clone()),
            };
            let active = crate::store::rotations::active_rotation(
                pool,
                &s.environment,
                &api_user,
                &application,
            )
            .await?;
            if active.is_some() {
                continue;
            }
            // The next one is a period after this due time; missed periods are not made up.
            let mut next = due + s.every;
            while next <= now {
                next += s.every;
            }
            let new = NewRotation {
                id: uuid::Uuid::now_v7().to_string(),
                environment: s.environment.clone(),
                api_user,
                application,
                action: "rotate".into(),
                rule_name: Some(s.name.clone()),
                action_detail: None,
                phase: Phase::Planned.as_str(),
                trigger: format!("schedule:{}", s.name),
                alertname: None,
                // The environment's mode, as for an alert: a shadow environment only plans, and
                // one not served is shadow too.
                mode: self
                    .settings
                    .modes
                    .get(&s.environment)
                    .copied()
                    .unwrap_or(crate::policy::Mode::Shadow)
                    .as_str(),
                next_attempt_at: Some(now),
                outcome: None,
                // humantime writes "30days"; a person reads "30 days".
                reason: format!(
                    "scheduled: every {}, due {}",
                    humantime::format_duration(s.every)
                        .to_string()
                        .replace("days", " days")
                        .replace("day", " day")
                        .replace("  ", " "),
                    super::row::when(due)
                ),
                thread: Some(ThreadKey {
                    delivery_id: None,
                    channel: self.settings.slack.channel(None, &s.environment),
                }),
            };
            if schedules::start(pool, &s.name, due, next, &new, now).await? {
                started += 1;
            }
        }
        Ok(started)
    }
}

impl Engine {
    /// A schedule's target as its issuer names it; `None` when its labels do not parse.
    async fn scheduled_token(
        &self,
        scheduled: &Scheduled,
    ) -> Result<Option<crate::domain::Target>, crate::adapters::AdapterError> {
        use crate::domain::{ApiUser, Application, Environment, Target};
        let s = &scheduled.schedule;
        let (Ok(environment), Ok(api_user), Ok(application)) = (
            Environment::parse(&s.environment),
            ApiUser::parse(&s.api_user),
            Application::parse(&s.application),
        ) else {
            return Ok(None);
        };
        let target = Target {
            environment,
            api_user,
            application,
        };
        scheduled
            .upstreams
            .issuer
            .canonical_target(&target)
            .await
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_window_opens_on_its_days_and_hours_in_its_zone() {
        let w = Window::parse("Mon-Fri 09:00-16:00 Europe/London").unwrap();
        // Thursday 2026-11-26 10:00 UTC is 10:00 in London: open.
        assert_eq!(
            w.next_open(at("2026-11-26T10:00:00Z")),
            at("2026-11-26T10:00:00Z")
        );
        // Thursday 17:00: the next opening is Friday 09:00.
        assert_eq!(
            w.next_open(at("2026-11-26T17:00:00Z")),
            at("2026-11-27T09:00:00Z")
        );
        // Saturday: Monday 09:00.
        assert_eq!(
            w.next_open(at("2026-11-28T12:00:00Z")),
            at("2026-11-30T09:00:00Z")
        );
        // Summer time: 09:00 in London is 08:00 UTC.
        assert_eq!(
            w.next_open(at("2026-07-01T05:00:00Z")),
            at("2026-07-01T08:00:00Z")
        );
        assert!(Window::parse("weekdays 9-5").is_err());
        assert!(Window::parse("Mon-Fri 16:00-09:00 UTC").is_err());
        assert!(Window::parse("Mon-Fri 09:00-16:00 Mars/Olympus").is_err());
    }

    #[test]
    fn jitter_is_fixed_per_target_and_within_bounds() {
        let schedule = |name: &str| Schedule {
            name: name.into(),
            environment: "production".into(),
            api_user: name.into(),
            application: "weather".into(),
            every: Duration::from_secs(86400),
            overlap: Duration::from_secs(86400),
            window: None,
            jitter: Duration::from_secs(3600),
            disable_old: false,
            handover: None,
        };
        let (a, b) = (schedule("a"), schedule("b"));
        assert_eq!(a.offset(), schedule("a").offset());
        assert_ne!(a.offset(), b.offset());
        assert!(a.offset() < Duration::from_secs(3600));
    }
}
