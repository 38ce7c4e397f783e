//! Intake: turns one webhook payload into one routed request per alert, with its decision.
//!
//! Pure: no I/O. The web layer journals what this returns before it answers Alertmanager.

pub mod auth;
pub mod payload;

use std::collections::BTreeSet;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::domain::{ApiUser, Application, Environment, Labels, Target};
use crate::policy::{Decision, Policy};
pub use payload::{AlertDto, AlertStatus, PayloadError, WebhookPayload};

/// One webhook delivery, ready for the journal.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub receiver: String,
    pub group_key: String,
    pub status: Option<AlertStatus>,
    pub external_url: String,
    pub truncated_alerts: u64,
    pub alerts: Vec<IncomingAlert>,
}

/// One alert of a delivery. Its dedupe key is `(fingerprint, status, starts_at)`: the same alert
/// re-sent by a retry, a repeat or another HA replica has the same key.
#[derive(Debug, Clone)]
pub struct IncomingAlert {
    pub fingerprint: String,
    pub status: AlertStatus,
    pub starts_at: Timestamp,
    pub ends_at: Option<Timestamp>,
    pub labels: Labels,
    pub annotations: Labels,
    pub routing: Routing,
}

#[derive(Debug, Clone)]
pub enum Routing {
    Routed {
        target: Target,
        /// Boxed: a decision is large and most alerts of a burst share the enum's size.
        decision: Box<Decision>,
    },
    /// The alert lacks what a rotation needs; journaled and counted, never retried by Alertmanager.
    Unroutable { reason: String },
}

/// What routing an alert needs: the environments this instance serves (the allow-list), the
/// fallback for an alert without an `environment` label, and the rules.
#[derive(Debug, Clone)]
pub struct Routes {
    pub served: BTreeSet<String>,
    pub default_environment: Option<Environment>,
    pub policy: Policy,
}

impl Routes {
    pub fn from_config(config: &crate::config::Config) -> Self {
        Self {
            served: config.engine.modes.keys().cloned().collect(),
            default_environment: config.default_environment.clone(),
            policy: config.policy.clone(),
        }
    }
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
    let fingerprint = alert
        .fingerprint
        .clone()
        .filter(|f| !f.trim().is_empty())
        .unwrap_or_else(|| fingerprint_of(&alert.labels));
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
            let mut labels = alert.labels.clone();
            labels.insert("environment".into(), target.environment.to_string());
            Routing::Routed {
                decision: Box::new(routes.policy.decide(&labels)),
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

/// Alertmanager's fingerprint is a hash of the label set; for senders that omit it we derive a
/// stable one the same way (not byte-compatible with Alertmanager's, and it need not be).
fn fingerprint_of(labels: &Labels) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in labels {
        hasher.update(name.as_bytes());
        hasher.update([0xff]);
        hasher.update(value.as_bytes());
        hasher.update([0xff]);
    }
    hasher.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
    fn derived_fingerprints_are_stable_and_label_sensitive() {
        let a = fingerprint_of(&labels(&[("x", "1")]));
        assert_eq!(a.len(), 16);
        assert_eq!(a, fingerprint_of(&labels(&[("x", "1")])));
        assert_ne!(a, fingerprint_of(&labels(&[("x", "2")])));
    }
}
