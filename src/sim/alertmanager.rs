//! The part of Alertmanager's API v2 token-rotator uses: silences (list with `filter`, create,
//! update by id; 404 for an unknown id, as 0.25 answers) and `GET /api/v2/alerts`. The tests in
//! `tests/api/real_alertmanager.rs` run against the real Alertmanager; this one lets `demo` run anywhere.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Faults, Running};

#[derive(Default)]
pub struct AlertmanagerSim {
    pub faults: Faults,
    silences: Mutex<Vec<Value>>,
    /// What `GET /api/v2/alerts` answers.
    alerts: Mutex<Vec<Value>>,
}

impl AlertmanagerSim {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub async fn start(self: &Arc<Self>) -> std::io::Result<Running> {
        let router = Router::new()
            .route("/api/v2/silences", get(list).post(upsert))
            .route("/api/v2/alerts", get(alerts))
            .with_state(Arc::clone(self));
        super::serve(router).await
    }

    pub fn silences(&self) -> Vec<Value> {
        self.silences.lock().expect("lock never poisoned").clone()
    }

    pub fn set_alerts(&self, alerts: Vec<Value>) {
        *self.alerts.lock().expect("lock never poisoned") = alerts;
    }
}

/// `filter=name="value"` (the only form token-rotator sends).
fn parse_filter(filter: &str) -> Option<(String, String)> {
    let (name, quoted) = filter.split_once('=')?;
    let value = quoted.strip_prefix('"')?.strip_suffix('"')?;
    Some((
        name.to_owned(),
        value.replace("\\\"", "\"").replace("\\\\", "\\"),
    ))
}

fn matches(silence: &Value, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(name, value)| {
        silence["matchers"].as_array().is_some_and(|ms| {
            ms.iter()
                .any(|m| m["name"] == name.as_str() && m["value"] == value.as_str())
        })
    })
}

async fn list(State(sim): State<Arc<AlertmanagerSim>>, query: axum::extract::RawQuery) -> Response {
    if let Some(fault) = sim.faults.check("list").await {
        return fault;
    }
    // `filter=` repeats, which serde_urlencoded's `Query` cannot collect.
    let raw = query.0.unwrap_or_default();
    let filters: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
        .filter(|(k, _)| k == "filter")
        .filter_map(|(_, v)| parse_filter(&v))
        .collect();
    let silences = sim.silences.lock().expect("lock never poisoned");
    let found: Vec<_> = silences
        .iter()
        .filter(|s| matches(s, &filters))
        .cloned()
        .collect();
    Json(found).into_response()
}

async fn upsert(State(sim): State<Arc<AlertmanagerSim>>, Json(body): Json<Value>) -> Response {
    if let Some(fault) = sim.faults.check("post").await {
        return fault;
    }
    if body["matchers"].as_array().is_none_or(Vec::is_empty) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"code": 612, "message": "matchers in body should have at least 1 items"})),
        )
            .into_response();
    }
    let mut silences = sim.silences.lock().expect("lock never poisoned");
    let mut silence = body.clone();
    silence["status"] = json!({"state": "active"});
    if let Some(id) = body["id"].as_str() {
        let Some(existing) = silences.iter_mut().find(|s| s["id"] == id) else {
            return (StatusCode::NOT_FOUND, Json(json!("silence not found"))).into_response();
        };
        *existing = silence;
        return Json(json!({"silenceID": id})).into_response();
    }
    let id = uuid::Uuid::new_v4().to_string();
    silence["id"] = json!(id);
    silences.push(silence);
    Json(json!({"silenceID": id})).into_response()
}

async fn alerts(State(sim): State<Arc<AlertmanagerSim>>) -> Response {
    if let Some(fault) = sim.faults.check("alerts").await {
        return fault;
    }
    Json(sim.alerts.lock().expect("lock never poisoned").clone()).into_response()
}
