//! GitLab's expiry is a date, and a token expires at that date's start, 00:00 UTC: gitlabhq
//! `app/models/concerns/expirable.rb:12-14`, `expired?` is `expires_at <= Time.current`, and
//! ActiveSupport compares a `Date` with a time as `to_datetime`, midnight at offset 0
//! (`activesupport/lib/active_support/core_ext/date/calculations.rb`,
//! `compare_with_coercion`); docs.gitlab.com/user/profile/personal_access_tokens/: tokens
//! "expire on the date you define, at midnight UTC".
//!
//! The date asked for is checked against the instance's maximum lifetime counted from *its*
//! today: `Date.current.advance(days: max)` (gitlabhq `app/models/personal_access_token.rb`,
//! `expires_at_before_instance_max_expiry_date`), `Date.current` being the date in the
//! instance's time zone (`gitlab_rails['time_zone']`, UTC unless changed; GitLab's API does not
//! say which, so `[gitlab] time_zone` does).

use std::time::Duration;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

/// The instant a token with this `expires_at` stops working: the date's start in UTC.
pub(super) fn expires(date: Option<Date>) -> Timestamp {
    date.and_then(|d| d.to_zoned(TimeZone::UTC).ok())
        .map_or(Timestamp::MAX, |z| z.timestamp())
}

/// The `expires_at` to ask for a token that should live `life` from `now`: the first date
/// whose start is not before `now + life`, but no later than the instance allows (`max_days`
/// after today in `zone`).
pub(super) fn date_for(now: Timestamp, life: Duration, max_days: i64, zone: &TimeZone) -> Date {
    let wanted = (now + life).to_zoned(TimeZone::UTC);
    let day = wanted.date();
    let wanted_date = if wanted.time() == jiff::civil::Time::midnight() {
        day
    } else {
        day.tomorrow().unwrap_or(day)
    };
    let latest = now
        .to_zoned(zone.clone())
        .date()
        .checked_add(Span::new().days(max_days))
        .unwrap_or(wanted_date);
    wanted_date.min(latest)
}

/// The instance's maximum lifetime in whole days (GitLab's setting is in days).
pub(super) fn whole_days(max_lifetime: Duration) -> i64 {
    (max_lifetime.as_secs() / 86400) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t: &str) -> Timestamp {
        t.parse().unwrap()
    }

    #[test]
    fn a_token_expires_at_the_start_of_its_date_in_utc() {
        let date: Date = "2026-05-10".parse().unwrap();
        assert_eq!(expires(Some(date)), at("2026-05-10T00:00:00Z"));
        assert_eq!(expires(None), Timestamp::MAX);
    }

    #[test]
    fn the_date_asked_for_covers_the_life_and_stays_within_the_instances_limit() {
        let utc = TimeZone::UTC;
        let day = Duration::from_secs(86400);
        // 30 days from 10:00 ends at 10:00: the token must live into the next date.
        assert_eq!(
            date_for(at("2026-03-02T10:00:00Z"), 30 * day, 365, &utc).to_string(),
            "2026-04-02"
        );
        // From midnight exactly, that date itself is enough.
        assert_eq!(
            date_for(at("2026-03-02T00:00:00Z"), 30 * day, 365, &utc).to_string(),
            "2026-04-01"
        );
        // Two years asked for: cut to 365 days after the instance's today.
        assert_eq!(
            date_for(at("2026-03-02T10:00:00Z"), 730 * day, 365, &utc).to_string(),
            "2027-03-02"
        );
        // 05:00 UTC is still the evening before in Los Angeles: the instance's today is the
        // 1st, so its latest date is a day earlier than UTC's.
        let la = TimeZone::get("America/Los_Angeles").unwrap();
        assert_eq!(
            date_for(at("2026-03-02T05:00:00Z"), 730 * day, 365, &la).to_string(),
            "2027-03-01"
        );
    }
}
