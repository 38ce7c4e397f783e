//! The simulators of a world and how its service is built on them.

use crate::helpers::{Options, spawn_app_with};
use jiff::Timestamp;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use token_rotator::adapters::Observer;
use token_rotator::adapters::alertmanager::AlertmanagerClient;
use token_rotator::adapters::kubernetes::{Cluster, JobTemplate};
use token_rotator::adapters::signon::SignonClient;
use token_rotator::adapters::slack::{SlackApi, SlackWebhook};
use token_rotator::adapters::synoptic::scheduled;
use token_rotator::app::{EngineParts, SlackParts};
use token_rotator::clock::{Clock, ManualClock};
use token_rotator::config::{
    AlertmanagerSettings, Distribution, IssuerMode, KubernetesSettings, ScheduleSettings,
    SynopticSettings,
};
use token_rotator::engine::{Adapters, RetryPolicy, Scheduled, SlackOut, Upstreams};
use token_rotator::policy::Mode;
use token_rotator::secrets::Keys;
use token_rotator::sim::Running;
use token_rotator::sim::alertmanager::AlertmanagerSim;
use token_rotator::sim::kubernetes::KubernetesSim;
use token_rotator::sim::signon::SignonSim;
use token_rotator::sim::slack::{API_PATH, BOT_TOKEN, SIGNING_SECRET, SlackSim, WEBHOOK_PATH};
use token_rotator::sim::synoptic::SynopticSim;

use super::*;

/// One environment's Signon and cluster: environments never share them.
pub struct EnvSims {
    pub signon: Arc<SignonSim>,
    pub kubernetes: Arc<KubernetesSim>,
    signon_http: Running,
    kubernetes_http: Running,
}

impl EnvSims {
    pub fn signon_url(&self) -> String {
        self.signon_http.url()
    }

    pub fn kubernetes_url(&self) -> String {
        self.kubernetes_http.url()
    }
}

pub struct Sims {
    pub clock: Arc<ManualClock>,
    pub envs: BTreeMap<&'static str, EnvSims>,
    pub slack: Arc<SlackSim>,
    pub alertmanager: Arc<AlertmanagerSim>,
    pub synoptic: Arc<SynopticSim>,
    pub keys: Keys,
    slack_http: Running,
    synoptic_http: Running,
    alertmanager_http: Running,
}

/// How a world's service runs.
pub struct WorldOptions {
    /// Run the engine's own loop, as `serve` does, instead of ticking from the test.
    pub background: bool,
    pub grace: Duration,
    /// Alertmanagers to silence in and reconcile from; the simulator when `None`.
    pub alertmanager_urls: Option<Vec<String>>,
    pub reconcile_interval: Option<Duration>,
    /// Serve the status page without credentials.
    pub status_open: bool,
    /// Environments in shadow mode.
    pub shadow: Vec<&'static str>,
    /// Slack through the Web API (threads, buttons) instead of the incoming webhook.
    pub slack_threads: bool,
    /// A config file whose rules, `[slack]` and environments' channels replace the shipped ones.
    pub config_toml: Option<String>,
    /// How tokens are made (the HTTP contract, or Jobs in Signon's image) and reach Secrets.
    pub issuer: IssuerMode,
    pub distribution: Distribution,
    /// Reloader rolls consumers; `false`: the service restarts them.
    pub reloader: bool,
    /// Per application: a URL the new token must open.
    pub probes: Vec<(String, String)>,
    /// Scheduled targets (Synoptic, on the simulator).
    pub schedules: Vec<ScheduleSettings>,
    /// `[synoptic]` for them; an empty `url` is the simulator's. `None`: the defaults.
    pub synoptic: Option<SynopticSettings>,
    /// `[slack] join_channels`.
    pub slack_join: bool,
    /// `[signon] initiator`: the Signon user the Job scripts act as.
    pub initiator: String,
    /// `kubernetes.max_jobs`.
    pub max_jobs: usize,
    /// Every upstream call's timeout.
    pub timeout: Duration,
    /// The journal: a PostgreSQL URL, say; `None`, SQLite in the world's directory.
    pub database_url: Option<String>,
}

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            background: false,
            grace: GRACE,
            alertmanager_urls: None,
            reconcile_interval: None,
            status_open: false,
            shadow: Vec::new(),
            slack_threads: false,
            config_toml: None,
            issuer: IssuerMode::Http,
            distribution: Distribution::Apply,
            reloader: true,
            probes: Vec::new(),
            schedules: Vec::new(),
            synoptic: None,
            slack_join: false,
            initiator: token_rotator::sim::signon::INITIATOR.to_owned(),
            max_jobs: token_rotator::adapters::kubernetes::DEFAULT_MAX_JOBS,
            timeout: Duration::from_secs(1),
            database_url: None,
        }
    }
}

