//! A real Alertmanager (Debian's `prometheus-alertmanager`, 0.25) on loopback, for the tests.
//! Outside CI a missing binary skips the test loudly; in CI (`CI` set) it is a failure.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;

const BINARIES: [&str; 2] = [
    "/usr/bin/prometheus-alertmanager",
    "/usr/local/bin/alertmanager",
];

pub struct RealAlertmanager {
    pub url: String,
    child: Child,
    _dir: TempDir,
}

impl Drop for RealAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary, or `None` after saying loudly why the test is skipped.
pub fn binary() -> Option<PathBuf> {
    let found = BINARIES.iter().map(PathBuf::from).find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "prometheus-alertmanager is not installed, but CI must run these tests (.ci/run installs it)"
        );
        eprintln!(
            "SKIPPED: prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)"
        );
    }
    found
}

/// A webhook receiver pointing at `webhook_url` with a Bearer credential; one group per token.
fn config(webhook_url: &str, token: &str) -> String {
    format!(
        r#"route:
  receiver: token-rotator
  group_by: [environment, api_user, application]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: token-rotator
    webhook_configs:
      - url: {webhook_url}
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"#
    )
}

impl RealAlertmanager {
    /// One replica; `cluster` = (this replica's gossip port, the peer's) for an HA pair.
    pub async fn start(
        binary: &PathBuf,
        webhook_url: &str,
        token: &str,
        cluster: Option<(u16, u16)>,
    ) -> Self {
        token_rotator::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config(webhook_url, token)).unwrap();
        let port = free_port();
        let mut command = Command::new(binary);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn");
        match cluster {
            None => {
                command.arg("--cluster.listen-address=");
            }
            Some((own, peer)) => {
                command
                    .arg(format!("--cluster.listen-address=127.0.0.1:{own}"))
                    .arg(format!("--cluster.advertise-address=127.0.0.1:{own}"))
                    .arg(format!("--cluster.peer=127.0.0.1:{peer}"))
                    .arg("--cluster.peer-timeout=1s")
                    .arg("--cluster.settle-timeout=1s");
            }
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager starts");
        // Owned at once, so the process is killed and reaped however this function ends.
        let am = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
            _dir: dir,
        };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            let ready = client.get(format!("{}/-/ready", am.url)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return am;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Alertmanager on {} never became ready", am.url);
    }

    /// `POST /api/v2/alerts`, as Prometheus does; `ends_in` past zero resolves it.
    pub async fn post_alert(
        &self,
        labels: &[(&str, &str)],
        starts_at: jiff::Timestamp,
        ends_at: Option<jiff::Timestamp>,
    ) {
        let labels: serde_json::Map<String, serde_json::Value> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), (*v).into()))
            .collect();
        let mut alert = serde_json::json!({
            "labels": labels,
            "annotations": {"summary": "token expires soon"},
            "startsAt": starts_at,
            "generatorURL": "http://prometheus.test/graph",
        });
        if let Some(ends_at) = ends_at {
            alert["endsAt"] = serde_json::json!(ends_at);
        }
        let response = reqwest::Client::new()
            .post(format!("{}/api/v2/alerts", self.url))
            .json(&serde_json::json!([alert]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    pub async fn silences(&self) -> Vec<serde_json::Value> {
        reqwest::Client::new()
            .get(format!("{}/api/v2/silences", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A counter from Alertmanager's own `/metrics`, summed over its series.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::Client::new()
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}
