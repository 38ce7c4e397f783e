//! The picture of a rotation's Slack thread in the documentation (`docs/slack-thread.png`) is
//! drawn from what the notifier really sends: a delivery of two alerts goes through the whole
//! service with the Web API notifier, the Slack simulator records every message as it reads at
//! the end (edits applied), and `block_kit` draws them as Slack lays them out.
//!
//! The HTML is always drawn (to `target/screenshots/slack-thread.html`), so a block type the
//! renderer does not know fails here. The screenshot is taken in headless Chromium only when
//! asked: `TOKEN_ROTATOR_SCREENSHOTS=docs` writes `docs/slack-thread.png`, any other value
//! `target/screenshots/slack-thread.png`:
//!
//! ```sh
//! TOKEN_ROTATOR_SCREENSHOTS=docs cargo nextest run --test api -E 'test(/a_rotations_slack_thread/)'
//! ```
//!
//! Debian's `chromium` draws it; the emoji need a colour emoji font (`fonts-noto-color-emoji`),
//! and the text is closest to Slack's with `fonts-lato`.

use std::path::{Path, PathBuf};
use std::process::Command;

use std::time::Duration;

use token_rotator::engine::Phase;

use crate::slack::{APPROVERS_CONFIG, batch, threads_options, wait_for_slack};
use crate::world::{Sims, WorldOptions};

const CHROMIUM: &str = "/usr/bin/chromium";

fn output_dir() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var("TOKEN_ROTATOR_SCREENSHOTS").as_deref() {
        Ok("docs") => Some(root.join("docs")),
        Ok(_) => Some(root.join("target/screenshots")),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_rotations_slack_thread_is_drawn_from_the_block_kit_the_notifier_sent() {
    // One delivery, two alerts: an internal API user rotated to the end, and one whose rule
    // asks an approver first (the Approve and Reject buttons, still open in the picture).
    let options = WorldOptions {
        config_toml: Some(
            APPROVERS_CONFIG.replace("approval_timeout = \"2h\"", "approval_timeout = \"30d\""),
        ),
        ..threads_options()
    };
    let world = Sims::start().await.world_with(None, options).await;
    let targets = [
        ("email-alert-api@alphagov.co.uk", "Email Alert API"),
        ("publisher@alphagov.co.uk", "Publishing API"),
    ];
    for (user, app) in targets {
        world.seed(user, app);
    }
    let targets: Vec<(String, String)> = targets
        .iter()
        .map(|(u, a)| ((*u).to_owned(), (*a).to_owned()))
        .collect();
    assert_eq!(world.app.post_webhook(batch(&targets)).await.status(), 200);
    // The rotation runs to its end through its grace period; the request stays open.
    for _ in 0..200 {
        world.engine.run_until_idle().await.unwrap();
        let rows = world.rotations().await;
        if rows.iter().any(|r| r.phase == Phase::Done.as_str()) {
            break;
        }
        world.clock.advance(Duration::from_secs(61));
    }
    wait_for_slack(&world).await;

    let messages = world.slack.posted();
    assert!(
        messages.iter().any(|m| m.thread_ts.is_some()),
        "a thread: {messages:#?}"
    );
    let html = super::block_kit::page("#rotations", &messages).unwrap_or_else(|e| panic!("{e}"));
    // What the picture must show: the parent, a reply in its thread, the buttons.
    for shown in [
        "Email Alert API",
        "Publishing API",
        "Approve",
        "Reject",
        "class=\"thread\"",
    ] {
        assert!(html.contains(shown), "{shown} is not drawn:\n{html}");
    }

    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
    std::fs::create_dir_all(&target).unwrap();
    let page = target.join("slack-thread.html");
    std::fs::write(&page, &html).unwrap();

    let Some(dir) = output_dir() else { return };
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium"
    );
    let png = dir.join("slack-thread.png");
    let scratch = tempfile::tempdir().unwrap();
    let status = Command::new(CHROMIUM)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--window-size=760,1040",
        ])
        .arg(format!("--user-data-dir={}", scratch.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .status()
        .expect("chromium runs");
    assert!(status.success(), "chromium: {status}");
    assert!(png.exists(), "{} was not written", png.display());
}
