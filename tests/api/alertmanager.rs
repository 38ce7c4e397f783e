//! Against a real Alertmanager: webhooks it sends, silences it keeps, alerts it still holds.

use std::time::Duration;

use jiff::Timestamp;

use crate::helpers::TOKEN;
use crate::real_alertmanager::{RealAlertmanager, binary, free_port};
use crate::world::{Sims, World, WorldOptions};

const USER: &str = "short-url-manager@alphagov.co.uk";
const APP: &str = "Publishing API";

fn labels(environment: &str) -> Vec<(&'static str, String)> {
    vec![
        ("alertname", "SignonApiUserTokenExpirySoon".into()),
        ("environment", environment.into()),
        ("api_user", USER.into()),
        ("application", APP.into()),
        ("severity", "warning".into()),
    ]
}

async fn post(
    am: &RealAlertmanager,
    environment: &str,
    starts: Timestamp,
    ends: Option<Timestamp>,
) {
    let owned = labels(environment);
    let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    am.post_alert(&pairs, starts, ends).await;
}

/// A world whose engine runs by itself (grace 0), silencing in and reconciling from `urls`.
async fn world(urls: Vec<String>, reconcile: Option<Duration>) -> World {
    let options = WorldOptions {
        background: true,
        grace: Duration::ZERO,
        alertmanager_urls: Some(urls),
        reconcile_interval: reconcile,
        ..WorldOptions::default()
    };
    Sims::start().await.world_with(None, options).await
}

async fn wait_for<F: AsyncFn() -> bool>(what: &str, check: F) {
    for _ in 0..150 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Waits for the world's first rotation to end `done`.
async fn wait_until_done(world: &World, what: &str) {
    wait_for(what, async || {
        world
            .rotations()
            .await
            .first()
            .is_some_and(|r| r.phase == "done")
    })
    .await;
}

fn webhook(world: &World) -> String {
    world.app.url("/v1/alertmanager")
}

#[tokio::test]
async fn a_production_alert_from_alertmanager_is_rotated() {
    let Some(bin) = binary() else { return };
    // The world first (for its webhook URL), then Alertmanager, then the world learns its URL:
    // silences are not needed here, so the world's Alertmanager is the simulator.
    let world = Sims::start()
        .await
        .world_with(
            None,
            WorldOptions {
                background: true,
                grace: Duration::ZERO,
                ..WorldOptions::default()
            },
        )
        .await;
    let old = world.seed(USER, APP);
    let am = RealAlertmanager::start(&bin, &webhook(&world), TOKEN, None).await;
    post(&am, "production", Timestamp::now(), None).await;

    wait_until_done(&world, "the rotation to finish").await;
    let row = &world.rotations().await[0];
    assert!(row.trigger.starts_with("alert:"), "{}", row.trigger);
    assert!(!world.signon.is_live(&old));
    assert_eq!(
        am.metric("alertmanager_notifications_failed_total").await,
        0.0
    );
}

#[tokio::test]
async fn a_staging_alert_gets_exactly_one_silence_which_a_new_alert_extends() {
    let Some(bin) = binary() else { return };
    // Alertmanager needs the webhook URL and the world needs Alertmanager's: reserve the port.
    let port = free_port();
    let am = RealAlertmanager::start(
        &bin,
        &format!("http://127.0.0.1:{port}/v1/alertmanager"),
        TOKEN,
        None,
    )
    .await;
    let world = world(vec![am.url.clone()], None).await;
    let forward = forward(port, world.app.addr).await;
    post(&am, "staging", Timestamp::now(), None).await;

    wait_for("the silence", async || am.silences().await.len() == 1).await;
    let first = am.silences().await.remove(0);
    let mut matchers: Vec<_> = first["matchers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["value"].as_str().unwrap().to_owned(),
                m["isRegex"] == false,
            )
        })
        .collect();
    matchers.sort();
    assert_eq!(
        matchers,
        vec![
            (
                "alertname".into(),
                "SignonApiUserTokenExpirySoon".into(),
                true
            ),
            ("api_user".into(), USER.into(), true),
            ("application".into(), APP.into(), true),
            ("environment".into(), "staging".into(), true),
        ]
    );
    assert_eq!(first["createdBy"], "token-rotator");
    assert!(
        first["comment"]
            .as_str()
            .unwrap()
            .contains("staging-is-restored-from-production-nightly")
    );

    // An hour on (the engine's clock), the alert fires anew with a new startsAt (as after a
    // silence lapses): the same silence is extended, not a second made.
    world.clock.advance(Duration::from_secs(3600));
    let again = crate::helpers::alert_body(
        "0123456789abcdef",
        &[
            ("alertname", "SignonApiUserTokenExpirySoon"),
            ("environment", "staging"),
            ("api_user", USER),
            ("application", APP),
        ],
    );
    assert_eq!(world.app.post_webhook(again).await.status(), 200);
    wait_for("the second silence request", async || {
        world
            .rotations()
            .await
            .iter()
            .filter(|r| r.phase == "silenced")
            .count()
            == 2
    })
    .await;
    let silences = am.silences().await;
    assert_eq!(
        silences.len(),
        1,
        "extended in place, nothing expired or added: {silences:#?}"
    );
    assert_eq!(silences[0]["status"]["state"], "active");
    assert_eq!(silences[0]["id"], first["id"]);
    assert!(
        silences[0]["endsAt"].as_str() > first["endsAt"].as_str(),
        "extended"
    );
    forward.abort();
}

