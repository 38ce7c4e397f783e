//! Intake: turns one webhook payload into one routed request per alert, with its decision.
//!
//! Pure: no I/O. The web layer journals what this returns before it answers Alertmanager.

pub mod auth;
pub mod limits;
pub mod payload;

use std::collections::BTreeSet;

pub use crate::domain::AlertStatus;
use crate::domain::{ApiUser, Application, Environment, Labels, Target};
use crate::policy::Policy;
pub use crate::store::delivery::{Delivery, IncomingAlert, Routing};
pub use payload::{AlertDto, PayloadError, WebhookPayload};

/// What routing an alert needs: the environments this instance serves (the allow-list), the
/// fallback for an alert without an `environment` label, and the rules.
#[derive(Debug, Clone)]
pub struct Routes {
    pub served: BTreeSet<String>,
    pub default_environment: Option<Environment>,
    pub policy: Policy,
}

/// Routes every alert of a payload: resolve its target, then ask the policy.
pub fn route(payload: WebhookPayload, routes: &Routes) -> Delivery {
    let alerts = payload
        .alerts
        .into_iter()
        .map(|alert| route_alert(alert, routes))
        .collect();
    Delivery {
        receiver: payload.receiver,
        group_key: payload.group_key,
        status: payload.status,
        external_url: payload.external_url,
        truncated_alerts: payload.truncated_alerts,
        alerts,
    }
}

