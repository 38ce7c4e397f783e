//! A data request with a token: whether Synoptic answers it as a good token's. Used to verify a
//! new token and to prove an old one dead after disabling it.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{SynopticClient, UPSTREAM, send, summary};
use crate::adapters::AdapterError;

/// What a data request with a token got.
pub(super) enum Probe {
    /// `RESPONSE_CODE` 1 ("No errors") or 2 ("Zero results": the token is good, the request
    /// found nothing), docs.synopticdata.com/services/errors.
    Answered,
    /// Any other code (an authorisation failure): why, in Synoptic's words.
    Refused(String),
}

/// Tries per propagation window when proving a token dead.
const PROOF_TRIES: u32 = 12;

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
        if answer.status >= 500 || answer.status == 429 {
            return Err(AdapterError::from_status(UPSTREAM, answer.status, ""));
        }
        let (code, message) = summary(answer.body.as_ref());
        Ok(match code {
            Some(1 | 2) => Probe::Answered,
            Some(code) => Probe::Refused(format!("code {code}: {}", message.unwrap_or_default())),
            None => Probe::Refused(format!("HTTP {} without a SUMMARY", answer.status)),
        })
    }

    /// After a disable Synoptic accepted: data requests with the token must be refused within
    /// the propagation window, asked again every twelfth of it; a token still answered after
    /// that is reported, never assumed dead.
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
                Err(e) => last_error = Some(e),
            }
        }
        Err(match last_error {
            // Could not ask: try the whole step again later.
            Some(e) => e,
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