/// The channel threads go to unless a test's config says otherwise.
pub const CHANNEL: &str = "C0ROTATIONS";

pub const ENVIRONMENTS: [&str; 2] = ["integration", "production"];
pub const SYNOPTIC_KEY: &str = "synoptic-private-api-key-for-tests";
pub const SYNC_CRONJOB: &str = "signon-sync-token-secrets-to-k8s";

/// Signon's image as the tests run it: the simulated one.
pub fn job_template() -> JobTemplate {
    JobTemplate {
        pod_template: "signon-sync-token-secrets-to-k8s".to_owned(),
        image: None,
        namespace: NAMESPACE.to_owned(),
        service_account: None,
        scripts_config_map: "token-rotator-signon-scripts".to_owned(),
        ttl_seconds_after_finished: 3600,
        active_deadline_seconds: 300,
        cpu: None,
        memory: None,
        initiator: token_rotator::sim::signon::INITIATOR.to_owned(),
    }
}

impl Sims {
    pub async fn start() -> Self {
        token_rotator::install_crypto_provider();
        let clock = Arc::new(ManualClock::new(Timestamp::now()));
        let mut envs = BTreeMap::new();
        for env in ENVIRONMENTS {
            let signon = SignonSim::new(ADMIN_TOKEN, clock.clone() as Arc<dyn Clock>);
            let kubernetes = KubernetesSim::with_clock(clock.clone() as Arc<dyn Clock>);
            kubernetes.set_runner(token_rotator::sim::rails::runner(
                signon.clone(),
                &kubernetes,
            ));
            kubernetes.add_sync_cronjob(NAMESPACE, SYNC_CRONJOB);
            let (signon_http, kubernetes_http) = (
                signon.start().await.unwrap(),
                kubernetes.start().await.unwrap(),
            );
            envs.insert(
                env,
                EnvSims {
                    signon,
                    kubernetes,
                    signon_http,
                    kubernetes_http,
                },
            );
        }
        let slack = SlackSim::new();
        let slack_http = slack.start().await.unwrap();
        let alertmanager = AlertmanagerSim::new();
        let alertmanager_http = alertmanager.start().await.unwrap();
        let synoptic = SynopticSim::new(SYNOPTIC_KEY, clock.clone() as Arc<dyn Clock>);
        let synoptic_http = synoptic.start().await.unwrap();
        Self {
            clock,
            envs,
            slack,
            alertmanager,
            synoptic,
            keys: Keys::random(),
            slack_http,
            synoptic_http,
            alertmanager_http,
        }
    }

    pub fn production(&self) -> &EnvSims {
        &self.envs["production"]
    }

    /// A client of production's Signon simulator, as the engine has.
    pub fn signon_client(&self) -> SignonClient {
        SignonClient::new(
            &self.production().signon_http.url(),
            ADMIN_TOKEN.into(),
            Duration::from_secs(1),
        )
    }

    pub fn parts(
        &self,
        background: bool,
        alertmanager_urls: Vec<String>,
        observer: Observer,
        options: &WorldOptions,
    ) -> EngineParts {
        let slack_threads = options.slack_threads;
        let timeout = options.timeout;
        let environments = self
            .envs
            .iter()
            .map(|(name, env)| {
                let client = SignonClient::new(&env.signon_http.url(), ADMIN_TOKEN.into(), timeout)
                    .observed(observer.clone());
                let cluster = Cluster::for_url(&env.kubernetes_http.url(), NAMESPACE, timeout)
                    .unwrap()
                    .observed(observer.clone())
                    .with_max_jobs(options.max_jobs);
                let kube = KubernetesSettings {
                    url: None,
                    namespace: NAMESPACE.to_owned(),
                    timeout,
                    distribution: options.distribution,
                    sync_cronjob: SYNC_CRONJOB.to_owned(),
                    reloader: options.reloader,
                    max_jobs: options.max_jobs,
                };
                let upstreams = Upstreams::build(
                    client,
                    cluster,
                    options.issuer,
                    Some(&JobTemplate {
                        initiator: options.initiator.clone(),
                        ..job_template()
                    }),
                    &kube,
                )
                .unwrap();
                (name.to_string(), upstreams)
            })
            .collect();
        let webhook = SecretString::from(format!("{}{WEBHOOK_PATH}", self.slack_http.url()));
        let (slack, slack_parts) = if slack_threads {
            let api = SlackApi::new(
                &format!("{}{API_PATH}", self.slack_http.url()),
                SecretString::from(BOT_TOKEN),
                timeout,
            )
            .joining(options.slack_join)
            .observed(observer.clone());
            let parts = SlackParts {
                api: Some(api),
                signing_secret: Some(SecretString::from(SIGNING_SECRET)),
            };
            (SlackOut::Threads, parts)
        } else {
            let webhook = SlackWebhook::new(webhook, timeout).observed(observer.clone());
            (SlackOut::Webhook(webhook), SlackParts::default())
        };
        EngineParts {
            slack: slack_parts,
            adapters: Adapters {
                environments,
                slack,
                alertmanager: Some(
                    AlertmanagerClient::new(alertmanager_urls, timeout).observed(observer.clone()),
                ),
                schedules: options
                    .schedules
                    .iter()
                    .map(|settings| {
                        let mut synoptic = options
                            .synoptic
                            .clone()
                            .unwrap_or_else(|| SynopticSettings::at(""));
                        if synoptic.url.is_empty() {
                            synoptic.url = self.synoptic_http.url();
                        }
                        synoptic.timeout = timeout;
                        let key = SecretString::from(SYNOPTIC_KEY);
                        let clock = self.clock.clone() as Arc<dyn Clock>;
                        let upstreams = scheduled::build(
                            &settings.distribution,
                            &synoptic,
                            key,
                            &self.keys,
                            observer.clone(),
                            clock,
                        );
                        let built = Scheduled {
                            schedule: settings.schedule.clone(),
                            upstreams,
                        };
                        (settings.schedule.name.clone(), built)
                    })
                    .collect(),
            },
            keys: self.keys.clone(),
            clock: self.clock.clone(),
            background,
            poll: Duration::from_secs(3600),
        }
    }

