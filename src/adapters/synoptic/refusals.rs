//! What Synoptic's refusals mean: a token not listed (whose tokens a key sees depends on the
//! endpoint), and a disable refused (each documented meaning reported as itself).

use secrecy::{ExposeSecret, SecretString};

use super::CredentialApi;
use super::{SynopticClient, UPSTREAM, judge, summary, wire};
use crate::adapters::AdapterError;

impl SynopticClient {
    /// Why a token is not listed, as the endpoint in use decides whose tokens it lists.
    pub(super) fn unlisted(&self, token: &str, why: &str) -> String {
        match self.credential_api {
            CredentialApi::Current => format!(
                "{token} is not among the live tokens of this API key's Synoptic account, so \
                 Synoptic will not let any of the account's keys {why} it: it belongs to another \
                 Synoptic account (or has already expired or been disabled). Rotate it with a \
                 key of its own account, or by hand"
            ),
            CredentialApi::Legacy => format!(
                "{token} is not among this API key's tokens, and the legacy endpoint lets only \
                 the key that made a token {why} it: it was made in the Synoptic console or with \
                 another API key (or has already expired or been disabled). Rotate it with the \
                 key that made it, with the current endpoint (synoptic.credential_api = \
                 \"current\"), or by hand"
            ),
        }
    }

    /// After Synoptic refused to disable `value` (named `token_id`): what its refusal means.
    /// [`Issuer::revoke`] proves a token that is gone dead; every other refusal is reported as
    /// what it is.
    pub(super) async fn disable_refused(
        &self,
        token_id: &str,
        value: &SecretString,
        answer: wire::Answer,
    ) -> Result<(), AdapterError> {
        let (code, message) = summary(answer.body.as_ref());
        let message = wire::hide(
            &message.unwrap_or_default(),
            value.expose_secret(),
            token_id,
        );
        match code {
            // docs.synopticdata.com/services/errors: "-1 Incorrect API parameter input". The token
            // was listed a moment ago; if it is gone now (a person disabled it, or it expired),
            // a data request says whether it is dead.
            Some(-1) => {
                let still_listed = self.values().await?.iter().any(|v| self.is(v, token_id));
                if still_listed {
                    return Err(AdapterError::permanent(
                        UPSTREAM,
                        format!(
                            "Synoptic refused to disable token {token_id} as incorrect input \
                             (code -1: {message}) though it still lists it: disable it in the \
                             Synoptic console"
                        ),
                    ));
                }
                self.prove_dead(token_id, value).await
            }
            // The errors page's "403 Authorization error": this key may not act on the token.
            Some(403) => Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "Synoptic refused to disable token {token_id} with an authorisation error \
                     (code 403: {message}): {}",
                    self.unlisted("it", "disable")
                ),
            )),
            // docs.synopticdata.com/account/token-settings: with a `protected` tag "a request to
            // disable the token will reject with a 400 error"; no code or wording documented.
            _ if answer.status == 400 => Err(AdapterError::permanent(
                UPSTREAM,
                format!(
                    "Synoptic refused to disable token {token_id} with HTTP 400{}, its answer to \
                     a token tagged `protected`: remove the tag in the Synoptic console to let \
                     it be disabled, or leave it to expire",
                    code.map(|c| format!(" (code {c}: {message})"))
                        .unwrap_or_default()
                ),
            )),
            _ => judge(answer)
                .map(|_| ())
                .map_err(|e| wire::hide_in(e, value.expose_secret(), token_id)),
        }
    }
}
