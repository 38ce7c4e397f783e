//! What one webhook delivery may carry, checked before anything of it is journaled or logged.
//!
//! Every field is bounded: a value we keep (the journal), log (every line names the group key
//! and fingerprints) or show (Slack, the status page) must be small, and one that could not
//! come from Alertmanager is refused rather than stored. The limits are far above what
//! Alertmanager sends for our alerts: across the real Alertmanager 0.25 captures in
//! `fixtures/alertmanager` the largest are a groupKey of 156 bytes, a receiver of 27, 6 labels
//! of at most 32 bytes, 2 annotations of at most 147 and a generatorURL of 87, and every
//! fingerprint is 16 lowercase hex digits.
//!
//! A problem refuses the whole delivery with 400 and a text naming the field and the limit,
//! never the value (it may be huge, or hold what a terminal or a log reader would act on).
//! Why the whole delivery, not only the bad alert: a 2xx tells Alertmanager the group was
//! taken, so a bad alert dropped from a 200 would be lost without trace. A 4xx is not retried
//! within the attempt, but the notification is not marked sent either, so Alertmanager sends
//! the group again at each `group_interval` until a 2xx (observed on 0.25: every 5 s for as
//! long as it was watched; `docs/ARCHITECTURE.md`, step 4). Each refusal is cheap (nothing
//! reaches the journal), logged and counted (`webhook_requests_total{outcome="bad_request"}`)
//! until whoever feeds Alertmanager fixes the alert; the group's other alerts wait with it.
//! Alertmanager itself never produces these values; only a broken rule or a forged alert can.

use crate::domain::Labels;

use super::payload::{AlertDto, PayloadError, WebhookPayload};

/// `receiver`: a receiver's name in Alertmanager's config.
pub const MAX_RECEIVER_BYTES: usize = 256;
/// `groupKey`: the route's matchers and the group's labels (`{}/{…}:{alertname="…", …}`).
pub const MAX_GROUP_KEY_BYTES: usize = 16 * 1024;
/// `externalURL` and each `generatorURL` (which carries the rule's PromQL, URL-encoded).
pub const MAX_URL_BYTES: usize = 16 * 1024;
/// `version` and `notification_reason`: a digit, and one of six fixed phrases.
pub const MAX_WORD_BYTES: usize = 256;
/// A label's name (Prometheus names are identifiers).
pub const MAX_LABEL_NAME_BYTES: usize = 256;
/// A label's value. Signon's own labels are an email and an application name; every label is
/// journaled and logged.
pub const MAX_LABEL_BYTES: usize = 1024;
/// Labels of one alert (and `routeLabels`); Prometheus alerts carry tens at most.
pub const MAX_LABELS: usize = 100;
/// An annotation's value: a summary or a description, which may span lines.
pub const MAX_ANNOTATION_BYTES: usize = 16 * 1024;
/// Annotations of one alert.
pub const MAX_ANNOTATIONS: usize = 50;
/// What a refusal quotes of a name it cannot avoid naming (a label's), at most.
const SHOWN_CHARS: usize = 64;

/// `name`, quoted and escaped, cut to [`SHOWN_CHARS`]: safe in an answer and a log line.
pub(super) fn shown(name: &str) -> String {
    if name.chars().count() <= SHOWN_CHARS {
        format!("{name:?}")
    } else {
        let cut: String = name.chars().take(SHOWN_CHARS).collect();
        format!("{cut:?}…")
    }
}

// The field names below are built only when a check fails: a delivery that passes (every one
// Alertmanager sends) allocates nothing here. Built eagerly they were ~5 strings per label.

fn too_long(field: impl FnOnce() -> String, value: &str, limit: usize) -> Result<(), PayloadError> {
    if value.len() > limit {
        return Err(PayloadError::TooLong {
            field: field(),
            bytes: value.len(),
            limit,
        });
    }
    Ok(())
}

