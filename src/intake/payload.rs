//! The Alertmanager webhook body (payload version 4, Alertmanager 0.25–0.34), parsed leniently:
//! unknown fields are ignored, fields added by later versions are optional.

use jiff::Timestamp;
use serde::Deserialize;

use crate::domain::{AlertStatus, Labels};

/// What Alertmanager POSTs. Only `alerts` is required; everything else has a harmless default.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookPayload {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub status: Option<AlertStatus>,
    pub alerts: Vec<AlertDto>,
    #[serde(default, rename = "groupKey")]
    pub group_key: String,
    /// Alerts dropped by `max_alerts`; they never reach us, so reconcile must find them.
    #[serde(default, rename = "truncatedAlerts")]
    pub truncated_alerts: u64,
    /// Differs between HA replicas; never part of any dedupe key.
    #[serde(default, rename = "externalURL")]
    pub external_url: String,
    /// Alertmanager 0.32+.
    #[serde(default)]
    pub notification_reason: Option<String>,
    /// Alertmanager 0.34+.
    #[serde(default, rename = "routeLabels")]
    pub route_labels: Labels,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AlertDto {
    pub status: AlertStatus,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    #[serde(rename = "startsAt")]
    pub starts_at: Timestamp,
    /// Alertmanager sends `0001-01-01T00:00:00Z` for every firing alert; see [`AlertDto::ends_at`].
    #[serde(default, rename = "endsAt")]
    ends_at: Option<Timestamp>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
    /// 16 hex digits, a hash of the label set; absent only from hand-written senders.
    #[serde(default)]
    pub fingerprint: Option<String>,
}

impl AlertDto {
    /// When the alert stopped, or `None` while it is still firing (Go's zero time).
    pub fn ends_at(&self) -> Option<Timestamp> {
        self.ends_at
            .filter(|t| t.as_second() > GO_ZERO_TIME_SECONDS)
    }
}

/// `0001-01-01T00:00:00Z` in Unix seconds: Go's zero `time.Time`, which means "not set".
const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// Why a body is not a webhook payload we can take; the text names what was wrong, and never
/// quotes more than a few dozen characters of what was sent.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("body is not a valid Alertmanager webhook payload: {}", cut(&.0.to_string()))]
    Json(#[from] serde_json::Error),
    #[error("payload has no alerts: `alerts` is empty")]
    NoAlerts,
    #[error(
        "payload has {count} alerts, over this instance's limit of {limit} (max_alerts_per_delivery; Alertmanager's receiver `max_alerts` keeps a group under it)"
    )]
    TooManyAlerts { count: usize, limit: usize },
    #[error("{field} is {bytes} bytes long, over the limit of {limit} bytes")]
    TooLong {
        field: String,
        bytes: usize,
        limit: usize,
    },
    #[error("{what}: {count}, over the limit of {limit}")]
    TooMany {
        what: String,
        count: usize,
        limit: usize,
    },
    #[error("{field} holds a control character (U+{character:04X} at byte {at}), which it may not")]
    ControlCharacter {
        field: String,
        character: u32,
        at: usize,
    },
    #[error(
        "fingerprint of alert {index} is {bytes} bytes, not 16 lowercase hex digits as Alertmanager sends"
    )]
    BadFingerprint { index: usize, bytes: usize },
}

/// The most of a parser's message a refusal repeats: serde quotes the offending value
/// (`invalid type: string "…"`), which may be a mebibyte.
const MAX_ERROR_CHARS: usize = 300;

fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_ERROR_CHARS {
        return text.to_owned();
    }
    let head: String = text.chars().take(MAX_ERROR_CHARS).collect();
    format!("{head}… (cut)")
}

impl WebhookPayload {
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        let payload: WebhookPayload = serde_json::from_slice(body)?;
        if payload.alerts.is_empty() {
            return Err(PayloadError::NoAlerts);
        }
        Ok(payload)
    }

    /// What a delivery may carry: at most `max_alerts` alerts, and every field within
    /// [`super::limits`]. Checked before anything is journaled, so a refused delivery leaves
    /// nothing behind and Alertmanager is told why (400).
    pub fn within(self, max_alerts: usize) -> Result<Self, PayloadError> {
        super::limits::check(&self, max_alerts)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_zero_time_means_still_firing() {
        let body = br#"{"alerts":[{"status":"firing","labels":{},"startsAt":"2026-11-24T10:04:07.964Z","endsAt":"0001-01-01T00:00:00Z"}]}"#;
        let payload = WebhookPayload::parse(body).unwrap();
        assert_eq!(payload.alerts[0].ends_at(), None);
    }

    #[test]
    fn a_real_end_time_is_kept() {
        let body = br#"{"alerts":[{"status":"resolved","startsAt":"2026-11-24T10:04:07.964Z","endsAt":"2026-11-24T10:05:00Z"}]}"#;
        let payload = WebhookPayload::parse(body).unwrap();
        assert_eq!(
            payload.alerts[0].ends_at().unwrap().to_string(),
            "2026-11-24T10:05:00Z"
        );
    }

    #[test]
    fn newer_fields_and_unknown_ones_are_accepted() {
        let body = br#"{"version":"4","notification_reason":"first notification","routeLabels":{"team":"x"},"somethingNew":[1,2],
            "alerts":[{"status":"firing","startsAt":"2026-11-24T10:04:07Z","extra":true}]}"#;
        let payload = WebhookPayload::parse(body).unwrap();
        assert_eq!(
            payload.notification_reason.as_deref(),
            Some("first notification")
        );
        assert_eq!(payload.route_labels["team"], "x");
    }

    #[test]
    fn a_parser_error_never_repeats_a_huge_value() {
        let body = format!(
            r#"{{"alerts":[{{"status":"{}","startsAt":"2026-11-24T10:04:07Z"}}]}}"#,
            "x".repeat(100_000)
        );
        let err = WebhookPayload::parse(body.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown variant"), "{err}");
        assert!(err.len() < 500, "{} bytes", err.len());
    }

    #[test]
    fn errors_name_the_problem() {
        let cases: &[(&[u8], &str)] = &[
            (b"{}", "missing field `alerts`"),
            (br#"{"alerts":[]}"#, "`alerts` is empty"),
            (b"{\"alerts\": [", "EOF while parsing"),
            (
                br#"{"alerts":[{"status":"pending","startsAt":"2026-11-24T10:04:07Z"}]}"#,
                "unknown variant `pending`",
            ),
            (
                br#"{"alerts":[{"status":"firing","startsAt":"yesterday"}]}"#,
                "line 1 column",
            ),
        ];
        for (body, expected) in cases {
            let err = WebhookPayload::parse(body).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }
}
