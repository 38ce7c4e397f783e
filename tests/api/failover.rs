//! Two `serve` processes on one PostgreSQL journal, with the simulators: the leader killed at
//! each phase boundary, the leader cut off from PostgreSQL, and an HA flood of one alert split
//! across both. The simulators answer slowly (every call takes `STEP`), so each phase lasts long
//! enough to be seen and killed in. `TOKEN_ROTATOR_FAILOVER_LEASE` sets the lease (default 2s
//! here; `bench/failover.sh` runs the default 10s and prints the takeover times).

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use token_rotator::adapters::kubernetes::TOKEN_KEY;
use token_rotator::adapters::parameterize::secret_name;
use token_rotator::clock::{Clock, SystemClock};
use token_rotator::sim::Fault;
use token_rotator::sim::kubernetes::KubernetesSim;
use token_rotator::sim::signon::SignonSim;
use token_rotator::sim::slack::{SlackSim, WEBHOOK_PATH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::alert_body;
use crate::kill::PHASES;
use crate::process::{Serve, free_port, kill};
use crate::world::{ADMIN_TOKEN, NAMESPACE};

const APP: &str = "Publishing API";
/// How long every Signon and Kubernetes call takes.
const STEP: Duration = Duration::from_millis(300);

fn lease() -> String {
    std::env::var("TOKEN_ROTATOR_FAILOVER_LEASE").unwrap_or_else(|_| "2s".into())
}

struct Pair {
    signon: Arc<SignonSim>,
    kubernetes: Arc<KubernetesSim>,
    replicas: [Serve; 2],
    _dir: tempfile::TempDir,
    _db: crate::postgres::TestDatabase,
    _servers: Vec<token_rotator::sim::Running>,
}

/// Two replicas' configs on one database; `via[i]`, if given, is the port replica `i` reaches
/// PostgreSQL through (a proxy the test can cut).
async fn pair(db: crate::postgres::TestDatabase, via: [Option<u16>; 2]) -> Pair {
    pair_with(db, via, "").await
}

/// The same, with `top` added to each config's top-level keys.
async fn pair_with(db: crate::postgres::TestDatabase, via: [Option<u16>; 2], top: &str) -> Pair {
    token_rotator::install_crypto_provider();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let signon = SignonSim::new(ADMIN_TOKEN, clock);
    let kubernetes = KubernetesSim::new();
    let slack = SlackSim::new();
    for operation in ["list", "mint", "revoke", "user.json"] {
        signon.faults.always(operation, Fault::Slow(STEP));
    }
    for operation in ["get", "apply", "list deployments", "get deployment"] {
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
        std::fs::write(
            &config,
            format!(
                "database_url = \"{url}\"\nlisten = \"127.0.0.1:{port}\"\nleader_lease = \"{lease}\"\n{top}\n\
                 [rotation]\ngrace_period = \"300ms\"\nretry_min_delay = \"50ms\"\nretry_max_delay = \"500ms\"\nmax_attempts = 50\n\
                 [signon]\nurl = \"{signon}\"\ntimeout = \"5s\"\n[kubernetes]\nurl = \"{kube}\"\nnamespace = \"{NAMESPACE}\"\n\
                 [[rules]]\nname = \"all\"\naction = \"rotate\"\n",
                lease = lease(),
                signon = servers[0].url(),
                kube = servers[1].url(),
            ),
        )
        .unwrap();
        Serve::new(config, port, format!("{}{WEBHOOK_PATH}", servers[2].url()))
    });
    Pair {
        signon,
        kubernetes,
        replicas,
        _dir: dir,
        _db: db,
        _servers: servers,
    }
}

fn with_port(url: &str, port: u16) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    parsed.set_port(Some(port)).unwrap();
    parsed.to_string()
}