/// Refuses a control character (NUL, newline, escape, DEL, C1…) in `value`, but those
/// `allowed`. PostgreSQL cannot store NUL in text at all, and the others forge log lines and
/// Slack lines.
fn controls(
    field: impl FnOnce() -> String,
    value: &str,
    allowed: &[char],
) -> Result<(), PayloadError> {
    // Printable ASCII holds no control character: most values are only that, checked by bytes.
    if value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Ok(());
    }
    match value
        .char_indices()
        .find(|(_, c)| c.is_control() && !allowed.contains(c))
    {
        Some((at, c)) => Err(PayloadError::ControlCharacter {
            field: field(),
            character: c as u32,
            at,
        }),
        None => Ok(()),
    }
}

/// One bounded text field that may hold no control character.
fn word(field: impl Fn() -> String, value: &str, limit: usize) -> Result<(), PayloadError> {
    too_long(&field, value, limit)?;
    controls(field, value, &[])
}

/// A label set: how many, each name and value bounded, no control character anywhere.
/// `whose` says where it is (`of alert 3`, `of routeLabels`).
fn labels(whose: &dyn Fn() -> String, labels: &Labels) -> Result<(), PayloadError> {
    if labels.len() > MAX_LABELS {
        return Err(PayloadError::TooMany {
            what: format!("labels {}", whose()),
            count: labels.len(),
            limit: MAX_LABELS,
        });
    }
    for (name, value) in labels {
        let the_name = || format!("the name of label {} {}", shown(name), whose());
        too_long(the_name, name, MAX_LABEL_NAME_BYTES)?;
        controls(the_name, name, &[])?;
        let field = || format!("label {} {}", shown(name), whose());
        too_long(field, value, MAX_LABEL_BYTES)?;
        controls(field, value, &[])?;
    }
    Ok(())
}

/// Annotations: bounded like labels, but a value may span lines (a description often does);
/// it is journaled as JSON and never shown in Slack.
fn annotations(index: usize, annotations: &Labels) -> Result<(), PayloadError> {
    if annotations.len() > MAX_ANNOTATIONS {
        return Err(PayloadError::TooMany {
            what: format!("annotations of alert {index}"),
            count: annotations.len(),
            limit: MAX_ANNOTATIONS,
        });
    }
    for (name, value) in annotations {
        let the_name = || format!("the name of annotation {} of alert {index}", shown(name));
        too_long(the_name, name, MAX_LABEL_NAME_BYTES)?;
        controls(the_name, name, &[])?;
        let field = || format!("annotation {} of alert {index}", shown(name));
        too_long(field, value, MAX_ANNOTATION_BYTES)?;
        controls(field, value, &['\n', '\r', '\t'])?;
    }
    Ok(())
}

/// Alertmanager's fingerprint is `model.Fingerprint`'s `%016x`: exactly 16 lowercase hex
/// digits (prometheus/common `model/fingerprinting.go`, `Fingerprint.String`; every capture in
/// `fixtures/alertmanager`). Absent or empty (a hand-written sender) it is computed from the
/// labels, as before.
fn fingerprint(index: usize, given: Option<&str>) -> Result<(), PayloadError> {
    match given {
        None | Some("") => Ok(()),
        Some(f) if f.len() == 16 && f.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) => {
            Ok(())
        }
        Some(f) => Err(PayloadError::BadFingerprint {
            index,
            bytes: f.len(),
        }),
    }
}

/// One alert's fields; `index` is its place, for the text.
pub fn check_alert(index: usize, alert: &AlertDto) -> Result<(), PayloadError> {
    fingerprint(index, alert.fingerprint.as_deref())?;
    labels(&|| format!("of alert {index}"), &alert.labels)?;
    annotations(index, &alert.annotations)?;
    word(
        || format!("generatorURL of alert {index}"),
        &alert.generator_url,
        MAX_URL_BYTES,
    )
}

