//! The README starts where a newcomer starts and stays short; its two commands are the ones CI
//! runs, so they keep working.

use super::markdown::fences;
use super::read;

#[test]
fn the_readme_is_short_and_its_demo_and_test_commands_are_the_ones_ci_runs() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(
        lines < 250,
        "README.md has {lines} lines; the rest belongs in docs/"
    );

    let commands: Vec<String> = fences(&readme)
        .into_iter()
        .filter(|f| f.lang == "sh")
        .map(|f| f.body.trim().to_owned())
        .take(2)
        .collect();
    assert_eq!(
        commands,
        ["cargo run --release -- demo", "cargo nextest run --locked"],
        "the first two commands of README.md are the demo and the tests"
    );
    let ci = read(".ci/run");
    for command in &commands {
        assert!(
            ci.lines().any(|line| line.trim() == command),
            ".ci/run does not run the README's command `{command}` as written"
        );
    }
    // The demo's excerpt is its real output's shape.
    for printed in [
        "token-rotator demo: service on",
        "Outcomes:",
        "every target ended",
    ] {
        assert!(
            readme.contains(printed),
            "README.md's demo excerpt lacks {printed:?}"
        );
    }
}
