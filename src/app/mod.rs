//! Building and running the service, the same way in `serve`, `demo` and the tests.

mod parts;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use secrecy::SecretString;

use crate::adapters::slack::SlackApi;
use crate::clock::Clock;
use crate::config::Config;
use crate::engine::{Adapters, Engine};
use crate::intake::auth::WebhookAuth;
use crate::leader::Leadership;
use crate::notifier::Notifier;
use crate::reconcile::Reconciler;
use crate::secrets::Keys;
use crate::store::{Journal, StoreError};
use crate::telemetry::Metrics;
use crate::web::serve::Limits;
use crate::web::{self, AppState};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Journal(#[from] StoreError),
    #[error("leader election: {0}")]
    Election(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What the rotation engine needs beyond the config.
pub struct EngineParts {
    pub adapters: Adapters,
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
    /// Run the engine's loop inside `run_until_stopped`; tests turn it off and call `tick`.
    pub background: bool,
    /// How often the loop looks at the journal when nothing woke it.
    pub poll: std::time::Duration,
    pub slack: SlackParts,
}

/// The Slack Web API (threads, buttons); both `None` with an incoming webhook or no Slack.
#[derive(Default)]
pub struct SlackParts {
    /// With a bot token: threads are posted by a notifier of their own.
    pub api: Option<SlackApi>,
    /// Verifies Approve/Reject clicks; without it `/v1/slack/interactions` answers 404.
    pub signing_secret: Option<SecretString>,
}

/// A bound, not yet serving instance. Port 0 binds a free port; `local_addr` says which.
pub struct Application {
    listener: TcpListener,
    /// `/metrics` on an address of its own, when configured (`metrics_listen`).
    metrics_listener: Option<TcpListener>,
    /// Slack's interactions and handover links, when configured (`public_listen`).
    public_listener: Option<TcpListener>,
    /// Every listener's timeouts and connection cap.
    http: crate::web::HttpSettings,
    state: Arc<AppState>,
    /// Reads firing alerts back from Alertmanager, when one is configured.
    reconciler: Option<(Reconciler, std::time::Duration)>,
    engine: Option<Arc<Engine>>,
    /// Posts Slack threads from the journal, with a bot token.
    notifier: Option<Arc<Notifier>>,
    /// `Some(poll)` when the engine's loop runs inside `run_until_stopped`.
    engine_in_background: Option<std::time::Duration>,
    /// Whether this replica acts; with PostgreSQL, elected (the election stops with `stop_election`).
    leadership: Arc<Leadership>,
    stop_election: watch::Sender<bool>,
}

impl Application {
    /// Intake only, or intake and the rotation engine when `engine` is given. `metrics` is the
    /// registry `/metrics` serves; adapters built with an `Observer` of it report into it too.
    pub async fn build(
        config: Config,
        auth: WebhookAuth,
        engine: Option<EngineParts>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, BuildError> {
        Self::build_with(config, auth, None, engine, metrics).await
    }

    /// As [`Application::build`], with the status page's own credential. Each step is a
    /// function of `parts`, in this order.
    pub async fn build_with(
        config: Config,
        auth: WebhookAuth,
        status_auth: Option<WebhookAuth>,
        engine: Option<EngineParts>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, BuildError> {
        let journal = parts::journal(&config, &metrics).await?;
        let (stop_election, election_stopped) = watch::channel(false);
        // The clock deadlines are compared with must agree with the journal's to lead.
        let clock: Arc<dyn Clock> = engine.as_ref().map_or_else(
            || Arc::new(crate::clock::SystemClock) as _,
            |e| Arc::clone(&e.clock),
        );
        let leadership =
            parts::leadership(&config, &journal, &metrics, clock, election_stopped).await?;
        let engine_in_background = engine.as_ref().filter(|e| e.background).map(|e| e.poll);
        let shared = parts::Shared::of(engine.as_ref());
        let engine =
            engine.map(|parts| parts::engine(parts, &config, &journal, &metrics, &leadership));
        let notifier = parts::notifier(&shared, &config, &journal, &metrics, &leadership);
        let handover = parts::handover_desk(&shared, engine.as_ref());
        let interactions = parts::interactions(shared, engine.as_ref(), notifier.as_ref());
        let listeners = parts::Listeners::bind(&config).await?;
        let reconciler = parts::reconciler(&config, &journal, &metrics, engine.as_ref());
        let state = Arc::new(AppState {
            journal,
            slack: interactions,
            handover,
            slack_health: notifier.as_ref().map(|n| n.health()),
            wake: engine.as_ref().map(|e| e.waker()),
            metrics,
            auth,
            status_auth,
            routes: config.routes(),
            max_alerts: config.max_alerts_per_delivery,
            status_open: config.status_page_open,
            leadership: Arc::clone(&leadership),
            identity: engine.as_ref().map(|e| e.identity_health()),
        });
        Ok(Self {
            listener: listeners.internal,
            metrics_listener: listeners.metrics,
            public_listener: listeners.public,
            http: config.http.clone(),
            state,
            reconciler,
            engine,
            notifier,
            engine_in_background,
            leadership,
            stop_election,
        })
    }

    pub fn engine(&self) -> Option<Arc<Engine>> {
        self.engine.clone()
    }

    /// Where Slack's interactions and handover links are served when they have a listener of
    /// their own.
    pub fn public_addr(&self) -> Option<SocketAddr> {
        self.public_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound TCP listener has an address"))
    }

    /// Where `/metrics` is served when it has a listener of its own.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    pub fn journal(&self) -> Arc<Journal> {
        Arc::clone(&self.state.journal)
    }

    /// Serves until `shutdown` completes; in-flight requests finish, then the journal closes.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let journal = Arc::clone(&self.state.journal);
        let (stop_engine, engine_stopped) = watch::channel(false);
        let background = self.engine.zip(self.engine_in_background);
        let leader = &self.leadership;
        let engine_task = background.map(|(engine, poll)| {
            tokio::spawn(while_leading(
                Arc::clone(leader),
                engine_stopped.clone(),
                move |stop| Arc::clone(&engine).run(poll, stop),
            ))
        });
        let notifier_task = self.notifier.map(|notifier| {
            tokio::spawn(while_leading(
                Arc::clone(leader),
                engine_stopped.clone(),
                move |stop| Arc::clone(&notifier).run(stop),
            ))
        });
        let reconcile_task = self.reconciler.map(|(reconciler, interval)| {
            let reconciler = Arc::new(reconciler);
            tokio::spawn(while_leading(
                Arc::clone(leader),
                engine_stopped.clone(),
                move |stop| {
                    let reconciler = Arc::clone(&reconciler);
                    async move { reconciler.run(interval, stop).await }
                },
            ))
        });
        let http = &self.http;
        let metrics_task = self.metrics_listener.map(|listener| {
            let limits = Limits::of(http, http.metrics_max_connections);
            let router = web::metrics_router(Arc::clone(&self.state));
            let mut stopped = engine_stopped.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                if let Err(e) = web::serve::serve("metrics", listener, router, limits, stop).await {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            })
        });
        let public_task = self.public_listener.map(|listener| {
            let limits = Limits::of(http, http.public_max_connections);
            let router = web::public_router(Arc::clone(&self.state));
            let mut stopped = engine_stopped.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                if let Err(e) = web::serve::serve("public", listener, router, limits, stop).await {
                    tracing::error!(error = %e, "public listener failed");
                }
            })
        });
        let router = web::router(self.state, metrics_task.is_none(), public_task.is_none());
        let limits = Limits::of(http, http.max_connections);
        let served = web::serve::serve("internal", self.listener, router, limits, shutdown).await;
        // The engine finishes the pass it is in; every step it took is already journaled.
        let _ = stop_engine.send(true);
        for task in [metrics_task, public_task].into_iter().flatten() {
            let _ = task.await;
        }
        for task in [engine_task, notifier_task, reconcile_task]
            .into_iter()
            .flatten()
        {
            let _ = task.await;
        }
        // Nothing acts any more: let a standby take over at once.
        let _ = self.stop_election.send(true);
        journal.close().await;
        tracing::info!("stopped; journal closed");
        served
    }
}

/// Runs `task` whenever this replica leads, handing it a future that completes when it must
/// stop: the leadership lost, or the service stopping.
async fn while_leading<F, Fut>(leader: Arc<Leadership>, mut stopped: watch::Receiver<bool>, task: F)
where
    F: Fn(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        tokio::select! {
            () = leader.leading() => {},
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        let (lost, mut stop) = (Arc::clone(&leader), stopped.clone());
        task(Box::pin(async move {
            tokio::select! {
                () = lost.lost() => {},
                _ = stop.wait_for(|stop| *stop) => {},
            }
        }))
        .await;
        if *stopped.borrow() {
            return;
        }
    }
}

/// Completes on SIGTERM (Kubernetes stopping the pod) or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
