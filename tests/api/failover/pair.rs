//! The two replicas, their simulators and their shared database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use token_rotator::adapters::kubernetes::TOKEN_KEY;
use token_rotator::clock::{Clock, SystemClock};
use token_rotator::domain::parameterize::secret_name;
use token_rotator::sim::Fault;
use token_rotator::sim::kubernetes::KubernetesSim;
use token_rotator::sim::signon::SignonSim;
use token_rotator::sim::slack::{SlackSim, WEBHOOK_PATH};

use crate::helpers::alert_body;
use crate::process::{Serve, free_port};
use crate::world::{ADMIN_TOKEN, NAMESPACE};

const APP: &str = "Publishing API";
/// How long every Signon and Kubernetes call takes.
const STEP: Duration = Duration::from_millis(300);
/// The calls slowed to `STEP`: those of a rotation.
const SLOWED_SIGNON: [&str; 4] = ["list", "mint", "revoke", "user.json"];
const SLOWED_KUBERNETES: [&str; 4] = ["get", "apply", "list deployments", "get deployment"];

fn lease() -> String {
    std::env::var("TOKEN_ROTATOR_FAILOVER_LEASE").unwrap_or_else(|_| "2s".into())
}

pub struct Pair {
    pub signon: Arc<SignonSim>,
    pub kubernetes: Arc<KubernetesSim>,
    pub slack: Arc<SlackSim>,
    pub replicas: [Serve; 2],
    /// The shared journal, for counting what it holds.
    pub db_url: String,
    _dir: tempfile::TempDir,
    _db: crate::postgres::TestDatabase,
    _servers: Vec<token_rotator::sim::Running>,
}

/// Two replicas' configs on one database; `via[i]`, if given, is the port replica `i` reaches
/// PostgreSQL through (a proxy the test can cut).
pub async fn pair(db: crate::postgres::TestDatabase, via: [Option<u16>; 2]) -> Pair {
    pair_with(db, via, "").await
}

/// The same, with `top` added to each config's top-level keys.
pub async fn pair_with(
    db: crate::postgres::TestDatabase,
    via: [Option<u16>; 2],
    top: &str,
) -> Pair {
    pair_leased(db, via, top, &lease()).await
}

/// The same, with the lease `lease` rather than the test default.
pub async fn pair_leased(
    db: crate::postgres::TestDatabase,
    via: [Option<u16>; 2],
    top: &str,
    lease: &str,
) -> Pair {
    configured(db, via, top, lease, None).await
}

/// Two replicas that give up on a Signon or Kubernetes call after `timeout`: shorter than a
/// simulator's hang (`Fault::Hang`), so a hang is a timeout to them; `top` is added to each
/// config before its first table (keys, or whole tables of their own).
pub async fn pair_timing_out(db: crate::postgres::TestDatabase, timeout: &str, top: &str) -> Pair {
    configured(db, [None, None], top, &lease(), Some(timeout)).await
}

