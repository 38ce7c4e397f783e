//! The bench's world: per environment a Signon and a Kubernetes API simulator (each with its
//! latency), one Slack, and the whole service built as `serve` builds it, with an engine in the
//! background.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;

use super::Profile;
use crate::adapters::Observer;
use crate::adapters::kubernetes::{Cluster, DEFAULT_MAX_JOBS, TOKEN_KEY};
use crate::adapters::signon::SignonClient;
use crate::adapters::slack::SlackApi;
use crate::app::{Application, EngineParts, SlackParts};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Distribution, IssuerMode, KubernetesSettings};
use crate::domain::parameterize::secret_name;
use crate::engine::{Adapters, Engine, RetryPolicy, SlackOut, Upstreams};
use crate::intake::auth::WebhookAuth;
use crate::policy::Mode;
use crate::secrets::Keys;
use crate::sim::kubernetes::KubernetesSim;
use crate::sim::signon::SignonSim;
use crate::sim::slack::{API_PATH, BOT_TOKEN, SlackSim};
use crate::sim::{Fault, Running};
use crate::telemetry::Metrics;

const NAMESPACE: &str = "apps";
pub(super) const APPLICATION: &str = "Publishing API";
pub(super) const CREDENTIAL: &str = "bench-webhook-credential";

/// One environment's upstreams.
pub(super) struct Env {
    pub signon: Arc<SignonSim>,
    pub kubernetes: Arc<KubernetesSim>,
    _http: (Running, Running),
}

pub(super) struct Bench {
    pub envs: BTreeMap<String, Env>,
    pub slack: Arc<SlackSim>,
    _slack_http: Running,
    pub engine: Arc<Engine>,
    pub url: String,
    pub dir: tempfile::TempDir,
    pub stop: tokio::sync::oneshot::Sender<()>,
    pub server: tokio::task::JoinHandle<std::io::Result<()>>,
    pub max_in_flight: usize,
    pub per_upstream: usize,
}

/// `users[i]` lives in `environments[i % n]`; `hung`'s Signon never answers in time.
pub(super) async fn build(
    users: &[String],
    environments: &[&str],
    profile: Profile,
    hung: Option<&str>,
) -> anyhow::Result<Bench> {
    let dir = tempfile::tempdir()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let metrics = Arc::new(Metrics::new());
    let observer = Observer::new(Arc::clone(&metrics));
    let kube = KubernetesSettings {
        url: None,
        namespace: NAMESPACE.into(),
        timeout: Duration::from_secs(10),
        distribution: Distribution::Apply,
        sync_cronjob: "signon-sync-token-secrets-to-k8s".into(),
        reloader: true,
        max_jobs: DEFAULT_MAX_JOBS,
    };
    let mut envs = BTreeMap::new();
    let mut upstreams = BTreeMap::new();
    for (e, environment) in environments.iter().enumerate() {
        let signon = SignonSim::new("bench-admin-token", Arc::clone(&clock));
        let kubernetes = KubernetesSim::new();
        profile.apply(&signon, &kubernetes, e as u64);
        if hung == Some(*environment) {
            for operation in ["list", "mint", "revoke", "user.json"] {
                signon
                    .faults
                    .always(operation, Fault::Hang(Duration::from_secs(600)));
            }
        }
        let http = (signon.start().await?, kubernetes.start().await?);
        for user in users.iter().skip(e).step_by(environments.len()) {
            let value = signon.add_token(user, APPLICATION, Duration::from_secs(10 * 86400));
            let name = secret_name(&signon.user_name(user), APPLICATION);
            kubernetes.put(NAMESPACE, &name, TOKEN_KEY, &value);
        }
        let client = SignonClient::new(
            &http.0.url(),
            SecretString::from("bench-admin-token"),
            Duration::from_secs(10),
        )
        .observed(observer.clone());
        let cluster = Cluster::for_url(&http.1.url(), NAMESPACE, Duration::from_secs(10))
            .map_err(anyhow::Error::msg)?
            .observed(observer.clone());
        let built = Upstreams::build(client, cluster, IssuerMode::Http, None, &kube)
            .map_err(anyhow::Error::msg)?;
        upstreams.insert((*environment).to_owned(), built);
        envs.insert(
            (*environment).to_owned(),
            Env {
                signon,
                kubernetes,
                _http: http,
            },
        );
    }
    let slack = SlackSim::new();
    let slack_http = slack.start().await?;
    let mut config = Config::builtin();
    config.database_url = format!("sqlite://{}", dir.path().join("journal.db").display());
    config.listen = "127.0.0.1:0".parse()?;
    config.engine.modes = environments
        .iter()
        .map(|e| ((*e).to_owned(), Mode::Active))
        .collect();
    config.engine.grace = Duration::ZERO;
    config.engine.slack.default_channel = Some("C0BENCH".into());
    config.engine.retry = RetryPolicy {
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(1),
        max_attempts: 10,
    };
    let (max_in_flight, per_upstream) = (
        config.engine.max_in_flight,
        config.engine.max_in_flight_per_upstream,
    );
    let api = SlackApi::new(
        &format!("{}{API_PATH}", slack_http.url()),
        SecretString::from(BOT_TOKEN),
        Duration::from_secs(5),
    )
    .observed(observer.clone());
    let parts = EngineParts {
        adapters: Adapters {
            environments: upstreams,
            slack: SlackOut::Threads,
            alertmanager: None,
            schedules: BTreeMap::new(),
        },
        keys: Keys::random(),
        clock,
        background: true,
        poll: Duration::from_millis(200),
        slack: SlackParts {
            api: Some(api),
            signing_secret: None,
        },
    };
    let app = Application::build(
        config,
        WebhookAuth::bearer(&SecretString::from(CREDENTIAL)),
        Some(parts),
        metrics,
    )
    .await?;
    let engine = app.engine().context("built with an engine")?;
    let url = format!("http://{}/v1/alertmanager", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Ok(Bench {
        envs,
        slack,
        _slack_http: slack_http,
        engine,
        url,
        dir,
        stop,
        server,
        max_in_flight,
        per_upstream,
    })
}

/// One delivery as Alertmanager sends it: an alert per user, in `environment_of(user)`.
pub(super) fn delivery(
    group: usize,
    users: &[(String, String)],
    fingerprint_base: u64,
) -> serde_json::Value {
    let alerts: Vec<serde_json::Value> = users
        .iter()
        .enumerate()
        .map(|(i, (user, environment))| {
            serde_json::json!({
                "status": "firing",
                "labels": {"alertname": "SignonApiUserTokenExpirySoon", "environment": environment,
                           "api_user": user, "application": APPLICATION},
                "annotations": {}, "startsAt": "2026-11-24T10:04:07.964Z",
                "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                "fingerprint": format!("{:016x}", fingerprint_base + (group * 1000 + i) as u64),
            })
        })
        .collect();
    serde_json::json!({
        "receiver": "signon-token-rotation", "status": "firing", "alerts": alerts,
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093", "version": "4",
        "groupKey": format!("{{}}:{{group=\"{group}\"}}"), "truncatedAlerts": 0,
    })
}
