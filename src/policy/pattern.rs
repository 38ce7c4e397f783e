//! Label value patterns of the rule table: exact, glob (`*`, `?`, `[…]`, `{a,b}`) or negated (`!…`).
//!
//! A list of patterns matches when any positive pattern matches (or there is none) and no negated
//! one does, so `["trade-*", "!trade-tariff-frontend"]` reads as it would in English.

use std::fmt;

use globset::{Glob, GlobMatcher};

use crate::domain::parameterize::parameterize;

#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Glob(GlobMatcher),
}

/// How a label's values are compared, so that every spelling of one token's target meets the
/// same rule: Signon folds the case of emails (Devise `case_insensitive_keys`), and finds an
/// application by its name or by its parameterized name (the metric's label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    /// Exactly as written (any other label).
    None,
    /// `api_user`: case-insensitive.
    Email,
    /// `application`: `"Trade Tariff Admin"`, `"trade tariff  admin"` and `"trade-tariff-admin"`
    /// are one name; a glob matches either the name or its parameterized form.
    Name,
}

impl Fold {
    pub fn for_label(name: &str) -> Self {
        match name {
            "api_user" => Fold::Email,
            "application" => Fold::Name,
            _ => Fold::None,
        }
    }
}

impl Matcher {
    fn is_match(&self, fold: Fold, value: &str) -> bool {
        match (self, fold) {
            (Matcher::Exact(expected), Fold::None) => expected == value,
            (Matcher::Exact(expected), Fold::Email) => expected.eq_ignore_ascii_case(value.trim()),
            (Matcher::Exact(expected), Fold::Name) => parameterize(expected) == parameterize(value),
            (Matcher::Glob(glob), Fold::None) => glob.is_match(value),
            (Matcher::Glob(glob), Fold::Email) => glob.is_match(value.trim()),
            (Matcher::Glob(glob), Fold::Name) => {
                // As written, and parameterized with `-` or with spaces between the words.
                let spaced = value.split_whitespace().collect::<Vec<_>>().join(" ");
                let slug = parameterize(value);
                glob.is_match(&spaced)
                    || glob.is_match(&slug)
                    || glob.is_match(slug.replace('-', " "))
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Pattern {
    source: String,
    negated: bool,
    matcher: Matcher,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid pattern {pattern:?}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    pub reason: String,
}

impl Pattern {
    fn parse(source: &str, fold: Fold) -> Result<Self, PatternError> {
        let (negated, body) = match source.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, source),
        };
        let is_glob = body.contains(['*', '?', '[', '{']);
        let matcher = if is_glob {
            // Label values are not paths: `*` must cross `/` too (generatorURL-like values, groups).
            let glob = globset::GlobBuilder::new(body)
                .literal_separator(false)
                .case_insensitive(fold != Fold::None)
                .build()
                .map_err(|e: globset::Error| PatternError {
                    pattern: source.to_owned(),
                    reason: e.kind().to_string(),
                })?;
            Matcher::Glob(Glob::compile_matcher(&glob))
        } else {
            Matcher::Exact(body.to_owned())
        };
        Ok(Self {
            source: source.to_owned(),
            negated,
            matcher,
        })
    }
}

/// One or more patterns for one label, as written in a rule's `match` table.
#[derive(Debug, Clone)]
pub struct PatternSet {
    patterns: Vec<Pattern>,
    fold: Fold,
}

impl PatternSet {
    /// Patterns compared exactly.
    pub fn parse<S: AsRef<str>>(sources: &[S]) -> Result<Self, PatternError> {
        Self::parse_folded(sources, Fold::None)
    }

    /// Patterns for the label `name`, compared as that label's values are ([`Fold`]).
    pub fn for_label<S: AsRef<str>>(name: &str, sources: &[S]) -> Result<Self, PatternError> {
        Self::parse_folded(sources, Fold::for_label(name))
    }

    fn parse_folded<S: AsRef<str>>(sources: &[S], fold: Fold) -> Result<Self, PatternError> {
        if sources.is_empty() {
            return Err(PatternError {
                pattern: String::new(),
                reason: "an empty list matches nothing; remove the key or give a pattern".into(),
            });
        }
        let patterns = sources
            .iter()
            .map(|s| Pattern::parse(s.as_ref(), fold))
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns, fold })
    }

