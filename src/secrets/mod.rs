//! Secrets from the environment: `NAME` holds the value, or `NAME_FILE` names a file that does
//! (the Kubernetes way: a mounted Secret). Never from the config file, never logged.

mod keys;
mod names;

use std::path::PathBuf;

pub use keys::{KeyError, Keys, OpenError, TokenFingerprint};
pub use names::TokenNamer;

use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("both {var} and {var}_FILE are set; set only one")]
    Ambiguous { var: String },
    #[error("{var}_FILE names {path}, which cannot be read: {source}")]
    ReadFile {
        var: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{var} is set but empty")]
    Empty { var: String },
}

/// Reads `var` or `var_FILE` through `lookup` (the process environment in production).
///
/// A trailing newline in a file is dropped: editors and `kubectl create secret --from-file` add one.
pub fn from_env(
    var: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<SecretString>, SecretError> {
    let file_var = format!("{var}_FILE");
    let value = match (lookup(var), lookup(&file_var)) {
        (Some(_), Some(_)) => return Err(SecretError::Ambiguous { var: var.into() }),
        (Some(value), None) => value,
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            let text = std::fs::read_to_string(&path).map_err(|source| SecretError::ReadFile {
                var: var.into(),
                path: path.clone(),
                source,
            })?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, None) => return Ok(None),
    };
    if value.is_empty() {
        return Err(SecretError::Empty { var: var.into() });
    }
    Ok(Some(SecretString::from(value)))
}

/// The process environment, for [`from_env`].
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn value_file_absent_and_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let path = path.to_str().unwrap();

        let direct = from_env("T", &lookup(&[("T", "direct")])).unwrap().unwrap();
        assert_eq!(direct.expose_secret(), "direct");
        let filed = from_env("T", &lookup(&[("T_FILE", path)]))
            .unwrap()
            .unwrap();
        assert_eq!(filed.expose_secret(), "from-file");
        assert!(from_env("T", &lookup(&[])).unwrap().is_none());
        let both = from_env("T", &lookup(&[("T", "a"), ("T_FILE", path)])).unwrap_err();
        assert_eq!(both.to_string(), "both T and T_FILE are set; set only one");
        let empty = from_env("T", &lookup(&[("T", "")])).unwrap_err();
        assert_eq!(empty.to_string(), "T is set but empty");
    }

    #[test]
    fn an_unreadable_file_is_named_but_not_its_contents() {
        let err = from_env("T", &lookup(&[("T_FILE", "/nonexistent/x")])).unwrap_err();
        assert!(
            err.to_string().starts_with("T_FILE names /nonexistent/x"),
            "{err}"
        );
    }
}
