//! The daily token inventory through Signon's Jobs: `inventory.rb` played against the Signon
//! simulator in a Job of the Kubernetes simulator, journaled, then read by `token-rotator
//! tokens` and the status page. Never a token value in any of them.

use std::time::Duration;

use token_rotator::clock::Clock;
use token_rotator::commands::tokens;
use token_rotator::config::{Distribution, IssuerMode};
use token_rotator::sim::kubernetes::Rollout;
use token_rotator::store::inventory::{self, InventoryRow};

use crate::cluster::{options, world};
use crate::world::World;

const DAY: Duration = Duration::from_secs(86_400);

async fn job_world() -> World {
    world(
        options(IssuerMode::Job, Distribution::Apply),
        Rollout::Finishes,
    )
    .await
    .0
}

async fn page(world: &World) -> String {
    world.app.get_authorized("/").await
}

fn find<'a>(rows: &'a [InventoryRow], api_user: &str, id: u64) -> &'a InventoryRow {
    rows.iter()
        .find(|r| r.api_user == api_user && r.token_id == id.to_string())
        .unwrap_or_else(|| panic!("{api_user} token {id} not in {rows:#?}"))
}

#[tokio::test]
async fn the_inventory_lists_every_live_and_dead_token_with_who_renews_it_and_no_value() {
    let world = job_world().await;
    let signon = &world.signon;
    // The world's own pair: short-url-manager@alphagov.co.uk, one token ten days from expiry.
    let renewed = "publisher@alphagov.co.uk";
    signon.add_token(renewed, "Publishing API", 5 * DAY);
    signon.add_token(renewed, "Publishing API", 700 * DAY);
    let external = "someone@hmrc.gov.uk";
    signon.add_token(external, "Content Store", 30 * DAY);
    let dead = "email-alert-api@publishing.service.gov.uk";
    signon.add_token(dead, "Email Alert API", DAY);
    let suspended = "old-app@alphagov.co.uk";
    signon.add_token(suspended, "Whitehall", 40 * DAY);
    signon.suspend(suspended, true);
    signon.retire("Whitehall");
    // A revoked token is not Signon's any more: never listed.
    signon.add_token(external, "Content Store", 20 * DAY);
    let revoked = signon.tokens().last().unwrap().id.to_string();
    signon.admin_revoke(Some(external), None, &revoked).unwrap();
    world.clock.advance(2 * DAY);

    // One Job per environment served, each in its own cluster.
    assert_eq!(world.engine.take_inventories().await.unwrap(), 2);
    for environment in ["integration", "production"] {
        assert_eq!(world.env(environment).kubernetes.jobs_of("inventory"), 1);
    }

    let pool = world.engine.journal().pool();
    let all = inventory::last(pool).await.unwrap();
    // The weekly expiry gauge counts every inventoried token (expired ones in the first week),
    // not only the tokens of finished rotations (there are none yet).
    let twelve_weeks = world.clock.now().as_millisecond() + 12 * 7 * 86_400_000;
    let expected = all
        .iter()
        .filter(|r| r.expires_at_ms.is_some_and(|at| at < twelve_weeks))
        .count();
    let (_, metrics) = world.app.get_text("/metrics").await;
    let counted: i64 = metrics
        .lines()
        .filter(|l| l.starts_with("token_rotator_tokens_expiring{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<i64>().ok())
        .sum();
    assert!(expected > 0);
    assert_eq!(counted as usize, expected, "{metrics}");
    let rows: Vec<InventoryRow> = all
        .iter()
        .filter(|r| r.environment == "production")
        .cloned()
        .collect();
    assert_eq!(rows.len(), 6, "{rows:#?}");
    assert!(
        all.iter().all(|r| r.environment == "production"),
        "integration's Signon has no API user's token"
    );
    let taken = inventory::taken(pool).await.unwrap();
    assert_eq!(
        taken
            .iter()
            .map(|t| (t.environment.as_str(), t.tokens))
            .collect::<Vec<_>>(),
        [("integration", 0), ("production", 6)]
    );
    let ids: Vec<(String, u64)> = signon
        .tokens()
        .iter()
        .map(|t| (t.api_user.clone(), t.id))
        .collect();
    let id_of = |user: &str, nth: usize| {
        ids.iter()
            .filter(|(u, _)| u == user)
            .nth(nth)
            .map(|(_, id)| *id)
            .unwrap()
    };
    let superseded = find(&rows, renewed, id_of(renewed, 0));
    assert!(!superseded.newest && !superseded.expired);
    assert_eq!(superseded.renewed_by.as_deref(), Some("Signon (nightly)"));
    assert!(find(&rows, renewed, id_of(renewed, 1)).newest);
    let outside = find(&rows, external, id_of(external, 0));
    assert!(outside.newest && outside.renewed_by.is_none());
    let expired = find(&rows, dead, id_of(dead, 0));
    assert!(expired.expired && expired.newest);
    assert_eq!(expired.renewed_by.as_deref(), Some("Signon (nightly)"));
    let kept = find(&rows, suspended, id_of(suspended, 0));
    assert!(kept.suspended && kept.retired);
    assert!(rows.iter().all(|r| r.token_id != revoked));
    for row in &rows {
        let token = signon
            .tokens()
            .into_iter()
            .find(|t| t.id.to_string() == row.token_id)
            .unwrap();
        assert_eq!(row.last8, token.last8());
        assert_eq!(row.expires_at_ms, Some(token.expires_at.as_millisecond()));
        assert_eq!(row.created_at_ms, Some(token.created_at.as_millisecond()));
    }

    // `token-rotator tokens`: the token nobody renews first, then by expiry.
    let now_ms = world.clock.now().as_millisecond();
    let loaded = tokens::load(world.engine.journal(), None).await.unwrap();
    let table = tokens::table(&loaded, now_ms);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("integration: inventory taken ") && lines[0].ends_with("0 token(s)"),
        "{table}"
    );
    assert!(lines[1].ends_with("6 token(s)"), "{table}");
    let body: Vec<&str> = lines.iter().skip(4).copied().collect();
    assert_eq!(body.len(), 6, "{table}");
    assert!(
        body[0].contains(external) && body[0].contains("in 28 d") && body[0].contains("nobody"),
        "{table}"
    );
    assert!(
        body[1].contains(dead) && body[1].contains("24 h ago") && body[1].contains("expired"),
        "{table}"
    );
    assert!(
        body[2].contains(renewed) && body[2].contains("superseded") && body[2].contains("in 3 d"),
        "{table}"
    );
    assert!(body[3].contains("short-url-manager@alphagov.co.uk") && body[3].contains("live"));
    assert!(
        body[4].contains(suspended) && body[4].contains("user suspended, application retired"),
        "{table}"
    );
    assert!(
        body[5].contains(renewed) && body[5].contains(" live "),
        "{table}"
    );
    let json = tokens::json(&loaded, now_ms);
    assert_eq!(json["tokens"][0]["api_user"], external);
    assert_eq!(json["tokens"][0]["state"], "live");
    assert_eq!(json["tokens"][0]["renewed_by"], serde_json::Value::Null);
    assert_eq!(json["tokens"][2]["state"], "superseded");
    let only = tokens::load(world.engine.journal(), Some("integration"))
        .await
        .unwrap();
    assert!(only.tokens.is_empty() && only.taken.len() == 1);

    // The status page's section lists the same rows in the same order.
    let html = page(&world).await;
    let section = html
        .split("id=\"tokens-heading\"")
        .nth(1)
        .expect("the page has the inventory section");
    assert!(section.contains("6 of 6 tokens"), "{section}");
    assert_eq!(section.matches("<tr data-state=").count(), 6, "{section}");
    let first = section.find(external).unwrap();
    let then = section.find(dead).unwrap();
    assert!(first < then, "nobody-renews first: {section}");
    assert!(
        section.contains("<tr data-state=\"superseded\">"),
        "{section}"
    );

    // No token value anywhere: the journal, the command's output, the page.
    let journaled = format!("{all:?}");
    let json = json.to_string();
    for token in signon.tokens() {
        for (what, text) in [
            ("journal", &journaled),
            ("table", &table),
            ("json", &json),
            ("page", &html),
        ] {
            assert!(
                !text.contains(&token.value),
                "token {} in the {what}",
                token.id
            );
        }
    }

    // The next day's inventory replaces the last one whole.
    signon
        .admin_revoke(Some(renewed), None, &id_of(renewed, 0).to_string())
        .unwrap();
    world.clock.advance(DAY);
    world.engine.take_inventories().await.unwrap();
    let again = inventory::last(pool).await.unwrap();
    assert_eq!(again.len(), 5, "{again:#?}");
    assert!(again.iter().all(|r| r.taken_at_ms > now_ms), "{again:#?}");
}

/// A few MB on one log line: the kubelet's `tailLines` counts its 16 KiB pieces, so a reader
/// asking for the last 100 lines would get it cut; the inventory arrives whole.
#[tokio::test]
async fn an_inventory_of_several_megabytes_arrives_whole() {
    let world = job_world().await;
    let tokens = 10_000;
    for n in 0..tokens {
        world.signon.add_token(
            &format!("app-{:03}@alphagov.co.uk", n % 500),
            &format!("Application {}", n / 500),
            DAY * (30 + (n % 60) as u32),
        );
    }
    let line = serde_json::to_string(&world.signon.inventory()).unwrap();
    assert!(
        line.len() > 100 * token_rotator::sim::kubernetes::LOG_PIECE,
        "the line is longer than 100 of the node's log lines: {} bytes",
        line.len()
    );
    world.engine.take_inventories().await.unwrap();
    let rows = inventory::last(world.engine.journal().pool())
        .await
        .unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r.environment == "production")
            .count(),
        tokens + 1,
        "every token and the world's own"
    );
}

