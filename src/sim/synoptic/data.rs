//! Synoptic's data API, only as far as a token check needs it: `stations/metadata` and
//! `stations/latest` with `token=` and `stid=`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{SynopticSim, refuse};

/// The stations the simulated network knows: WBB is the one SynopticPy's token check asks for
/// ([SYNOPTICPY] `stations/metadata?stid=WBB`), so it always has data.
const STATIONS: [&str; 2] = ["WBB", "KSLC"];

/// [ERRORS]: `RESPONSE_CODE` 1 "No errors", 2 "Zero results" (the token is still good); an
/// unusable (disabled, expired, unknown) token is "403 Authorization error", the errors page's
/// code for "invalid authentication". The HTTP status is not documented; 200 as for the others.
pub(super) async fn stations(
    State(sim): State<Arc<SynopticSim>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(fault) = sim.faults.check("data").await {
        return fault;
    }
    let valid = query.get("token").is_some_and(|t| sim.answers(t));
    if !valid {
        return refuse(StatusCode::OK, 403, "Invalid token.");
    }
    let wanted = query
        .get("stid")
        .cloned()
        .unwrap_or_default()
        .to_uppercase();
    let found: Vec<&str> = STATIONS
        .iter()
        .copied()
        .filter(|s| wanted.split(',').any(|w| w == *s))
        .collect();
    if found.is_empty() {
        return refuse(
            StatusCode::OK,
            2,
            "No stations found for this request, or your account does not have access to the requested stations.",
        );
    }
    Json(json!({
        "SUMMARY": {"RESPONSE_CODE": 1, "RESPONSE_MESSAGE": "OK", "NUMBER_OF_OBJECTS": found.len()},
        "STATION": found.iter().map(|s| json!({"STID": s})).collect::<Vec<_>>(),
    }))
    .into_response()
}
