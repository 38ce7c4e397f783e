//! `docs/configuration.md` names every key the parser accepts, and no other.
//!
//! The accepted keys are asked of the real parser: every table of the configuration is
//! `deny_unknown_fields`, so a probe key placed in a table is refused with the list of the keys
//! that table takes ("unknown field `__probe`, expected one of `a`, `b`"). Each key found is then
//! probed in turn, as a table, an array of tables and a map of tables, until only plain values
//! are left; a new key or table in `src/config/` is found without this test changing.

use std::collections::BTreeSet;

use token_rotator::config::Config;

use super::markdown::{code_span, fences, tables};
use super::{markdown_files, read};

const PROBE: &str = "__probe";

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    /// An element of an array of tables.
    Item,
    /// A value of a map keyed by a name of the operator's choosing.
    Entry,
}

/// `signon.job.image`, `rules[].match`, `environments.<name>.mode`.
fn spell(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Item => out.push_str("[]"),
            Step::Entry => out.push_str(".<name>"),
        }
    }
    out
}

/// A document holding `leaf` at `path`, written inline.
fn document(path: &[Step], leaf: &str) -> String {
    fn inline(path: &[Step], leaf: &str) -> String {
        match path.split_first() {
            None => leaf.to_owned(),
            Some((Step::Key(key), rest)) => format!("{{ {key} = {} }}", inline(rest, leaf)),
            Some((Step::Item, rest)) => format!("[ {} ]", inline(rest, leaf)),
            Some((Step::Entry, rest)) => format!("{{ x = {} }}", inline(rest, leaf)),
        }
    }
    match path.split_first() {
        None => format!("{PROBE} = 1\n"),
        Some((Step::Key(key), rest)) => format!("{key} = {}\n", inline(rest, leaf)),
        Some(_) => unreachable!("the document is a table"),
    }
}

/// The keys of the table at `path`, if the parser takes a table there.
fn keys_of_table(path: &[Step]) -> Option<Vec<String>> {
    let text = document(path, &format!("{{ {PROBE} = 1 }}"));
    let errors = match Config::from_toml(&text) {
        Ok(_) => panic!("the probe key was accepted in `{}`", spell(path)),
        Err(errors) => errors.render(&text),
    };
    let refused = format!("unknown field `{PROBE}`, ");
    let listed = &errors[errors.find(&refused)? + refused.len()..];
    let listed = listed.lines().next().unwrap_or_default();
    if listed.starts_with("there are no fields") {
        return Some(Vec::new());
    }
    Some(
        listed
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

/// Every key the parser accepts that holds a value rather than a table of further keys (a map
/// of plain values, such as `owners`, counts as a value: its keys are the operator's).
fn accepted_keys() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut tables = vec![Vec::new()];
    while let Some(table) = tables.pop() {
        let keys = keys_of_table(&table)
            .unwrap_or_else(|| panic!("`{}` is not a table after all", spell(&table)));
        for key in keys {
            let mut path = table.clone();
            path.push(Step::Key(key));
            let shapes = [vec![], vec![Step::Item], vec![Step::Entry]];
            match shapes.into_iter().find_map(|shape| {
                let mut nested = path.clone();
                nested.extend(shape);
                keys_of_table(&nested).map(|_| nested)
            }) {
                Some(nested) => tables.push(nested),
                None => {
                    found.insert(spell(&path));
                }
            }
        }
    }
    found
}

/// The keys `docs/configuration.md` documents: the first cell of every row of a table whose
/// header's first cell is "key".
fn documented_keys(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for table in tables(text) {
        if table.header.first().map(String::as_str) != Some("key") {
            continue;
        }
        for (line, cells) in table.rows {
            let key = code_span(&cells[0]).unwrap_or_else(|| {
                panic!(
                    "docs/configuration.md:{line}: a key is one code span: {}",
                    cells[0]
                )
            });
            assert!(
                out.insert(key.to_owned()),
                "docs/configuration.md:{line}: `{key}` is documented twice"
            );
        }
    }
    out
}

#[test]
fn the_configuration_reference_names_every_key_the_parser_accepts_and_no_other() {
    let accepted = accepted_keys();
    // The discovery itself: a few keys known to be there, at each kind of nesting.
    for known in [
        "listen",
        "signon.job.image",
        "rules[].match",
        "environments.<name>.mode",
        "schedules[].file.path",
        "owners",
    ] {
        assert!(
            accepted.contains(known),
            "{known} not found in {accepted:#?}"
        );
    }
    let documented = documented_keys(&read("docs/configuration.md"));
    let missing: Vec<_> = accepted.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&accepted).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/configuration.md's key tables disagree with the parser:\n\
         accepted but not documented: {missing:?}\n\
         documented but refused: {unknown:?}"
    );
}

#[test]
fn every_example_in_the_configuration_reference_is_accepted_by_the_parser() {
    let text = read("docs/configuration.md");
    let examples: Vec<_> = fences(&text)
        .into_iter()
        .filter(|f| f.lang == "toml")
        .collect();
    assert!(examples.len() >= 3, "{} examples", examples.len());
    for fence in examples {
        if let Err(errors) = Config::from_toml(&fence.body) {
            panic!(
                "docs/configuration.md:{}: the example is refused:\n{}",
                fence.line,
                errors.render(&fence.body)
            );
        }
    }
}

/// Every key a TOML example anywhere in the documentation sets, as `spell` writes it.
fn keys_set(value: &toml::Value, path: &mut Vec<Step>, accepted: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table {
                // A map keyed by the operator's names: `environments.production`.
                let entry = {
                    let mut p = path.clone();
                    p.push(Step::Entry);
                    accepted
                        .iter()
                        .any(|k| k.starts_with(&format!("{}.", spell(&p))))
                };
                path.push(if entry {
                    Step::Entry
                } else {
                    Step::Key(key.clone())
                });
                if accepted.contains(&spell(path)) || !inner.is_table() && !inner.is_array() {
                    out.push(spell(path));
                } else {
                    out.extend(keys_set(inner, path, accepted));
                }
                path.pop();
            }
        }
        toml::Value::Array(items) => {
            path.push(Step::Item);
            for item in items {
                out.extend(keys_set(item, path, accepted));
            }
            path.pop();
        }
        _ => out.push(spell(path)),
    }
    out
}

#[test]
fn no_toml_example_in_any_document_sets_a_key_the_parser_refuses() {
    let accepted = accepted_keys();
    for file in markdown_files() {
        let text = read(&file.to_string_lossy());
        for fence in fences(&text).into_iter().filter(|f| f.lang == "toml") {
            let value: toml::Value = toml::from_str(&fence.body)
                .unwrap_or_else(|e| panic!("{}:{}: not TOML: {e}", file.display(), fence.line));
            for key in keys_set(&value, &mut Vec::new(), &accepted) {
                assert!(
                    accepted.contains(&key),
                    "{}:{}: `{key}` is not a key the parser accepts",
                    file.display(),
                    fence.line
                );
            }
        }
    }
}