#[tokio::test]
async fn shadow_with_the_job_issuer_plans_from_the_last_inventory_and_starts_no_list_job() {
    let mut opts = options(IssuerMode::Job, Distribution::Apply);
    opts.shadow = vec!["production"];
    let (world, _) = world(opts, Rollout::Finishes).await;
    let production = world.env("production");
    // Signon renewed the pair last night: the plan says it would adopt the newer token.
    world.signon.add_token(
        "short-url-manager@alphagov.co.uk",
        "Publishing API",
        700 * DAY,
    );

    // No inventory yet: the shadow rotation waits for one rather than start a list Job.
    world.app.post_webhook(crate::helpers::capture("01-")).await;
    world.engine.ingest().await.unwrap();
    world.engine.run_until_idle().await.unwrap();
    let waiting = world.rotations().await;
    assert_eq!(waiting.len(), 1, "{waiting:#?}");
    assert_eq!(waiting[0].phase, "planned", "{waiting:#?}");
    assert!(
        waiting[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("waiting for the first inventory of production")),
        "{waiting:#?}"
    );
    assert_eq!(production.kubernetes.jobs_of("list"), 0);

    // Once the inventory is taken, the plan is made from it: still no list Job.
    world.engine.take_inventories().await.unwrap();
    world.run_to_the_end().await;
    let planned = world.rotations().await;
    assert_eq!(planned[0].phase, "planned_only", "{planned:#?}");
    let plan: serde_json::Value =
        serde_json::from_str(planned[0].plan.as_deref().unwrap()).unwrap();
    let findings = plan["findings"].to_string();
    assert!(
        findings.contains("tokens as Signon's inventory of production saw them")
            && findings.contains("token already renewed by Signon — would adopt token"),
        "{plan:#}"
    );
    assert_eq!(plan["feasible"], true, "{plan:#}");
    assert_eq!(production.kubernetes.jobs_of("list"), 0);
    assert_eq!(production.kubernetes.jobs_of("inventory"), 1);
    assert!(
        ["mint", "revoke"]
            .iter()
            .all(|op| production.kubernetes.jobs_of(op) == 0)
    );
}
