//! Adapters: real HTTP clients for the systems a rotation touches. Issuers and distributors are
//! traits because more than one real implementation exists or is planned; the rest are structs.

pub mod alertmanager;
pub mod file;
pub mod gitlab;
pub mod handover;
pub mod kubernetes;
pub mod settings;
pub mod signon;
pub mod signon_job;
pub mod slack;
pub mod synoptic;
mod tokens;

use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::domain::Target;

pub use tokens::{
    IdentityReport, InventoriedToken, Inventory, MintedToken, MintedValue, Resolved, TokenInfo,
    TokenListing,
};

/// How an upstream call failed, which decides what the engine does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdapterError {
    /// Worth retrying: timeouts, connection failures, 429, 5xx.
    #[error("{upstream}: {detail} (will retry)")]
    Transient {
        upstream: &'static str,
        detail: String,
    },
    /// Retrying cannot help: other 4xx, or an answer that makes no sense.
    #[error("{upstream}: {detail}")]
    Permanent {
        upstream: &'static str,
        detail: String,
    },
    /// Not failed, not done: a Job still running, a rollout under way. Ask again soon; it ends
    /// by itself (a Job's deadline, a Deployment's progress deadline).
    #[error("{upstream}: {detail} (waiting)")]
    Pending {
        upstream: &'static str,
        detail: String,
    },
}

impl AdapterError {
    /// Which system failed: the metric label of retries.
    pub fn upstream(&self) -> &'static str {
        match self {
            AdapterError::Transient { upstream, .. }
            | AdapterError::Permanent { upstream, .. }
            | AdapterError::Pending { upstream, .. } => upstream,
        }
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, AdapterError::Transient { .. })
    }

    /// Classifies a response status that is not a success.
    pub fn from_status(upstream: &'static str, status: u16, body: &str) -> Self {
        let detail = format!("HTTP {status}: {}", snippet(body));
        if status == 429 || status >= 500 {
            AdapterError::Transient { upstream, detail }
        } else {
            AdapterError::Permanent { upstream, detail }
        }
    }

    /// Classifies a transport error: never reached the server, or no answer in time.
    pub fn from_reqwest(upstream: &'static str, error: &reqwest::Error) -> Self {
        // `without_url`: a URL may carry a secret (a Slack webhook's path is one).
        let detail = match error.status() {
            Some(status) => return Self::from_status(upstream, status.as_u16(), ""),
            None if error.is_timeout() => "timed out".to_owned(),
            None if error.is_connect() => "connection failed".to_owned(),
            // A cut-off or garbled answer (a proxy, a restart mid-response) is worth another try;
            // one that is always wrong runs out of attempts and says so.
            None if error.is_decode() => "answer is not the expected JSON".to_owned(),
            None => "request failed".to_owned(),
        };
        AdapterError::Transient { upstream, detail }
    }

    pub fn pending(upstream: &'static str, detail: impl Into<String>) -> Self {
        AdapterError::Pending {
            upstream,
            detail: detail.into(),
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(self, AdapterError::Pending { .. })
    }

    pub fn permanent(upstream: &'static str, detail: impl Into<String>) -> Self {
        AdapterError::Permanent {
            upstream,
            detail: detail.into(),
        }
    }
}

/// An HTTP client for one upstream, every call bounded by its `timeout` (TLS through the
/// process's one rustls provider, ring).
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("a rustls provider is installed (install_crypto_provider)")
}

