//! The first screen and the timeline: what needs a person, what expires next, and every token
//! counted once whoever knows of it (a rotation, an alert, the inventory).

use super::get;
use crate::helpers::alert_body;
use crate::world::{rotated_world, spawn_world};

/// The `<span class="n">` count of the summary band's link to `class`.
fn band_count(html: &str, class: &str) -> usize {
    let link = format!("href=\"/?class={class}\"><span class=\"n\">");
    let at = html
        .find(&link)
        .unwrap_or_else(|| panic!("no {class} in the band: {html}"));
    let rest = &html[at + link.len()..];
    rest[..rest.find('<').unwrap()].parse().unwrap()
}

#[tokio::test]
async fn the_first_screen_says_what_needs_a_person_and_what_expires_next() {
    let world = rotated_world().await;
    let rotations = world.rotations().await;
    let (_, html) = get(&world, "/", true).await;
    let manual = rotations.iter().filter(|r| r.phase == "manual").count();
    let done = rotations.iter().filter(|r| r.phase == "done").count();
    assert!(manual > 0 && done > 0, "{rotations:#?}");
    assert_eq!(band_count(&html, "needs_person"), manual);
    assert_eq!(
        band_count(&html, "done"),
        done,
        "done within the last 7 days"
    );
    assert_eq!(band_count(&html, "shadow"), 0);

    // Each band link is the filtered list.
    let (_, needs) = get(&world, "/?class=needs_person", true).await;
    assert_eq!(needs.matches("<tr class=\"").count(), manual, "{needs}");
    assert_eq!(needs.matches("<tr class=\"manual\"").count(), manual);

    // What needs someone comes before what went well.
    let first_manual = html.find("<tr class=\"manual\"").unwrap();
    let first_done = html.find("<tr class=\"done\"").unwrap();
    assert!(first_manual < first_done, "manual rows first");

    // The done rotations' new tokens are the next to expire, with no rotation planned yet, and
    // the timeline counts them in its twelve weeks.
    let panel = &html[html.find("id=\"next-h\"").unwrap()..html.find("id=\"tl-h\"").unwrap()];
    for r in rotations.iter().filter(|r| r.phase == "done") {
        assert!(
            panel.contains(&format!("href=\"/rotations/{}\"", r.id)),
            "{panel}"
        );
    }
    assert_eq!(
        panel.matches("<strong>no rotation</strong> (done)").count(),
        done,
        "{panel}"
    );
    assert!(!html.contains("<script"), "no script on the page");
}

