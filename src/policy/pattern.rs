//! Label value patterns of the rule table: exact, glob (`*`, `?`, `[…]`, `{a,b}`) or negated (`!…`).
//!
//! A list of patterns matches when any positive pattern matches (or there is none) and no negated
//! one does, so `["trade-*", "!trade-tariff-frontend"]` reads as it would in English.

use std::fmt;

use globset::{Glob, GlobMatcher};

#[derive(Debug, Clone)]
enum Matcher {
    Exact(String),
    Glob(GlobMatcher),
}

impl Matcher {
    fn is_match(&self, value: &str) -> bool {
        match self {
            Matcher::Exact(expected) => expected == value,
            Matcher::Glob(glob) => glob.is_match(value),
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
    fn parse(source: &str) -> Result<Self, PatternError> {
        let (negated, body) = match source.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, source),
        };
        let is_glob = body.contains(['*', '?', '[', '{']);
        let matcher = if is_glob {
            // Label values are not paths: `*` must cross `/` too (generatorURL-like values, groups).
            let glob = globset::GlobBuilder::new(body)
                .literal_separator(false)
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
}

impl PatternSet {
    pub fn parse<S: AsRef<str>>(sources: &[S]) -> Result<Self, PatternError> {
        if sources.is_empty() {
            return Err(PatternError {
                pattern: String::new(),
                reason: "an empty list matches nothing; remove the key or give a pattern".into(),
            });
        }
        let patterns = sources
            .iter()
            .map(|s| Pattern::parse(s.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    /// An absent label is the empty string, as in Prometheus matchers.
    pub fn is_match(&self, value: &str) -> bool {
        let mut positives = self.patterns.iter().filter(|p| !p.negated).peekable();
        let positive_ok =
            positives.peek().is_none() || positives.any(|p| p.matcher.is_match(value));
        let negative_hit = self
            .patterns
            .iter()
            .filter(|p| p.negated)
            .any(|p| p.matcher.is_match(value));
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
}
