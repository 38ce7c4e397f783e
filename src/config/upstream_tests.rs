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
