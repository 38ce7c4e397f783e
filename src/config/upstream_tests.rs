//! `[synoptic]` and `[slack]` keys for how those upstreams are spoken to.

use std::time::Duration;

use super::Config;

const MINIMAL: &str = "[environments.test]\n[[rules]]\nname = \"all\"\naction = \"rotate\"\n";

#[test]
fn synoptic_endpoint_verify_request_and_slack_join_are_configurable() {
    let defaults = Config::from_toml(&format!("[synoptic]\n{MINIMAL}")).unwrap();
    let synoptic = defaults.synoptic.unwrap();
    assert_eq!(
        synoptic.credential_api,
        crate::config::CredentialApi::Current
    );
    assert_eq!(synoptic.verify_path, "/v2/stations/metadata?stid=WBB");
    assert_eq!(synoptic.disable_propagation, Duration::from_secs(60));
    assert!(!defaults.slack.join_channels);
    let text = format!(
        "[synoptic]\ncredential_api = \"legacy\"\nverify_path = \"/v2/stations/latest?stid=KSLC\"\n\
         disable_propagation = \"2m\"\n[slack]\njoin_channels = true\n{MINIMAL}"
    );
    let set = Config::from_toml(&text).unwrap();
    let synoptic = set.synoptic.unwrap();
    assert_eq!(
        synoptic.credential_api,
        crate::config::CredentialApi::Legacy
    );
    assert_eq!(synoptic.disable_propagation, Duration::from_secs(120));
    assert!(set.slack.join_channels);
    let wrong = format!("[synoptic]\ncredential_api = \"both\"\n{MINIMAL}");
    let error = Config::from_toml(&wrong).unwrap_err().render(&wrong);
    assert!(error.contains("credential_api"), "{error}");
}

#[test]
fn gitlab_takes_the_instances_time_zone_and_checks_schedule_owners() {
    let gitlab = "[gitlab]\nurl = \"https://gitlab.example.com\"\n";
    let defaults = Config::from_toml(&format!("{gitlab}{MINIMAL}")).unwrap();
    assert_eq!(defaults.gitlab.unwrap().time_zone, jiff::tz::TimeZone::UTC);
    let zoned = format!("{gitlab}time_zone = \"America/Los_Angeles\"\n{MINIMAL}");
    let zone = Config::from_toml(&zoned).unwrap().gitlab.unwrap().time_zone;
    assert_eq!(zone.iana_name(), Some("America/Los_Angeles"));
    let wrong = format!("{gitlab}time_zone = \"Pacific Time\"\n{MINIMAL}");
    let error = Config::from_toml(&wrong).unwrap_err().render(&wrong);
    assert!(
        error.contains("gitlab.time_zone \"Pacific Time\""),
        "{error}"
    );

    let schedule = |owner: &str| {
        format!(
            "{gitlab}[[schedules]]\nname = \"ci\"\nissuer = \"gitlab\"\nowner = \"{owner}\"\n\
             token = \"ci-bot\"\nevery = \"30d\"\nfile = {{ path = \"/tmp/ci.token\" }}\n{MINIMAL}"
        )
    };
    assert!(Config::from_toml(&schedule("project:platform/ci")).is_ok());
    let text = schedule("project:platform/../admin");
    let error = Config::from_toml(&text).unwrap_err().render(&text);
    assert!(
        error.contains("\"..\" is not a path segment") && error.contains("schedule"),
        "{error}"
    );
}