async fn configured(
    db: crate::postgres::TestDatabase,
    via: [Option<u16>; 2],
    top: &str,
    lease: &str,
    timeout: Option<&str>,
) -> Pair {
    token_rotator::install_crypto_provider();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let signon = SignonSim::new(ADMIN_TOKEN, clock);
    let kubernetes = KubernetesSim::new();
    let slack = SlackSim::new();
    for operation in SLOWED_SIGNON {
        signon.faults.always(operation, Fault::Slow(STEP));
    }
    for operation in SLOWED_KUBERNETES {
        kubernetes.faults.always(operation, Fault::Slow(STEP));
    }
    let servers = vec![
        signon.start().await.unwrap(),
        kubernetes.start().await.unwrap(),
        slack.start().await.unwrap(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let replicas = [0, 1].map(|i| {
        let port = free_port();
        let url = match via[i] {
            Some(proxy) => with_port(&db.url, proxy),
            None => db.url.clone(),
        };
        let config = dir.path().join(format!("replica-{i}.toml"));
        let kube_timeout = timeout.map_or(String::new(), |t| format!("timeout = \"{t}\"\n"));
        std::fs::write(
            &config,
            format!(
                "database_url = \"{url}\"\nlisten = \"127.0.0.1:{port}\"\nleader_lease = \"{lease}\"\n{top}\n\
                 [rotation]\ngrace_period = \"300ms\"\nretry_min_delay = \"50ms\"\nretry_max_delay = \"500ms\"\nmax_attempts = 50\n\
                 [signon]\nurl = \"{signon}\"\ntimeout = \"{signon_timeout}\"\n[kubernetes]\nurl = \"{kube}\"\nnamespace = \"{NAMESPACE}\"\n{kube_timeout}\
                 [environments.production]\n[[rules]]\nname = \"all\"\naction = \"rotate\"\n",
                signon = servers[0].url(),
                kube = servers[1].url(),
                signon_timeout = timeout.unwrap_or("5s"),
            ),
        )
        .unwrap();
        Serve::new(config, port, format!("{}{WEBHOOK_PATH}", servers[2].url()))
    });
    Pair {
        signon,
        kubernetes,
        slack,
        replicas,
        db_url: db.url.clone(),
        _dir: dir,
        _db: db,
        _servers: servers,
    }
}

pub fn with_port(url: &str, port: u16) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    parsed.set_port(Some(port)).unwrap();
    parsed.to_string()
}

impl Pair {
    /// Signon and Kubernetes answer at once again: for a run whose faults are random rather
    /// than one slow step per call (a standing fault would take every call's turn).
    pub fn at_full_speed(&self) {
        for operation in SLOWED_SIGNON {
            self.signon.faults.clear(operation);
        }
        for operation in SLOWED_KUBERNETES {
            self.kubernetes.faults.clear(operation);
        }
    }

    pub fn seed(&self, user: &str) {
        let value = self
            .signon
            .add_token(user, APP, Duration::from_secs(10 * 86400));
        let secret = secret_name(&self.signon.user_name(user), APP);
        self.kubernetes.put(NAMESPACE, &secret, TOKEN_KEY, &value);
    }

    pub fn alert(user: &str, fingerprint: &str) -> Vec<u8> {
        alert_body(
            fingerprint,
            &[
                ("alertname", "SignonApiUserTokenExpirySoon"),
                ("environment", "production"),
                ("api_user", user),
                ("application", APP),
            ],
        )
    }

    /// Which replica leads, once exactly one says so.
    pub async fn leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let roles = [self.replicas[0].role().await, self.replicas[1].role().await];
            let leaders: Vec<usize> = (0..2)
                .filter(|&i| roles[i].as_deref() == Some("leader"))
                .collect();
            if let [one] = leaders[..] {
                return one;
            }
            assert!(
                Instant::now() < deadline,
                "no single leader within {within:?}: {roles:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The rotation of `user`, as replica `via` reads it from the shared journal.
    pub async fn rotation(&self, via: usize, user: &str) -> Option<Value> {
        self.replicas[via]
            .rotations()
            .await
            .into_iter()
            .find(|r| r["api_user"] == user)
    }

    /// Waits until `user`'s rotation is in one of `phases`; returns which.
    pub async fn wait_for_phase(
        &self,
        via: usize,
        user: &str,
        phases: &[&str],
        within: Duration,
    ) -> String {
        let deadline = Instant::now() + within;
        loop {
            let row = self.rotation(via, user).await;
            if let Some(phase) = row.as_ref().and_then(|r| r["phase"].as_str())
                && phases.contains(&phase)
            {
                return phase.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{user} never reached {phases:?}: {row:#?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Writes (create, patch, update) of `user`'s Secret the Kubernetes simulator took.
    pub fn secret_writes(&self, user: &str) -> usize {
        let secret = secret_name(&self.signon.user_name(user), APP);
        self.kubernetes
            .requests()
            .into_iter()
            .filter(|r| {
                r.resource == "secrets"
                    && r.name.as_deref() == Some(secret.as_str())
                    && matches!(r.verb.as_str(), "create" | "patch" | "update")
            })
            .count()
    }

    /// How many times each alert fingerprint (as Alertmanager sent it) is in the shared journal.
    pub async fn journaled(&self) -> std::collections::HashMap<String, i64> {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT fingerprint, count(*) FROM alerts GROUP BY fingerprint")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        conn.close().await.unwrap();
        // The journal keys an alert by Alertmanager's fingerprint and a suffix of its own.
        let mut counts = std::collections::HashMap::new();
        for (stored, n) in rows {
            let sent = stored.split_once(':').map_or(stored.as_str(), |(f, _)| f);
            *counts.entry(sent.to_owned()).or_insert(0) += n;
        }
        counts
    }

    /// Exactly one mint and one revoke for `user`, and the Secret holds a live token.
    pub fn assert_rotated_once(&self, user: &str) {
        let minted = self
            .signon
            .minted()
            .into_iter()
            .filter(|t| t.api_user == user)
            .count();
        assert_eq!(minted, 1, "{user}: {minted} tokens minted");
        let revoked = self
            .signon
            .revoked()
            .into_iter()
            .filter(|t| t.api_user == user)
            .count();
        assert!(revoked <= 1, "{user}: {revoked} tokens revoked");
        let secret = secret_name(&self.signon.user_name(user), APP);
        let in_use = self
            .kubernetes
            .value(NAMESPACE, &secret, TOKEN_KEY)
            .unwrap();
        assert!(
            self.signon.is_live(&in_use),
            "{user}'s Secret holds a dead token"
        );
    }
}
