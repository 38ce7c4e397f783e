//! `token-rotator check-config FILE`: every problem with its line and column; exit 1 if any.

use std::path::Path;

use serde_json::json;

use crate::config::{Config, ConfigErrors, Location};

/// What checking one file found.
pub enum Checked {
    Valid(Box<Config>),
    Unreadable(std::io::Error),
    Invalid(ConfigErrors),
}

pub struct Report {
    pub file: String,
    pub checked: Checked,
}

pub fn check(path: &Path) -> Report {
    let file = path.display().to_string();
    let checked = match std::fs::read_to_string(path) {
        Err(e) => Checked::Unreadable(e),
        Ok(text) => match Config::from_toml(&text) {
            Ok(config) => Checked::Valid(Box::new(config)),
            Err(errors) => Checked::Invalid(errors),
        },
    };
    Report { file, checked }
}

impl Report {
    pub fn valid(&self) -> bool {
        matches!(self.checked, Checked::Valid(_))
    }

    /// One line: `FILE: OK (...)`, or one `FILE:LINE:COLUMN: message` per problem.
    pub fn text(&self) -> String {
        let name = &self.file;
        match &self.checked {
            Checked::Unreadable(e) => format!("{name}: cannot read: {e}"),
            Checked::Invalid(errors) => errors.render(name),
            Checked::Valid(config) => format!(
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
        }
    }

    /// `-o json`: `valid`, what a valid file serves and decides, or every problem.
    pub fn json(&self) -> serde_json::Value {
        match &self.checked {
            Checked::Unreadable(e) => json!({
                "file": self.file,
                "valid": false,
                "problems": [{"message": format!("cannot read: {e}")}],
            }),
            Checked::Invalid(errors) => json!({
                "file": self.file,
                "valid": false,
                "problems": errors.problems.iter().map(|p| match &p.location {
                    Location::File { line, column } => {
                        json!({"line": line, "column": column, "message": p.message})
                    }
                    Location::Env(var) => json!({"env": var, "message": p.message}),
                }).collect::<Vec<_>>(),
            }),
            Checked::Valid(config) => json!({
                "file": self.file,
                "valid": true,
                "environments": config
                    .engine
                    .modes
                    .iter()
                    .map(|(env, mode)| (env.clone(), json!(mode.as_str())))
                    .collect::<serde_json::Map<_, _>>(),
                "rules": config
                    .policy
                    .rules()
                    .iter()
                    .map(|r| json!({"name": r.name, "action": r.action.kind().to_string()}))
                    .collect::<Vec<_>>(),
            }),
        }
    }
}