impl Pair {
    fn seed(&self, user: &str) {
        let value = self
            .signon
            .add_token(user, APP, Duration::from_secs(10 * 86400));
        let secret = secret_name(&self.signon.user_name(user), APP);
        self.kubernetes.put(NAMESPACE, &secret, TOKEN_KEY, &value);
    }

    fn alert(user: &str, fingerprint: &str) -> Vec<u8> {
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
    async fn leader(&self, within: Duration) -> usize {
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
    async fn rotation(&self, via: usize, user: &str) -> Option<Value> {
        self.replicas[via]
            .rotations()
            .await
            .into_iter()
            .find(|r| r["api_user"] == user)
    }

    /// Waits until `user`'s rotation is in one of `phases`; returns which.
    async fn wait_for_phase(
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

    /// Exactly one mint and one revoke for `user`, and the Secret holds a live token.
    fn assert_rotated_once(&self, user: &str) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_killed_at_each_phase_boundary_the_standby_finishes_with_one_mint() {
    let pair = pair(crate::postgres::database().await, [None, None]).await;
    let mut children: [Option<Child>; 2] = [Some(pair.replicas[0].spawn()), None];
    pair.replicas[0].ready().await;
    children[1] = Some(pair.replicas[1].spawn());
    pair.replicas[1].ready().await;
    let mut takeovers = Vec::new();
    for (round, phase) in PHASES.into_iter().enumerate() {
        let user = format!("failover-{round}@alphagov.co.uk");
        pair.seed(&user);
        let leader = pair.leader(Duration::from_secs(30)).await;
        let standby = 1 - leader;
        // Intake on the standby: it journals; the leader acts.
        assert!(
            pair.replicas[standby]
                .post_webhook(Pair::alert(&user, &format!("{round:016x}")))
                .await
        );
        // `distributed` and `verified` move on within one pass with no call in between (the
        // Deployments were baselined before the write; the grace starts at once): a kill seen
        // in the next phase instead is the same boundary's other side.
        let window: &[&str] = match phase {
            "distributed" => &["distributed", "rolled_out"],
            "verified" => &["verified", "grace"],
            _ => &[phase],
        };
        let phase = pair
            .wait_for_phase(standby, &user, window, Duration::from_secs(30))
            .await;
        let killed_at = Instant::now();
        kill(children[leader].as_mut().unwrap());
        children[leader] = None;
        assert_eq!(pair.leader(Duration::from_secs(30)).await, standby);
        let took_over = killed_at.elapsed();
        pair.wait_for_phase(standby, &user, &["done"], Duration::from_secs(60))
            .await;
        println!(
            "killed the leader in {phase}: standby led after {:.2}s, done after {:.2}s",
            took_over.as_secs_f64(),
            killed_at.elapsed().as_secs_f64()
        );
        takeovers.push(took_over);
        pair.assert_rotated_once(&user);
        children[leader] = Some(pair.replicas[leader].spawn());
        pair.replicas[leader].ready().await;
    }
    for child in children.iter_mut().flatten() {
        kill(child);
    }
    let slowest = takeovers.iter().max().unwrap();
    println!("slowest takeover {:.2}s", slowest.as_secs_f64());
}

/// The Lease election: the leader SIGKILLed mid-rotation (its Lease is left held, and expires),
/// then the new leader stopped with SIGTERM (it releases its Lease, and the restarted replica
/// leads at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_kubernetes_lease_the_standby_takes_over_and_finishes_with_one_mint() {
    let pair = pair_with(
        crate::postgres::database().await,
        [None, None],
        "leader_election = \"kubernetes\"\nleader_lease_name = \"token-rotator-test\"",
    )
    .await;
    let mut children = [Some(pair.replicas[0].spawn()), None];
    pair.replicas[0].ready().await;
    assert_eq!(pair.leader(Duration::from_secs(30)).await, 0);
    children[1] = Some(pair.replicas[1].spawn());
    pair.replicas[1].ready().await;
    let holder = pair
        .kubernetes
        .lease_holder(NAMESPACE, "token-rotator-test")
        .unwrap();
    let user = "lease@alphagov.co.uk";
    pair.seed(user);
    assert!(
        pair.replicas[1]
            .post_webhook(Pair::alert(user, "1ea5e"))
            .await
    );
    pair.wait_for_phase(1, user, &["issued"], Duration::from_secs(30))
        .await;
    let killed_at = Instant::now();
    kill(children[0].as_mut().unwrap());
    assert_eq!(pair.leader(Duration::from_secs(30)).await, 1);
    println!(
        "Lease: standby led {:.2}s after the leader was killed",
        killed_at.elapsed().as_secs_f64()
    );
    pair.wait_for_phase(1, user, &["done"], Duration::from_secs(60))
        .await;
    pair.assert_rotated_once(user);
    let new_holder = pair
        .kubernetes
        .lease_holder(NAMESPACE, "token-rotator-test")
        .unwrap();
    assert_ne!(holder, new_holder);

    // A graceful stop hands over without waiting for the Lease to expire.
    children[0] = Some(pair.replicas[0].spawn());
    pair.replicas[0].ready().await;
    let stopped_at = Instant::now();
    let mut leader = children[1].take().unwrap();
    let pid = leader.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    leader.wait().unwrap();
    assert_eq!(pair.leader(Duration::from_secs(30)).await, 0);
    println!(
        "Lease: after SIGTERM the other replica led {:.2}s later",
        stopped_at.elapsed().as_secs_f64()
    );
    assert!(
        pair.kubernetes
            .lease_holder(NAMESPACE, "token-rotator-test")
            .is_some()
    );
    kill(children[0].as_mut().unwrap());
    // What the README tells operators to grant for this election, and nothing more.
    let verbs: std::collections::BTreeSet<(String, String)> = pair
        .kubernetes
        .requests()
        .into_iter()
        .filter(|r| r.group == "coordination.k8s.io")
        .map(|r| (r.resource, r.verb))
        .collect();
    let granted = [
        ("leases", "create"),
        ("leases", "get"),
        ("leases", "update"),
    ]
    .map(|(r, v)| (r.to_owned(), v.to_owned()));
    assert_eq!(verbs, granted.into_iter().collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_postgres_stops_acting_before_the_standby_starts() {
    let db = crate::postgres::database().await;
    let server = url::Url::parse(&db.url).unwrap();
    let proxy = Proxy::start(&format!(
        "{}:{}",
        server.host_str().unwrap(),
        server.port().unwrap()
    ))
    .await;
    let pair = pair(db, [Some(proxy.port), None]).await;
    // Replica 0 (behind the proxy) starts first and leads.
    let (mut zero, zero_log) = spawn_logged(&pair.replicas[0]);
    pair.replicas[0].ready().await;
    assert_eq!(pair.leader(Duration::from_secs(30)).await, 0);
    let (mut one, one_log) = spawn_logged(&pair.replicas[1]);
    pair.replicas[1].ready().await;
    let user = "partition@alphagov.co.uk";
    pair.seed(user);
    assert!(
        pair.replicas[1]
            .post_webhook(Pair::alert(user, "0a0a"))
            .await
    );
    pair.wait_for_phase(1, user, &["issued"], Duration::from_secs(30))
        .await;

    let cut_at = Instant::now();
    proxy.freeze();
    let stepped_down = zero_log.wait_for("stepping down", Duration::from_secs(60));
    let took_over = one_log.wait_for("leading epoch", Duration::from_secs(60));
    println!(
        "cut off: the leader stepped down after {:.2}s, the standby led after {:.2}s",
        (stepped_down - cut_at).as_secs_f64(),
        (took_over - cut_at).as_secs_f64()
    );
    assert!(
        stepped_down < took_over,
        "the old leader must stop acting before the new one starts"
    );
    pair.wait_for_phase(1, user, &["done"], Duration::from_secs(60))
        .await;
    pair.assert_rotated_once(user);
    kill(&mut zero);
    kill(&mut one);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_webhooks_split_across_both_replicas_make_one_rotation() {
    let pair = Arc::new(pair(crate::postgres::database().await, [None, None]).await);
    let mut children = [pair.replicas[0].spawn(), pair.replicas[1].spawn()];
    pair.replicas[0].ready().await;
    pair.replicas[1].ready().await;
    let user = "flood@alphagov.co.uk";
    pair.seed(user);
    let body = Pair::alert(user, "f1f1f1f1");
    let mut posts = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (pair, body) = (Arc::clone(&pair), body.clone());
        posts.spawn(async move { pair.replicas[i % 2].post_webhook(body).await });
    }
    let acked = posts.join_all().await.into_iter().filter(|ok| *ok).count();
    assert_eq!(acked, 200, "every delivery acknowledged, on either replica");
    pair.wait_for_phase(0, user, &["done"], Duration::from_secs(60))
        .await;
    let rotations: Vec<Value> = pair.replicas[1]
        .rotations()
        .await
        .into_iter()
        .filter(|r| r["api_user"] == user)
        .collect();
    assert_eq!(rotations.len(), 1, "{rotations:#?}");
    pair.assert_rotated_once(user);
    // The metric agrees with /readyz: one leader, one standby.
    let leader = pair.leader(Duration::from_secs(10)).await;
    for (i, replica) in pair.replicas.iter().enumerate() {
        let metrics = replica
            .client
            .get(replica.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let expected = format!("token_rotator_leader {}", u8::from(i == leader));
        assert!(metrics.contains(&expected), "replica {i}: no {expected:?}");
    }
    for child in &mut children {
        kill(child);
    }
}

/// `serve` with its log lines read as they come, each with when it was read.
fn spawn_logged(serve: &Serve) -> (Child, Log) {
    let mut child = serve.spawn_with(|command| {
        command.env("RUST_LOG", "info").stderr(Stdio::piped());
    });
    let stderr = child.stderr.take().unwrap();
    let (lines, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines
                .send((Instant::now(), without_colours(&line)))
                .is_err()
            {
                return;
            }
        }
    });
    (child, Log(receiver))
}

/// The line as text: the terminal colour codes between a message and its fields removed.
fn without_colours(line: &str) -> String {
    let mut text = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| *c == 'm');
        } else {
            text.push(c);
        }
    }
    text
}

struct Log(std::sync::mpsc::Receiver<(Instant, String)>);

impl Log {
    /// When the first line containing `text` was read.
    fn wait_for(&self, text: &str, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok((at, line)) if line.contains(text) => return at,
                Ok((_, line)) => seen.push(line),
                Err(e) => panic!(
                    "no log line with {text:?} within {within:?} ({e}); read:\n{}",
                    seen.join("\n")
                ),
            }
        }
    }
}

/// A TCP proxy to PostgreSQL that can be frozen: bytes stop flowing both ways and new
/// connections hang, while every socket stays open — a partition, not a refusal.
struct Proxy {
    port: u16,
    frozen: watch::Sender<bool>,
}

impl Proxy {
    async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (frozen, watching) = watch::channel(false);
        let upstream = upstream.to_owned();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, frozen) = (upstream.clone(), watching.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        pipe(client_read, server_write, frozen.clone()),
                        pipe(server_read, client_write, frozen)
                    );
                });
            }
        });
        Self { port, frozen }
    }

    fn freeze(&self) {
        self.frozen.send_replace(true);
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        if *frozen.borrow() {
            // Hold both sockets open and pass nothing on, for as long as the test runs.
            std::future::pending::<()>().await;
        }
        tokio::select! {
            read = from.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if *frozen.borrow() {
                        std::future::pending::<()>().await;
                    }
                    if to.write_all(&buffer[..n]).await.is_err() {
                        return;
                    }
                }
            },
            _ = frozen.changed() => {}
        }
    }
}
