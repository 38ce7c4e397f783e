//! The shipped rule table, end to end: what is journaled for each of the runbook's cases.

use crate::helpers::{capture, fixture, spawn_app};

#[tokio::test]
async fn each_default_rule_decides_its_runbook_case() {
    let app = spawn_app().await;
    assert_eq!(app.post_webhook(capture("05-")).await.status(), 200);
    assert_eq!(
        app.post_webhook(fixture("synthetic/special-cases.json"))
            .await
            .status(),
        200
    );
    let rows = app.journal_rows().await;
    let decided = |fingerprint: &str| {
        let row = rows
            .iter()
            // Made-up fingerprints: kept with the hash of the labels beside them.
            .find(|r| r.fingerprint.starts_with(fingerprint))
            .unwrap_or_else(|| panic!("{fingerprint} journaled"));
        (
            row.action.as_str(),
            row.rule_index,
            row.rule_name.as_deref(),
        )
    };
    let cases = [
        (
            "6629756f86c84ea1",
            "staging",
            (
                "silence",
                Some(0),
                Some("staging-is-restored-from-production-nightly"),
            ),
        ),
        (
            "a1b2c3d4e5f60001",
            "SSO-push user",
            ("ignore", Some(1), Some("sso-push-user-rotates-itself")),
        ),
        (
            "a1b2c3d4e5f60002",
            "Trade Tariff",
            (
                "manual",
                Some(2),
                Some("trade-tariff-has-its-own-procedure"),
            ),
        ),
        (
            "a1b2c3d4e5f60003",
            "external user",
            (
                "manual",
                Some(3),
                Some("human-or-external-api-user-needs-a-handover"),
            ),
        ),
        (
            "6959de730a83c157",
            "internal, production",
            ("rotate", Some(4), Some("internal-api-user")),
        ),
        (
            "d5311bfff89741de",
            "internal, integration",
            ("rotate", Some(4), Some("internal-api-user")),
        ),
        (
            "a1b2c3d4e5f60004",
            "no application label",
            ("unroutable", None, None),
        ),
    ];
    for (fingerprint, why, expected) in cases {
        assert_eq!(decided(fingerprint), expected, "{why}");
    }
}

#[tokio::test]
async fn a_manual_decision_journals_the_owner_and_runbook() {
    let app = spawn_app().await;
    app.post_webhook(fixture("synthetic/special-cases.json"))
        .await;
    let rows = app.journal_rows().await;
    let trade_tariff = rows
        .iter()
        .find(|r| r.fingerprint.starts_with("a1b2c3d4e5f60002:"))
        .unwrap();
    let detail: serde_json::Value =
        serde_json::from_str(trade_tariff.action_detail.as_deref().unwrap()).unwrap();
    assert_eq!(detail["action"], "manual");
    assert_eq!(detail["owner"], "#govuk-platform-engineering-team");
    assert!(
        detail["runbook_url"]
            .as_str()
            .unwrap()
            .contains("Trade+Tariff+Admin")
    );
    let sso = rows
        .iter()
        .find(|r| r.fingerprint.starts_with("a1b2c3d4e5f60001:"))
        .unwrap();
    let detail: serde_json::Value =
        serde_json::from_str(sso.action_detail.as_deref().unwrap()).unwrap();
    assert_eq!(
        detail,
        serde_json::json!({"action": "ignore", "escalate_after": "14days"})
    );
}
