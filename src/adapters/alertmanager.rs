//! Alertmanager's API v2: silences (look up, create, extend) and the alerts firing now.
//!
//! Several URLs may be configured (an HA pair): each call goes to the first that answers.
//! Silences gossip between replicas, so one created on any is read back from all.
//! Error bodies come in two shapes: a bare JSON string (400, 404, 500) or `{code, message}` (422).

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{AdapterError, Observer, Permit};
use crate::domain::Labels;

const UPSTREAM: &str = "alertmanager";
pub const CREATED_BY: &str = "token-rotator";

#[derive(Clone)]
pub struct AlertmanagerClient {
    http: reqwest::Client,
    observer: Observer,
    urls: Vec<String>,
}

/// An exact-equality matcher; token-rotator never writes any other kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl Matcher {
    pub fn equal(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: value.to_owned(),
            is_regex: false,
            is_equal: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    pub id: String,
    pub status: SilenceStatus,
    pub matchers: Vec<Matcher>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SilenceStatus {
    pub state: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostSilence<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    matchers: &'a [Matcher],
    starts_at: Timestamp,
    ends_at: Timestamp,
    created_by: &'a str,
    comment: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SilenceCreated {
    #[serde(rename = "silenceID")]
    silence_id: String,
}

/// An alert as `GET /api/v2/alerts` shows it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveAlert {
    pub labels: Labels,
    #[serde(default)]
    pub annotations: Labels,
    pub starts_at: Timestamp,
    pub fingerprint: String,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: String,
}

impl AlertmanagerClient {
    pub fn new(urls: Vec<String>, timeout: Duration) -> Self {
        let http = crate::adapters::http_client(timeout);
        let urls = urls
            .into_iter()
            .map(|u| u.trim_end_matches('/').to_owned())
            .collect();
        Self {
            http,
            urls,
            observer: Observer::default(),
        }
    }

    pub fn observed(mut self, observer: Observer) -> Self {
        self.observer = observer;
        self
    }

    /// Sends `build(base_url)` to each Alertmanager in turn until one answers; a 4xx is an
    /// answer (the next replica would say the same), a transport error or 5xx is not.
    async fn first_answer<T: for<'de> Deserialize<'de>>(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<T, AdapterError> {
        self.observer.time(UPSTREAM, self.ask_in_turn(build)).await
    }

    async fn ask_in_turn<T: for<'de> Deserialize<'de>>(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> Result<T, AdapterError> {
        let mut last = AdapterError::permanent(UPSTREAM, "no Alertmanager URL is configured");
        for url in &self.urls {
            let response = match build(url).send().await {
                Ok(response) => response,
                Err(e) => {
                    last = AdapterError::from_reqwest(UPSTREAM, &e);
                    continue;
                }
            };
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return response
                    .json::<T>()
                    .await
                    .map_err(|e| AdapterError::from_reqwest(UPSTREAM, &e));
            }
            let body = response.text().await.unwrap_or_default();
            let error = AdapterError::from_status(UPSTREAM, status, &error_message(&body));
            if !error.is_transient() {
                return Err(error);
            }
            last = error;
        }
        Err(last)
    }

    /// The active or pending silence created by token-rotator with exactly these matchers.
    pub async fn find_silence(
        &self,
        matchers: &[Matcher],
    ) -> Result<Option<Silence>, AdapterError> {
        let filters: Vec<(&str, String)> = matchers
            .iter()
            .map(|m| ("filter", format!("{}=\"{}\"", m.name, escape(&m.value))))
            .collect();
        let silences: Vec<Silence> = self
            .first_answer(|url| {
                self.http
                    .get(format!("{url}/api/v2/silences"))
                    .query(&filters)
            })
            .await?;
        let mut wanted = matchers.to_vec();
        wanted.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(silences.into_iter().find(|s| {
            let mut have = s.matchers.clone();
            have.sort_by(|a, b| a.name.cmp(&b.name));
            s.created_by == CREATED_BY && s.status.state != "expired" && have == wanted
        }))
    }

    /// Creates a silence, or extends `existing`; returns the silence's id.
    ///
    /// An extension keeps the silence's own `startsAt`: Alertmanager updates an active silence in
    /// place only when its start and matchers are unchanged, and otherwise expires it and makes a
    /// new one (observed with 0.25), which would leave two behind.
    pub async fn put_silence(
        &self,
        _permit: &Permit,
        existing: Option<&Silence>,
        matchers: &[Matcher],
        ends_at: Timestamp,
        comment: &str,
        now: Timestamp,
    ) -> Result<String, AdapterError> {
        let body = PostSilence {
            id: existing.map(|s| s.id.as_str()),
            matchers,
            starts_at: existing.map_or(now, |s| s.starts_at),
            ends_at,
            created_by: CREATED_BY,
            comment,
        };
        let created: SilenceCreated = self
            .first_answer(|url| self.http.post(format!("{url}/api/v2/silences")).json(&body))
            .await?;
        Ok(created.silence_id)
    }

    /// Alerts with this name that are firing and neither silenced nor inhibited, from every
    /// configured Alertmanager (replicas that do not gossip may each hold some), deduplicated by
    /// fingerprint. Fails only if none answers.
    pub async fn active_alerts(&self, alertname: &str) -> Result<Vec<ActiveAlert>, AdapterError> {
        let query = [
            ("filter", format!("alertname=\"{}\"", escape(alertname))),
            ("active", "true".into()),
            ("silenced", "false".into()),
            ("inhibited", "false".into()),
        ];
        let mut found: Vec<ActiveAlert> = Vec::new();
        let mut answered = 0;
        let mut last_error = AdapterError::permanent(UPSTREAM, "no Alertmanager URL is configured");
        for url in &self.urls {
            let request = self.http.get(format!("{url}/api/v2/alerts")).query(&query);
            match request
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
            {
                Ok(response) => match response.json::<Vec<ActiveAlert>>().await {
                    Ok(alerts) => {
                        answered += 1;
                        for alert in alerts {
                            if !found.iter().any(|a| a.fingerprint == alert.fingerprint) {
                                found.push(alert);
                            }
                        }
                    }
                    Err(e) => last_error = AdapterError::from_reqwest(UPSTREAM, &e),
                },
                Err(e) => last_error = AdapterError::from_reqwest(UPSTREAM, &e),
            }
        }
        if answered == 0 {
            return Err(last_error);
        }
        Ok(found)
    }
}

/// Quotes and backslashes inside a matcher value.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The message in either of Alertmanager's error shapes, else the body itself.
fn error_message(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::String(message)) => message,
        Ok(value) => value
            .get("message")
            .and_then(|m| m.as_str())
            .map_or_else(|| body.to_owned(), str::to_owned),
        Err(_) => body.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_error_shapes_yield_their_message() {
        // Bodies from alertmanager-captures/silence-api/00-summary.txt (0.25).
        assert_eq!(
            error_message("\"Failed to create silence: end time can't be in the past\""),
            "Failed to create silence: end time can't be in the past"
        );
        assert_eq!(
            error_message(
                "{\"code\":612,\"message\":\"matchers in body should have at least 1 items\"}"
            ),
            "matchers in body should have at least 1 items"
        );
        assert_eq!(error_message("\"silence not found\""), "silence not found");
        assert_eq!(error_message("<html>"), "<html>");
    }

    #[test]
    fn status_classes() {
        let e = AdapterError::from_status(UPSTREAM, 404, &error_message("\"silence not found\""));
        assert!(!e.is_transient());
        assert_eq!(e.to_string(), "alertmanager: HTTP 404: silence not found");
        assert!(AdapterError::from_status(UPSTREAM, 500, "\"x\"").is_transient());
    }

    #[test]
    fn matcher_values_are_escaped_in_filters() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
    }
}
