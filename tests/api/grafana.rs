//! The Grafana dashboard (`deploy/grafana/token-rotator.json`) against a real Prometheus
//! (Debian's `prometheus`): it scrapes a token-rotator after the demo's alerts have been
//! rotated, then every panel's query must be valid and return at least one series.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{capture, fixture};
use crate::real_alertmanager::free_port;
use crate::world::spawn_world;

const PROMETHEUS: &str = "/usr/bin/prometheus";

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Every `expr` of every panel, with the panel's title, Grafana's interval variables replaced
/// by what Prometheus understands.
fn panel_queries() -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/token-rotator.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().unwrap_or("?").to_owned();
        let targets = panel["targets"].as_array().expect("each panel has targets");
        assert!(!targets.is_empty(), "{title}: no query");
        for target in targets {
            let expr = target["expr"].as_str().expect("expr").to_owned();
            // A 1 s scrape fills a minute's window with samples within seconds.
            let expr = expr
                .replace("$__rate_interval", "1m")
                .replace("$__range", "1h")
                .replace("$__interval", "15s");
            out.push((title.clone(), expr));
        }
    }
    out
}

async fn query(client: &reqwest::Client, base: &str, expr: &str) -> serde_json::Value {
    client
        .get(format!("{base}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_dashboard_panel_returns_series_from_a_real_prometheus() {
    if !std::path::Path::new(PROMETHEUS).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus is missing; .ci/run installs Debian's prometheus"
        );
        eprintln!("SKIPPED: prometheus is not installed (apt-get install prometheus)");
        return;
    }
    let world = spawn_world().await;
    world.seed_every_environment("email-alert-api@alphagov.co.uk", "Email Alert API");
    world.app.post_webhook(capture("05-")).await;
    world
        .app
        .post_webhook(fixture("synthetic/special-cases.json"))
        .await;
    world.run_to_the_end().await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    let target = world.app.url("").trim_start_matches("http://").to_owned();
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n  - job_name: token-rotator\n    static_configs: [{{targets: ['{target}']}}]\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let _prometheus = Server(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    // Wait (bounded) for a few successful scrapes, so rate() and increase() have two samples.
    let mut scrapes = 0.0;
    for _ in 0..240 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Ok(response) = client
            .get(format!("{base}/api/v1/query"))
            .query(&[("query", "sum_over_time(up{job=\"token-rotator\"}[1m])")])
            .send()
            .await
        else {
            continue;
        };
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        scrapes = body["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if scrapes >= 4.0 {
            break;
        }
    }
    assert!(
        scrapes >= 4.0,
        "prometheus scraped token-rotator {scrapes} times"
    );

    let queries = panel_queries();
    assert!(queries.len() >= 6, "{queries:?}");
    let mut failures = Vec::new();
    for (title, expr) in &queries {
        let answer = query(&client, &base, expr).await;
        let series = answer["data"]["result"].as_array().map_or(0, Vec::len);
        if answer["status"] != "success" || series == 0 {
            failures.push(format!("{title}: {expr}\n  -> {answer}"));
        }
    }
    assert!(
        failures.is_empty(),
        "panels without series:\n{}",
        failures.join("\n")
    );
}