    /// The service with its engine on `dir` (a fresh one when `None`), driven by the test.
    pub async fn world(self, dir: Option<TempDir>) -> World {
        self.world_with(dir, WorldOptions::default()).await
    }

    pub async fn world_with(self, dir: Option<TempDir>, options: WorldOptions) -> World {
        let urls = options
            .alertmanager_urls
            .clone()
            .unwrap_or_else(|| vec![self.alertmanager_http.url()]);
        let metrics = std::sync::Arc::new(token_rotator::telemetry::Metrics::new());
        let parts = self.parts(
            options.background,
            urls.clone(),
            Observer::new(metrics.clone()),
            &options,
        );
        let replaced = options.config_toml.as_deref().map(|text| {
            token_rotator::config::Config::from_toml(text)
                .unwrap_or_else(|e| panic!("test config: {}", e.render(text)))
        });
        let shadow = options.shadow.clone();
        let probes = options.probes.clone();
        let (grace, reconcile, status_open) = (
            options.grace,
            options.reconcile_interval,
            options.status_open,
        );
        let database_url = options.database_url.clone();
        if database_url.is_some() {
            // Elected through PostgreSQL: a replica leads only while its clock agrees with the
            // database's, so the world's clock moves with real time (and tests advance it by
            // seconds at most).
            self.clock.follow_real_time();
        }
        let app = spawn_app_with(Options {
            dir,
            engine: Some(parts),
            metrics: Some(metrics),
            configure: Some(Box::new(move |config| {
                config.alertmanager = reconcile.map(|interval| AlertmanagerSettings {
                    urls,
                    reconcile_interval: interval,
                    timeout: Duration::from_secs(1),
                });
                config.engine.grace = grace;
                if let Some(url) = database_url {
                    config.database_url = url;
                }
                config.status_page_open = status_open;
                config.engine.slack.default_channel = Some(CHANNEL.to_owned());
                config.engine.probes = probes.into_iter().collect();
                if let Some(replaced) = replaced {
                    config.policy = replaced.policy;
                    config.engine.slack = replaced.engine.slack;
                    config.engine.approval_timeout = replaced.engine.approval_timeout;
                    config.engine.owners = replaced.engine.owners;
                }
                // Tests choose their modes; the shipped config's shadow production is not one.
                config
                    .engine
                    .modes
                    .values_mut()
                    .for_each(|m| *m = Mode::Active);
                for environment in shadow {
                    config
                        .engine
                        .modes
                        .insert(environment.to_owned(), Mode::Shadow);
                }
                config.engine.retry = RetryPolicy {
                    min_delay: Duration::from_secs(1),
                    max_delay: Duration::from_secs(60),
                    max_attempts: 5,
                };
            })),
            ..Options::default()
        })
        .await;
        let engine = app.engine.clone().expect("built with an engine");
        World {
            app,
            engine,
            clock: self.clock.clone(),
            signon: self.production().signon.clone(),
            kubernetes: self.production().kubernetes.clone(),
            slack: self.slack.clone(),
            alertmanager: self.alertmanager.clone(),
            slack_threads: options.slack_threads,
            sims: self,
        }
    }
}
