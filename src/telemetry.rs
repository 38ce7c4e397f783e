//! Logs (tracing) and metrics (prometheus-client, one explicit registry per service instance).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::policy::ActionKind;

/// `TOKEN_ROTATOR_LOG_FORMAT=json` for JSON lines, anything else for text; level from `RUST_LOG`
/// (else `default_level`). Logs go to stderr so a command's own output on stdout stays clean.
pub fn init_logging(default_level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = std::env::var("TOKEN_ROTATOR_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // `try_init`: a second call (tests, demo inside a test) keeps the first subscriber.
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// How a webhook request ended; the fixed label values of `token_rotator_webhook_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WebhookOutcome {
    Accepted,
    Duplicate,
    Unauthorized,
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unavailable,
}

impl WebhookOutcome {
    const ALL: [WebhookOutcome; 7] = [
        WebhookOutcome::Accepted,
        WebhookOutcome::Duplicate,
        WebhookOutcome::Unauthorized,
        WebhookOutcome::BadRequest,
        WebhookOutcome::PayloadTooLarge,
        WebhookOutcome::UnsupportedMediaType,
        WebhookOutcome::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Accepted => "accepted",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Unauthorized => "unauthorized",
            WebhookOutcome::BadRequest => "bad_request",
            WebhookOutcome::PayloadTooLarge => "payload_too_large",
            WebhookOutcome::UnsupportedMediaType => "unsupported_media_type",
            WebhookOutcome::Unavailable => "unavailable",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabel {
    action: &'static str,
}

pub struct Metrics {
    registry: Registry,
    webhook_requests: Family<OutcomeLabel, Counter>,
    alerts_received: Family<StatusLabel, Counter>,
    decisions: Family<ActionLabel, Counter>,
    truncated_alerts: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let webhook_requests = Family::<OutcomeLabel, Counter>::default();
        let alerts_received = Family::<StatusLabel, Counter>::default();
        let decisions = Family::<ActionLabel, Counter>::default();
        let truncated_alerts = Counter::default();
        registry.register(
            "token_rotator_webhook_requests",
            "Alertmanager webhook requests, by how they ended",
            webhook_requests.clone(),
        );
        registry.register(
            "token_rotator_alerts_received",
            "Alerts newly journaled, by alert status (duplicates not counted)",
            alerts_received.clone(),
        );
        registry.register(
            "token_rotator_decisions",
            "Decisions made for newly journaled alerts, by action",
            decisions.clone(),
        );
        registry.register(
            "token_rotator_alerts_truncated",
            "Alerts Alertmanager dropped from payloads because of max_alerts (truncatedAlerts)",
            truncated_alerts.clone(),
        );
        // Every series exists from the start, so rate() and absent-based alerts work at once.
        for outcome in WebhookOutcome::ALL {
            let _ = webhook_requests.get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            });
        }
        for status in ["firing", "resolved"] {
            let _ = alerts_received.get_or_create(&StatusLabel { status });
        }
        for action in ActionKind::ALL {
            let _ = decisions.get_or_create(&ActionLabel {
                action: action.as_str(),
            });
        }
        Self {
            registry,
            webhook_requests,
            alerts_received,
            decisions,
            truncated_alerts,
        }
    }

    pub fn webhook_request(&self, outcome: WebhookOutcome) {
        self.webhook_requests
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    pub fn alert_received(&self, status: &'static str, action: ActionKind) {
        self.alerts_received
            .get_or_create(&StatusLabel { status })
            .inc();
        self.decisions
            .get_or_create(&ActionLabel {
                action: action.as_str(),
            })
            .inc();
    }

    pub fn alerts_truncated(&self, count: u64) {
        self.truncated_alerts.inc_by(count);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}
