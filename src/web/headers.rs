//! The headers every answer carries, so that a browser never guesses, frames or runs what it was
//! not meant to: `nosniff` and `X-Frame-Options: DENY` on all; a Content-Security-Policy that
//! allows nothing on JSON and text, and on the HTML pages (the status page, the handover page)
//! only what they use: their one inline stylesheet (by its hash, so no injected style runs
//! either), forms sent back to this origin, no script, no frame, no other origin.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// For answers that are not pages: nothing may load, and no page may frame them.
const NOT_A_PAGE: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// For the pages: [`NOT_A_PAGE`] plus their inline stylesheet and same-origin forms. The favicon
/// a browser asks for by itself is `img-src 'self'`.
static PAGE: LazyLock<HeaderValue> = LazyLock::new(|| {
    let policy = format!(
        "default-src 'none'; style-src '{}'; img-src 'self'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
        style_hash(super::status_page::STYLESHEET)
    );
    HeaderValue::from_str(&policy).expect("the policy is ASCII")
});

/// CSP's hash source for an inline `<style>` element holding `css`, as maud writes it.
pub(super) fn style_hash(css: &str) -> String {
    let rendered = maud::html! { (css) }.into_string();
    let digest = Sha256::digest(rendered.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

pub(super) async fn add(mut response: Response) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    let policy = if html {
        PAGE.clone()
    } else {
        HeaderValue::from_static(NOT_A_PAGE)
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    response
}