/// The start of an error body, on one line: enough to diagnose, never a whole page.
fn snippet(body: &str) -> String {
    let flat: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = flat.chars().take(200).collect();
    if flat.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// Proof that a change to the world is allowed. Only an active rotation yields one, and every
/// mutating adapter call (mint, revoke, write a Secret, put a silence) demands it: shadow mode's
/// guarantee rests on this one gate, not on each step remembering to check.
#[derive(Debug)]
pub struct Permit {
    _only_from_for_mode: (),
}

impl Permit {
    pub fn for_mode(mode: crate::policy::Mode) -> Result<Permit, AdapterError> {
        match mode {
            crate::policy::Mode::Active => Ok(Permit {
                _only_from_for_mode: (),
            }),
            crate::policy::Mode::Shadow => Err(AdapterError::permanent(
                "shadow",
                "refused: shadow mode makes no change (no mint, Secret write, revoke or silence)",
            )),
        }
    }
}

/// Counts and times every upstream call into the service's metrics, when it has them.
#[derive(Clone, Default)]
pub struct Observer(Option<std::sync::Arc<crate::telemetry::Metrics>>);

impl Observer {
    pub fn new(metrics: std::sync::Arc<crate::telemetry::Metrics>) -> Self {
        Self(Some(metrics))
    }

    /// Runs one upstream call, recording its outcome (`ok`, `transient`, `permanent`) and time.
    pub async fn time<T>(
        &self,
        upstream: &'static str,
        call: impl Future<Output = Result<T, AdapterError>>,
    ) -> Result<T, AdapterError> {
        let started = std::time::Instant::now();
        let result = call.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) if e.is_transient() || e.is_pending() => "transient",
            Err(_) => "permanent",
        };
        self.record(upstream, outcome, started.elapsed().as_secs_f64());
        result
    }

    /// Records one call that [`Observer::time`] could not wrap (its error is not an `AdapterError`).
    pub fn record(&self, upstream: &'static str, outcome: &'static str, seconds: f64) {
        if let Some(metrics) = &self.0 {
            metrics.upstream_request(upstream, outcome, seconds);
        }
    }
}

/// The life of a new token an alert asks for, unless configured: Signon's own default for API
/// users, `ApiUser::DEFAULT_TOKEN_LIFE = 2.years.to_i` (`app/models/api_user.rb`): 63 113 904 s,
/// since Rails' year is 365.2425 days.
pub const DEFAULT_TOKEN_LIFE: Duration = Duration::from_secs(63_113_904);

/// Makes, lists and revokes tokens. `key` is the rotation id: an issuer that runs Jobs names
/// them after it, so a restarted service finds its Job instead of starting another.
#[async_trait]
pub trait Issuer: Send + Sync {
    /// The issuer as people call it ("Signon", "Synoptic", "GitLab"): every sentence the engine
    /// journals or posts about this issuer's tokens names it with this, never with its own words.
    fn name(&self) -> &'static str;
    /// The alert that fires when one of this issuer's tokens nears its expiry: the rule table is
    /// asked about a pair as if that alert named it (the nightly sweep's opt-in). `None`: the
    /// issuer's tokens raise no alert of their own.
    fn expiry_alertname(&self) -> Option<&'static str> {
        None
    }
    /// Whether `mint` with `like` revokes `like` at once (GitLab's rotate endpoints). The engine
    /// then has no old token to revoke after the grace period, and nothing to roll back onto: the
    /// new token stays in place whatever verification says, and a person is told.
    fn revokes_on_mint(&self) -> bool {
        false
    }
    /// The longest life the issuer grants; a longer one asked for is cut to it (and the plan
    /// says so). `None`: no limit.
    fn longest_life(&self) -> Option<Duration> {
        None
    }
    /// Whether `list` writes something to read the tokens (a Job in the cluster). Shadow mode
    /// and `plan` then read the last [`Issuer::inventory`] instead of listing, so that they
    /// write nothing per target.
    fn list_writes(&self) -> bool {
        false
    }
    /// Whether the issuer makes new tokens by itself (Signon renews internal API users' tokens
    /// nightly): a live token far from expiry is then adopted instead of minting another.
    fn self_renews(&self) -> bool {
        false
    }
    /// Targets whose rotations must not mint at the same time share this key (a credential
    /// API whose tokens belong to an account lists them all together, so one target's new token
    /// shows up in another's listing). The engine lets one rotation per key through its minting
    /// phase at a time; the others wait, saying for which. `None`: no such constraint.
    fn serialisation_key(&self) -> Option<String> {
        None
    }
    /// The one name of the token `target` names, whatever spelling its alert or schedule used:
    /// asked before anything keys on the target (single flight, cooldown, file names, messages).
    /// By default the target as parsed (its labels are canonical already); an issuer whose
    /// owners have several spellings answers with one. A permanent error: the target names no
    /// token (the error names the label); a transient one: ask again later.
    async fn canonical_target(&self, target: &Target) -> Result<Target, AdapterError> {
        Ok(target.clone())
    }
    /// Which of `listing`'s tokens is the value in place now, for a target whose old token the
    /// journal does not know (a scheduled target's first rotation). By default the one whose last
    /// 8 characters it ends with; an issuer that lists no part of the value asks by the value.
    /// `Ok(None)` when none is; an issuer with more to say (why it cannot be) returns that error.
    async fn identify(
        &self,
        listing: &TokenListing,
        placed: &SecretString,
    ) -> Result<Option<TokenInfo>, AdapterError> {
        Ok(listing.by_last8(placed))
    }
    /// Checks, writing nothing, that the identity the issuer acts as may still mint and revoke,
    /// so that a suspended or missing account is found before a rotation needs it (at start-up
    /// and daily). `key` names the check (a Job's name). `Ok(None)`: nothing to check beyond
    /// what every call proves.
    async fn check_identity(&self, _key: &str) -> Result<Option<IdentityReport>, AdapterError> {
        Ok(None)
    }
    /// Every token of every user the issuer knows, expired ones included, writing nothing (the
    /// daily inventory). `key` names the run (a Job's name). `Ok(None)`: the issuer cannot list
    /// everything, only one target's tokens.
    async fn inventory(&self, _key: &str) -> Result<Option<Inventory>, AdapterError> {
        Ok(None)
    }
    async fn list(&self, target: &Target, key: &str) -> Result<TokenListing, AdapterError>;
    /// Idempotent by `idempotency_key` where the issuer can be (Signon's contract; Jobs named
    /// after it); see [`Issuer::recover`] for one that cannot. `like`: the token whose settings
    /// the new one copies (Synoptic's `cloneSettings`).
    async fn mint(
        &self,
        permit: &Permit,
        target: &Target,
        expires_in: Duration,
        idempotency_key: &str,
        like: Option<&str>,
    ) -> Result<MintedToken, AdapterError>;
    /// Before a resumed mint: the token an earlier try made whose answer was lost (a crash, a
    /// dropped connection, a Job removed by its TTL). An issuer without idempotency finds it as
    /// the one live token not among `known` (listed before the first try); one that records
    /// `key` with its tokens finds it by that. `None`: nothing to recover, mint.
    async fn recover(
        &self,
        _permit: &Permit,
        _target: &Target,
        _known: &[String],
        _expires_in: Duration,
        _key: &str,
    ) -> Result<Option<MintedToken>, AdapterError> {
        Ok(None)
    }
    /// Idempotent: revoking a revoked token succeeds.
    async fn revoke(
        &self,
        permit: &Permit,
        target: &Target,
        token_id: &str,
        key: &str,
    ) -> Result<(), AdapterError>;
}

