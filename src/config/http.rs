//! `[http]`: how long a connection may keep a listener waiting, and how many each listener holds.

use serde::Deserialize;
use toml::Spanned;

use super::raw::{Checker, Origin, Sourced, parse_duration};

pub use crate::web::HttpSettings;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttp {
    header_read_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    max_connections: Option<Spanned<usize>>,
    public_max_connections: Option<Spanned<usize>>,
    metrics_max_connections: Option<Spanned<usize>>,
}

pub(super) fn validate_http(checker: &mut Checker, raw: RawHttp) -> Option<HttpSettings> {
    let defaults = HttpSettings::default();
    let duration = |checker: &mut Checker, key: &str, value: Option<Spanned<String>>| {
        value.map_or(Some(None), |v| {
            let span = v.span();
            let sourced = Sourced {
                value: v.into_inner(),
                from: Origin::File(span.clone()),
            };
            let parsed = parse_duration(checker, key, &sourced)?;
            if parsed.is_zero() {
                checker.report_span(span, format!("{key} must be more than 0s"));
                return None;
            }
            Some(Some((parsed, sourced.from)))
        })
    };
    let header_read_timeout =
        duration(checker, "http.header_read_timeout", raw.header_read_timeout);
    let idle_timeout = duration(checker, "http.idle_timeout", raw.idle_timeout);
    if let Some(Some((idle, from))) = &idle_timeout
        && *idle < HttpSettings::MIN_IDLE_TIMEOUT
    {
        checker.report(
            from,
            format!(
                "http.idle_timeout must be at least {}: a request may take that long with \
                 nothing moving on its connection",
                humantime::format_duration(HttpSettings::MIN_IDLE_TIMEOUT)
            ),
        );
    }
    let mut cap = |key: &str, value: Option<Spanned<usize>>, default: usize| match value {
        None => Some(default),
        Some(v) if *v.get_ref() == 0 => {
            checker.report_span(v.span(), format!("http.{key} must be at least 1"));
            None
        }
        Some(v) if *v.get_ref() > HttpSettings::MAX_CONNECTIONS => {
            checker.report_span(
                v.span(),
                format!(
                    "http.{key} must be at most {}: each connection is a file descriptor",
                    HttpSettings::MAX_CONNECTIONS
                ),
            );
            None
        }
        Some(v) => Some(v.into_inner()),
    };
    let max_connections = cap(
        "max_connections",
        raw.max_connections,
        defaults.max_connections,
    );
    let public_max_connections = cap(
        "public_max_connections",
        raw.public_max_connections,
        defaults.public_max_connections,
    );
    let metrics_max_connections = cap(
        "metrics_max_connections",
        raw.metrics_max_connections,
        defaults.metrics_max_connections,
    );
    Some(HttpSettings {
        header_read_timeout: header_read_timeout?.map_or(defaults.header_read_timeout, |(d, _)| d),
        idle_timeout: idle_timeout?.map_or(defaults.idle_timeout, |(d, _)| d),
        max_connections: max_connections?,
        public_max_connections: public_max_connections?,
        metrics_max_connections: metrics_max_connections?,
    })
}
