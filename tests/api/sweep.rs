//! The nightly sweep of superseded tokens, through Signon's Jobs and the Kubernetes simulator:
//! Signon renewed a pair and its sync may or may not have put the new token in the Secret; the
//! sweep revokes the superseded token only where the Secret holds the newest and its consumer
//! rolled, journals each revoke before making it, and says in one digest what it did and why.

use std::time::Duration;

use token_rotator::adapters::kubernetes::{Cluster, Deployments, TOKEN_KEY};
use token_rotator::config::{Distribution, IssuerMode};
use token_rotator::engine::sweep::Verdict;
use token_rotator::sim::kubernetes::{JobBehaviour, Rollout};
use token_rotator::store::inventory;

use crate::cluster::{options, world};
use crate::world::{NAMESPACE, World, WorldOptions};

const USER: &str = "short-url-manager@alphagov.co.uk";
const APP: &str = "Publishing API";
const TWO_YEARS: Duration = Duration::from_secs(730 * 86_400);

async fn job_world(tweak: impl FnOnce(&mut WorldOptions)) -> (World, String) {
    let mut opts = options(IssuerMode::Job, Distribution::Apply);
    tweak(&mut opts);
    world(opts, Rollout::Finishes).await
}

/// Signon's nightly renewal made a two-year token; returns its value and id.
fn renew(world: &World) -> (String, String) {
    let fresh = world.signon.add_token(USER, APP, TWO_YEARS);
    let id = world.signon.tokens().last().unwrap().id.to_string();
    (fresh, id)
}

/// Signon's sync at 01:09 put `value` in the Secret; Reloader rolls the consumer, and the
/// Deployment controller is watched until the rollout is done.
async fn sync_and_roll(world: &World, value: &str) {
    let secret = world.secret_name(USER, APP);
    world.kubernetes.put(NAMESPACE, &secret, TOKEN_KEY, value);
    let url = world.env("production").kubernetes_url();
    let deployments = Deployments::new(
        Cluster::for_url(&url, NAMESPACE, Duration::from_secs(1)).unwrap(),
        false,
    );
    for _ in 0..10 {
        let baseline = deployments.baseline(&secret).await.unwrap();
        if deployments
            .check(&baseline, false)
            .await
            .unwrap()
            .waiting
            .is_empty()
        {
            return;
        }
    }
    panic!("the consumer never rolled out");
}

fn id_of(world: &World, value: &str) -> String {
    world
        .signon
        .tokens()
        .iter()
        .find(|t| t.value == value)
        .unwrap()
        .id
        .to_string()
}

/// The service has run for a day (its first sight of an environment sweeps nothing): the
/// next day's sweep.
async fn sweep(world: &World) -> Verdict {
    assert!(
        world.engine.sweep_due().await.unwrap().is_empty(),
        "the first sight of an environment sweeps nothing"
    );
    world.clock.advance(Duration::from_secs(86_400));
    let reports = world.engine.sweep_due().await.unwrap();
    world.run_to_the_end().await;
    let production = reports
        .iter()
        .find(|r| r.environment == "production")
        .expect("production was swept");
    let pair = production
        .pairs
        .iter()
        .find(|p| p.api_user == USER && p.application == APP)
        .expect("the pair has a superseded token");
    pair.verdict.clone()
}

