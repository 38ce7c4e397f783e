//! `GET /v1/handover/<id>`: a page saying what the link is for, with a button; `POST` to the
//! same link: the new token, once, within the handover window (a GET spends nothing, so a link
//! scanner or a chat preview cannot burn it); `POST /v1/handover/<id>/confirm`: the owner has
//! put it in place (refused until the token was collected). The id (128 random bits, only ever in the message to the owner; the journal
//! keeps its SHA-256) is the credential; a second collection, an expired link or an unknown id
//! gets nothing, and no log line names the id.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::sync::Notify;

use super::AppState;
use crate::clock::Clock;
use crate::secrets::Keys;
use crate::store::handovers::{self, Collect, Confirm};
use crate::store::rotations;

/// What the handover endpoints need: the keys to open the sealed token, the journal's clock,
/// and the engine to wake after a confirmation.
pub struct HandoverDesk {
    pub keys: Keys,
    pub clock: Arc<dyn Clock>,
    pub wake: Arc<Notify>,
}

fn refuse(status: StatusCode, detail: &str) -> Response {
    (status, Json(json!({"error": "handover", "detail": detail}))).into_response()
}

/// The journal failed: the log has why, the answer only that it did (a database's error can
/// name tables and values, and a handover link is served to the internet).
fn journal_unavailable(error: &crate::store::StoreError) -> Response {
    tracing::error!(%error, "handover: journal unavailable");
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        super::error::JOURNAL_UNAVAILABLE,
    )
}

/// What a link that cannot give its token (any more) answers.
fn unavailable(collected: &Collect) -> Option<Response> {
    match collected {
        Collect::Token(_) => None,
        Collect::Unknown => Some(refuse(StatusCode::NOT_FOUND, "no such handover")),
        Collect::Expired => Some(refuse(StatusCode::GONE, "the handover window has ended")),
        Collect::Collected(at) => Some(refuse(
            StatusCode::GONE,
            &format!(
                "already collected at {}; if that was not you, tell the owner of the rotation",
                crate::clock::when(Some(*at))
            ),
        )),
    }
}

/// `GET`: what the link is, and a button to reveal the token; nothing is spent.
pub async fn page(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Some(desk) = &state.handover else {
        return refuse(StatusCode::NOT_FOUND, "no handovers here");
    };
    let peeked = match handovers::peek(state.journal.pool(), &id, desk.clock.now()).await {
        Ok(p) => p,
        Err(e) => return journal_unavailable(&e),
    };
    if let Some(answer) = unavailable(&peeked) {
        return answer;
    }
    let markup = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="robots" content="noindex";
                title { "token-rotator: a token handed over to you" }
            }
            body {
                h1 { "A new token is waiting for you" }
                p { "It can be shown once. Reveal it when you are ready to put it in place, then confirm with a POST to this link followed by " code { "/confirm" } "." }
                form method="post" {
                    button type="submit" { "Reveal the token (once)" }
                }
            }
        }
    };
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        markup,
    )
        .into_response()
}

/// `POST`: the token, once.
pub async fn collect(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Some(desk) = &state.handover else {
        return refuse(StatusCode::NOT_FOUND, "no handovers here");
    };
    let pool = state.journal.pool();
    let collected = match handovers::collect(pool, &id, desk.clock.now()).await {
        Ok(c) => c,
        Err(e) => return journal_unavailable(&e),
    };
    let rotation_id = match collected {
        Collect::Token(rotation) => rotation,
        other => {
            if let Collect::Collected(_) = other {
                tracing::warn!("a handed-over token was asked for twice");
            }
            return unavailable(&other).unwrap_or_else(|| refuse(StatusCode::GONE, "gone"));
        }
    };
    let sealed = match rotations::rotation(pool, &rotation_id).await {
        Ok(Some(row)) => row.new_token_sealed,
        _ => None,
    };
    let Some(sealed) = sealed else {
        return refuse(StatusCode::GONE, "the token is no longer held");
    };
    match desk.keys.open(&sealed, &format!("{rotation_id}/new")) {
        Ok(token) => {
            tracing::info!(%rotation_id, "handed-over token collected");
            (
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                format!("{}\n", token.expose_secret()),
            )
                .into_response()
        }
        Err(_) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the token cannot be opened",
        ),
    }
}

/// `POST <link>/confirm`: only after the token was collected (the store checks both in the one
/// update); before that, a refusal that changes nothing, since ending the rotation then would
/// drop the only copy of a token nobody has.
pub async fn confirm(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Some(desk) = &state.handover else {
        return refuse(StatusCode::NOT_FOUND, "no handovers here");
    };
    match handovers::confirm(state.journal.pool(), &id, desk.clock.now()).await {
        Ok(Confirm::Confirmed) => {
            desk.wake.notify_one();
            Json(json!({"confirmed": true})).into_response()
        }
        Ok(Confirm::Already(at)) => Json(json!({
            "confirmed": true,
            "detail": format!(
                "already confirmed at {}",
                crate::clock::when(Some(at))
            ),
        }))
        .into_response(),
        Ok(Confirm::NotCollected) => refuse(
            StatusCode::CONFLICT,
            "collect the token first: open the link, press Reveal and put the token in place, then confirm; nothing was changed",
        ),
        Ok(Confirm::Expired) => refuse(StatusCode::GONE, "the handover window has ended"),
        Ok(Confirm::Unknown) => refuse(StatusCode::NOT_FOUND, "no such handover"),
        Err(e) => journal_unavailable(&e),
    }
}
