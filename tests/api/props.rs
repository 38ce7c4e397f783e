//! Property tests of the edges that take outside input: the webhook parser, the config parser,
//! the rule patterns and the Slack signature check. Every input parses or gets an error; none
//! panics. `PROPTEST_CASES` sets how many inputs each tries (`bench/fuzz.sh` runs a million),
//! seeded from the recorded Alertmanager captures and the shipped config.

use proptest::prelude::*;
use secrecy::SecretString;
use token_rotator::adapters::slack::signature;
use token_rotator::config::{Config, DEFAULT_CONFIG};
use token_rotator::intake::payload::WebhookPayload;
use token_rotator::policy::PatternSet;

use crate::helpers::captures;

/// A capture with a few bytes changed, removed or inserted.
fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    (
        0..seeds.len(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    )
        .prop_map(move |(which, edits)| {
            let mut bytes = seeds[which].clone();
            for (at, byte, how) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let i = at.index(bytes.len());
                match how {
                    0 => bytes[i] = byte,
                    1 => {
                        bytes.remove(i);
                    }
                    _ => bytes.insert(i, byte),
                }
            }
            bytes
        })
}

fn capture_bodies() -> Vec<Vec<u8>> {
    captures().into_iter().map(|(_, body)| body).collect()
}

proptest! {
    #[test]
    fn any_bytes_are_a_payload_or_an_error_naming_it(body in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Err(e) = WebhookPayload::parse(&body) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn mutated_captures_are_a_payload_or_an_error(body in mutated(capture_bodies())) {
        match WebhookPayload::parse(&body) {
            Ok(payload) => prop_assert!(!payload.alerts.is_empty()),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn mutated_configs_parse_or_say_where_they_are_wrong(
        text in mutated(vec![DEFAULT_CONFIG.as_bytes().to_vec()])
    ) {
        let text = String::from_utf8_lossy(&text);
        if let Err(errors) = Config::from_toml(&text) {
            prop_assert!(!errors.problems.is_empty());
            prop_assert!(!errors.render(&text).is_empty());
        }
    }

    #[test]
    fn any_pattern_compiles_or_is_refused_and_matching_never_panics(
        patterns in prop::collection::vec("[!*?\\[\\]{},a-z@. -]{0,12}", 1..4),
        value in "[a-zA-Z@. {}*?-]{0,24}",
    ) {
        if let Ok(set) = PatternSet::parse(&patterns) {
            let _ = set.is_match(&value);
        }
    }

    #[test]
    fn an_exact_pattern_matches_itself_and_its_negation_does_not(value in "[a-z@.-]{1,24}") {
        let exact = PatternSet::parse(std::slice::from_ref(&value)).unwrap();
        prop_assert!(exact.is_match(&value));
        let negated = PatternSet::parse(&[format!("!{value}")]).unwrap();
        prop_assert!(!negated.is_match(&value));
    }

    #[test]
    fn a_signed_body_verifies_and_any_change_to_it_does_not(
        secret in "[ -~]{1,40}",
        body in prop::collection::vec(any::<u8>(), 0..512),
        flip in any::<prop::sample::Index>(),
        timestamp in 1_000_000_000i64..2_000_000_000,
        skew in -300i64..=300,
    ) {
        let secret = SecretString::from(secret);
        let ts = timestamp.to_string();
        let signed = signature::sign(&secret, &ts, &body);
        let now = timestamp + skew;
        prop_assert_eq!(signature::verify(&secret, Some(&ts), Some(&signed), &body, now), Ok(()));
        if !body.is_empty() {
            let mut tampered = body.clone();
            let i = flip.index(tampered.len());
            tampered[i] ^= 0x01;
            prop_assert!(signature::verify(&secret, Some(&ts), Some(&signed), &tampered, now).is_err());
        }
    }

    #[test]
    fn any_headers_and_body_verify_or_are_refused(
        timestamp in proptest::option::of("[ -~]{0,24}"),
        given in proptest::option::of("[ -~]{0,80}"),
        body in prop::collection::vec(any::<u8>(), 0..256),
        now in any::<i64>(),
    ) {
        let secret = SecretString::from("s");
        let verdict = signature::verify(&secret, timestamp.as_deref(), given.as_deref(), &body, now);
        prop_assert!(verdict.is_err(), "a random signature never verifies");
    }
}