    /// An absent label is the empty string, as in Prometheus matchers.
    pub fn is_match(&self, value: &str) -> bool {
        let mut positives = self.patterns.iter().filter(|p| !p.negated).peekable();
        let positive_ok =
            positives.peek().is_none() || positives.any(|p| p.matcher.is_match(self.fold, value));
        let negative_hit = self
            .patterns
            .iter()
            .filter(|p| p.negated)
            .any(|p| p.matcher.is_match(self.fold, value));
        positive_ok && !negative_hit
    }
}

impl fmt::Display for PatternSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.patterns.as_slice() {
            [one] => write!(f, "{:?}", one.source),
            many => {
                let sources: Vec<_> = many.iter().map(|p| format!("{:?}", p.source)).collect();
                write!(f, "[{}]", sources.join(", "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(sources: &[&str]) -> PatternSet {
        PatternSet::parse(sources).unwrap()
    }

    #[test]
    fn matching_table() {
        let cases: &[(&[&str], &str, bool, &str)] = &[
            (&["staging"], "staging", true, "exact match"),
            (&["staging"], "staging-2", false, "exact is not a prefix"),
            (&["stag*"], "staging", true, "glob star"),
            (
                &["*@alphagov.co.uk"],
                "a/b@alphagov.co.uk",
                true,
                "star crosses slashes",
            ),
            (
                &["!staging"],
                "production",
                true,
                "negation of another value",
            ),
            (&["!staging"], "staging", false, "negation of the value"),
            (&["!staging"], "", true, "negation matches an absent label"),
            (&["a", "b"], "b", true, "any of a list"),
            (
                &["trade-*", "!trade-x"],
                "trade-x",
                false,
                "negation excludes",
            ),
            (
                &["trade-*", "!trade-x"],
                "trade-y",
                true,
                "positive still applies",
            ),
            (&["*@{a.uk,b.uk}"], "me@b.uk", true, "alternation"),
        ];
        for (sources, value, expected, why) in cases {
            assert_eq!(set(sources).is_match(value), *expected, "{why}");
        }
    }

    #[test]
    fn a_broken_glob_is_an_error_naming_it() {
        let err = PatternSet::parse(&["[abc"]).unwrap_err();
        assert!(err.to_string().contains("\"[abc\""), "{err}");
    }

    #[test]
    fn api_users_and_applications_match_in_every_spelling_of_one_target() {
        let user =
            PatternSet::for_label("api_user", &["signon+permissions@alphagov.co.uk"]).unwrap();
        assert!(user.is_match("Signon+Permissions@AlphaGov.co.uk"));
        assert!(!user.is_match("signon+permissionz@alphagov.co.uk"));
        let apps = PatternSet::for_label("application", &["Trade Tariff Admin"]).unwrap();
        for spelling in [
            "Trade Tariff Admin ",
            "trade-tariff-admin",
            "trade tariff  admin",
        ] {
            assert!(apps.is_match(spelling), "{spelling:?}");
        }
        assert!(!apps.is_match("Trade Tariff Backend"));
        let glob = PatternSet::for_label("application", &["Trade Tariff*", "!*frontend"]).unwrap();
        assert!(glob.is_match("trade-tariff-backend"));
        assert!(glob.is_match("TRADE TARIFF Admin"));
        assert!(!glob.is_match("Trade Tariff Frontend"));
        // Other labels stay exact.
        let severity = PatternSet::for_label("severity", &["warning"]).unwrap();
        assert!(!severity.is_match("Warning"));
    }
}
