//! The status page in a real browser: headless Chromium through chromedriver (Debian's
//! `chromium` and `chromium-driver`), driven with fantoccini over WebDriver.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};

use crate::helpers::{alert_body, capture, fixture};
use crate::real_alertmanager::free_port;
use crate::world::{ENVIRONMENTS, Sims, WorldOptions};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_status_page_renders_the_journal_and_labels_as_text_in_chromium() {
    if !std::path::Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromedriver is missing; .ci/run installs chromium-driver"
        );
        eprintln!(
            "SKIPPED: chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
        return;
    }
    let options = WorldOptions {
        status_open: true,
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
    world.run_to_the_end().await;

    let port = free_port();
    let driver = Driver(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    let webdriver = format!("http://127.0.0.1:{port}");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1600,1000"]}),
    );
    let mut client = None;
    for _ in 0..50 {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(&webdriver)
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let client = client.expect("a WebDriver session with headless Chromium");

    client.goto(&world.app.url("/")).await.unwrap();
    let rows = client.find_all(Locator::Css("tbody tr")).await.unwrap();
    let mut journal = world.rotations().await;
    journal.reverse(); // the page shows the newest first
    assert_eq!(rows.len(), journal.len());
    for (row, expected) in rows.iter().zip(&journal) {
        let cells = row.find_all(Locator::Css("td")).await.unwrap();
        let text = |i: usize| {
            let cell = cells[i].clone();
            async move { cell.text().await.unwrap() }
        };
        assert_eq!(text(0).await, expected.environment);
        assert_eq!(
            text(1).await,
            expected.api_user,
            "the api_user cell shows the label as text"
        );
        assert_eq!(text(4).await, expected.phase);
    }
    assert_ne!(
        client.title().await.unwrap(),
        "owned",
        "a label ran as a script"
    );
    assert!(journal.iter().any(|r| r.api_user == hostile));

    let screenshot = client.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("status-page.png"), &screenshot).unwrap();
    assert!(screenshot.starts_with(b"\x89PNG"));
    client.close().await.unwrap();
    drop(driver);
}
