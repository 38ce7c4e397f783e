//! One test per Signon rule the simulator models, each naming the file of alphagov/signon it
//! comes from. The same rules run under real Rails and Doorkeeper in `tests/signon/`.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::{INITIATOR, SignonSim};
use crate::clock::{Clock, ManualClock};

const USER: &str = "short-url-manager@alphagov.co.uk";
const APP: &str = "Publishing API";
const DAY: Duration = Duration::from_secs(86400);

fn signon() -> (Arc<SignonSim>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(Timestamp::now()));
    let sim = SignonSim::new("admin", clock.clone() as Arc<dyn Clock>);
    sim.stop_provisioning();
    sim.add_user(USER, "Short URL Manager");
    sim.add_application(APP);
    (sim, clock)
}

fn refusal<T: std::fmt::Debug>(result: Result<T, super::Refusal>) -> &'static str {
    result.expect_err("refused").code
}

#[test]
fn the_initiator_is_an_unsuspended_api_user_or_a_superadmin_with_a_warning() {
    // app/models/event_log.rb (initiator required for events 29 and 30, any user),
    // lib/inactive_users_suspender.rb and app/models/user.rb (web users only, 45 days),
    // app/policies/authorisation_policy.rb (a person must be a superadmin),
    // lib/devise/models/suspendable.rb.
    let (signon, _) = signon();
    assert_eq!(refusal(signon.check_initiator(None)), "initiator_missing");
    assert_eq!(
        refusal(signon.check_initiator(Some(" "))),
        "initiator_missing"
    );
    assert_eq!(
        refusal(signon.check_initiator(Some("nobody@example.gov.uk"))),
        "initiator_unknown"
    );
    signon.add_person("editor@example.gov.uk", "Editor", false);
    assert_eq!(
        refusal(signon.check_initiator(Some("editor@example.gov.uk"))),
        "initiator_not_superadmin"
    );
    let seeded = signon.check_initiator(Some(INITIATOR)).expect("accepted");
    assert!(seeded.api_user && seeded.warning.is_none(), "{seeded:?}");
    signon.add_person("admin@example.gov.uk", "Admin", true);
    let person = signon
        .check_initiator(Some("admin@example.gov.uk"))
        .expect("accepted");
    assert!(!person.api_user);
    assert!(
        person
            .warning
            .as_deref()
            .is_some_and(|w| w.contains("45 days")),
        "{person:?}"
    );
    signon.suspend(INITIATOR, false);
    assert_eq!(
        refusal(signon.check_initiator(Some(INITIATOR))),
        "initiator_suspended"
    );
}

#[test]
fn api_users_are_found_by_the_default_scope_and_refused_when_suspended() {
    // app/models/api_user.rb (default scope api_user: true); sync_kubernetes_secrets.rake skips
    // suspended users, so a token for one could never reach its Secret.
    let (signon, _) = signon();
    signon.add_person("person@alphagov.co.uk", "Person", false);
    assert_eq!(
        refusal(signon.admin_list("person@alphagov.co.uk", APP, None)),
        "not_an_api_user"
    );
    assert_eq!(
        refusal(signon.admin_list("ghost@alphagov.co.uk", APP, None)),
        "api_user_unknown"
    );
    signon.suspend(USER, true);
    assert_eq!(
        refusal(signon.admin_mint(USER, APP, DAY, "r1")),
        "api_user_suspended"
    );
}

#[test]
fn a_retired_application_is_refused_and_an_unknown_one_not_found() {
    // oauth_applications.retired; User#grant_application_permissions returns early for it.
    let (signon, _) = signon();
    assert_eq!(
        refusal(signon.admin_list(USER, "Nothing Here", None)),
        "application_unknown"
    );
    signon.retire(APP);
    assert_eq!(
        refusal(signon.admin_list(USER, APP, None)),
        "application_retired"
    );
}

#[test]
fn applications_are_found_by_name_or_by_the_metrics_parameterized_name() {
    // lib/collectors/global_prometheus_collector.rb labels `application` parameterized.
    let (signon, _) = signon();
    signon.add_token(USER, APP, DAY);
    let listing = signon.admin_list(USER, "publishing-api", None).unwrap();
    assert_eq!(listing["application"]["name"], APP);
    assert_eq!(listing["tokens"].as_array().unwrap().len(), 1);
}

#[test]
fn a_pair_without_a_token_or_permission_gets_none() {
    // AuthorisationsController#create grants the permission with the token: minting for a pair
    // without either would create access, which rotation never does (User#has_access_to?).
    let (signon, _) = signon();
    assert_eq!(
        refusal(signon.admin_mint(USER, APP, DAY, "r1")),
        "no_access"
    );
    assert!(signon.tokens().is_empty(), "nothing written");
}

