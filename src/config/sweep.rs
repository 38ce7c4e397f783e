//! `[sweep]`: when the nightly sweep of superseded tokens runs.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::Deserialize;
use toml::Spanned;

use super::raw::Checker;
use crate::engine::SweepSettings;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSweep {
    enabled: Option<bool>,
    /// `HH:MM`, local to `time_zone`.
    at: Option<Spanned<String>>,
    /// An IANA time zone name (`Europe/London`, `UTC`).
    time_zone: Option<Spanned<String>>,
}

pub(super) fn validate_sweep(checker: &mut Checker, raw: RawSweep) -> Option<SweepSettings> {
    let at = match &raw.at {
        None => Some(Time::strptime("%H:%M", SweepSettings::DEFAULT_AT).ok()?),
        Some(text) => match Time::strptime("%H:%M", text.get_ref().trim()) {
            Ok(at) => Some(at),
            Err(_) => {
                checker.report_span(
                    text.span(),
                    format!(
                        "sweep.at {:?} is not a time of day like \"02:00\" (HH:MM, 24-hour)",
                        text.get_ref()
                    ),
                );
                None
            }
        },
    };
    let (zone_name, span) = match &raw.time_zone {
        Some(zone) => (zone.get_ref().trim().to_owned(), zone.span()),
        None => (SweepSettings::DEFAULT_ZONE.to_owned(), 0..0),
    };
    // From the system's time zone database (`/usr/share/zoneinfo`, the tzdata package): a zone
    // it does not have is refused here, not found wanting at two in the morning.
    let zone = match TimeZone::get(&zone_name) {
        Ok(zone) => Some(zone),
        Err(e) => {
            checker.report_span(
                span,
                format!(
                    "sweep.time_zone {zone_name:?} is not a time zone this system knows ({e}); \
                     use an IANA name such as \"Europe/London\" or \"UTC\""
                ),
            );
            None
        }
    };
    Some(SweepSettings {
        enabled: raw.enabled.unwrap_or(true),
        at: at?,
        zone: zone?,
    })
}
