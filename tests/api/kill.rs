//! Crash tests on the real binary: `token-rotator serve` as a child process on the simulators,
//! killed with SIGKILL at phase boundaries and at random moments (seeded; the seed is printed),
//! restarted on the same journal, over and over. Then, at the simulators: every target rotated,
//! one mint per target, no token revoked while its Secret holds it, and every alert that was
//! acknowledged with 200 is in the journal. `TOKEN_ROTATOR_KILLS` (default 100) and
//! `TOKEN_ROTATOR_CHAOS_SEED` set the run; `bench/chaos.sh` runs a longer one.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use token_rotator::adapters::kubernetes::TOKEN_KEY;
use token_rotator::clock::{Clock, SystemClock};
use token_rotator::domain::parameterize::secret_name;
use token_rotator::sim::kubernetes::KubernetesSim;
use token_rotator::sim::signon::SignonSim;
use token_rotator::sim::slack::{SlackSim, WEBHOOK_PATH};

use crate::helpers::alert_body;
use crate::process::{Serve, free_port, kill};
use crate::world::{ADMIN_TOKEN, NAMESPACE};

pub const PHASES: [&str; 6] = [
    "planned",
    "issued",
    "distributed",
    "rolled_out",
    "verified",
    "grace",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_killed_over_and_over_finishes_every_rotation_exactly_once() {
    token_rotator::install_crypto_provider();
    let kills: usize = std::env::var("TOKEN_ROTATOR_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("TOKEN_ROTATOR_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("chaos seed {seed} (TOKEN_ROTATOR_CHAOS_SEED={seed} repeats this run); {kills} kills");
    let mut rng = fastrand::Rng::with_seed(seed);

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let signon = SignonSim::new(ADMIN_TOKEN, clock);
    let kubernetes = KubernetesSim::new();
    let slack = SlackSim::new();
    let (signon_http, kubernetes_http, slack_http) = (
        signon.start().await.unwrap(),
        kubernetes.start().await.unwrap(),
        slack.start().await.unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "database_url = \"sqlite://{db}\"\nlisten = \"127.0.0.1:{port}\"\n\
             [rotation]\ngrace_period = \"300ms\"\nretry_min_delay = \"50ms\"\nretry_max_delay = \"500ms\"\nmax_attempts = 50\n\
             [signon]\nurl = \"{signon}\"\n[kubernetes]\nurl = \"{kube}\"\nnamespace = \"{NAMESPACE}\"\n\
             [environments.production]\n[[rules]]\nname = \"all\"\naction = \"rotate\"\n",
            db = dir.path().join("journal.db").display(),
            signon = signon_http.url(),
            kube = kubernetes_http.url(),
        ),
    )
    .unwrap();
    let harness = Serve::new(config, port, format!("{}{WEBHOOK_PATH}", slack_http.url()));

    // A new target every round, so every round has work in flight when it is killed.
    let mut acked: BTreeSet<String> = BTreeSet::new();
    let mut targets = Vec::new();
    let mut boundary_kills = 0;
    let started = Instant::now();
    for round in 0..kills {
        let user = format!("chaos-{round:03}@alphagov.co.uk");
        let value = signon.add_token(&user, "Publishing API", Duration::from_secs(10 * 86400));
        kubernetes.put(
            NAMESPACE,
            &secret_name(&signon.user_name(&user), "Publishing API"),
            TOKEN_KEY,
            &value,
        );
        targets.push(user.clone());
        let mut child = harness.spawn();
        harness.ready().await;
        let fingerprint = format!("{round:016x}");
        let body = alert_body(
            &fingerprint,
            &[
                ("alertname", "SignonApiUserTokenExpirySoon"),
                ("environment", "production"),
                ("api_user", &user),
                ("application", "Publishing API"),
            ],
        );
        if harness.post_webhook(body).await {
            acked.insert(fingerprint);
        }
        if round % 2 == 0 {
            // At a phase boundary: as soon as some rotation reaches the chosen phase.
            let phase = PHASES[rng.usize(..PHASES.len())];
            let deadline = Instant::now() + Duration::from_millis(800);
            while Instant::now() < deadline {
                let rows = harness.rotations().await;
                if rows.iter().any(|r| r["phase"] == phase) {
                    boundary_kills += 1;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(rng.u64(0..250))).await;
        }
        kill(&mut child);
    }
    println!(
        "{kills} kills ({boundary_kills} at a phase boundary) in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    // The last start: let it finish everything.
    let mut child = harness.spawn();
    harness.ready().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let rows = loop {
        let rows = harness.rotations().await;
        let finished =
            rows.len() == targets.len() && rows.iter().all(|r| r["next_attempt_at_ms"].is_null());
        if finished || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    kill(&mut child);

    assert_eq!(acked.len(), kills, "every webhook was acknowledged");
    assert_eq!(
        rows.len(),
        targets.len(),
        "one rotation per target, none lost"
    );
    let not_done: Vec<&Value> = rows.iter().filter(|r| r["phase"] != "done").collect();
    assert!(not_done.is_empty(), "seed {seed}: not done: {not_done:#?}");
    for user in &targets {
        let minted = signon
            .minted()
            .into_iter()
            .filter(|t| &t.api_user == user)
            .count();
        assert_eq!(minted, 1, "seed {seed}: {user} minted {minted} tokens");
        let secret = secret_name(&signon.user_name(user), "Publishing API");
        let in_use = kubernetes.value(NAMESPACE, &secret, TOKEN_KEY).unwrap();
        assert!(
            signon.is_live(&in_use),
            "seed {seed}: {user}'s Secret holds a dead token"
        );
    }
    let revoked: BTreeSet<String> = signon.revoked().into_iter().map(|t| t.value).collect();
    assert_eq!(
        revoked.len(),
        targets.len(),
        "one revoke per target: the old token"
    );
    // Every acknowledged alert is in the journal.
    let journal = token_rotator::store::Journal::open(
        &format!("sqlite://{}", dir.path().join("journal.db").display()),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let journaled: BTreeSet<String> = journal
        .alerts()
        .await
        .unwrap()
        .into_iter()
        // Made-up fingerprints are kept with the labels' own hash beside them.
        .map(|a| {
            a.fingerprint
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        acked.is_subset(&journaled),
        "seed {seed}: an acknowledged alert was lost"
    );
    journal.close().await;
}
