//! Slack incoming webhook: `POST <url>` with `{"text", "blocks"}`; success is HTTP 200 with the
//! plain-text body `ok`. The URL is itself the credential, so it never appears in errors.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::adapters::{AdapterError, Observer};

const UPSTREAM: &str = "slack";

#[derive(Clone)]
pub struct SlackWebhook {
    http: reqwest::Client,
    observer: Observer,
    url: SecretString,
}

impl SlackWebhook {
    pub fn new(url: SecretString, timeout: Duration) -> Self {
        let http = crate::adapters::http_client(timeout);
        Self {
            http,
            url,
            observer: Observer::default(),
        }
    }

    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    /// Posts one message body (`{"text": …, "blocks": […]}`).
    pub async fn post(&self, body: &serde_json::Value) -> Result<(), AdapterError> {
        self.observer.time(UPSTREAM, self.send(body)).await
    }

    async fn send(&self, body: &serde_json::Value) -> Result<(), AdapterError> {
        let mut body = body.clone();
        super::verbatim(&mut body);
        let response = self
            .http
            .post(self.url.expose_secret())
            .json(&body)
            .send()
            .await
            .map_err(|e| AdapterError::from_reqwest(UPSTREAM, &e.without_url()))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        match (status, text.trim()) {
            (200, "ok") => Ok(()),
            (200, other) => Err(AdapterError::permanent(
                UPSTREAM,
                format!("HTTP 200 but the body is {other:?}, not \"ok\""),
            )),
            _ => Err(AdapterError::from_status(UPSTREAM, status, &text)),
        }
    }
}
