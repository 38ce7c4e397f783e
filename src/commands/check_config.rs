//! `token-rotator check-config FILE`: every problem with its line and column; exit 1 if any.

use std::path::Path;

use crate::config::Config;

/// Returns the report to print and whether the file is valid.
pub fn run(path: &Path) -> (String, bool) {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return (format!("{name}: cannot read: {e}"), false),
    };
    match Config::from_toml(&text) {
        Ok(config) => (
            format!(
                "{name}: OK (serves {}; {} rules: {})",
                config
                    .engine
                    .modes
                    .iter()
                    .map(|(env, mode)| format!("{env} ({})", mode.as_str()))
                    .collect::<Vec<_>>()
                    .join(", "),
                config.policy.rules().len(),
                config
                    .policy
                    .rules()
                    .iter()
                    .map(|r| format!("{} → {}", r.name, r.action.kind()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            true,
        ),
        Err(errors) => (errors.render(&name), false),
    }
}