/// Checks that a new token works where it is used.
#[async_trait]
pub trait Verifier: Send + Sync {
    /// Ok: the sentence saying what was checked and what answered, for the journal and Slack
    /// ("Signon accepts the new token … (GET /user.json …)").
    async fn verify(
        &self,
        target: &Target,
        application_uid: &str,
        token: &SecretString,
    ) -> Result<String, AdapterError>;

    /// The check `verify` would make, for a shadow plan.
    fn plan(&self, application_uid: &str) -> String;

    /// The runbook's "make an API call from the client app": `url` with the token must answer
    /// 2xx. 401/403 mean the token does not work there (permanent); 5xx and timeouts may pass.
    async fn probe(&self, url: &str, token: &SecretString) -> Result<(), AdapterError> {
        probe(url, token).await
    }
}

async fn probe(url: &str, token: &SecretString) -> Result<(), AdapterError> {
    use secrecy::ExposeSecret;
    static HTTP: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a rustls provider is installed (install_crypto_provider)")
    });
    let response = HTTP
        .get(url)
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .map_err(|e| AdapterError::from_reqwest("probe", &e.without_url()))?;
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        let body = response.text().await.unwrap_or_default();
        Err(AdapterError::from_status("probe", status, &body))
    }
}

/// Where a token is put for its consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub name: String,
}

