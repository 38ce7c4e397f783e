//! `token-rotator bench-e2e` (hidden; `bench/e2e.sh` runs it in a release build): the whole
//! service on loopback, `N` expiring tokens delivered as Alertmanager delivers them (groups of
//! up to 50), grace 0, every rotation run to its end. Prints time to all done, rotations per
//! second, peak RSS, journal size, and Slack messages sent with the most in any second.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::SecretString;

use crate::adapters::Observer;
use crate::adapters::kubernetes::{Cluster, TOKEN_KEY};
use crate::adapters::parameterize::secret_name;
use crate::adapters::signon::SignonClient;
use crate::adapters::slack::SlackApi;
use crate::app::{Application, EngineParts, SlackParts};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Distribution, IssuerMode, KubernetesSettings};
use crate::engine::{Adapters, RetryPolicy, SlackOut, Upstreams};
use crate::intake::auth::WebhookAuth;
use crate::policy::Mode;
use crate::secrets::Keys;
use crate::sim::kubernetes::KubernetesSim;
use crate::sim::signon::SignonSim;
use crate::sim::slack::{API_PATH, BOT_TOKEN, SlackSim};
use crate::store::{rotations, threads};
use crate::telemetry::Metrics;

const NAMESPACE: &str = "apps";
const GROUP: usize = 50;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub async fn run(tokens: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let metrics = Arc::new(Metrics::new());
    let observer = Observer::new(Arc::clone(&metrics));
    let admin = SecretString::from("bench-admin-token");
    let signon = SignonSim::new("bench-admin-token", Arc::clone(&clock));
    let kubernetes = KubernetesSim::new();
    let slack = SlackSim::new();
    let (signon_http, kubernetes_http, slack_http) = (
        signon.start().await?,
        kubernetes.start().await?,
        slack.start().await?,
    );
    let users: Vec<String> = (0..tokens)
        .map(|i| format!("bench-{i:05}@alphagov.co.uk"))
        .collect();
    for user in &users {
        let value = signon.add_token(user, "Publishing API", Duration::from_secs(10 * 86400));
        kubernetes.put(
            NAMESPACE,
            &secret_name(&signon.user_name(user), "Publishing API"),
            TOKEN_KEY,
            &value,
        );
    }
    let kube = KubernetesSettings {
        url: None,
        namespace: NAMESPACE.into(),
        timeout: Duration::from_secs(10),
        distribution: Distribution::Apply,
        sync_cronjob: "signon-sync-token-secrets-to-k8s".into(),
        reloader: true,
        max_jobs: crate::adapters::kubernetes::DEFAULT_MAX_JOBS,
    };
    let client = SignonClient::new(&signon_http.url(), admin, Duration::from_secs(10))
        .observed(observer.clone());
    let cluster = Cluster::for_url(&kubernetes_http.url(), NAMESPACE, Duration::from_secs(10))
        .map_err(anyhow::Error::msg)?
        .observed(observer.clone());
    let upstreams = Upstreams::build(client, cluster, IssuerMode::Http, None, &kube)
        .map_err(anyhow::Error::msg)?;
    let mut config = Config::builtin();
    config.database_url = format!("sqlite://{}", dir.path().join("journal.db").display());
    config.listen = "127.0.0.1:0".parse()?;
    config
        .engine
        .modes
        .values_mut()
        .for_each(|m| *m = Mode::Active);
    config.engine.grace = Duration::ZERO;
    config.engine.slack.default_channel = Some("C0BENCH".into());
    config.engine.retry = RetryPolicy {
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(1),
        max_attempts: 10,
    };
    let api = SlackApi::new(
        &format!("{}{API_PATH}", slack_http.url()),
        SecretString::from(BOT_TOKEN),
        Duration::from_secs(5),
    )
    .observed(observer.clone());
    let parts = EngineParts {
        adapters: Adapters {
            environments: BTreeMap::from([("*".to_owned(), upstreams)]),
            slack: SlackOut::Threads,
            alertmanager: None,
            schedules: BTreeMap::new(),
        },
        keys: Keys::random(),
        clock,
        background: true,
        poll: Duration::from_millis(200),
        slack: SlackParts {
            api: Some(api),
            signing_secret: None,
        },
    };
    let credential = SecretString::from("bench-webhook-credential");
    let app = Application::build(
        config,
        WebhookAuth::bearer(&credential),
        Some(parts),
        metrics,
    )
    .await?;
    let engine = app.engine().context("built with an engine")?;
    let url = format!("http://{}/v1/alertmanager", app.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let http = reqwest::Client::new();
    let started = Instant::now();
    for (group, users) in users.chunks(GROUP).enumerate() {
        let alerts: Vec<serde_json::Value> = users
            .iter()
            .enumerate()
            .map(|(i, user)| {
                serde_json::json!({
                    "status": "firing",
                    "labels": {"alertname": "SignonApiUserTokenExpirySoon", "environment": "production",
                               "api_user": user, "application": "Publishing API"},
                    "annotations": {}, "startsAt": "2026-11-24T10:04:07.964Z",
                    "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                    "fingerprint": format!("{group:08x}{i:08x}"),
                })
            })
            .collect();
        let body = serde_json::json!({
            "receiver": "signon-token-rotation", "status": "firing", "alerts": alerts,
            "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "version": "4",
            "groupKey": format!("{{}}:{{group=\"{group}\"}}"), "truncatedAlerts": 0,
        });
        let response = http
            .post(&url)
            .bearer_auth("bench-webhook-credential")
            .json(&body)
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("group {group}: HTTP {}", response.status());
        }
    }
    let pool = engine.journal().pool().clone();
    let deadline = Instant::now() + Duration::from_secs(600);
    let all_done = loop {
        let rows = rotations::all_rotations(&pool).await?;
        if rows.len() == tokens && rows.iter().all(|r| r.next_attempt_at_ms.is_none()) {
            break started.elapsed();
        }
        if Instant::now() > deadline {
            bail!("not done after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let rows = rotations::all_rotations(&pool).await?;
    let done = rows.iter().filter(|r| r.phase == "done").count();
    // Slack goes on at its own pace: wait for it, for the message counts.
    while !threads::with_work(&pool, jiff::Timestamp::now())
        .await?
        .is_empty()
    {
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let slack_done = started.elapsed();
    let journal_bytes: u64 = ["journal.db", "journal.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.path().join(f)).ok())
        .map(|m| m.len())
        .sum();
    let mut max_per_second = 0;
    for times in slack.post_times().values() {
        for (i, t) in times.iter().enumerate() {
            let within = times[i..]
                .iter()
                .take_while(|u| u.duration_since(*t) < Duration::from_secs(1))
                .count();
            max_per_second = max_per_second.max(within);
        }
    }
    let _ = stop.send(());
    server.await??;
    println!("tokens                 {tokens} in groups of {GROUP}");
    println!(
        "all rotations ended    {:.1} s ({done} done)",
        all_done.as_secs_f64()
    );
    println!(
        "rotations per second   {:.1}",
        tokens as f64 / all_done.as_secs_f64()
    );
    println!(
        "peak RSS               {:.1} MiB",
        peak_rss_kib() as f64 / 1024.0
    );
    println!(
        "journal size           {:.1} MiB",
        journal_bytes as f64 / 1_048_576.0
    );
    println!(
        "Slack                  {} messages, {} edits, max {max_per_second} post(s) in any second per channel, {} refused by the 1/s limit; drained after {:.1} s",
        slack.posted().len(),
        slack.posted().iter().map(|m| m.edits).sum::<usize>(),
        slack.rate_limited(),
        slack_done.as_secs_f64()
    );
    if done != tokens {
        bail!("{} rotations did not end done", tokens - done);
    }
    Ok(())
}