/// Every limit above, and at most `max_alerts` alerts; the first problem found.
pub fn check(payload: &WebhookPayload, max_alerts: usize) -> Result<(), PayloadError> {
    if payload.alerts.len() > max_alerts {
        return Err(PayloadError::TooManyAlerts {
            count: payload.alerts.len(),
            limit: max_alerts,
        });
    }
    word(|| "receiver".into(), &payload.receiver, MAX_RECEIVER_BYTES)?;
    word(
        || "groupKey".into(),
        &payload.group_key,
        MAX_GROUP_KEY_BYTES,
    )?;
    word(
        || "externalURL".into(),
        &payload.external_url,
        MAX_URL_BYTES,
    )?;
    if let Some(version) = &payload.version {
        word(|| "version".into(), version, MAX_WORD_BYTES)?;
    }
    if let Some(reason) = &payload.notification_reason {
        word(|| "notification_reason".into(), reason, MAX_WORD_BYTES)?;
    }
    labels(&|| "of routeLabels".into(), &payload.route_labels)?;
    payload
        .alerts
        .iter()
        .enumerate()
        .try_for_each(|(index, a)| check_alert(index, a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(alert: serde_json::Value) -> WebhookPayload {
        let body = serde_json::json!({"receiver": "r", "groupKey": "{}:{}", "alerts": [alert]});
        WebhookPayload::parse(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    fn refusal(alert: serde_json::Value) -> String {
        check(&payload(alert), 10).unwrap_err().to_string()
    }

    fn with(labels: serde_json::Value) -> serde_json::Value {
        serde_json::json!({"status": "firing", "startsAt": "2026-11-24T10:04:07Z",
                           "fingerprint": "0123456789abcdef", "labels": labels})
    }

    #[test]
    fn every_capture_is_within_the_limits() {
        for capture in crate::fixtures::CAPTURES {
            let payload = WebhookPayload::parse(&capture.body()).unwrap();
            check(&payload, 1000).unwrap();
        }
    }

    #[test]
    fn refusals_name_the_field_and_the_limit_never_the_value() {
        let huge = "v".repeat(5000);
        let text = refusal(with(serde_json::json!({"application": huge})));
        assert_eq!(
            text,
            "label \"application\" of alert 0 is 5000 bytes long, over the limit of 1024 bytes"
        );
        let text = refusal(with(serde_json::json!({"application": "a\u{0}b"})));
        assert_eq!(
            text,
            "label \"application\" of alert 0 holds a control character (U+0000 at byte 1), which it may not"
        );
        let long_name = "n".repeat(300);
        let text = refusal(with(serde_json::json!({long_name: "x"})));
        assert!(
            text.starts_with(&format!("the name of label \"{}\"… of alert 0 is 300 bytes long, over the limit of 256 bytes", "n".repeat(64))),
            "{text}"
        );
        let mut alert = with(serde_json::json!({}));
        alert["fingerprint"] = "f".repeat(900).into();
        assert_eq!(
            refusal(alert),
            "fingerprint of alert 0 is 900 bytes, not 16 lowercase hex digits as Alertmanager sends"
        );
    }

    #[test]
    fn fingerprints_must_be_alertmanagers_form() {
        for good in [None, Some(""), Some("0123456789abcdef")] {
            fingerprint(0, good).unwrap();
        }
        for bad in [
            "0123456789ABCDEF",
            "0123456789abcde",
            "0123456789abcdef0",
            "f0f0f0f0f0f0f0f\n",
            "0123456789abcdeg",
        ] {
            assert!(fingerprint(0, Some(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn annotations_may_span_lines_but_hold_no_nul() {
        let mut alert = with(serde_json::json!({}));
        alert["annotations"] = serde_json::json!({"description": "line one\nline two\ttab"});
        check(&payload(alert.clone()), 1).unwrap();
        alert["annotations"] = serde_json::json!({"description": "a\u{0}"});
        assert!(refusal(alert).starts_with(
            "annotation \"description\" of alert 0 holds a control character (U+0000"
        ));
    }
}
