//! The service's metrics, in an explicit registry (no global state, a fresh one per test).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::labels::{
    ActionLabel, EnvironmentLabel, ErrorLabel, JournalSnapshot, OutcomeLabel, PhaseLabel,
    ScheduleLabel, StatusLabel, TargetLabels, UpstreamLabel, UpstreamOutcome, WEEKS,
    WebhookOutcome, WeekLabel,
};
use crate::phase::Phase;
use crate::policy::ActionKind;

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds from 5 ms to ~80 s: webhook answers and journal commits.
fn fast_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Seconds from 1 s to ~9 days: how long a rotation stays in a phase.
fn phase_buckets() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 4.0, 11))
}

pub struct Metrics {
    registry: Registry,
    upstream_requests: Family<UpstreamOutcome, Counter>,
    upstream_duration: Histograms<UpstreamLabel>,
    webhook_requests: Family<OutcomeLabel, Counter>,
    webhook_duration: Histogram,
    alerts_received: Family<StatusLabel, Counter>,
    decisions: Family<ActionLabel, Counter>,
    truncated_alerts: Counter,
    rotations_ended: Family<PhaseLabel, Counter>,
    phase_duration: Histograms<PhaseLabel>,
    retries: Family<UpstreamLabel, Counter>,
    journal_commit: Histogram,
    // Read from the journal at scrape time, so they are true after a restart too.
    rotations: Family<PhaseLabel, Gauge>,
    phase_age: Family<PhaseLabel, Gauge<f64, AtomicU64>>,
    slack_queue: Gauge,
    token_expiry: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    tokens_expiring: Family<WeekLabel, Gauge>,
    alert_first_seen: Family<TargetLabels, Gauge<f64, AtomicU64>>,
    unlisted_targets: Gauge,
    last_success: Gauge<f64, AtomicU64>,
    slack_errors: Family<ErrorLabel, Counter>,
    slack_refused: Gauge,
    identities_refused: Gauge,
    next_rotation: Family<ScheduleLabel, Gauge<f64, AtomicU64>>,
    last_sweep: Family<EnvironmentLabel, Gauge<f64, AtomicU64>>,
    leader: Gauge,
    leader_epoch: Gauge,
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
        let webhook_duration = fast_buckets();
        let rotations_ended = Family::<PhaseLabel, Counter>::default();
        let phase_duration: Histograms<PhaseLabel> = Family::new_with_constructor(phase_buckets);
        let retries = Family::<UpstreamLabel, Counter>::default();
        let journal_commit = fast_buckets();
        let upstream_requests = Family::<UpstreamOutcome, Counter>::default();
        let upstream_duration: Histograms<UpstreamLabel> =
            Family::new_with_constructor(fast_buckets);
        registry.register(
            "token_rotator_upstream_requests",
            "Calls to Signon, Kubernetes, Slack and Alertmanager, by outcome (ok, transient, permanent)",
            upstream_requests.clone(),
        );
        registry.register_with_unit(
            "token_rotator_upstream_request_duration",
            "Time of calls to each upstream",
            Unit::Seconds,
            upstream_duration.clone(),
        );
        let rotations = Family::<PhaseLabel, Gauge>::default();
        let phase_age = Family::<PhaseLabel, Gauge<f64, AtomicU64>>::default();
        let slack_queue = Gauge::default();
        let token_expiry = Family::<TargetLabels, Gauge<f64, AtomicU64>>::default();
        let alert_first_seen = Family::<TargetLabels, Gauge<f64, AtomicU64>>::default();
        let tokens_expiring = Family::<WeekLabel, Gauge>::default();
        registry.register(
            "token_rotator_tokens_expiring",
            "Tokens expiring in each of the next 12 weeks (week 1: within 7 days or already expired): every token of the last inventory, else those of finished rotations",
            tokens_expiring.clone(),
        );
        for week in WEEKS {
            let _ = tokens_expiring.get_or_create(&WeekLabel { week });
        }
        let last_success = Gauge::<f64, AtomicU64>::default();
        let slack_errors = Family::<ErrorLabel, Counter>::default();
        let next_rotation = Family::<ScheduleLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "token_rotator_next_rotation_timestamp_seconds",
            "When each scheduled target is next due to rotate",
            next_rotation.clone(),
        );
        let last_sweep = Family::<EnvironmentLabel, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "token_rotator_sweep_last_finished_timestamp_seconds",
            "When each environment's last nightly sweep of superseded tokens finished (what it did: the status page and `token-rotator tokens`)",
            last_sweep.clone(),
        );
        let slack_refused = Gauge::default();
        let identities_refused = Gauge::default();
        registry.register(
            "token_rotator_issuer_identity_problems",
            "Issuers whose identity check (the account token-rotator acts as, checked at start-up and daily) was refused or warned (see /readyz)",
            identities_refused.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "token_rotator_leader",
            "1 while this replica leads (runs rotations, the scheduler, reconcile and Slack threads), 0 on a standby",
            leader.clone(),
        );
        let leader_epoch = Gauge::default();
        registry.register(
            "token_rotator_leader_epoch",
            "The leadership epoch this replica last led under (PostgreSQL journal; 0: never led)",
            leader_epoch.clone(),
        );
        registry.register(
            "token_rotator_slack_errors",
            "Slack Web API errors by class: ratelimited, unavailable, message_rejected, or the code a person must fix (invalid_auth, channel_not_found, not_in_channel…)",
            slack_errors.clone(),
        );
        registry.register(
            "token_rotator_slack_refused",
            "1 while Slack refuses the bot token or the channel (see /readyz), else 0",
            slack_refused.clone(),
        );
        registry.register(
            "token_rotator_build",
            "The running version",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_with_unit(
            "token_rotator_webhook_request_duration",
            "Time to answer POST /v1/alertmanager, journal write included",
            Unit::Seconds,
            webhook_duration.clone(),
        );
        registry.register(
            "token_rotator_rotations_ended",
            "Rotations that reached a terminal phase, by that phase",
            rotations_ended.clone(),
        );
        registry.register_with_unit(
            "token_rotator_rotation_phase_duration",
            "Time rotations spent in a phase before leaving it",
            Unit::Seconds,
            phase_duration.clone(),
        );
        registry.register(
            "token_rotator_retries",
            "Failed steps that will be tried again, by the upstream that failed",
            retries.clone(),
        );
        registry.register_with_unit(
            "token_rotator_journal_commit_duration",
            "Time of one journal transaction (an fsync) for a batch of webhook deliveries",
            Unit::Seconds,
            journal_commit.clone(),
        );
        registry.register(
            "token_rotator_rotations",
            "Rotations under way, by phase",
            rotations.clone(),
        );
        registry.register_with_unit(
            "token_rotator_rotation_phase_age",
            "Age of the oldest rotation in each active phase",
            Unit::Seconds,
            phase_age.clone(),
        );
        registry.register(
            "token_rotator_slack_queue_depth",
            "Slack messages not yet delivered",
            slack_queue.clone(),
        );
        registry.register(
            "token_rotator_token_expiry_timestamp_seconds",
            "Expiry of the token the last finished rotation of a target made",
            token_expiry.clone(),
        );
        registry.register(
            "token_rotator_alert_first_seen_timestamp_seconds",
            "When the alert of a target with a firing alert first arrived",
            alert_first_seen.clone(),
        );
        // A gauge, not a counter: the series are made again from the journal at every scrape,
        // so the same left-out targets would be counted again each time.
        let unlisted_targets = Gauge::default();
        registry.register(
            "token_rotator_alert_targets_without_series",
            "Targets with a firing alert given no token_rotator_alert_first_seen_timestamp_seconds series: not listed by their environment's last inventory, or beyond the cap where no inventory was taken",
            unlisted_targets.clone(),
        );
        registry.register(
            "token_rotator_last_success_timestamp_seconds",
            "When a rotation last ended done",
            last_success.clone(),
        );
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
        for upstream in ["signon", "kubernetes", "slack", "alertmanager", "journal"] {
            let _ = retries.get_or_create(&UpstreamLabel { upstream });
        }
        for phase in [
            "done",
            "failed",
            "rolled_back",
            "cancelled",
            "manual",
            "ignored",
            "silenced",
            "unroutable",
        ] {
            let _ = rotations_ended.get_or_create(&PhaseLabel { phase });
        }
        Self {
            registry,
            upstream_requests,
            upstream_duration,
            webhook_requests,
            webhook_duration,
            alerts_received,
            decisions,
            truncated_alerts,
            rotations_ended,
            phase_duration,
            retries,
            journal_commit,
            rotations,
            phase_age,
            slack_queue,
            token_expiry,
            tokens_expiring,
            alert_first_seen,
            unlisted_targets,
            last_success,
            slack_errors,
            slack_refused,
            identities_refused,
            next_rotation,
            last_sweep,
            leader,
            leader_epoch,
        }
    }

    pub fn webhook_answered(&self, seconds: f64) {
        self.webhook_duration.observe(seconds);
    }

    /// A rotation left `from` (after `seconds` in it) for `to`.
    pub fn phase_changed(
        &self,
        from: &'static str,
        to: &'static str,
        seconds: f64,
        terminal: bool,
    ) {
        self.phase_duration
            .get_or_create(&PhaseLabel { phase: from })
            .observe(seconds.max(0.0));
        if terminal {
            self.rotations_ended
                .get_or_create(&PhaseLabel { phase: to })
                .inc();
        }
    }

    /// A decision that ended without a rotation (manual, ignored, unroutable).
    pub fn ended_at_once(&self, phase: &'static str) {
        self.rotations_ended
            .get_or_create(&PhaseLabel { phase })
            .inc();
    }

    pub fn upstream_request(&self, upstream: &'static str, outcome: &'static str, seconds: f64) {
        self.upstream_requests
            .get_or_create(&UpstreamOutcome { upstream, outcome })
            .inc();
        self.upstream_duration
            .get_or_create(&UpstreamLabel { upstream })
            .observe(seconds);
    }

    /// A Slack call failed with `error` (a bounded label); `refused` says whether a person must act.
    pub fn slack_error(&self, error: &'static str) {
        self.slack_errors.get_or_create(&ErrorLabel { error }).inc();
    }

    pub fn slack_refused(&self, refused: bool) {
        self.slack_refused.set(i64::from(refused));
    }

    pub fn identities_refused(&self, problems: usize) {
        self.identities_refused.set(problems as i64);
    }

    pub fn leadership(&self, leading: bool, epoch: i64) {
        self.leader.set(i64::from(leading));
        if leading {
            self.leader_epoch.set(epoch);
        }
    }

    pub fn retried(&self, upstream: &'static str) {
        self.retries
            .get_or_create(&UpstreamLabel { upstream })
            .inc();
    }

    pub fn journal_committed(&self, seconds: f64) {
        self.journal_commit.observe(seconds);
    }

    /// Replaces the scrape-time gauges with what the journal says now.
    pub fn set_snapshot(&self, snapshot: JournalSnapshot) {
        self.rotations.clear();
        self.phase_age.clear();
        // Every active phase is a series, 0 included, so dashboards and alerts see zeros.
        for phase in Phase::ALL.into_iter().filter(|p| !p.is_terminal()) {
            self.rotations
                .get_or_create(&PhaseLabel {
                    phase: phase.as_str(),
                })
                .set(0);
        }
        for (phase, count, oldest) in snapshot.active {
            self.rotations
                .get_or_create(&PhaseLabel { phase })
                .set(count);
            self.phase_age
                .get_or_create(&PhaseLabel { phase })
                .set(oldest);
        }
        self.slack_queue.set(snapshot.slack_queue);
        self.token_expiry.clear();
        for (target, expiry) in snapshot.token_expiry {
            self.token_expiry.get_or_create(&target).set(expiry);
        }
        for (week, count) in WEEKS.into_iter().zip(snapshot.expiring_by_week) {
            self.tokens_expiring
                .get_or_create(&WeekLabel { week })
                .set(count);
        }
        self.alert_first_seen.clear();
        for (target, seen) in snapshot.alert_first_seen {
            self.alert_first_seen.get_or_create(&target).set(seen);
        }
        self.unlisted_targets.set(snapshot.unlisted_targets);
        if let Some(at) = snapshot.last_success {
            self.last_success.set(at);
        }
        self.last_sweep.clear();
        for (environment, at) in snapshot.last_sweep {
            self.last_sweep
                .get_or_create(&EnvironmentLabel { environment })
                .set(at);
        }
        self.next_rotation.clear();
        for (schedule, due) in snapshot.next_rotation {
            self.next_rotation
                .get_or_create(&ScheduleLabel { schedule })
                .set(due);
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
