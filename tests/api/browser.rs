//! The status page in a real browser: headless Chromium through chromedriver (Debian's
//! `chromium` and `chromium-driver`), driven with fantoccini over WebDriver. It checks labels
//! stay text, the pages fit a laptop and a phone without scrolling sideways, keyboard-only
//! navigation, and runs axe-core (`tests/browser/`, pinned by its package-lock) for WCAG 2.1 AA.
//! Screenshots land in `target/screenshots/` (`docs/` with `TOKEN_ROTATOR_SCREENSHOTS=docs`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use token_rotator::engine::Phase;

use crate::helpers::{alert_body, capture, fixture};
use crate::real_alertmanager::free_port;
use crate::world::{ENVIRONMENTS, Sims, WorldOptions};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const AXE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/browser/node_modules/axe-core/axe.min.js"
);
/// A laptop and a phone (iPhone 12–14 portrait).
const SIZES: [(u32, u32, &str); 2] = [(1280, 800, ""), (390, 844, "-phone")];

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Outside CI a missing tool skips the test; in CI it fails, since `.ci/run` installs it.
fn present(path: &str, install: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{path} is missing; .ci/run runs {install}"
    );
    eprintln!("SKIPPED: {path} is missing ({install})");
    false
}

async fn session(port: u16) -> Client {
    let webdriver = format!("http://127.0.0.1:{port}");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--hide-scrollbars", "--window-size=1280,800"]}),
    );
    for _ in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        if let Ok(client) = ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&webdriver)
            .await
        {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("no WebDriver session with headless Chromium");
}

fn screenshot_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var("TOKEN_ROTATOR_SCREENSHOTS").as_deref() {
        Ok("docs") => root.join("docs"),
        _ => root.join("target/screenshots"),
    }
}

/// At each size: nothing wider than the viewport, and a screenshot named `name`.
async fn fits_and_shoot(client: &Client, url: &str, name: &str) {
    for (width, height, suffix) in SIZES {
        client.set_window_size(width, height).await.unwrap();
        client.goto(url).await.unwrap();
        let widths = client
            .execute(
                "const d = document.documentElement; return [d.scrollWidth, d.clientWidth];",
                vec![],
            )
            .await
            .unwrap();
        let (scroll, client_width) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
        assert!(
            scroll <= client_width,
            "{name} at {width}x{height} scrolls sideways: {scroll} px of content in {client_width}"
        );
        let png = client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}{suffix}.png")), &png).unwrap();
    }
}

/// axe-core's WCAG 2.0/2.1 A and AA rules on the page at `url`; their violations, described.
async fn axe_violations(client: &Client, url: &str) -> Vec<String> {
    client.goto(url).await.unwrap();
    let source = std::fs::read_to_string(AXE).unwrap();
    client.execute(&source, vec![]).await.unwrap();
    let result = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
               .then(r => done({ran: r.passes.length + r.inapplicable.length,
                  violations: r.violations.map(v => v.id + ': ' + v.help + ' at ' +
                    v.nodes.map(n => n.target.join(' ')).join(', '))}))
               .catch(e => done({error: String(e)}));",
            vec![],
        )
        .await
        .unwrap();
    assert!(result["error"].is_null(), "axe-core failed: {result}");
    assert!(
        result["ran"].as_u64().unwrap() > 10,
        "axe ran no rules: {result}"
    );
    serde_json::from_value(result["violations"].clone()).unwrap()
}

