//! Webhook authentication: Bearer or Basic, as Alertmanager's http_config sends them.

use token_rotator::intake::auth::WebhookAuth;

use crate::helpers::{
    BASIC_PASSWORD, BASIC_USER, Options, TOKEN, capture, spawn_app, spawn_app_with,
};

async fn post_with(
    app: &crate::helpers::TestApp,
    authorization: Option<&str>,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/v1/alertmanager"))
        .header("content-type", "application/json")
        .body(capture("01-"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn missing_or_wrong_credentials_are_401_without_echoing_them() {
    let app = spawn_app().await;
    let cases: &[(&str, Option<&str>)] = &[
        ("no header", None),
        ("wrong bearer", Some("Bearer wrong-bearer-credential-999")),
        (
            "right token, wrong scheme",
            Some("Token test-bearer-credential-123"),
        ),
        ("bearer with no value", Some("Bearer")),
        // alertmanager:wrong-basic-password-789
        (
            "basic not configured",
            Some("Basic YWxlcnRtYW5hZ2VyOndyb25nLWJhc2ljLXBhc3N3b3JkLTc4OQ=="),
        ),
        (
            "right token as a prefix",
            Some("Bearer test-bearer-credential-123x"),
        ),
    ];
    for (why, header) in cases {
        let response = post_with(&app, *header).await;
        assert_eq!(response.status(), 401, "{why}");
        assert!(response.headers().contains_key("www-authenticate"), "{why}");
        let body = response.text().await.unwrap();
        let error: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(error["error"], "unauthorized", "{why}");
        for secret in [
            "wrong-bearer-credential-999",
            TOKEN,
            "YWxlcnRtYW5hZ2Vy",
            "wrong-basic",
        ] {
            assert!(
                !body.contains(secret),
                "{why}: 401 body echoes {secret:?}: {body}"
            );
        }
    }
    assert!(app.journal_rows().await.is_empty());
    let (_, metrics) = app.get_text("/metrics").await;
    assert!(metrics.contains("token_rotator_webhook_requests_total{outcome=\"unauthorized\"} 6"));
}

#[tokio::test]
async fn authentication_comes_before_anything_about_the_body() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/v1/alertmanager"))
        .header("content-type", "text/plain")
        .body("not even json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn the_right_bearer_token_is_accepted() {
    let app = spawn_app().await;
    let response = post_with(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.journal_rows().await.len(), 1);
}

#[tokio::test]
async fn the_right_basic_credential_is_accepted_and_a_wrong_one_is_not() {
    let app = spawn_app_with(Options {
        auth: WebhookAuth::basic(BASIC_USER, &BASIC_PASSWORD.into()),
        ..Options::default()
    })
    .await;
    // Byte for byte the header Alertmanager sent in capture 09.
    let right = post_with(
        &app,
        Some("Basic YWxlcnRtYW5hZ2VyOnRlc3QtYmFzaWMtcGFzc3dvcmQtNDU2"),
    )
    .await;
    assert_eq!(right.status(), 200);
    // alertmanager:wrong-basic-password-789
    let wrong = post_with(
        &app,
        Some("Basic YWxlcnRtYW5hZ2VyOndyb25nLWJhc2ljLXBhc3N3b3JkLTc4OQ=="),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let body = wrong.text().await.unwrap();
    assert!(!body.contains("wrong-basic-password") && !body.contains("YWxlcnRtYW5hZ2Vy"));
    // A bearer token is not a Basic credential.
    let bearer = post_with(&app, Some(&format!("Bearer {BASIC_PASSWORD}"))).await;
    assert_eq!(bearer.status(), 401);
}

#[tokio::test]
async fn disabled_authentication_accepts_a_request_without_credentials() {
    let app = spawn_app_with(Options {
        auth: WebhookAuth::Disabled,
        ..Options::default()
    })
    .await;
    assert_eq!(post_with(&app, None).await.status(), 200);
}