#[test]
fn a_rotations_key_finds_its_token_instead_of_a_second_mint() {
    // deploy/signon/mint.rb records the key in the event's trailing_message (event_log.rb
    // VALID_OPTIONS) and looks it up first.
    let (signon, _) = signon();
    signon.add_token(USER, APP, DAY);
    let (first, created) = signon.admin_mint(USER, APP, DAY, "r1").unwrap();
    assert!(created);
    let (again, created) = signon.admin_mint(USER, APP, DAY, "r1").unwrap();
    assert!(!created);
    assert_eq!(first.id, again.id);
    let listing = signon.admin_list(USER, APP, Some("r1")).unwrap();
    assert_eq!(listing["minted"]["id"], first.id.to_string());
    let listing = signon.admin_list(USER, APP, Some("r2")).unwrap();
    assert!(listing["minted"].is_null());
}

#[test]
fn a_token_of_another_user_is_not_found_and_a_second_revoke_changes_nothing() {
    // User#authorisations scopes to the owner (app/models/user.rb); Doorkeeper's
    // Revocable#revoke of a revoked token is a no-op.
    let (signon, _) = signon();
    signon.add_token(USER, APP, DAY);
    let other = signon.add_token("other@alphagov.co.uk", APP, DAY);
    let other_id = signon
        .tokens()
        .iter()
        .find(|t| t.value == other)
        .unwrap()
        .id
        .to_string();
    assert_eq!(
        refusal(signon.admin_revoke(Some(USER), None, &other_id)),
        "token_unknown"
    );
    assert!(signon.is_live(&other));
    let already = |id| signon.admin_revoke(Some(USER), None, id).map(|(a, _)| a);
    assert_eq!(already("1"), Ok(false));
    assert_eq!(already("1"), Ok(true));
}

#[test]
fn listings_show_live_tokens_by_expiry_and_sync_takes_the_last_to_expire() {
    // app/models/doorkeeper/access_token.rb (not_revoked, ordered_by_expires_at; expired
    // tokens are not live); sync_kubernetes_secrets.rake (b6e60420: `authorisations.last`).
    let (signon, clock) = signon();
    let soon = signon.add_token(USER, APP, DAY);
    let later = signon.add_token(USER, APP, 10 * DAY);
    let gone = signon.add_token(USER, APP, Duration::from_secs(60));
    clock.advance(Duration::from_secs(120));
    let listing = signon.admin_list(USER, APP, None).unwrap();
    let ids: Vec<&str> = listing["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["1", "2"], "by expiry, without the expired one");
    assert!(!signon.is_live(&gone));
    let synced = signon.longest_lived();
    assert_eq!(
        synced,
        [(
            "Short URL Manager".to_owned(),
            APP.to_owned(),
            later.clone()
        )]
    );
    assert_ne!(synced[0].2, soon);
    signon.suspend(USER, true);
    assert!(
        signon.longest_lived().is_empty(),
        "suspended users are skipped"
    );
}

/// `db/schema.rb`: `users` is utf8mb3_unicode_ci (:159), `oauth_applications` latin1 (:89), so
/// `find_by` ignores case; what it found is reported as stored, and a second spelling of a
/// name is one record (the unique indexes, :102 and :201, are case-insensitive too).
#[test]
fn lookups_ignore_case_as_signons_mysql_does_and_report_what_they_found() {
    let (signon, _clock) = signon();
    signon.add_token(USER, APP, 10 * DAY);
    signon.add_application("publishing api");
    let listing = signon
        .admin_list(&USER.to_uppercase(), "publishing api", None)
        .unwrap();
    assert_eq!(
        listing["resolved"],
        serde_json::json!({"email": USER, "application": APP})
    );
    assert_eq!(listing["tokens"].as_array().unwrap().len(), 1);
    let (token, _) = signon
        .admin_mint(
            "Short-URL-Manager@alphagov.co.uk",
            "PUBLISHING API",
            DAY,
            "k",
        )
        .unwrap();
    assert_eq!(
        (token.api_user.as_str(), token.application.as_str()),
        (USER, APP)
    );
    let (_, found) = signon
        .admin_revoke(
            Some(&USER.to_uppercase()),
            Some("publishing api"),
            &token.id.to_string(),
        )
        .unwrap();
    assert_eq!(
        found,
        serde_json::json!({"email": USER, "application": APP})
    );
    assert_eq!(
        signon
            .check_initiator(Some(&INITIATOR.to_uppercase()))
            .unwrap()
            .email,
        INITIATOR
    );
}
