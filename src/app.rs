//! Building and running the service, the same way in `serve`, `demo` and the tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::intake::auth::WebhookAuth;
use crate::store::{Journal, StoreError};
use crate::telemetry::Metrics;
use crate::web::{self, AppState};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Journal(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A bound, not yet serving instance. Port 0 binds a free port; `local_addr` says which.
pub struct Application {
    listener: TcpListener,
    state: Arc<AppState>,
}

impl Application {
    pub async fn build(config: Config, auth: WebhookAuth) -> Result<Self, BuildError> {
        let journal = Journal::open(&config.database_url, config.journal_busy_timeout).await?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| BuildError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let state = Arc::new(AppState {
            journal: Arc::new(journal),
            metrics: Arc::new(Metrics::new()),
            auth,
            policy: config.policy,
            default_environment: config.default_environment,
        });
        Ok(Self { listener, state })
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
        let router = web::router(self.state);
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await;
        journal.close().await;
        tracing::info!("stopped; journal closed");
        served
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
