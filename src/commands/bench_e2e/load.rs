//! Webhooks posted for a target already rotating (they join it) while the engine works,
//! each answer's latency kept. From `wrk` in its own process when it is installed (as
//! `bench/intake.sh` measures intake alone), else from 32 clients in this process, which
//! then share its runtime with the server and say so.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{CREDENTIAL, delivery};

/// What the load measured.
pub(super) struct Measured {
    pub p50: Duration,
    pub p99: Duration,
    pub requests: usize,
    pub seconds: f64,
    /// Who posted: "wrk, own process" or "in-process clients".
    pub by: &'static str,
}

/// The fingerprint `bench/intake.lua` replaces with one unique per request.
const WRK_FINGERPRINT: &str = "79c58121da909ef6";

/// `paced`: each connection waits 100 ms between requests (`bench/intake-paced.lua`).
pub(super) async fn measure(
    url: &str,
    target: (String, String),
    duration: Duration,
    paced: bool,
) -> anyhow::Result<Measured> {
    let has_wrk = std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok();
    if has_wrk {
        with_wrk(url, target, duration, paced).await
    } else {
        Ok(in_process(url, target, duration, paced).await)
    }
}

async fn with_wrk(
    url: &str,
    target: (String, String),
    duration: Duration,
    paced: bool,
) -> anyhow::Result<Measured> {
    let script = if paced {
        "bench/intake-paced.lua"
    } else {
        "bench/intake.lua"
    };
    let dir = tempfile::tempdir()?;
    let body = dir.path().join("delivery.json");
    let mut delivery = delivery(0, std::slice::from_ref(&target), 0);
    delivery["alerts"][0]["fingerprint"] = WRK_FINGERPRINT.into();
    std::fs::write(&body, serde_json::to_vec(&delivery)?)?;
    let output = tokio::process::Command::new("wrk")
        .args(["-t2", "-c32", "--timeout", "10s"])
        .arg(format!("-d{}s", duration.as_secs()))
        .args(["-s", script, url, "--"])
        .arg(&body)
        .arg(CREDENTIAL)
        .output()
        .await
        .context("running wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .with_context(|| format!("wrk printed no RESULT line: {stdout}"))?;
    let field = |name: &str| -> anyhow::Result<f64> {
        result
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .with_context(|| format!("no {name} in {result:?}"))?
            .parse()
            .with_context(|| format!("{name} in {result:?}"))
    };
    if field("non2xx")? > 0.0 || field("errors")? > 0.0 {
        anyhow::bail!("wrk saw failed requests: {result}");
    }
    let seconds = duration.as_secs_f64();
    Ok(Measured {
        p50: Duration::from_secs_f64(field("p50_ms")? / 1000.0),
        p99: Duration::from_secs_f64(field("p99_ms")? / 1000.0),
        requests: (field("rps")? * seconds) as usize,
        seconds,
        by: "wrk, own process",
    })
}

async fn in_process(
    url: &str,
    target: (String, String),
    duration: Duration,
    paced: bool,
) -> Measured {
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..32)
        .map(|c| {
            let (url, stop, target) = (url.to_owned(), Arc::clone(&stop), target.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut latencies = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let body = delivery(n, std::slice::from_ref(&target), (c + 1) << 40);
                    let sent = Instant::now();
                    let answer = http
                        .post(&url)
                        .bearer_auth(CREDENTIAL)
                        .json(&body)
                        .send()
                        .await;
                    if answer.is_ok_and(|a| a.status().is_success()) {
                        latencies.push(sent.elapsed());
                    }
                    if paced {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.unwrap_or_default());
    }
    all.sort();
    let p99 = all
        .get((all.len() * 99 / 100).min(all.len().saturating_sub(1)))
        .copied()
        .unwrap_or_default();
    Measured {
        p50: all.get(all.len() / 2).copied().unwrap_or_default(),
        p99,
        requests: all.len(),
        seconds: duration.as_secs_f64(),
        by: "in-process clients",
    }
}