/// Puts a token where its consumer reads it, and reads it back.
#[async_trait]
pub trait Distributor: Send + Sync {
    /// Which system a failure to place is from: the metric label of retries ("kubernetes").
    fn upstream(&self) -> &'static str;
    /// The placement as a person reads it: "Secret `signon-token-…`", "file `/etc/…`".
    fn describe(&self, placement: &Placement) -> String;
    /// What `place` does, for a shadow plan and for the journal ("apply Secret … key …").
    fn plan(&self, placement: &Placement) -> String;
    /// How a placed token got there, after "it": "was written (server-side apply)".
    fn placed_how(&self) -> &'static str;
    /// The value there now; `None` when there is none.
    async fn read(&self, placement: &Placement) -> Result<Option<SecretString>, AdapterError>;
    /// Puts `value` there, or with `None` the issuer's longest-lived live token (only a
    /// distributor that asks Signon's own sync can). Idempotent by `rotation_id`.
    async fn place(
        &self,
        permit: &Permit,
        placement: &Placement,
        value: Option<&SecretString>,
        rotation_id: &str,
    ) -> Result<(), AdapterError>;
    /// Where the token of `listing`'s API user and application goes.
    fn placement(&self, listing: &TokenListing) -> Placement;
    /// The old token is gone: drop what was kept for a rollback (a file's `.previous`).
    async fn settle(&self, _placement: &Placement) -> Result<(), AdapterError> {
        Ok(())
    }
    /// The journal says a `place` with `key` was asked for before (by this process or one
    /// before a restart): a distributor that runs a Job per key must not make that Job again if
    /// it is gone.
    fn started_before(&self, _key: &str) {}
    /// Whether `place` asks the issuer's own sync (Signon's CronJob puts the longest-lived live
    /// token there), rather than writing what it is given.
    fn syncs_from_issuer(&self) -> bool {
        false
    }
    /// Whether a target reached by an alert is rotated only when its placement exists and holds
    /// one of the issuer's listed live tokens (a directory of per-token files: a missing file
    /// means nobody reads the token from there, and an atomic rotation would revoke the token in
    /// use for a value nobody reads). A refusal is handed to a person.
    fn requires_token_in_place(&self) -> bool {
        false
    }
}

/// The systems a rotation in one environment touches: that environment's Signon and cluster.
/// Built by [`Upstreams::build`] from the config, the same way in `serve`, `demo` and the tests.
pub struct Upstreams {
    pub issuer: std::sync::Arc<dyn Issuer>,
    pub distributor: std::sync::Arc<dyn Distributor>,
    pub verifier: std::sync::Arc<dyn Verifier>,
    /// The consumers' Deployments and the `signon-app-<app>` Secrets; `None`: no rollout check.
    pub deployments: Option<kubernetes::Deployments>,
}

impl Upstreams {
    /// One environment's upstreams: `signon` (for `/user.json`, and the admin contract with the
    /// HTTP issuer) and the `cluster`, put together as `issuer` and `[kubernetes]` say.
    pub fn build(
        signon: signon::SignonClient,
        cluster: kubernetes::Cluster,
        issuer: settings::IssuerMode,
        job: Option<&kubernetes::JobTemplate>,
        kube: &settings::KubernetesSettings,
    ) -> Result<Self, String> {
        use settings::{Distribution, IssuerMode};
        let issuer: std::sync::Arc<dyn Issuer> = match issuer {
            IssuerMode::Http => std::sync::Arc::new(signon.clone()),
            IssuerMode::Job => {
                let template = job.ok_or("issuer \"job\" needs [signon.job]")?;
                // With `apply`, mint.rb writes the Secret itself; with `sync`, Signon's CronJob does.
                let write_secret = kube.distribution == Distribution::Apply;
                std::sync::Arc::new(signon_job::JobIssuer::new(
                    cluster.clone(),
                    template.clone(),
                    write_secret,
                ))
            }
        };
        let deployments = kubernetes::Deployments::new(cluster.clone(), !kube.reloader);
        let distributor: std::sync::Arc<dyn Distributor> = match kube.distribution {
            Distribution::Apply => {
                std::sync::Arc::new(kubernetes::SecretDistributor::new(cluster.clone()))
            }
            Distribution::Sync => std::sync::Arc::new(kubernetes::SyncDistributor::new(
                cluster.clone(),
                &kube.sync_cronjob,
            )),
        };
        Ok(Self {
            issuer,
            distributor,
            verifier: std::sync::Arc::new(signon::SignonVerifier {
                signon,
                apps: Some(deployments.clone()),
            }),
            deployments: Some(deployments),
        })
    }
}
