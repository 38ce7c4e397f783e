//! A Slack incoming webhook: records every body and answers `ok`, or fails when told to.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use super::{Faults, Running};

/// The path of the webhook URL, shaped like Slack's (`/services/T…/B…/secret`).
pub const WEBHOOK_PATH: &str = "/services/T0SIMULATE/B0SIMULATE/simulated-webhook-secret";

#[derive(Default)]
pub struct SlackSim {
    pub faults: Faults,
    messages: Mutex<Vec<Value>>,
}

impl SlackSim {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub async fn start(self: &Arc<Self>) -> std::io::Result<Running> {
        let router = Router::new()
            .route(WEBHOOK_PATH, post(receive))
            .with_state(Arc::clone(self));
        super::serve(router).await
    }

    /// Every message body accepted, in order.
    pub fn messages(&self) -> Vec<Value> {
        self.messages.lock().expect("lock never poisoned").clone()
    }
}

async fn receive(State(sim): State<Arc<SlackSim>>, Json(body): Json<Value>) -> Response {
    if let Some(fault) = sim.faults.check("post").await {
        return fault;
    }
    if body
        .get("text")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return (StatusCode::BAD_REQUEST, "no_text").into_response();
    }
    sim.messages.lock().expect("lock never poisoned").push(body);
    "ok".into_response()
}
