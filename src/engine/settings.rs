//! The engine's settings, from `[rotation]`, `[environments.*]` and `[slack]`.

use std::collections::BTreeMap;
use std::time::Duration;

use super::RetryPolicy;
use crate::policy::Mode;

/// Settings of the engine, from the `[rotation]` config section.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// `[environments.<name>]`: the environments this instance serves, each with its mode
    /// (`active` unless it says `shadow`). An alert for any other is unroutable at intake.
    pub modes: BTreeMap<String, Mode>,
    /// Time between verifying the new token and revoking the old one.
    pub grace: Duration,
    /// Give up this long before the old token expires, so a person still has time.
    pub safety_margin: Duration,
    /// Life of a new token an alert asked for (`crate::adapters::DEFAULT_TOKEN_LIFE` unless
    /// configured); a schedule's tokens live one period and one overlap.
    pub token_life: Duration,
    /// A new alert this soon after a finished rotation of the same target is not acted on
    /// (an issuer's expiry metric may be cached, so alerts can outlive the token they were about).
    pub cooldown: Duration,
    pub retry: RetryPolicy,
    /// Which Slack channel each environment's threads go to.
    pub slack: SlackRouting,
    /// How long an Approve/Reject request stays open before it becomes `manual`.
    pub approval_timeout: Duration,
    /// A live token expiring later than this from now is fresh: an issuer that renews tokens by
    /// itself made it (see `Issuer::self_renews`), and the rotation adopts it instead of minting.
    pub adopt_fresher_than: Duration,
    /// How often a running Job or rollout is looked at again.
    pub poll: Duration,
    /// Per application (name or parameterized name): a URL the new token must open (2xx), as
    /// the runbook's "make an API call from the client app" — on top of the verifier's check.
    pub probes: BTreeMap<String, String>,
    /// Where token-rotator is reached from outside, for handover links.
    pub public_url: String,
    /// Finished rotations and handled alerts older than this are exported and pruned.
    pub retention: Duration,
    /// `[owners]`: who is asked about an API user's tokens when its rule names nobody (a dead
    /// pair under a `rotate` rule).
    pub owners: BTreeMap<String, Vec<String>>,
    /// Steps running at once, in all (`rotation.max_in_flight`).
    pub max_in_flight: usize,
    /// Steps running at once against one upstream: an environment's issuer and cluster, a
    /// schedule's issuer, Alertmanager (`rotation.max_in_flight_per_upstream`).
    pub max_in_flight_per_upstream: usize,
    /// `[sweep]`: when superseded tokens are revoked each day.
    pub sweep: SweepSettings,
}

/// `[sweep]`: once a day, at `at` in `zone`, each served environment's superseded tokens are
/// revoked where it is safe (see `engine::sweep`).
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSettings {
    pub enabled: bool,
    /// The local time of day the sweep is due.
    pub at: jiff::civil::Time,
    pub zone: jiff::tz::TimeZone,
}

impl SweepSettings {
    /// 02:00 in London: after the issuer's own nightly renewal and its sync into the cluster.
    pub const DEFAULT_AT: &str = "02:00";
    pub const DEFAULT_ZONE: &str = "Europe/London";
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            at: jiff::civil::Time::constant(2, 0, 0, 0),
            // The config always resolves the zone (and says so when it cannot); this default
            // serves settings built in code, where UTC is the safe stand-in.
            zone: jiff::tz::TimeZone::get(Self::DEFAULT_ZONE).unwrap_or(jiff::tz::TimeZone::UTC),
        }
    }
}

impl EngineSettings {
    /// The probe URL of an application, by its name or its parameterized name.
    pub fn probe(&self, application: &str) -> Option<&String> {
        self.probes.get(application).or_else(|| {
            self.probes
                .get(&crate::domain::parameterize::parameterize(application))
        })
    }
}

/// Slack channels: a rule's own, else its environment's, else the default.
#[derive(Debug, Clone, Default)]
pub struct SlackRouting {
    pub default_channel: Option<String>,
    pub channels: BTreeMap<String, String>,
}

impl SlackRouting {
    pub fn channel(&self, rule_channel: Option<&str>, environment: &str) -> String {
        rule_channel
            .map(str::to_owned)
            .or_else(|| self.channels.get(environment).cloned())
            .or_else(|| self.default_channel.clone())
            .unwrap_or_default()
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            modes: BTreeMap::new(),
            grace: Duration::from_secs(3600),
            safety_margin: Duration::from_secs(2 * 86400),
            token_life: crate::adapters::DEFAULT_TOKEN_LIFE,
            cooldown: Duration::from_secs(86400),
            retry: RetryPolicy::default(),
            slack: SlackRouting::default(),
            approval_timeout: Duration::from_secs(24 * 3600),
            adopt_fresher_than: Duration::from_secs(60 * 86400),
            poll: Duration::from_secs(2),
            probes: BTreeMap::new(),
            public_url: "http://127.0.0.1:8080".into(),
            retention: Duration::from_secs(400 * 86400),
            owners: BTreeMap::new(),
            max_in_flight: 32,
            max_in_flight_per_upstream: 16,
            sweep: SweepSettings::default(),
        }
    }
}