/// The page as printed: Chromium's print media (through chromedriver's DevTools endpoint) at an
/// A4 page's width. The filters and the band's decoration go, nothing is cut off sideways.
async fn print_view(client: &Client, port: u16, url: &str) {
    client.set_window_size(794, 1123).await.unwrap();
    client.goto(url).await.unwrap();
    let looks = "const f = document.querySelector('form'); const d = document.documentElement;
        return [f ? getComputedStyle(f).display : 'none', d.scrollWidth, d.clientWidth,
                getComputedStyle(document.querySelector('a')).textDecorationLine];";
    let on_screen = client.execute(looks, vec![]).await.unwrap();
    assert_ne!(
        on_screen[0], "none",
        "the filters show on screen: {on_screen}"
    );
    let session = client.session_id().await.unwrap().unwrap();
    let emulated = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/session/{session}/goog/cdp/execute"
        ))
        .json(
            &serde_json::json!({"cmd": "Emulation.setEmulatedMedia", "params": {"media": "print"}}),
        )
        .send()
        .await
        .unwrap();
    assert!(
        emulated.status().is_success(),
        "{}",
        emulated.text().await.unwrap()
    );
    let printed = client.execute(looks, vec![]).await.unwrap();
    assert_eq!(printed[0], "none", "print drops the filters: {printed}");
    assert!(
        printed[1].as_u64().unwrap() <= printed[2].as_u64().unwrap(),
        "the printed page is cut off sideways: {printed}"
    );
    assert_eq!(
        printed[3], "none",
        "printed links are plain text: {printed}"
    );
    let png = client.screenshot().await.unwrap();
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("status-page-print.png"), &png).unwrap();
    reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{port}/session/{session}/goog/cdp/execute"
        ))
        .json(&serde_json::json!({"cmd": "Emulation.setEmulatedMedia", "params": {"media": ""}}))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_status_page_renders_the_journal_and_labels_as_text_in_chromium() {
    if !present(CHROMEDRIVER, "apt-get install chromium chromium-driver") {
        return;
    }
    let options = WorldOptions {
        status_open: true,
        // One environment only plans, so a shadow plan is on the page too.
        shadow: vec!["integration"],
        ..WorldOptions::default()
    };
    let world = Sims::start().await.world_with(None, options).await;
    for env in ENVIRONMENTS {
        world.seed_in(env, "email-alert-api@alphagov.co.uk", "Email Alert API");
    }
    world.app.post_webhook(capture("05-")).await;
    world
        .app
        .post_webhook(fixture("synthetic/special-cases.json"))
        .await;
    let hostile = "<script>document.title='owned'</script>@hmrc.gov.uk";
    world
        .app
        .post_webhook(alert_body(
            "00000000000000ee",
            &[
                ("alertname", "SignonApiUserTokenExpirySoon"),
                ("environment", "production"),
                ("api_user", hostile),
                ("application", "Publishing API"),
            ],
        ))
        .await;

    let port = free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let client = session(port).await;

    // Mid-way, while a rotation waits out its grace period, the timeline has a bar to draw.
    world.run_until(Phase::Grace).await;
    fits_and_shoot(&client, &world.app.url("/"), "status-page").await;
    world.run_to_the_end().await;

    client.goto(&world.app.url("/")).await.unwrap();
    let rows = client
        .find_all(Locator::Css("table.list tbody tr"))
        .await
        .unwrap();
    let journal = world.rotations().await;
    assert_eq!(rows.len(), journal.len());
    for row in &rows {
        let cells = row.find_all(Locator::Css("td")).await.unwrap();
        let link = cells[1].find(Locator::Css("a")).await.unwrap();
        let href = link.attr("href").await.unwrap().unwrap();
        let expected = journal
            .iter()
            .find(|r| href == format!("/rotations/{}", r.id))
            .expect("each row links to a journaled rotation");
        assert_eq!(cells[0].text().await.unwrap(), expected.environment);
        assert_eq!(
            link.text().await.unwrap(),
            expected.api_user,
            "the api_user cell shows the label as text"
        );
        assert_eq!(cells[3].text().await.unwrap(), expected.phase);
    }
    assert_ne!(
        client.title().await.unwrap(),
        "owned",
        "a label ran as a script"
    );
    assert!(journal.iter().any(|r| r.api_user == hostile));

    // Keyboard only: the first Tab reaches the summary band's first link, Enter follows it.
    let body = client.find(Locator::Css("body")).await.unwrap();
    body.send_keys(&Key::Tab.to_string()).await.unwrap();
    let focused = client
        .execute(
            "return document.activeElement.getAttribute('href');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focused, "/?class=needs_person");
    client
        .active_element()
        .await
        .unwrap()
        .send_keys(&Key::Enter.to_string())
        .await
        .unwrap();
    let filtered = url::Url::parse(&world.app.url("/?class=needs_person")).unwrap();
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_url(&filtered)
        .await
        .expect("Enter on the focused link navigates to the filtered list");

    let done = journal
        .iter()
        .find(|r| r.phase == "done")
        .expect("a done rotation");
    let shadow = journal
        .iter()
        .find(|r| r.mode == "shadow")
        .expect("a shadow plan");
    let pages = [
        ("status-page-ended", world.app.url("/")),
        (
            "rotation-page",
            world.app.url(&format!("/rotations/{}", done.id)),
        ),
        (
            "shadow-plan",
            world.app.url(&format!("/rotations/{}", shadow.id)),
        ),
    ];
    for (name, url) in &pages {
        fits_and_shoot(&client, url, name).await;
    }
    print_view(&client, port, &world.app.url("/")).await;
    if present(AXE, "npm ci --prefix tests/browser") {
        client.set_window_size(1280, 800).await.unwrap();
        for (name, url) in &pages {
            let violations = axe_violations(&client, url).await;
            assert!(violations.is_empty(), "{name}: {violations:#?}");
        }
    }
    client.close().await.unwrap();
    drop(driver);
}
