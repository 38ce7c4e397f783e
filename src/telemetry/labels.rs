//! The values metrics are labelled and fed with: webhook outcomes, per-target labels, and what
//! `/metrics` reads from the journal at scrape time.

use prometheus_client::encoding::EncodeLabelSet;

/// The fixed label sets of the service's own metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabel {
    pub(super) outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StatusLabel {
    pub(super) status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ActionLabel {
    pub(super) action: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PhaseLabel {
    pub(super) phase: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct UpstreamLabel {
    pub(super) upstream: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ErrorLabel {
    pub(super) error: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct UpstreamOutcome {
    pub(super) upstream: &'static str,
    pub(super) outcome: &'static str,
}

/// A scheduled target, by its name.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScheduleLabel {
    pub schedule: String,
}

/// A served environment, by its name (a configured set: bounded).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EnvironmentLabel {
    pub environment: String,
}

/// Per-target labels: only on the gauges that need them.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub environment: String,
    pub api_user: String,
    pub application: String,
}

/// How many weeks ahead `token_rotator_tokens_expiring` counts.
pub const EXPIRY_WEEKS: usize = 12;

/// `week="1"` … `week="12"`: the week from now a token expires in.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct WeekLabel {
    pub(super) week: &'static str,
}

pub(super) const WEEKS: [&str; EXPIRY_WEEKS] = [
    "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12",
];

/// What the journal says now, for the scrape-time gauges.
#[derive(Debug, Default)]
pub struct JournalSnapshot {
    /// Active (non-terminal) rotations per phase, with the oldest one's seconds in that phase.
    pub active: Vec<(&'static str, i64, f64)>,
    pub slack_queue: i64,
    /// Expiry (Unix seconds) of the token each target's last finished rotation made.
    pub token_expiry: Vec<(TargetLabels, f64)>,
    /// The same tokens counted by the week (from now) they expire in: bounded, always 12 series.
    pub expiring_by_week: [i64; EXPIRY_WEEKS],
    /// When the current firing episode of each target's alert first arrived (Unix seconds).
    pub alert_first_seen: Vec<(TargetLabels, f64)>,
    pub last_success: Option<f64>,
    /// Each scheduled target's next due time (Unix seconds).
    pub next_rotation: Vec<(String, f64)>,
    /// When each environment's last sweep of superseded tokens finished (Unix seconds).
    pub last_sweep: Vec<(String, f64)>,
    /// Firing targets given no series of their own (see `store::snapshot`).
    pub unlisted_targets: i64,
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
    pub(super) const ALL: [WebhookOutcome; 7] = [
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