/// The production digest as posted (its blocks included).
fn digest(world: &World) -> String {
    world
        .slack
        .messages()
        .iter()
        .map(|m| m.to_string())
        .filter(|t| t.contains("Sweep of superseded Signon tokens in production"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn a_superseded_token_is_revoked_once_the_secret_holds_the_newest_and_its_consumer_rolled() {
    let (world, old) = job_world(|_| {}).await;
    let old_id = id_of(&world, &old);
    let (fresh, fresh_id) = renew(&world);
    sync_and_roll(&world, &fresh).await;

    let verdict = sweep(&world).await;
    let Verdict::Revoked {
        tokens,
        newest,
        rotation_id,
    } = verdict
    else {
        panic!("{verdict:?}");
    };
    assert_eq!(
        tokens.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        [&old_id]
    );
    assert_eq!(newest.0, fresh_id);
    assert!(
        !world.signon.is_live(&old),
        "the superseded token is revoked"
    );
    assert!(world.signon.is_live(&fresh), "the newest stays live");
    assert_eq!(world.signon.minted().len(), 0, "nothing minted");

    // Journaled before it happened: the rotation began in `retiring`, naming exactly the id.
    let rows = world.rotations().await;
    let row = rows.iter().find(|r| r.id == rotation_id).unwrap();
    assert_eq!(row.phase, "retired", "{row:#?}");
    assert!(row.trigger.starts_with("sweep:"), "{}", row.trigger);
    assert_eq!(
        row.action_detail.as_deref(),
        Some(format!("{{\"revoke_only\":[\"{old_id}\"]}}").as_str())
    );
    let audit = world.audit(&rotation_id).await;
    let phases: Vec<(Option<&str>, &str)> = audit
        .iter()
        .map(|a| (a.from_phase.as_deref(), a.to_phase.as_str()))
        .collect();
    assert_eq!(phases, [(None, "retiring"), (Some("retiring"), "retired")]);
    assert!(
        audit[0].at_ms <= audit[1].at_ms && audit[1].reason.contains("the newest"),
        "{audit:#?}"
    );
    assert!(
        audit[1]
            .reason
            .contains(&format!("revoked superseded {old_id}")),
        "{audit:#?}"
    );

    // One digest for the environment, saying what was revoked and that the newest stays.
    let text = digest(&world);
    assert!(text.contains("revoked 1 token(s) of 1 pair(s)"), "{text}");
    let slack = world.slack.messages();
    let production: Vec<_> = slack
        .iter()
        .filter(|m| m.to_string().contains("tokens in production"))
        .collect();
    assert_eq!(production.len(), 1, "one digest: {slack:#?}");
    let body = production[0].to_string();
    assert!(body.contains(&format!("revoked {old_id} (…")), "{body}");
    assert!(
        body.contains(&format!("the newest, {fresh_id} (…")),
        "{body}"
    );

    // The sweep's inventory is the day's; the next look finds the pair clean.
    let rows = inventory::last(world.engine.journal().pool())
        .await
        .unwrap();
    assert!(
        rows.iter().any(|r| r.token_id == old_id),
        "taken before the revoke"
    );
    // A second sweep the same day does nothing: the day is claimed.
    assert!(world.engine.sweep_due().await.unwrap().is_empty());

    // No token value anywhere: Slack, the journal's rows and audit.
    let journaled = format!("{:?}{:?}", world.rotations().await, audit);
    let posted = format!("{slack:?}");
    for value in [&old, &fresh] {
        assert!(!posted.contains(value.as_str()), "a token in Slack");
        assert!(
            !journaled.contains(value.as_str()),
            "a token in the journal"
        );
    }
}

#[tokio::test]
async fn a_secret_still_holding_the_old_token_keeps_it() {
    let (world, old) = job_world(|_| {}).await;
    let (fresh, _) = renew(&world);
    // Signon's sync has not run: the Secret still holds the old token.
    let verdict = sweep(&world).await;
    let Verdict::Kept(why) = &verdict else {
        panic!("{verdict:?}");
    };
    assert!(
        why.contains("still holds") && why.contains("not the newest"),
        "{why}"
    );
    assert!(world.signon.is_live(&old) && world.signon.is_live(&fresh));
    assert!(world.rotations().await.is_empty(), "nothing journaled");
    let text = digest(&world);
    assert!(
        text.contains("revoked 0 token(s) of 0 pair(s); kept 1 pair(s)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_consumer_mid_rollout_keeps_it() {
    let (world, old) = job_world(|_| {}).await;
    let (fresh, _) = renew(&world);
    // The sync ran and Reloader started the rollout; the new pods are not all up.
    let secret = world.secret_name(USER, APP);
    world.kubernetes.put(NAMESPACE, &secret, TOKEN_KEY, &fresh);
    let verdict = sweep(&world).await;
    let Verdict::Kept(why) = &verdict else {
        panic!("{verdict:?}");
    };
    assert!(why.contains("mid-rollout"), "{why}");
    assert!(world.signon.is_live(&old));
}

#[tokio::test]
async fn a_rule_with_sweep_false_keeps_it() {
    let config = "[environments.production]\n[environments.integration]\n\
        [[rules]]\nname = \"internal-not-swept\"\naction = \"rotate\"\nsweep = false\n";
    let (world, old) = job_world(|o| o.config_toml = Some(config.to_owned())).await;
    let (fresh, _) = renew(&world);
    sync_and_roll(&world, &fresh).await;
    let verdict = sweep(&world).await;
    assert_eq!(
        verdict,
        Verdict::NotSwept("rule `internal-not-swept` does not sweep (sweep = false)".into())
    );
    assert!(world.signon.is_live(&old));
    let text = digest(&world);
    assert!(
        // A reason is escaped whole for Slack (it may quote an upstream's answer).
        text.contains("1 pair(s) kept: rule \u{02CB}internal-not-swept\u{02CB} does not sweep"),
        "{text}"
    );
}

#[tokio::test]
async fn in_shadow_nothing_is_revoked_and_the_digest_says_what_would_have_been() {
    let (world, old) = job_world(|o| o.shadow = vec!["production"]).await;
    let old_id = id_of(&world, &old);
    let (fresh, _) = renew(&world);
    sync_and_roll(&world, &fresh).await;
    let verdict = sweep(&world).await;
    assert!(
        matches!(&verdict, Verdict::WouldRevoke { tokens, .. } if tokens[0].0 == old_id),
        "{verdict:?}"
    );
    assert!(world.signon.is_live(&old), "shadow revokes nothing");
    assert_eq!(world.kubernetes.jobs_of("revoke"), 0);
    assert!(
        world.rotations().await.is_empty(),
        "nothing journaled to act on"
    );
    let text = digest(&world);
    assert!(
        text.contains("shadow — nothing was revoked")
            && text.contains("would have revoked 1 token(s) of 1 pair(s)"),
        "{text}"
    );
}

#[tokio::test]
async fn a_pair_with_a_rotation_under_way_is_kept() {
    let (world, old) = job_world(|_| {}).await;
    let (fresh, _) = renew(&world);
    sync_and_roll(&world, &fresh).await;
    // An alert started a rotation that has not finished.
    world.app.post_webhook(crate::helpers::capture("01-")).await;
    world.engine.ingest().await.unwrap();
    let verdict = sweep(&world).await;
    let Verdict::Kept(why) = &verdict else {
        panic!("{verdict:?}");
    };
    assert!(why.contains("a rotation is under way"), "{why}");
    // The rotation itself then revokes the old token, as it always did.
    assert!(!world.signon.is_live(&old));
}

#[tokio::test]
async fn the_revoke_is_journaled_before_it_is_made_and_a_failed_one_says_so() {
    let (world, old) = job_world(|_| {}).await;
    let old_id = id_of(&world, &old);
    let (fresh, _) = renew(&world);
    sync_and_roll(&world, &fresh).await;
    // Both runs of the revoke Job fail: the revoke never happens.
    world
        .kubernetes
        .next_jobs("revoke", JobBehaviour::Fail("revoke.rb: boom".into()), 2);
    let verdict = sweep(&world).await;
    let Verdict::Failed {
        tokens,
        rotation_id,
        why,
    } = &verdict
    else {
        panic!("{verdict:?}");
    };
    assert_eq!(tokens[0].0, old_id);
    assert!(why.contains("boom"), "{why}");
    assert!(world.signon.is_live(&old), "not revoked");
    let audit = world.audit(rotation_id).await;
    assert_eq!(audit[0].from_phase, None);
    assert_eq!(audit[0].to_phase, "retiring", "journaled first: {audit:#?}");
    assert_eq!(audit.last().unwrap().to_phase, "failed");
    let text = digest(&world);
    assert!(
        text.contains("did not finish") && text.contains("failed"),
        "{text}"
    );
}

#[tokio::test]
async fn a_consumer_reloader_does_not_roll_keeps_it() {
    // Without Reloader's annotation the Secret changing restarts nothing: its pods may still
    // run on the old token.
    let (world, old) = job_world(|o| o.reloader = false).await;
    let (fresh, _) = renew(&world);
    sync_and_roll(&world, &fresh).await;
    let verdict = sweep(&world).await;
    let Verdict::Kept(why) = &verdict else {
        panic!("{verdict:?}");
    };
    assert!(
        why.contains("Deployment `short-url-manager`")
            && why.contains("not rolled when it changes"),
        "{why}"
    );
    assert!(world.signon.is_live(&old));
}

#[tokio::test]
async fn the_last_sweep_is_on_the_status_page_in_tokens_and_in_metrics() {
    let (world, _old) = job_world(|_| {}).await;
    let (fresh, _) = renew(&world);
    sync_and_roll(&world, &fresh).await;
    let verdict = sweep(&world).await;
    assert!(matches!(verdict, Verdict::Revoked { .. }), "{verdict:?}");
    let pool = world.engine.journal().pool();
    let last = token_rotator::store::sweeps::last(pool).await.unwrap();
    let production = last.iter().find(|s| s.environment == "production").unwrap();
    assert_eq!(
        production.outcome.as_deref(),
        Some("revoked 1 token(s) of 1 pair(s); kept 0 pair(s)"),
        "{last:#?}"
    );

    let inventories = token_rotator::commands::tokens::load(world.engine.journal(), None)
        .await
        .unwrap();
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let table = token_rotator::commands::tokens::table(&inventories, now_ms);
    assert!(
        table.contains(&format!(
            "production: last sweep {} (finished",
            production.day
        )) && table.contains("): revoked 1 token(s) of 1 pair(s); kept 0 pair(s)"),
        "{table}"
    );
    let json = token_rotator::commands::tokens::json(&inventories, now_ms);
    assert_eq!(
        json["sweeps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["environment"] == "production")
            .unwrap()["outcome"],
        "revoked 1 token(s) of 1 pair(s); kept 0 pair(s)"
    );

    let page = world.app.get_authorized("/").await;
    assert!(
        page.contains("production: last sweep") && page.contains("revoked 1 token(s) of 1 pair(s)"),
        "{page}"
    );
    let (_, metrics) = world.app.get_text("/metrics").await;
    let finished_s = production.finished_at_ms.unwrap() / 1000;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with(
                "token_rotator_sweep_last_finished_timestamp_seconds{environment=\"production\"}",
            )
        })
        .unwrap_or_else(|| panic!("{metrics}"));
    let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(value as i64, finished_s, "{line}");
}
