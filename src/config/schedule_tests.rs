//! When things run by themselves: scheduled targets and the nightly sweep.

use super::tests::MINIMAL;
use super::*;
use crate::policy::ActionKind;

#[test]
fn schedules_take_every_overlap_window_and_a_file_or_a_handover() {
    let text = format!(
        "public_url = \"https://rotator.example/\"\n[synoptic]\n\
         [[schedules]]\nname = \"dash\"\nissuer = \"synoptic\"\nevery = \"7d\"\n\
         window = \"Mon-Fri 09:00-16:00 Europe/London\"\njitter = \"30m\"\n\
         file = {{ path = \"/var/run/dash/token\", mode = \"0640\", owner = \"1000:1000\" }}\n\
         [[schedules]]\nname = \"partner\"\nissuer = \"synoptic\"\nevery = \"30d\"\noverlap = \"7d\"\n\
         handover = {{ owner = \"U0PARTNER1\" }}\n{MINIMAL}"
    );
    let config = Config::from_toml(&text).unwrap();
    assert_eq!(config.engine.public_url, "https://rotator.example");
    let [dash, partner] = config.schedules.as_slice() else {
        panic!("two schedules")
    };
    assert_eq!(
        dash.schedule.overlap, dash.schedule.every,
        "one period by default"
    );
    assert!(dash.schedule.window.is_some());
    assert_eq!(
        dash.distribution,
        ScheduleDistribution::File {
            path: "/var/run/dash/token".into(),
            mode: 0o640,
            owner: Some((1000, 1000))
        }
    );
    let handover = partner.schedule.handover.as_ref().unwrap();
    assert_eq!(handover.owner, "U0PARTNER1");
    assert_eq!(handover.window, Duration::from_secs(2 * 86400));

    let problems = |extra: &str| {
        let text = format!(
            "[synoptic]\n[[schedules]]\nname = \"x\"\nissuer = \"synoptic\"\n{extra}\n{MINIMAL}"
        );
        Config::from_toml(&text)
            .unwrap_err()
            .problems
            .into_iter()
            .map(|p| p.message)
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        problems("every = \"1d\"\noverlap = \"2d\"\nfile = { path = \"/t\" }")
            .contains("three tokens")
    );
    assert!(problems("every = \"1d\"").contains("say where the token goes"));
    assert!(problems("every = \"1d\"\nfile = { path = \"relative\" }").contains("absolute"));
    assert!(
        problems("every = \"1d\"\nwindow = \"weekdays\"\nfile = { path = \"/t\" }")
            .contains("window")
    );
}

#[test]
fn the_sweep_runs_at_two_in_london_unless_configured_and_rules_opt_pairs_in() {
    let config = Config::from_toml(MINIMAL).unwrap();
    let sweep = &config.engine.sweep;
    assert!(sweep.enabled);
    assert_eq!(sweep.at, jiff::civil::Time::constant(2, 0, 0, 0));
    assert_eq!(sweep.zone.iana_name(), Some("Europe/London"));

    let set = format!(
        "[sweep]\nenabled = false\nat = \"03:30\"\ntime_zone = \"UTC\"\n{MINIMAL}\nsweep = false\n"
    );
    let config = Config::from_toml(&set).unwrap();
    assert!(!config.engine.sweep.enabled);
    assert_eq!(
        config.engine.sweep.at,
        jiff::civil::Time::constant(3, 30, 0, 0)
    );
    assert_eq!(config.engine.sweep.zone.iana_name(), Some("UTC"));
    assert!(
        !config.policy.rules()[0].sweep,
        "the rule said sweep = false"
    );

    let bad = format!("[sweep]\nat = \"2am\"\ntime_zone = \"Mars/Olympus\"\n{MINIMAL}");
    let problems = Config::from_toml(&bad).unwrap_err().problems;
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("sweep.at \"2am\" is not a time of day like \"02:00\"")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("sweep.time_zone \"Mars/Olympus\" is not a time zone")),
        "{messages:?}"
    );
    let unknown = format!("[sweep]\nhour = 2\n{MINIMAL}");
    assert!(Config::from_toml(&unknown).is_err(), "unknown keys refused");

    // Rotated pairs are swept by default; pairs any other rule decides are not.
    let rules = "[environments.test]\n\
        [[rules]]\nname = \"left-alone\"\naction = \"ignore\"\nmatch = { api_user = \"a@x\" }\n\
        [[rules]]\nname = \"opted-in\"\naction = \"ignore\"\nsweep = true\nmatch = { api_user = \"b@x\" }\n\
        [[rules]]\nname = \"rotated\"\naction = \"rotate\"\n";
    let config = Config::from_toml(rules).unwrap();
    let sweeps = |user: &str| {
        let labels: crate::domain::Labels = [("api_user", user), ("environment", "test")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        config.policy.sweeps(&labels)
    };
    assert!(!sweeps("a@x").sweep);
    assert!(sweeps("b@x").sweep);
    let rotated = sweeps("c@x");
    assert!(rotated.sweep);
    assert_eq!(rotated.rule.as_deref(), Some("rotated"));
    assert_eq!(rotated.action, Some(ActionKind::Rotate));
}
