//! One credential or data request on the wire, and what its answer means.

use serde_json::Value;

use super::UPSTREAM;
use crate::adapters::AdapterError;

/// An answer: its HTTP status and its body, when JSON.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Option<Value>,
}

pub(super) async fn send(request: reqwest::RequestBuilder) -> Result<Answer, AdapterError> {
    let response = request
        .send()
        .await
        .map_err(|e| AdapterError::from_reqwest(UPSTREAM, &e.without_url()))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    Ok(Answer {
        status,
        body: serde_json::from_str(&text).ok(),
    })
}

/// `SUMMARY.RESPONSE_CODE` and `RESPONSE_MESSAGE`, when the body has them.
pub(super) fn summary(body: Option<&Value>) -> (Option<i64>, Option<String>) {
    let summary = body.map(|b| &b["SUMMARY"]);
    (
        summary.and_then(|s| s["RESPONSE_CODE"].as_i64()),
        summary.and_then(|s| s["RESPONSE_MESSAGE"].as_str().map(str::to_owned)),
    )
}

/// A credential answer as a result: not 2xx is an error, and so is a 2xx whose `SUMMARY` says
/// anything but code 1 (docs.synopticdata.com/services/errors). The body is never echoed: it
/// may hold a token.
pub(super) fn judge(answer: Answer) -> Result<Value, AdapterError> {
    let (code, message) = summary(answer.body.as_ref());
    let detail = || {
        message
            .clone()
            .unwrap_or_else(|| format!("HTTP {}", answer.status))
    };
    if !(200..300).contains(&answer.status) {
        return Err(AdapterError::from_status(
            UPSTREAM,
            answer.status,
            &detail(),
        ));
    }
    if code.is_some_and(|c| c != 1) {
        return Err(AdapterError::permanent(
            UPSTREAM,
            format!("Synoptic answered code {code:?}: {}", detail()),
        ));
    }
    answer
        .body
        .ok_or_else(|| AdapterError::permanent(UPSTREAM, "the answer is not JSON"))
}

/// `text` with every occurrence of `secret` replaced by `name`: Synoptic's messages may echo
/// the token a request named (its own disable answer does: "Token … is disabled.").
pub(super) fn hide(text: &str, secret: &str, name: &str) -> String {
    if secret.is_empty() {
        return text.to_owned();
    }
    text.replace(secret, name)
}

/// An error whose detail may echo `secret`, with it replaced by `name`.
pub(super) fn hide_in(error: AdapterError, secret: &str, name: &str) -> AdapterError {
    match error {
        AdapterError::Transient { upstream, detail } => AdapterError::Transient {
            upstream,
            detail: hide(&detail, secret, name),
        },
        AdapterError::Permanent { upstream, detail } => AdapterError::Permanent {
            upstream,
            detail: hide(&detail, secret, name),
        },
        AdapterError::Pending { upstream, detail } => AdapterError::Pending {
            upstream,
            detail: hide(&detail, secret, name),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_2xx_whose_summary_is_not_code_1_is_an_error() {
        let answer = |status, body: serde_json::Value| Answer {
            status,
            body: Some(body),
        };
        let refused =
            serde_json::json!({"SUMMARY": {"RESPONSE_CODE": -1, "RESPONSE_MESSAGE": "no"}});
        assert!(judge(answer(200, refused)).is_err());
        let ok = serde_json::json!({"SUMMARY": {"RESPONSE_CODE": 1, "RESPONSE_MESSAGE": "OK"}});
        assert!(judge(answer(200, ok)).is_ok());
        assert!(judge(answer(200, serde_json::json!({"TOKEN": "x"}))).is_ok());
        assert!(
            judge(Answer {
                status: 200,
                body: None
            })
            .is_err()
        );
    }

    #[test]
    fn an_echoed_token_is_replaced_by_its_name() {
        let echoed = AdapterError::permanent(UPSTREAM, "Token 0123abcd is not valid");
        let hidden = hide_in(echoed, "0123abcd", "syn-1");
        assert_eq!(hidden.to_string(), "synoptic: Token syn-1 is not valid");
        assert_eq!(hide("x", "", "n"), "x");
    }
}