#[tokio::test]
async fn an_alert_whose_webhook_never_arrived_is_found_by_reconcile() {
    let Some(bin) = binary() else { return };
    // token-rotator is down: Alertmanager's webhook goes to a port nobody listens on.
    let dead = format!("http://127.0.0.1:{}/v1/alertmanager", free_port());
    let am = RealAlertmanager::start(&bin, &dead, TOKEN, None).await;
    post(&am, "production", Timestamp::now(), None).await;
    wait_for("a failed notification", async || {
        am.metric("alertmanager_notifications_failed_total").await > 0.0
    })
    .await;

    let world = world(vec![am.url.clone()], Some(Duration::from_millis(300))).await;
    let old = world.seed(USER, APP);
    wait_until_done(&world, "the reconciled rotation").await;
    let row = &world.rotations().await[0];
    assert!(row.trigger.starts_with("reconcile:"), "{}", row.trigger);
    assert!(!world.signon.is_live(&old));
    assert_eq!(
        world.rotations().await.len(),
        1,
        "later passes find it journaled"
    );
}

#[tokio::test]
async fn two_clustered_alertmanagers_make_one_rotation_and_share_the_silence() {
    let Some(bin) = binary() else { return };
    let port = free_port();
    let webhook = format!("http://127.0.0.1:{port}/v1/alertmanager");
    let (a, b) = (free_port(), free_port());
    let first = RealAlertmanager::start(&bin, &webhook, TOKEN, Some((a, b))).await;
    let second = RealAlertmanager::start(&bin, &webhook, TOKEN, Some((b, a))).await;
    let world = world(vec![first.url.clone(), second.url.clone()], None).await;
    let forward = forward(port, world.app.addr).await;
    world.seed(USER, APP);
    let starts = Timestamp::now();
    post(&first, "production", starts, None).await;
    post(&second, "production", starts, None).await;

    wait_until_done(&world, "the rotation to finish").await;
    tokio::time::sleep(Duration::from_secs(3)).await; // a late duplicate would arrive by now
    assert_eq!(world.rotations().await.len(), 1);
    assert_eq!(world.signon.minted().len(), 1);
    for am in [&first, &second] {
        assert_eq!(
            am.metric("alertmanager_notifications_failed_total").await,
            0.0,
            "every delivery acknowledged"
        );
    }

    // A staging alert's silence is made on one replica and read back from the other.
    post(&first, "staging", Timestamp::now(), None).await;
    wait_for("the silence on the first replica", async || {
        first.silences().await.len() == 1
    })
    .await;
    wait_for("the silence gossiped to the second", async || {
        second.silences().await.len() == 1
    })
    .await;
    assert_eq!(
        first.silences().await[0]["id"],
        second.silences().await[0]["id"]
    );
    forward.abort();
}

#[tokio::test]
async fn a_resolved_alert_is_recorded() {
    let Some(bin) = binary() else { return };
    let world = Sims::start()
        .await
        .world_with(
            None,
            WorldOptions {
                background: true,
                grace: Duration::ZERO,
                ..WorldOptions::default()
            },
        )
        .await;
    world.seed(USER, APP);
    let am = RealAlertmanager::start(&bin, &webhook(&world), TOKEN, None).await;
    let starts = Timestamp::now() - Duration::from_secs(60);
    post(&am, "production", starts, None).await;
    wait_for("the firing alert", async || {
        !world.app.journal_rows().await.is_empty()
    })
    .await;
    post(
        &am,
        "production",
        starts,
        Some(Timestamp::now() - Duration::from_secs(1)),
    )
    .await;
    wait_for("the resolved alert", async || {
        world
            .app
            .journal_rows()
            .await
            .iter()
            .any(|r| r.status == "resolved")
    })
    .await;
}

/// Forwards `port` to `to`: lets Alertmanager start before the service it calls exists.
async fn forward(port: u16, to: std::net::SocketAddr) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}