#[tokio::test]
async fn the_timeline_draws_tokens_whose_rotation_is_running() {
    let world = spawn_world().await;
    world.seed_every_environment("email-alert-api@alphagov.co.uk", "Email Alert API");
    world.app.post_webhook(crate::helpers::capture("05-")).await;
    world.run_until(token_rotator::engine::Phase::Grace).await;
    let (_, html) = get(&world, "/", true).await;
    let running = world
        .rotations()
        .await
        .into_iter()
        .filter(|r| r.phase == "grace")
        .count();
    assert!(running > 0);
    assert_eq!(band_count(&html, "in_progress"), running);
    // The alerted tokens expire within days: drawn in the first weeks as running.
    let svg = &html[html.find("<svg class=\"timeline\"").unwrap()..html.find("</svg>").unwrap()];
    let drawn: usize = svg
        .split("<rect class=\"v-running\"")
        .skip(1)
        .map(|rect| {
            let title = &rect[rect.find("<title>").unwrap()..];
            title.split(' ').nth(2).unwrap().parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(drawn, running, "{svg}");
    assert!(html.contains("<strong>running</strong> (grace)"), "{html}");
}

#[tokio::test]
async fn a_token_known_only_from_its_alert_is_next_to_expire_by_the_alerts_bound() {
    // A manual target is never listed by an issuer: only its alert says it expires, within the
    // 14 days the alert rule fires before expiry.
    let world = rotated_world().await;
    let (_, html) = get(&world, "/", true).await;
    let panel = &html[html.find("id=\"next-h\"").unwrap()..html.find("id=\"tl-h\"").unwrap()];
    let now = jiff::Timestamp::now();
    let manual: Vec<_> = world
        .rotations()
        .await
        .into_iter()
        .filter(|r| r.phase == "manual")
        .collect();
    assert!(!manual.is_empty());
    for r in &manual {
        let at = panel
            .find(&format!("href=\"/rotations/{}\"", r.id))
            .unwrap_or_else(|| panic!("{} not in the panel: {panel}", r.api_user));
        let item = &panel[at..at + panel[at..].find("</li>").unwrap()];
        assert!(
            item.contains(">within ") && item.contains("(alert)"),
            "{item}"
        );
        let datetime = &item[item.find("datetime=\"").unwrap() + 10..];
        let bound = datetime[..datetime.find('"').unwrap()]
            .parse::<jiff::civil::DateTime>()
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .unwrap()
            .timestamp();
        let days = (bound - now).get_seconds() as f64 / 86_400.0;
        assert!((13.9..=14.0).contains(&days), "{days} days: {item}");
    }
    // Silenced staging alerts are noise by rule: not in the panel.
    let silenced = world
        .rotations()
        .await
        .into_iter()
        .find(|r| r.phase == "silenced")
        .unwrap();
    assert!(!panel.contains(&format!("href=\"/rotations/{}\"", silenced.id)));
}

#[tokio::test]
async fn the_list_comes_in_pages_that_keep_the_filter() {
    // 130 rotations in production: the list shows 100, then the other 30 on the next page.
    let world = spawn_world().await;
    for batch in 0..2 {
        let alerts: Vec<serde_json::Value> = (0..65)
            .map(|i| {
                let n = batch * 65 + i;
                let body = alert_body(
                    &format!("{n:016x}"),
                    &[
                        ("alertname", "SignonApiUserTokenExpirySoon"),
                        ("environment", "production"),
                        ("api_user", &format!("app-{n}@alphagov.co.uk")),
                        ("application", "Publishing API"),
                    ],
                );
                let mut one: serde_json::Value = serde_json::from_slice(&body).unwrap();
                one["alerts"][0].take()
            })
            .collect();
        let mut body: serde_json::Value =
            serde_json::from_slice(&alert_body("0", &[("alertname", "x")])).unwrap();
        body["alerts"] = alerts.into();
        let answer = world
            .app
            .post_webhook(serde_json::to_vec(&body).unwrap())
            .await;
        assert_eq!(answer.status(), 200);
    }
    world.engine.ingest().await.unwrap();
    assert_eq!(world.rotations().await.len(), 130);

    let rows = |html: &str| html.matches("<tr class=\"").count();
    let next = |html: &str| {
        let at = html.find("rel=\"next\" href=\"").map(|i| i + 17)?;
        Some(html[at..at + html[at..].find('"').unwrap()].replace("&amp;", "&"))
    };
    let (_, first) = get(&world, "/?environment=production", true).await;
    assert_eq!(rows(&first), 100);
    assert!(
        first.contains("130 of 130 rotations, rows 1–100"),
        "{first}"
    );
    let link = next(&first).expect("a link to the next page");
    assert!(
        link.contains("environment=production") && link.contains("page=1"),
        "{link}"
    );
    let (status, second) = get(&world, &link, true).await;
    assert_eq!(status, 200);
    assert_eq!(rows(&second), 30);
    assert!(second.contains("rows 101–130"), "{second}");
    assert!(next(&second).is_none(), "the last page links no further");
    assert!(second.contains("rel=\"prev\""));
    // Every rotation is on exactly one of the two pages' tables.
    let table = |html: &str| {
        let at = html.find("<table class=\"list\"").unwrap();
        html[at..at + html[at..].find("</table>").unwrap()].to_owned()
    };
    let (first, second) = (table(&first), table(&second));
    for r in world.rotations().await {
        let href = format!("href=\"/rotations/{}\"", r.id);
        assert_eq!(
            first.matches(&href).count() + second.matches(&href).count(),
            1,
            "{}",
            r.api_user
        );
    }
    let (status, past) = get(&world, "/?page=7", true).await;
    assert_eq!(status, 200);
    assert_eq!(rows(&past), 0);
    assert!(
        past.contains("There is no page 8: this list has 2 page(s)."),
        "{past}"
    );
}

#[tokio::test]
async fn the_token_inventory_lists_tokens_nobody_renews_first_as_text() {
    use token_rotator::store::inventory::{self, InventoryRow};
    let world = spawn_world().await;
    let (_, html) = get(&world, "/", true).await;
    assert!(
        html.contains("Tokens (last inventory)")
            && html.contains("No token inventory in the journal yet"),
        "{html}"
    );
    let now = jiff::Timestamp::now();
    let day = 86_400_000;
    let token = |n: i64, api_user: &str, renewed: bool| InventoryRow {
        environment: String::new(),
        api_user: api_user.into(),
        api_user_name: None,
        application: "Publishing API\"><img src=x onerror=alert(2)>".into(),
        application_uid: None,
        token_id: n.to_string(),
        created_at_ms: None,
        expires_at_ms: Some(now.as_millisecond() + (n + 1) * day),
        expired: false,
        newest: true,
        last8: "Ab3dEf7h".into(),
        suspended: false,
        retired: false,
        renewed_by: renewed.then(|| "Signon (nightly)".to_owned()),
        taken_at_ms: 0,
    };
    let mut rows: Vec<InventoryRow> = (0..150)
        .map(|n| token(n, &format!("app-{n:03}@alphagov.co.uk"), true))
        .collect();
    // Expiring last, yet first: nothing will renew it.
    rows.push(token(999, "<script>alert(1)</script>@hmrc.gov.uk", false));
    inventory::replace(world.engine.journal().pool(), "production", now, &rows)
        .await
        .unwrap();
    let (status, html) = get(&world, "/", true).await;
    assert_eq!(status, 200);
    let section = html.split("id=\"tokens-heading\"").nth(1).unwrap();
    assert!(section.contains("production: taken "), "{section}");
    assert!(section.contains("151 token(s)"), "{section}");
    assert!(
        section.contains("100 of 151 tokens") && section.contains("token-rotator tokens"),
        "{section}"
    );
    assert_eq!(section.matches("<tr data-state=\"live\">").count(), 100);
    let first_row = section.split("<tr data-state=").nth(1).unwrap();
    assert!(
        first_row.contains("&lt;script&gt;alert(1)&lt;/script&gt;@hmrc.gov.uk")
            && first_row.contains("nobody"),
        "{first_row}"
    );
    assert!(section.contains("app-000@alphagov.co.uk"), "{section}");
    assert!(
        !section.contains("app-149@"),
        "past the first 100: {section}"
    );
    assert!(!html.contains("<script>alert(1)"), "{html}");
    assert!(!html.contains("<img src=x"), "{html}");
}

/// The counts the timeline draws for one cover (its `<rect>`s' tooltips: "week N: n cover").
fn drawn(html: &str, class: &str) -> usize {
    let svg = &html[html.find("<svg class=\"timeline\"").unwrap()..html.find("</svg>").unwrap()];
    svg.split(&format!("<rect class=\"{class}\""))
        .skip(1)
        .map(|rect| {
            let title = &rect[rect.find("<title>").unwrap()..];
            title.split(' ').nth(2).unwrap().parse::<usize>().unwrap()
        })
        .sum()
}

#[tokio::test]
async fn the_timeline_counts_every_inventoried_token_once() {
    use token_rotator::store::inventory::{self, InventoryRow};
    let world = rotated_world().await;
    let (_, before) = get(&world, "/", true).await;
    let missing_before = drawn(&before, "v-no-rotation");
    assert_eq!(drawn(&before, "v-renewed-by-its-issuer"), 0);
    let rotations = world.rotations().await;
    let done = rotations
        .iter()
        .find(|r| r.phase == "done" && r.new_token_id.is_some())
        .expect("a done rotation");
    let now = jiff::Timestamp::now().as_millisecond();
    let day = 86_400_000;
    let token =
        |id: &str, environment: &str, api_user: &str, application: &str, days: i64| InventoryRow {
            environment: environment.into(),
            api_user: api_user.into(),
            api_user_name: None,
            application: application.into(),
            application_uid: None,
            token_id: id.into(),
            created_at_ms: None,
            expires_at_ms: Some(now + days * day + day / 2),
            expired: days < 0,
            newest: true,
            last8: "Ab3dEf7h".into(),
            suspended: false,
            retired: false,
            renewed_by: None,
            taken_at_ms: 0,
        };
    let renewed = |mut t: InventoryRow| {
        t.renewed_by = Some("Signon (nightly)".into());
        t
    };
    let env = done.environment.as_str();
    let rows = [
        // The done rotation's new token: drawn already, as that rotation's.
        token(
            done.new_token_id.as_deref().unwrap(),
            env,
            &done.api_user,
            &done.application,
            20,
        ),
        // Nothing renews it: drawn as having no rotation.
        token("9001", env, "someone@hmrc.gov.uk", "Content Store", 10),
        // Dead and never revoked: in the first week.
        token("9002", env, "gone@hmrc.gov.uk", "Email Alert API", -3),
        // Renewed by its issuer; its successor expires after the twelve weeks.
        renewed(token(
            "9003",
            env,
            "publisher@alphagov.co.uk",
            "Publishing API",
            20,
        )),
        renewed(token(
            "9004",
            env,
            "publisher@alphagov.co.uk",
            "Publishing API",
            700,
        )),
    ];
    inventory::replace(
        world.engine.journal().pool(),
        env,
        jiff::Timestamp::now(),
        &rows,
    )
    .await
    .unwrap();
    let (_, after) = get(&world, "/", true).await;
    assert_eq!(
        drawn(&after, "v-no-rotation"),
        missing_before + 2,
        "the unrenewed and the dead token, not the rotation's again"
    );
    assert_eq!(drawn(&after, "v-renewed-by-its-issuer"), 1);
    let table = &after[after.find("the timeline as a table").unwrap()..];
    assert!(
        table.contains("<th scope=\"col\">renewed by its issuer</th>"),
        "{table}"
    );
}
