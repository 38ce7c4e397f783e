//! `spawn_app()`: the real service on 127.0.0.1:0 with its own SQLite journal in a temp dir.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;
use token_rotator::app::{Application, EngineParts};
use token_rotator::config::Config;
use token_rotator::intake::auth::WebhookAuth;
use token_rotator::store::{AlertRow, Journal};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TOKEN: &str = "test-bearer-credential-123";
pub const BASIC_USER: &str = "alertmanager";
pub const BASIC_PASSWORD: &str = "test-basic-password-456";

pub struct TestApp {
    pub addr: SocketAddr,
    /// Where `/metrics` is, when it has its own listener.
    pub metrics_addr: Option<SocketAddr>,
    /// Where Slack's interactions and handover links are, when they have their own listener.
    pub public_addr: Option<SocketAddr>,
    pub engine: Option<std::sync::Arc<token_rotator::engine::Engine>>,
    pub client: reqwest::Client,
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// Adjusts the built-in config before the service is built.
pub type Configure = Box<dyn FnOnce(&mut Config)>;

pub struct Options {
    pub auth: WebhookAuth,
    /// The status page's own credential; `None`: the webhook's.
    pub status_auth: Option<WebhookAuth>,
    pub busy_timeout: Duration,
    pub dir: Option<TempDir>,
    pub engine: Option<EngineParts>,
    pub configure: Option<Configure>,
    /// The registry `/metrics` serves (adapters may report into it); a fresh one when `None`.
    pub metrics: Option<std::sync::Arc<token_rotator::telemetry::Metrics>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            auth: WebhookAuth::bearer(&TOKEN.into()),
            status_auth: None,
            busy_timeout: Duration::from_secs(5),
            dir: None,
            engine: None,
            configure: None,
            metrics: None,
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub fn database_url(dir: &Path) -> String {
    format!("sqlite://{}", journal_path(dir).display())
}

pub fn journal_path(dir: &Path) -> PathBuf {
    dir.join("journal.db")
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    token_rotator::install_crypto_provider();
    let dir = options.dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
    let mut config = Config::builtin();
    config.database_url = database_url(dir.path());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.journal_busy_timeout = options.busy_timeout;
    if let Some(configure) = options.configure {
        configure(&mut config);
    }
    let metrics = options.metrics.unwrap_or_default();
    let app = Application::build_with(
        config,
        options.auth,
        options.status_auth,
        options.engine,
        metrics,
    )
    .await
    .expect("the service builds");
    let addr = app.local_addr();
    let public_addr = app.public_addr();
    let engine = app.engine();
    let metrics_addr = app.metrics_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        metrics_addr,
        public_addr,
        engine,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        dir,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// POSTs a webhook body as Alertmanager does, with the bearer credential.
    pub async fn post_webhook(&self, body: impl Into<Vec<u8>>) -> reqwest::Response {
        self.client
            .post(self.url("/v1/alertmanager"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.into())
            .send()
            .await
            .expect("request reaches the service")
    }

    /// What the journal file holds, read through a connection of its own.
    pub async fn journal_rows(&self) -> Vec<AlertRow> {
        let journal = Journal::open(&database_url(self.dir.path()), Duration::from_secs(5))
            .await
            .unwrap();
        let rows = journal.alerts().await.unwrap();
        journal.close().await;
        rows
    }

    /// The body of `path` read with the status credential (the status page, its rotations).
    pub async fn get_authorized(&self, path: &str) -> String {
        self.client
            .get(self.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Graceful stop; hands back the directory so a new instance can reuse the journal.
    pub async fn stop(mut self) -> TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
        self.dir
    }
}

/// Every recorded Alertmanager request in `fixtures/alertmanager/` (not the API-request samples):
/// the raw bytes where recorded, else the recorded body.
pub fn captures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/alertmanager");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json") && n.as_bytes()[0].is_ascii_digit())
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let stem = name.trim_end_matches(".json").to_owned();
            let raw = dir.join(format!("{stem}.raw"));
            let body = if raw.exists() {
                std::fs::read(raw).unwrap()
            } else {
                let recorded: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(dir.join(&name)).unwrap()).unwrap();
                serde_json::to_vec(&recorded["body"]).unwrap()
            };
            (stem, body)
        })
        .collect()
}

pub fn capture(prefix: &str) -> Vec<u8> {
    captures()
        .into_iter()
        .find(|(name, _)| name.starts_with(prefix))
        .unwrap_or_else(|| panic!("no capture {prefix}"))
        .1
}

pub fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(path),
    )
    .unwrap()
}

/// A one-alert webhook body with these labels (shape of capture 01).
/// A fingerprint of Alertmanager's form (16 lowercase hex digits) made from a short test id
/// (`"f1"` → `"0000000000006631"`): the intake refuses any other form.
pub fn fp(id: &str) -> String {
    assert!(id.len() <= 8, "test ids are at most 8 bytes: {id:?}");
    format!("{:0>16}", hex::encode(id))
}

pub fn alert_body(fingerprint: &str, labels: &[(&str, &str)]) -> Vec<u8> {
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "receiver": "signon-token-rotation",
        "status": "firing",
        "alerts": [{
            "status": "firing",
            "labels": labels,
            "annotations": {},
            "startsAt": "2026-11-24T10:04:07.964Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": fingerprint,
        }],
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://vm:19093",
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0
    }))
    .unwrap()
}
