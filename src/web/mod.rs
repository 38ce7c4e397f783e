//! The HTTP edge: the Alertmanager webhook, health, readiness and metrics.

mod approvers;
mod error;
mod handover;
mod headers;
pub mod serve;
mod settings;
mod slack;
mod slack_answer;
mod status_page;
mod watched;
mod webhook;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, State};
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use settings::HttpSettings;

use crate::intake::auth::WebhookAuth;
use crate::store::{Journal, snapshot};
use crate::telemetry::Metrics;

pub use error::ApiError;
pub use handover::HandoverDesk;
pub use slack::Interactions;

/// Largest webhook body accepted. Alertmanager bodies are ~1.5 KiB per alert; 1 MiB is hundreds.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Alertmanager gives a delivery at least 10 s; answer (even 503) well before that.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);

/// Everything a request handler needs, shared by all requests.
pub struct AppState {
    pub journal: Arc<Journal>,
    /// Approve/Reject clicks; `None` without a Slack signing secret.
    pub slack: Option<Arc<Interactions>>,
    /// Handover links; `None` without the engine.
    pub handover: Option<Arc<HandoverDesk>>,
    /// What Slack refuses, for `/readyz`; `None` without the Web API notifier.
    pub slack_health: Option<Arc<crate::notifier::SlackHealth>>,
    /// Wakes the engine after new alerts are journaled; `None` when it does not run.
    pub wake: Option<Arc<tokio::sync::Notify>>,
    pub metrics: Arc<Metrics>,
    pub auth: WebhookAuth,
    /// The status page's own credential; `None`: the webhook's.
    pub status_auth: Option<WebhookAuth>,
    /// The allow-list of environments, the fallback environment and the rules.
    pub routes: crate::intake::Routes,
    /// `max_alerts_per_delivery`: a larger delivery is refused with 400.
    pub max_alerts: usize,
    /// The status page and `/v1/rotations` without credentials (read-only, no secrets in them).
    pub status_open: bool,
    /// Whether this replica leads, for `/readyz`.
    pub leadership: Arc<crate::leader::Leadership>,
    /// What the last checks of the issuers' identities found; `None` without the engine.
    pub identity: Option<Arc<crate::engine::identity::IdentityHealth>>,
}

/// The service's routes; `/metrics` too unless it has a listener of its own; Slack's
/// interactions and handover links too unless they have a public listener of their own.
pub fn router(state: Arc<AppState>, with_metrics: bool, with_public: bool) -> Router {
    let status = Router::new()
        .route("/", get(status_page::index))
        .route("/rotations/{id}", get(status_page::rotation))
        .route("/v1/rotations", get(status_page::rotations_json))
        .route("/v1/rotations/{id}", get(status_page::rotation_json))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            require_auth,
        ));
    let mut router = Router::new()
        .route("/v1/alertmanager", post(webhook::receive))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(status);
    if with_public {
        router = router.merge(public_routes());
    }
    if with_metrics {
        router = router.route("/metrics", get(metrics));
    }
    layered(router).with_state(state)
}

/// The public edge (`public_listen`): only what must be reached from outside the cluster.
/// Slack's interactions (signed by Slack) and handover links (the link is the credential);
/// never the webhook, the status page or `/metrics`. Its `/readyz` is the load balancer's health
/// check: the status code alone, no details (anyone can reach it).
pub fn public_router(state: Arc<AppState>) -> Router {
    layered(
        public_routes()
            .route("/healthz", get(healthz))
            .route("/readyz", get(public_readyz)),
    )
    .with_state(state)
}

fn public_routes() -> Router<Arc<AppState>> {
    Router::new()
        // The link's unguessable id is the credential (the owner has no webhook credential).
        .route(
            "/v1/handover/{id}",
            get(handover::page).post(handover::collect),
        )
        .route("/v1/handover/{id}/confirm", post(handover::confirm))
        // Signed by Slack, not by our webhook credential (Slack cannot send that).
        .route(
            "/v1/slack/interactions",
            post(slack::interaction).layer(DefaultBodyLimit::max(slack::MAX_INTERACTION_BYTES)),
        )
}

/// What every answer of every listener goes through: a span without headers (one of them is
/// a credential), a deadline, and the headers that keep a browser from sniffing, framing or
/// running anything ([`headers`]).
fn layered(router: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    router
        .layer(middleware::map_response(headers::add))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let route = request
                    .extensions()
                    .get::<MatchedPath>()
                    .map_or(request.uri().path(), MatchedPath::as_str);
                tracing::info_span!("http", method = %request.method(), route)
            }),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
}

/// `/metrics` alone, for a separate listener that is not exposed with the webhook.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    layered(Router::new().route("/metrics", get(metrics))).with_state(state)
}

/// The status page's own read-only credential (`TOKEN_ROTATOR_STATUS_TOKEN`) guards it; without
/// one, the webhook's does; configured open, nothing does (behind an authenticating proxy).
async fn require_auth(
    State(state): State<Arc<AppState>>,
    request: Request<axum::body::Body>,
    next: middleware::Next,
) -> axum::response::Response {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let permitted = match &state.status_auth {
        Some(status) => status.permits(authorization),
        None => state.auth.permits(authorization),
    };
    if state.status_open || permitted {
        next.run(request).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match state.journal.ping().await {
        Ok(()) => {
            // Slack refusing us does not make the service unready (intake still works), but an
            // operator looking here should see it.
            let problems = state
                .slack_health
                .as_ref()
                .map(|h| h.problems())
                .unwrap_or_default();
            // A standby is ready too: it takes webhooks; it just does not act on them.
            let mut body = serde_json::json!({"status": "ready", "role": role(&state)});
            if let crate::leader::Role::Leader { epoch } = state.leadership.role() {
                body["epoch"] = epoch.into();
            }
            // Still ready (intake works), but this replica will not act until its clock is fixed.
            if let Some(problem) = state.leadership.clock_problem() {
                body["clock"] = serde_json::json!({"problem": problem});
            }
            if !problems.is_empty() {
                body["slack"] = serde_json::json!({"problems": problems});
            }
            // Nor does an identity an issuer refuses: alerts are still taken in and journaled,
            // and the rotations they start say why they cannot go on.
            let identity = state
                .identity
                .as_ref()
                .map(|h| h.problems())
                .unwrap_or_default();
            if !identity.is_empty() {
                body["issuer_identity"] = serde_json::json!({"problems": identity});
            }
            (StatusCode::OK, Json(body))
        }
        Err(e) => {
            // The reason is for the operator's logs: this answer is unauthenticated. A full disk
            // is said (it names nothing of the journal's contents).
            tracing::warn!(error = %e, "not ready: journal unavailable");
            let detail = if matches!(e, crate::store::StoreError::DiskFull) {
                "journal disk full: webhooks are refused until space is freed"
            } else {
                "journal unreachable"
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable", "detail": detail})),
            )
        }
    }
}

/// `/readyz` on the public listener: ready when the journal answers, in the status code alone.
async fn public_readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match state.journal.ping().await {
        Ok(()) => (StatusCode::OK, "ready\n"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: journal unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable\n")
        }
    }
}

fn role(state: &AppState) -> &'static str {
    if state.leadership.is_leader() {
        "leader"
    } else {
        "standby"
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    match snapshot::read(state.journal.pool(), jiff::Timestamp::now()).await {
        Ok(now) => state.metrics.set_snapshot(now),
        // The counters still render; the journal gauges keep their last values.
        Err(e) => tracing::warn!(error = %e, "metrics: cannot read the journal"),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
