//! The status page and `/v1/rotations`, read over HTTP after real rotations.

mod timeline;

use crate::helpers::{Options, TOKEN, alert_body, spawn_app_with};
use crate::world::{World, rotated_world, spawn_world};

pub(super) async fn get(world: &World, path: &str, auth: bool) -> (u16, String) {
    let mut request = world.app.client.get(world.app.url(path));
    if auth {
        request = request.bearer_auth(TOKEN);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_page_lists_every_rotation_of_the_journal_and_filters() {
    let world = rotated_world().await;
    let rotations = world.rotations().await;
    let (status, html) = get(&world, "/", true).await;
    assert_eq!(status, 200);
    assert_eq!(
        html.matches("<tr class=\"").count(),
        rotations.len(),
        "{html}"
    );
    for row in &rotations {
        assert!(
            html.contains(&format!("href=\"/rotations/{}\"", row.id)),
            "{html}"
        );
    }
    assert!(html.contains(&format!(
        "{} of {} rotations",
        rotations.len(),
        rotations.len()
    )));

    let (_, staging) = get(&world, "/?environment=staging", true).await;
    assert_eq!(staging.matches("<tr class=\"").count(), 1);
    let (_, manual) = get(&world, "/?state=manual", true).await;
    assert_eq!(manual.matches("<tr class=\"manual\"").count(), 2);

    let done = rotations.iter().find(|r| r.phase == "done").unwrap();
    let (status, detail) = get(&world, &format!("/rotations/{}", done.id), true).await;
    assert_eq!(status, 200);
    for phase in [
        "issued",
        "distributed",
        "verified",
        "grace",
        "revoked",
        "done",
    ] {
        assert!(
            detail.contains(&format!("<li data-phase=\"{phase}\"")),
            "{phase} missing from the phase timeline"
        );
    }
    let (status, _) = get(&world, "/rotations/not-a-rotation", true).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_json_matches_the_journal() {
    let world = rotated_world().await;
    let rotations = world.rotations().await;
    let (status, body) = get(&world, "/v1/rotations", true).await;
    assert_eq!(status, 200);
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), rotations.len());
    let done = rotations.iter().find(|r| r.phase == "done").unwrap();
    let (_, one) = get(&world, &format!("/v1/rotations/{}", done.id), true).await;
    let one: serde_json::Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["phase"], "done");
    assert_eq!(
        one["new_token"]["fingerprint"],
        done.new_token_fingerprint.clone().unwrap()
    );
    assert_eq!(
        one["audit"].as_array().unwrap().last().unwrap()["to"],
        "done"
    );
}

#[tokio::test]
async fn the_page_needs_the_credential_unless_configured_open() {
    let world = spawn_world().await;
    for path in ["/", "/v1/rotations", "/rotations/x", "/v1/rotations/x"] {
        assert_eq!(get(&world, path, false).await.0, 401, "{path}");
    }
    let open = spawn_app_with(Options {
        configure: Some(Box::new(|config| config.status_page_open = true)),
        ..Options::default()
    })
    .await;
    let response = open.client.get(open.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn label_values_are_text_never_markup() {
    let world = spawn_world().await;
    let hostile = alert_body(
        "00000000000000dd",
        &[
            ("alertname", "SignonApiUserTokenExpirySoon"),
            ("environment", "production"),
            ("api_user", "<script>alert(1)</script>@hmrc.gov.uk"),
            (
                "application",
                "Publishing API\"><img src=x onerror=alert(2)>",
            ),
        ],
    );
    world.app.post_webhook(hostile).await;
    world.run_to_the_end().await;
    let (_, html) = get(&world, "/", true).await;
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;@hmrc.gov.uk"),
        "{html}"
    );
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
    let slack = serde_json::to_string(&world.slack.messages()).unwrap();
    assert!(
        !slack.contains("<script>"),
        "Slack text is escaped too: {slack}"
    );
}

#[tokio::test]
async fn the_json_list_comes_in_pages_linked_by_their_next() {
    let world = rotated_world().await;
    let all: Vec<String> = world.rotations().await.into_iter().map(|r| r.id).collect();
    assert!(all.len() >= 3, "{all:?}");
    let client = reqwest::Client::new();
    let mut url = world.app.url("/v1/rotations?limit=2");
    let mut seen = Vec::new();
    for _ in 0..all.len() {
        let response = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
        let next = response
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().to_owned());
        let page: serde_json::Value = response.json().await.unwrap();
        let page = page.as_array().unwrap();
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|r| r["id"].as_str().unwrap().to_owned()));
        match next {
            Some(link) => {
                let path = link.trim_start_matches('<').split('>').next().unwrap();
                url = world.app.url(path);
            }
            None => break,
        }
    }
    let mut expected = all.clone();
    expected.sort();
    seen.sort();
    assert_eq!(seen, expected, "every rotation once, across the pages");
}

/// The pages may not be framed (clickjacking) and run nothing they did not ship: the policy
/// allows their one inline stylesheet by its hash, so injected markup could neither style nor
/// script anything; no answer may be framed or sniffed.
#[tokio::test]
async fn every_answer_forbids_framing_and_the_pages_run_only_their_own_stylesheet() {
    use base64::Engine as _;
    use sha2::{Digest, Sha256};
    let world = rotated_world().await;
    let id = world.rotations().await[0].id.clone();
    for path in ["/", &format!("/rotations/{id}")] {
        let response = world
            .app
            .client
            .get(world.app.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let headers = response.headers().clone();
        let html = response.text().await.unwrap();
        let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        let policy = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe"), "{path}: {policy}");
        // The hash the policy allows is the page's own stylesheet's, as sent.
        let style = html
            .split_once("<style>")
            .and_then(|(_, rest)| rest.split_once("</style>"))
            .map(|(css, _)| css)
            .expect("an inline stylesheet");
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style));
        assert!(
            policy.contains(&format!("style-src 'sha256-{hash}'")),
            "{path}: {policy}"
        );
        // What the policy would block, the page must not need.
        for blocked in ["<script", " style=\"", "<link", "<iframe", "<img"] {
            assert!(!html.contains(blocked), "{path} has {blocked}");
        }
    }
    for path in [
        "/v1/rotations",
        "/healthz",
        "/readyz",
        "/metrics",
        "/nowhere",
    ] {
        let response = world
            .app
            .client
            .get(world.app.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(header("x-frame-options").as_deref(), Some("DENY"), "{path}");
        assert_eq!(
            header("content-security-policy").as_deref(),
            Some("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
            "{path}"
        );
    }
}
