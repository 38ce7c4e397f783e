//! `token-rotator serve` as a child process, for the tests that kill it: the crash tests on one
//! journal, and the two-replica tests on one PostgreSQL.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::world::ADMIN_TOKEN;

pub const WEBHOOK_TOKEN: &str = "chaos-webhook-credential";
// 32 fixed bytes each, base64: the journal's sealed values must open after every restart, and in
// every replica.
const ENCRYPTION_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const FINGERPRINT_KEY: &str = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary to run: this build's, or the one `TOKEN_ROTATOR_BIN` names (`bench/soak.sh`
/// points it at a release build while the tests themselves stay a debug build).
fn binary() -> PathBuf {
    std::env::var_os("TOKEN_ROTATOR_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_token-rotator")),
        PathBuf::from,
    )
}

/// A started `serve`, killed when dropped: a test that fails part way leaves no service behind
/// to load the machine (and the tests after it), still acting on its simulators' ports.
pub struct Spawned(Child);

impl std::ops::Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // Nothing is sent to a child already killed and reaped.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One `serve` with its config, started as many times as a test likes.
pub struct Serve {
    config: PathBuf,
    port: u16,
    slack_url: String,
    pub client: reqwest::Client,
}

impl Serve {
    pub fn new(config: PathBuf, port: u16, slack_url: String) -> Self {
        Self {
            config,
            port,
            slack_url,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
        }
    }

    pub fn spawn(&self) -> Spawned {
        self.spawn_with(|_| {})
    }

    /// The same, with the command changed first (its log level, where its stderr goes).
    pub fn spawn_with(&self, change: impl FnOnce(&mut Command)) -> Spawned {
        let mut command = Command::new(binary());
        command
            .args(["serve", "--allow-short-grace", "--config"])
            .arg(&self.config)
            .env("TOKEN_ROTATOR_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
            .env("TOKEN_ROTATOR_SIGNON_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("TOKEN_ROTATOR_ENCRYPTION_KEY", ENCRYPTION_KEY)
            .env("TOKEN_ROTATOR_FINGERPRINT_KEY", FINGERPRINT_KEY)
            .env("TOKEN_ROTATOR_SLACK_WEBHOOK_URL", &self.slack_url)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        change(&mut command);
        Spawned(command.spawn().unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn ready(&self) {
        for _ in 0..1000 {
            if let Ok(r) = self.client.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("serve did not become ready");
    }

    /// `/readyz`'s `role` (`leader` or `standby`); `None` while it does not answer.
    pub async fn role(&self) -> Option<String> {
        let response = self.client.get(self.url("/readyz")).send().await.ok()?;
        let body: Value = response.json().await.ok()?;
        body["role"].as_str().map(str::to_owned)
    }

    /// The rotations as the service's JSON says; empty while it is down.
    pub async fn rotations(&self) -> Vec<Value> {
        let Ok(response) = self
            .client
            .get(self.url("/v1/rotations"))
            .bearer_auth(WEBHOOK_TOKEN)
            .send()
            .await
        else {
            return Vec::new();
        };
        response
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
    }

    /// POSTs a webhook body; whether it was acknowledged with 200.
    pub async fn post_webhook(&self, body: Vec<u8>) -> bool {
        self.client
            .post(self.url("/v1/alertmanager"))
            .bearer_auth(WEBHOOK_TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    }
}

pub fn kill(child: &mut Child) {
    // SIGKILL: no shutdown hook runs, the journal is as last committed.
    child.kill().unwrap();
    child.wait().unwrap();
}
