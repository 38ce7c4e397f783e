//! A data request with a token: whether Synoptic answers it as a good token's. Used to verify a
//! new token and to prove an old one dead after disabling it.
//!
//! Only two answers say something about the token: `RESPONSE_CODE` 1 or 2 (it works) and 403
//! (docs.synopticdata.com/services/errors: "403 Authorization error", its category for invalid
//! authentication). Anything else (a 5xx, a 429, code 500 "Internal errors" inside a 200, -1 or
//! 404 for a malformed check, no `SUMMARY` at all) says nothing about the token: it is never
//! taken for "dead" (nor for "works").

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{SynopticClient, UPSTREAM, send, summary};
use crate::adapters::AdapterError;

/// What a data request with a token got.
pub(super) enum Probe {
    /// `RESPONSE_CODE` 1 ("No errors") or 2 ("Zero results": the token is good, the request
    /// found nothing).
    Answered,
    /// `RESPONSE_CODE` 403, an authorisation error: why, in Synoptic's words.
    Refused(String),
}

/// Tries per propagation window when proving a token dead.
const PROOF_TRIES: u32 = 12;

/// The authorisation failure's code on the errors page.
const AUTHORIZATION_ERROR: i64 = 403;

/// What an answer to a data request says about its token; an error when it says nothing:
/// transient when asking again may tell (the service failing), permanent when the check itself
/// is wrong (its parameters or path).
pub(super) fn classify(
    status: u16,
    body: Option<&serde_json::Value>,
) -> Result<Probe, AdapterError> {
    let (code, message) = summary(body);
    let message = message.unwrap_or_default();
    match code {
        _ if status >= 500 || status == 429 => Err(AdapterError::from_status(UPSTREAM, status, "")),
        Some(1 | 2) => Ok(Probe::Answered),
        Some(AUTHORIZATION_ERROR) => Ok(Probe::Refused(format!(
            "code {AUTHORIZATION_ERROR} (authorisation error): {message}"
        ))),
        // Errors page: "-1 Incorrect API parameter input", "404 URL not found".
        Some(code @ (-1 | 404)) => Err(AdapterError::permanent(
            UPSTREAM,
            format!(
                "the data request that checks a token is wrong (code {code}: {message}); \
                 check synoptic.verify_path"
            ),
        )),
        Some(code) => Err(AdapterError::Transient {
            upstream: UPSTREAM,
            detail: format!(
                "a data request answered code {code} ({message}), which says nothing about the \
                 token"
            ),
        }),
        None => Err(AdapterError::Transient {
            upstream: UPSTREAM,
            detail: format!(
                "a data request answered HTTP {status} without a SUMMARY, which says nothing \
                 about the token"
            ),
        }),
    }
}

impl SynopticClient {
    pub(super) async fn probe(&self, token: &SecretString) -> Result<Probe, AdapterError> {
        let separator = if self.verify_path.contains('?') {
            '&'
        } else {
            '?'
        };
        // The data API takes the token only in the query string; `send` drops URLs from errors.
        let url = format!(
            "{}{}{separator}token={}",
            self.base_url,
            self.verify_path,
            token.expose_secret()
        );
        let answer = self
            .observer
            .time(UPSTREAM, send(self.http.get(url)))
            .await?;
        // Synoptic's message may echo the token: it goes nowhere in clear.
        let (secret, name) = (token.expose_secret(), "the token");
        match classify(answer.status, answer.body.as_ref()) {
            Ok(Probe::Refused(why)) => Ok(Probe::Refused(super::wire::hide(&why, secret, name))),
            Ok(answered) => Ok(answered),
            Err(e) => Err(super::wire::hide_in(e, secret, name)),
        }
    }

    /// After a disable Synoptic accepted (or a token gone from the list): data requests with the
    /// token must be refused as unauthorised within the propagation window, asked again every
    /// twelfth of it. A token still answered after that is reported; one whose answers said
    /// nothing about it is an error to try again later. Never assumed dead.
    pub(super) async fn prove_dead(
        &self,
        token_id: &str,
        token: &SecretString,
    ) -> Result<(), AdapterError> {
        let pause = self.disable_propagation / PROOF_TRIES;
        let mut last_error = None;
        for attempt in 0..=PROOF_TRIES {
            if attempt > 0 {
                tokio::time::sleep(pause.max(Duration::from_millis(1))).await;
            }
            match self.probe(token).await {
                Ok(Probe::Refused(_)) => return Ok(()),
                Ok(Probe::Answered) => last_error = None,
                Err(e) if e.is_transient() => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(match last_error {
            // Could not tell: try the whole step again later.
            Some(e) => AdapterError::Transient {
                upstream: UPSTREAM,
                detail: format!(
                    "could not tell whether token {token_id} is dead, so it is not counted as \
                     dead: {e}"
                ),
            },
            None => AdapterError::permanent(
                UPSTREAM,
                format!(
                    "Synoptic accepted disabling token {token_id}, but data requests with it are \
                     still answered after {}: check it in the Synoptic console",
                    humantime::format_duration(self.disable_propagation)
                ),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary_of(code: i64) -> serde_json::Value {
        serde_json::json!({"SUMMARY": {"RESPONSE_CODE": code, "RESPONSE_MESSAGE": "m"}})
    }

    #[test]
    fn only_an_authorisation_error_says_a_token_is_dead() {
        assert!(matches!(
            classify(200, Some(&summary_of(403))),
            Ok(Probe::Refused(_))
        ));
        assert!(matches!(
            classify(403, Some(&summary_of(403))),
            Ok(Probe::Refused(_))
        ));
        for code in [1, 2] {
            assert!(matches!(
                classify(200, Some(&summary_of(code))),
                Ok(Probe::Answered)
            ));
        }
        // Internal errors, unknown codes, no SUMMARY, a failing service: unknown, retried.
        for (status, body) in [
            (200, Some(summary_of(500))),
            (200, Some(summary_of(200))),
            (200, None),
            (502, Some(summary_of(403))),
            (429, None),
        ] {
            let got = classify(status, body.as_ref());
            assert!(
                matches!(&got, Err(e) if e.is_transient()),
                "{status} {body:?}"
            );
        }
        // A wrong check is a configuration error, not a dead token.
        for code in [-1, 404] {
            let got = classify(200, Some(&summary_of(code)));
            assert!(matches!(&got, Err(e) if !e.is_transient()), "{code}");
        }
    }
}
