//! The steps of [`Application::build_with`](super::Application::build_with), one function each,
//! in the order it takes them: journal, leadership, engine, Slack's parts, listeners,
//! reconciler.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::adapters::Observer;
use crate::adapters::alertmanager::AlertmanagerClient;
use crate::adapters::kubernetes::Cluster;
use crate::clock::Clock;
use crate::config::{Config, LeaderElection};
use crate::engine::Engine;
use crate::leader::Leadership;
use crate::notifier::Notifier;
use crate::reconcile::Reconciler;
use crate::secrets::Keys;
use crate::store::Journal;
use crate::telemetry::Metrics;
use crate::web::{HandoverDesk, Interactions};

use super::{BuildError, EngineParts, SlackParts};

/// The journal, timing every intake commit into `metrics`.
pub(super) async fn journal(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> Result<Arc<Journal>, BuildError> {
    let journal = Journal::open_observed(
        &config.database_url,
        config.journal_busy_timeout,
        Some(Arc::clone(metrics)),
    )
    .await?;
    Ok(Arc::new(journal))
}

/// Whether this replica acts: always with SQLite (one replica owns the file); with PostgreSQL,
/// elected through the journal or a Kubernetes Lease, until `stopped` says otherwise.
pub(super) async fn leadership(
    config: &Config,
    journal: &Journal,
    metrics: &Arc<Metrics>,
    clock: Arc<dyn Clock>,
    stopped: watch::Receiver<bool>,
) -> Result<Arc<Leadership>, BuildError> {
    Ok(
        match (&config.leader_election, journal.pool().is_shared()) {
            (_, false) => Leadership::sole(),
            (LeaderElection::Postgres, true) => Leadership::postgres(
                &config.database_url,
                journal.pool(),
                config.leader_lease,
                replica_name(),
                Arc::clone(metrics),
                clock,
                stopped,
            )?,
            (LeaderElection::Kubernetes { lease_name }, true) => {
                let kube = &config.kubernetes;
                let cluster = match &kube.url {
                    Some(url) => Cluster::for_url(url, &kube.namespace, kube.timeout),
                    None => Cluster::inferred(&kube.namespace, kube.timeout).await,
                }
                .map_err(BuildError::Election)?
                .observed(Observer::new(Arc::clone(metrics)));
                Leadership::kubernetes(
                    cluster,
                    lease_name.clone(),
                    journal.pool(),
                    config.leader_lease,
                    replica_name(),
                    Arc::clone(metrics),
                    clock,
                    stopped,
                )
            }
        },
    )
}

/// This replica's name in the journal's leadership row: the pod's name in Kubernetes.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "token-rotator".into());
    format!("{host}/{}", std::process::id())
}

/// What the engine's parts lend to the notifier, the handover desk and Slack's clicks: taken
/// before the engine consumes them. All empty without an engine.
pub(super) struct Shared {
    pub slack: SlackParts,
    pub clock: Option<Arc<dyn Clock>>,
    pub keys: Option<Keys>,
}

impl Shared {
    pub(super) fn of(engine: Option<&EngineParts>) -> Self {
        match engine {
            Some(parts) => Self {
                slack: SlackParts {
                    api: parts.slack.api.clone(),
                    signing_secret: parts.slack.signing_secret.clone(),
                },
                clock: Some(Arc::clone(&parts.clock)),
                keys: Some(parts.keys.clone()),
            },
            None => Self {
                slack: SlackParts::default(),
                clock: None,
                keys: None,
            },
        }
    }
}

/// The rotation engine, acting only while `leadership` says so.
pub(super) fn engine(
    parts: EngineParts,
    config: &Config,
    journal: &Arc<Journal>,
    metrics: &Arc<Metrics>,
    leadership: &Arc<Leadership>,
) -> Arc<Engine> {
    Arc::new(
        Engine::new(
            Arc::clone(journal),
            Arc::clone(metrics),
            parts.adapters,
            parts.clock,
            parts.keys,
            config.engine.clone(),
        )
        .with_policy(config.policy.clone())
        .led_by(Arc::clone(leadership)),
    )
}

/// Posts Slack threads from the journal; only with a bot token (and an engine's clock).
pub(super) fn notifier(
    shared: &Shared,
    config: &Config,
    journal: &Arc<Journal>,
    metrics: &Arc<Metrics>,
    leadership: &Arc<Leadership>,
) -> Option<Arc<Notifier>> {
    let (api, clock) = shared.slack.api.clone().zip(shared.clock.clone())?;
    let notifier = Notifier::new(
        Arc::clone(journal),
        api,
        clock,
        Arc::clone(metrics),
        config.engine.slack.default_channel.clone(),
    )
    .led_by(Arc::clone(leadership));
    // Handover links travel sealed until the notifier sends them.
    Some(Arc::new(match shared.keys.clone() {
        Some(keys) => notifier.with_keys(keys),
        None => notifier,
    }))
}

/// Serves handover links; only with an engine (whose keys open them).
pub(super) fn handover_desk(
    shared: &Shared,
    engine: Option<&Arc<Engine>>,
) -> Option<Arc<HandoverDesk>> {
    let ((keys, clock), engine) = shared.keys.clone().zip(shared.clock.clone()).zip(engine)?;
    Some(Arc::new(HandoverDesk {
        keys,
        clock,
        wake: engine.waker(),
    }))
}

/// Slack's Approve/Reject clicks; only with a signing secret to verify them.
pub(super) fn interactions(
    shared: Shared,
    engine: Option<&Arc<Engine>>,
    notifier: Option<&Arc<Notifier>>,
) -> Option<Arc<Interactions>> {
    let (signing_secret, clock) = shared.slack.signing_secret.zip(shared.clock)?;
    Some(Arc::new(Interactions {
        signing_secret,
        api: shared.slack.api,
        clock,
        // A decision wakes the engine (to start) and the notifier (to say so).
        wake: engine
            .iter()
            .map(|e| e.waker())
            .chain(notifier.iter().map(|n| n.waker()))
            .collect(),
        groups: Default::default(),
    }))
}

/// The internal listener, and the public and metrics ones when configured.
pub(super) struct Listeners {
    pub internal: TcpListener,
    pub public: Option<TcpListener>,
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    pub(super) async fn bind(config: &Config) -> Result<Self, BuildError> {
        Ok(Self {
            internal: bind(config.listen).await?,
            public: bind_optional(config.public_listen).await?,
            metrics: bind_optional(config.metrics_listen).await?,
        })
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, BuildError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BuildError::Bind { addr, source })
}

async fn bind_optional(addr: Option<SocketAddr>) -> Result<Option<TcpListener>, BuildError> {
    match addr {
        Some(addr) => Ok(Some(bind(addr).await?)),
        None => Ok(None),
    }
}

/// Reads firing alerts back from Alertmanager, when one is configured, and how often.
pub(super) fn reconciler(
    config: &Config,
    journal: &Arc<Journal>,
    metrics: &Arc<Metrics>,
    engine: Option<&Arc<Engine>>,
) -> Option<(Reconciler, std::time::Duration)> {
    let am = config.alertmanager.as_ref()?;
    let reconciler = Reconciler {
        client: AlertmanagerClient::new(am.urls.clone(), am.timeout)
            .observed(Observer::new(Arc::clone(metrics))),
        journal: Arc::clone(journal),
        routes: config.routes(),
        wake: engine.map(|e| e.waker()),
    };
    Some((reconciler, am.reconcile_interval))
}
