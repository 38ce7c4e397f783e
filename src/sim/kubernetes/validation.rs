//! What the API server validates on every object before anything else, with its messages
//! (`k8s.io/apimachinery/pkg/util/validation/validation.go`; kubernetes.io/docs/concepts/
//! overview/working-with-objects/names/ and .../labels/#syntax-and-character-set), and the 422
//! `Status` it answers with (`k8s.io/apimachinery/pkg/api/errors.NewInvalid`).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

const DNS1123_LABEL: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_SUBDOMAIN: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const LABEL_VALUE: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";

fn alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_label(value: &str) -> bool {
    !value.is_empty()
        && value.starts_with(alnum)
        && value.ends_with(alnum)
        && value.chars().all(|c| alnum(c) || c == '-')
}

/// `IsDNS1123Label`: at most 63 characters (container names).
pub fn dns1123_label(field: &str, value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(format!(
            "{field}: Invalid value: {value:?}: must be no more than 63 characters"
        ));
    }
    if !is_label(value) {
        errors.push(format!(
            "{field}: Invalid value: {value:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '{DNS1123_LABEL}')"
        ));
    }
    errors
}

/// `IsDNS1123Subdomain`: at most 253 characters (the names of most objects).
pub fn dns1123_subdomain(field: &str, value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 253 {
        errors.push(format!(
            "{field}: Invalid value: {value:?}: must be no more than 253 characters"
        ));
    }
    if !value.split('.').all(is_label) {
        errors.push(format!(
            "{field}: Invalid value: {value:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '{DNS1123_SUBDOMAIN}')"
        ));
    }
    errors
}

/// `IsValidLabelValue`: at most 63 characters, alphanumerics with `-_.` inside.
fn label_value(field: &str, value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push(format!(
            "{field}: Invalid value: {value:?}: must be no more than 63 characters"
        ));
    }
    let edge = |c: char| c.is_ascii_alphanumeric();
    let ok = value.is_empty()
        || (value.starts_with(edge)
            && value.ends_with(edge)
            && value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
    if !ok {
        errors.push(format!(
            "{field}: Invalid value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '{LABEL_VALUE}')"
        ));
    }
    errors
}

/// Every label value of `labels` (an object) at `field`.
pub fn labels(field: &str, labels: &Value) -> Vec<String> {
    labels
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(k, v)| match v.as_str() {
            Some(v) => label_value(field, v),
            None => vec![format!("{field}.{k}: Invalid value: not a string")],
        })
        .collect()
}

/// The `apiVersion` and `kind` a body must carry for its URL; a mismatch is 400, as the
/// decoder refuses it before validation (`k8s.io/apiserver/pkg/endpoints/handlers/create.go`).
pub fn type_meta(body: &Value, api_version: &str, kind: &str) -> Option<Response> {
    let found = body["apiVersion"].as_str().unwrap_or("");
    if !found.is_empty() && found != api_version {
        return Some(super::status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "the API version in the data ({found}) does not match the expected API version ({api_version})"
            ),
        ));
    }
    let found = body["kind"].as_str().unwrap_or("");
    if !found.is_empty() && found != kind {
        let version = api_version.rsplit('/').next().unwrap_or(api_version);
        return Some(super::status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!("{found} in version \"{version}\" cannot be handled as a {kind}"),
        ));
    }
    None
}

/// 422 Invalid: `<Kind>.<group> "<name>" is invalid: <errors>`, one cause per error.
pub fn invalid(kind: &str, group: &str, name: &str, errors: &[String]) -> Response {
    let qualified = if group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{group}")
    };
    let listed = match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| {
            let (field, message) = e.split_once(": ").unwrap_or(("", e));
            json!({"reason": "FieldValueInvalid", "message": message, "field": field})
        })
        .collect();
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{qualified} \"{name}\" is invalid: {listed}"),
        "reason": "Invalid",
        "details": {"name": name, "group": group, "kind": kind, "causes": causes},
        "code": 422,
    });
    (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response()
}
