//! `docs/operations.md` lists every metric family the service registers, and no other.
//!
//! The families are read from the registry's source (every `registry.register…("name"` in
//! `src/telemetry/metrics.rs`, with its unit's suffix), since a family no sample has touched yet
//! is left out of a scrape; where a fresh registry does expose a family, the doc must spell it
//! as a query does (a counter's samples end in `_total`, an info's in `_info`).

use std::collections::{BTreeMap, BTreeSet};

use token_rotator::telemetry::Metrics;

use super::markdown::{code_span, tables};
use super::read;

/// Every family registered in the source: its name as registered (unit suffix added).
fn registered() -> BTreeSet<String> {
    let source = read("src/telemetry/metrics.rs");
    let mut out = BTreeSet::new();
    for (at, _) in source.match_indices("registry.register") {
        let call = &source[at..];
        let args = &call[call.find('(').expect("a call")..];
        let name = args
            .split('"')
            .nth(1)
            .expect("the family's name is the first argument, a string literal");
        let with_unit = call.starts_with("registry.register_with_unit");
        let unit = if with_unit {
            let unit = args.split("Unit::").nth(1).expect("Unit::…");
            let unit: String = unit.chars().take_while(|c| c.is_alphanumeric()).collect();
            format!("_{}", unit.to_lowercase())
        } else {
            String::new()
        };
        out.insert(format!("{name}{unit}"));
    }
    out
}

/// The families a fresh registry exposes, with the name a query uses.
fn exposed() -> BTreeMap<String, String> {
    Metrics::new()
        .render()
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            let queried = match kind {
                "counter" => format!("{name}_total"),
                "info" => format!("{name}_info"),
                _ => name.to_owned(),
            };
            (name.to_owned(), queried)
        })
        .collect()
}

/// The first cell of every row of a table whose header starts with "metric", as written.
fn documented(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for table in tables(text) {
        if table.header.first().map(String::as_str) != Some("metric") {
            continue;
        }
        for (line, cells) in table.rows {
            let name = code_span(&cells[0])
                .unwrap_or_else(|| panic!("docs/operations.md:{line}: not one code span"));
            // `name{label,…}`: the family is what comes before the labels.
            let family = name.split('{').next().unwrap().to_owned();
            assert!(
                out.insert(family.clone()),
                "docs/operations.md:{line}: {family} twice"
            );
        }
    }
    out
}

/// The registered family a documented name is a query of.
fn family_of<'a>(name: &str, registered: &'a BTreeSet<String>) -> Option<&'a String> {
    registered.get(name).or_else(|| {
        ["_total", "_info"]
            .iter()
            .find_map(|suffix| registered.get(name.strip_suffix(suffix)?))
    })
}

#[test]
fn the_operations_guide_lists_every_registered_metric_family_and_no_other() {
    let registered = registered();
    let exposed = exposed();
    // The source reading agrees with the registry wherever the registry shows a family.
    for family in exposed.keys() {
        assert!(
            registered.contains(family),
            "{family} not read from the source"
        );
    }
    assert!(registered.len() >= 25, "{registered:?}");

    let documented = documented(&read("docs/operations.md"));
    let mut covered = BTreeSet::new();
    let mut problems = Vec::new();
    for name in &documented {
        match family_of(name, &registered) {
            None => problems.push(format!("listed but not registered: {name}")),
            Some(family) => {
                if let Some(queried) = exposed.get(family)
                    && queried != name
                {
                    problems.push(format!("listed as {name}, queried as {queried}"));
                }
                covered.insert(family.clone());
            }
        }
    }
    for family in registered.difference(&covered) {
        problems.push(format!("registered but not listed: {family}"));
    }
    assert!(
        problems.is_empty(),
        "docs/operations.md's metric table disagrees with the registry:\n{}",
        problems.join("\n")
    );
}