fn route_alert(alert: AlertDto, routes: &Routes) -> IncomingAlert {
    // The dedupe key holds the hash of the labels, as Alertmanager computes it: a sender that
    // claims a real alert's fingerprint for other labels (to make the real one look like a
    // duplicate) is kept apart, as `<its fingerprint>:<the labels' fingerprint>`.
    // Said once per delivery by whoever journals it ([`claimed_fingerprints`]), not here once
    // per alert: a line per forged alert was a second log line per webhook.
    let computed = fingerprint_of(&alert.labels);
    let fingerprint = match alert.fingerprint.as_deref().map(str::trim) {
        Some(given) if given == computed => computed,
        Some(given) if !given.is_empty() => format!("{given}{KEPT_APART}{computed}"),
        _ => computed,
    };
    let routing = match target_of(&alert.labels, routes.default_environment.as_ref()) {
        // Only an environment this instance was told it serves: a mistyped or forged label
        // ("prod") must not reach an upstream under a mode nobody chose.
        Ok(target) if !routes.served.contains(target.environment.as_str()) => Routing::Unroutable {
            reason: format!(
                "environment {:?} is not served by this instance (served: {})",
                target.environment.as_str(),
                routes
                    .served
                    .iter()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        Ok(target) => {
            // The rules see the canonical target, not the spelling the sender chose; the labels
            // are copied only when a spelling differs (Alertmanager's seldom do).
            let decision = if spelled_canonically(&alert.labels, &target) {
                routes.policy.decide(&alert.labels)
            } else {
                let mut labels = alert.labels.clone();
                labels.insert("environment".into(), target.environment.to_string());
                labels.insert("api_user".into(), target.api_user.to_string());
                labels.insert("application".into(), target.application.to_string());
                routes.policy.decide(&labels)
            };
            Routing::Routed {
                decision: Box::new(decision),
                target,
            }
        }
        Err(reason) => Routing::Unroutable { reason },
    };
    IncomingAlert {
        fingerprint,
        status: alert.status,
        starts_at: alert.starts_at,
        ends_at: alert.ends_at(),
        labels: alert.labels,
        annotations: alert.annotations,
        routing,
    }
}

/// Joins a claimed fingerprint and its labels' own hash in a dedupe key. Neither holds it: the
/// hash is hex digits, and a claimed fingerprint is checked to be ([`limits`]).
const KEPT_APART: char = ':';

/// The alerts of `delivery` whose fingerprint was not the hash of their labels (each kept as
/// `<given>:<labels' hash>`), for the one line that journals the delivery to say.
pub fn claimed_fingerprints(delivery: &Delivery) -> impl Iterator<Item = &str> {
    delivery
        .alerts
        .iter()
        .map(|alert| alert.fingerprint.as_str())
        .filter(|key| key.contains(KEPT_APART))
}

/// Whether `labels` already name `target` as the rules would see it: every one of the three
/// present and spelled canonically.
fn spelled_canonically(labels: &Labels, target: &Target) -> bool {
    let is = |name: &str, canonical: &str| labels.get(name).map(String::as_str) == Some(canonical);
    is("environment", target.environment.as_str())
        && is("api_user", target.api_user.as_str())
        && is("application", target.application.as_str())
}

/// The `(environment, api_user, application)` an alert is about, or why it has none.
pub fn target_of(
    labels: &Labels,
    default_environment: Option<&Environment>,
) -> Result<Target, String> {
    let mut missing = Vec::new();
    let environment = match labels.get("environment").map(|v| Environment::parse(v)) {
        Some(Ok(environment)) => Some(environment),
        _ => {
            let fallback = default_environment.cloned();
            if fallback.is_none() {
                missing.push("environment (and no default_environment is configured)");
            }
            fallback
        }
    };
    let api_user = labels.get("api_user").and_then(|v| ApiUser::parse(v).ok());
    if api_user.is_none() {
        missing.push("api_user");
    }
    let application = labels
        .get("application")
        .and_then(|v| Application::parse(v).ok());
    if application.is_none() {
        missing.push("application");
    }
    match (environment, api_user, application) {
        (Some(environment), Some(api_user), Some(application)) => Ok(Target {
            environment,
            api_user,
            application,
        }),
        _ => Err(format!("missing or empty label: {}", missing.join(", "))),
    }
}

/// Alertmanager's fingerprint of a label set: Prometheus's `LabelSet.Fingerprint`
/// (`prometheus/common` `model/signature.go`, `labelSetToFingerprint`): FNV-1a 64 over each
/// name and value in name order, each followed by the separator byte 0xff, as 16 hex digits.
/// Checked against every real Alertmanager 0.25 capture in `fixtures/alertmanager`.
pub fn fingerprint_of(labels: &Labels) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    // `Labels` is a BTreeMap: already in name order.
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_target_needs_all_three_labels() {
        let err = target_of(&labels(&[("api_user", "a@b")]), None).unwrap_err();
        assert_eq!(
            err,
            "missing or empty label: environment (and no default_environment is configured), application"
        );
    }

    #[test]
    fn environment_falls_back_to_the_configured_default() {
        let default = Environment::parse("production").unwrap();
        let target = target_of(
            &labels(&[("api_user", "a@b"), ("application", "Publishing API")]),
            Some(&default),
        )
        .unwrap();
        assert_eq!(target.environment.as_str(), "production");
    }

    #[test]
    fn a_claimed_fingerprint_is_kept_beside_the_labels_hash_and_counted() {
        let routes = Routes {
            served: BTreeSet::new(),
            default_environment: None,
            policy: Policy::new(Vec::new(), Vec::new()),
        };
        let capture = crate::fixtures::CAPTURES[0].body();
        let own = WebhookPayload::parse(&capture).unwrap();
        let computed = own.alerts[0].fingerprint.clone().unwrap();
        let delivery = route(own.clone(), &routes);
        assert_eq!(delivery.alerts[0].fingerprint, computed);
        assert_eq!(claimed_fingerprints(&delivery).count(), 0);

        let mut forged = own;
        forged.alerts[0].fingerprint = Some("0123456789abcdef".into());
        let delivery = route(forged, &routes);
        let kept = format!("0123456789abcdef:{computed}");
        assert_eq!(delivery.alerts[0].fingerprint, kept);
        assert_eq!(claimed_fingerprints(&delivery).collect::<Vec<_>>(), [kept]);
    }

    #[test]
    fn fingerprints_are_alertmanagers_own() {
        // Capture 01's alert, fingerprinted by Alertmanager 0.25.
        let labels = labels(&[
            ("alertname", "SignonApiUserTokenExpirySoon"),
            ("api_user", "short-url-manager@alphagov.co.uk"),
            ("application", "Publishing API"),
            ("environment", "production"),
            ("severity", "warning"),
        ]);
        let capture = crate::fixtures::CAPTURES[0].body();
        let payload = WebhookPayload::parse(&capture).unwrap();
        assert_eq!(payload.alerts[0].labels, labels);
        assert_eq!(Some(fingerprint_of(&labels)), payload.alerts[0].fingerprint);
    }
}
