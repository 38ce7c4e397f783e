//! Upstream faults under load: Signon, the Kubernetes API and Slack all fail a fifth of their
//! calls (5xx, 429, malformed answers, slow answers, no answer in time), seeded. Every rotation
//! still ends — done, or failed or rolled back saying why — none is stuck, no Slack outcome is
//! lost, and no Secret is left holding a dead token.

use crate::helpers::alert_body;
use crate::world::{Sims, WorldOptions};

#[tokio::test]
async fn a_fifth_of_all_upstream_calls_failing_leaves_no_rotation_stuck_and_no_outcome_lost() {
    let seed = std::env::var("TOKEN_ROTATOR_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("fault seed {seed}");
    let world = Sims::start()
        .await
        .world_with(None, WorldOptions::default())
        .await;
    let users: Vec<String> = (0..20)
        .map(|i| format!("load-{i:02}@alphagov.co.uk"))
        .collect();
    for user in &users {
        world.seed(user, "Publishing API");
    }
    world.signon.faults.at_rate(0.2, seed);
    world.kubernetes.faults.at_rate(0.2, seed.wrapping_add(1));
    world.slack.faults.at_rate(0.2, seed.wrapping_add(2));
    for (i, user) in users.iter().enumerate() {
        let body = alert_body(
            &format!("{i:016x}"),
            &[
                ("alertname", "SignonApiUserTokenExpirySoon"),
                ("environment", "production"),
                ("api_user", user),
                ("application", "Publishing API"),
            ],
        );
        assert_eq!(world.app.post_webhook(body).await.status(), 200);
    }
    // Panics if any rotation or message is still pending after its retries.
    world.run_to_the_end().await;
    let injected = world.signon.faults.injected()
        + world.kubernetes.faults.injected()
        + world.slack.faults.injected();
    assert!(
        injected > 10,
        "seed {seed}: only {injected} faults were injected"
    );

    let rows = world.rotations().await;
    assert_eq!(rows.len(), users.len());
    let texts = world.slack_texts().join("\n");
    for row in &rows {
        assert!(
            matches!(row.phase.as_str(), "done" | "failed" | "rolled_back"),
            "seed {seed}: {row:#?}"
        );
        if row.phase != "done" {
            let why = row.outcome.as_deref().unwrap_or_default();
            assert!(
                !why.is_empty(),
                "seed {seed}: {} ended {} without a reason",
                row.api_user,
                row.phase
            );
        }
        assert!(
            texts.contains(&format!("`{}`", row.api_user)),
            "seed {seed}: no Slack outcome for {}",
            row.api_user
        );
        let in_use = world.secret(&row.api_user, "Publishing API").unwrap();
        assert!(
            world.signon.is_live(&in_use),
            "seed {seed}: {}'s Secret holds a dead token ({})",
            row.api_user,
            row.phase
        );
    }
    let done = rows.iter().filter(|r| r.phase == "done").count();
    for row in rows.iter().filter(|r| r.phase != "done") {
        println!(
            "  {} {}: {}",
            row.api_user,
            row.phase,
            row.outcome.as_deref().unwrap_or_default()
        );
    }
    println!("seed {seed}: {injected} faults; {done}/{} done", rows.len());
}
