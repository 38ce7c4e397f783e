//! The README's main command, run as a person runs it: the whole demo against its simulators
//! ends well, and says nothing went wrong on the way. The demo checks its own outcomes (every
//! target ends as its rule predicts); this test is what makes a change that breaks it red before
//! `.ci/run` reaches the release build.

use std::process::Command;

#[test]
fn the_demo_runs_to_its_end_with_no_error_logged() {
    let out = Command::new(env!("CARGO_BIN_EXE_token-rotator"))
        .arg("demo")
        .env_remove("RUST_LOG")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("every target ended as its rule and alerts predict"),
        "the demo's last check is missing:\n{stdout}"
    );
    // A refused Slack call, a click answered the wrong way or a failed step logs at WARN or
    // ERROR with its own words; the demo's expected warnings are about the replayed bodies.
    let unexpected: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|l| l.contains(" ERROR ") || l.contains(" WARN "))
        .filter(|l| {
            ![
                "max_alerts",
                "unroutable alert journaled",
                "fingerprints were not the hash",
            ]
            .iter()
            .any(|expected| l.contains(expected))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "the demo logged trouble:\n{}",
        unexpected.join("\n")
    );
}
