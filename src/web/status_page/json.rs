//! `GET /v1/rotations` (in pages, linked by `Link: rel="next"`) and `GET /v1/rotations/{id}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Filter, MAX_PAGE, PAGE, load};
use crate::report::status::{self, StatusRow};
use crate::store::rotations;
use crate::web::AppState;

pub(in crate::web) async fn rotations_json(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<Filter>,
) -> Response {
    match load(&state).await {
        Ok(rows) => {
            let now_ms = jiff::Timestamp::now().as_millisecond();
            let limit = filter.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
            let mut kept = rows
                .into_iter()
                .filter(|r| filter.keeps(r, now_ms))
                .peekable();
            if let Some(after) = filter.after.as_deref() {
                // Everything up to and including the cursor's rotation was on earlier pages.
                while kept.next_if(|r| r.rotation.id != after).is_some() {}
                kept.next();
            }
            let page: Vec<StatusRow> = kept.by_ref().take(limit).collect();
            let mut response = Json(status::json(&page)).into_response();
            if kept.peek().is_some()
                && let Some(last) = page.last()
            {
                let mut next = format!("/v1/rotations?limit={limit}&after={}", last.rotation.id);
                for (key, value) in [
                    ("environment", &filter.environment),
                    ("state", &filter.state),
                    ("class", &filter.class),
                ] {
                    if let Some(value) = value {
                        next.push_str(&format!(
                            "&{key}={}",
                            url::form_urlencoded::byte_serialize(value.as_bytes())
                                .collect::<String>()
                        ));
                    }
                }
                if let Ok(link) =
                    axum::http::HeaderValue::from_str(&format!("<{next}>; rel=\"next\""))
                {
                    response
                        .headers_mut()
                        .insert(axum::http::header::LINK, link);
                }
            }
            response
        }
        Err(response) => response,
    }
}

pub(in crate::web) async fn rotation_json(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Response {
    let pool = state.journal.pool();
    match tokio::try_join!(rotations::rotation(pool, &id), rotations::audit(pool, &id)) {
        Ok((Some(row), audit)) => {
            let mut body = status::json(&[StatusRow {
                rotation: row,
                last_alert: None,
            }])[0]
                .take();
            body["audit"] = audit
                .iter()
                .map(|a| serde_json::json!({"at_ms": a.at_ms, "from": a.from_phase, "to": a.to_phase, "reason": a.reason, "trigger": a.trigger}))
                .collect();
            Json(body).into_response()
        }
        Ok((None, _)) => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": "not_found"})),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "journal unavailable").into_response(),
    }
}
