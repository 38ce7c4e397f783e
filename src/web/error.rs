//! One error type for the HTTP edge: a status, a fixed metric label, and a short JSON body that
//! names the problem without echoing anything secret.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::telemetry::WebhookOutcome;

/// What a client is told when the journal fails it: never the database's own words.
pub const JOURNAL_UNAVAILABLE: &str = "journal unavailable: nothing was recorded; try again later";

/// The same, when the journal's disk is full (the operator's to fix; no secret in saying so).
pub const JOURNAL_DISK_FULL: &str =
    "journal unavailable: its disk is full; nothing was recorded; try again later";

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub outcome: WebhookOutcome,
    /// A stable machine-readable code.
    pub error: &'static str,
    /// Human words naming what was wrong.
    pub detail: String,
    /// What went wrong inside, for the log alone: a database's own error can name tables,
    /// columns, constraints and values, and the answer goes to whoever sent the request.
    pub cause: Option<String>,
}

impl ApiError {
    pub fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            outcome: WebhookOutcome::Unauthorized,
            error: "unauthorized",
            // Never says what was sent, or which part was wrong.
            detail: "missing or invalid credentials".into(),
            cause: None,
        }
    }

    pub fn unsupported_media_type(got: Option<&str>) -> Self {
        let got = got.map_or("no Content-Type".to_owned(), |v| format!("{v:?}"));
        Self {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            outcome: WebhookOutcome::UnsupportedMediaType,
            error: "unsupported_media_type",
            detail: format!("expected Content-Type application/json, got {got}"),
            cause: None,
        }
    }

    pub fn too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            outcome: WebhookOutcome::PayloadTooLarge,
            error: "payload_too_large",
            detail: format!("body is larger than {limit} bytes"),
            cause: None,
        }
    }

    pub fn bad_request(detail: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            outcome: WebhookOutcome::BadRequest,
            error: "bad_request",
            detail,
            cause: None,
        }
    }

    /// The journal did not take the delivery. Alertmanager retries 5xx within its deadline, so
    /// this is "try again", never "give up". The answer says only that; `cause` (the store's
    /// error, which may quote the database) goes to the log.
    pub fn journal_unavailable(cause: &dyn std::fmt::Display) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            outcome: WebhookOutcome::Unavailable,
            error: "unavailable",
            detail: JOURNAL_UNAVAILABLE.into(),
            cause: Some(cause.to_string()),
        }
    }

    /// The journal refused the delivery: as [`journal_unavailable`](Self::journal_unavailable),
    /// saying so when the reason is a full disk.
    pub fn journal_refused(error: &crate::store::StoreError) -> Self {
        let mut answer = Self::journal_unavailable(error);
        if error.is_disk_full() {
            answer.detail = JOURNAL_DISK_FULL.into();
        }
        answer
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({"error": self.error, "detail": self.detail}));
        let mut response = (self.status, body).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Bearer realm=\"token-rotator\", Basic realm=\"token-rotator\"",
                ),
            );
        }
        response
    }
}
