//! The module graph, read from the source: which modules may not import each other, and the
//! layer order `docs/ARCHITECTURE.md` writes, which every import must follow down. A cycle
//! between two modules means neither can be understood, tested or replaced alone; the engine in
//! particular drives providers through traits and must not be imported back by them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The node a source file belongs to: `engine/steps`, `store/rotations`, or a top-level module.
fn node_of(relative: &Path) -> String {
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    match parts.as_slice() {
        [top, sub, ..] if top == "engine" || top == "store" => format!("{top}/{sub}"),
        [top, ..] => top.clone(),
        [] => "lib".into(),
    }
}

/// The node a path like `["engine", "steps"]` names, if it is one of ours.
fn resolve(src: &Path, path: &[&str]) -> Option<String> {
    let top = *path.first()?;
    let exists = |p: &Path| p.with_extension("rs").exists() || p.is_dir();
    if !exists(&src.join(top)) {
        return None;
    }
    match path.get(1) {
        Some(sub) if (top == "engine" || top == "store") && exists(&src.join(top).join(sub)) => {
            Some(format!("{top}/{sub}"))
        }
        _ => Some(top.to_owned()),
    }
}

/// Which node imports which, from `crate::a::b` and `super::b` paths outside tests and comments.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap();
            let from = node_of(relative);
            let text = std::fs::read_to_string(&path).unwrap();
            // A module's own tests may reach anywhere; comments point, they do not import.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let mut module: Vec<&str> = relative
                .iter()
                .map(|p| p.to_str().unwrap().trim_end_matches(".rs"))
                .collect();
            if module.last() == Some(&"mod") {
                module.pop();
            }
            // One text without comment lines, so a `use a::{…}` group over several lines is seen.
            let code: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            for to in targets(&src, &module, &code.join("\n")) {
                if to != from {
                    edges.entry(from.clone()).or_default().insert(to);
                }
            }
        }
    }
    edges
}

/// The leading identifier of `text` (lower case: a module's name), if any.
fn ident(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The nodes `text`'s `crate::…` and `super::…` paths name, groups (`super::{a, b::c}`, nested,
/// over several lines) included; `module` is the text's own.
fn targets(src: &Path, module: &[&str], text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for prefix in ["crate::", "super::"] {
        for (at, _) in text.match_indices(prefix) {
            // `super::` is relative to the parent of the file's module.
            let path: Vec<&str> = if prefix == "crate::" {
                Vec::new()
            } else {
                module[..module.len().saturating_sub(1)].to_vec()
            };
            follow(src, path, &text[at + prefix.len()..], &mut found);
        }
    }
    found
}

/// Extends `path` by the segments `rest` starts with, and records the node each path ends in.
fn follow<'t>(src: &Path, mut path: Vec<&'t str>, rest: &'t str, found: &mut Vec<String>) {
    let mut rest = rest.trim_start();
    loop {
        if let Some(group) = rest.strip_prefix('{') {
            let Some(end) = closing(group) else { break };
            for item in split_top(&group[..end]) {
                follow(src, path.clone(), item, found);
            }
            return;
        }
        match ident(rest) {
            "" => break,
            "super" => {
                path.pop();
            }
            "self" => {}
            name => path.push(name),
        }
        let after = &rest[ident(rest).len()..];
        match after.strip_prefix("::") {
            Some(next) if path.len() < 3 => rest = next.trim_start(),
            _ => break,
        }
    }
    found.extend(resolve(src, &path));
}

/// Where the group opened just before `text` closes.
fn closing(text: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// A group's items, split at its own commas (not those of nested groups).
fn split_top(text: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
        .into_iter()
        .map(str::trim)
        .filter(|i| !i.is_empty())
        .collect()
}

/// Whether `to` reaches `from` (so `from → to` closes a cycle), among `within`.
fn reaches(
    edges: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    goal: &str,
    within: &dyn Fn(&str) -> bool,
) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo = vec![start.to_owned()];
    while let Some(node) = todo.pop() {
        if node == goal {
            return true;
        }
        if !seen.insert(node.clone()) {
            continue;
        }
        for next in edges.get(&node).into_iter().flatten() {
            if within(next) {
                todo.push(next.clone());
            }
        }
    }
    false
}

/// Cycles among the nodes `within` admits, as `a → b` edges that close one.
fn cycles(within: &dyn Fn(&str) -> bool) -> Vec<String> {
    let edges = graph();
    let mut found = Vec::new();
    for (from, tos) in &edges {
        for to in tos.iter().filter(|_| within(from)) {
            if within(to) && reaches(&edges, to, from, within) {
                found.push(format!("{from} → {to}"));
            }
        }
    }
    found
}

#[test]
fn the_graph_is_read_from_the_source() {
    // The reader must see what is plainly there, or the tests below prove nothing.
    let edges = graph();
    assert!(edges["engine/steps"].contains("engine/row"), "{edges:?}");
    assert!(edges["engine/distribute"].contains("adapters"), "{edges:?}");
    assert!(edges["config"].contains("engine"), "{edges:?}");
    // Only through a group: `use super::{StoreError, thread_key};`.
    assert!(
        edges["store/rotations"].contains("store/thread_key"),
        "{edges:?}"
    );
}

#[test]
fn the_engines_phase_modules_do_not_import_each_other_in_a_circle() {
    let found = cycles(&|n| n.starts_with("engine/"));
    assert!(found.is_empty(), "cycles inside the engine: {found:?}");
}

#[test]
fn the_stores_modules_do_not_import_each_other_in_a_circle() {
    let found = cycles(&|n| n.starts_with("store/"));
    assert!(found.is_empty(), "cycles inside the store: {found:?}");
}

/// The layer order `docs/ARCHITECTURE.md` writes in its `layers` block: each row's modules, top
/// row first.
fn layers() -> Vec<Vec<String>> {
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md");
    let text = std::fs::read_to_string(doc).unwrap();
    let block = text
        .split("```layers\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/ARCHITECTURE.md has a ```layers block");
    block
        .lines()
        .map(|row| row.split_whitespace().map(str::to_owned).collect())
        .filter(|row: &Vec<String>| !row.is_empty())
        .collect()
}

/// The imports among top-level modules that point up `layers` (`from → to: rows`), and the
/// modules the order leaves out.
fn upward(
    edges: &BTreeMap<String, BTreeSet<String>>,
    layers: &[Vec<String>],
) -> (Vec<String>, BTreeSet<String>) {
    let top = |n: &str| n.split('/').next().unwrap().to_owned();
    let row = |m: &str| layers.iter().position(|r| r.iter().any(|x| x == m));
    let (mut up, mut missing) = (Vec::new(), BTreeSet::new());
    for (from, tos) in edges {
        for to in tos {
            let (f, t) = (top(from), top(to));
            if f == t || f == "lib" {
                continue;
            }
            match (row(&f), row(&t)) {
                (Some(a), Some(b)) if b < a => up.push(format!("{from} → {to}")),
                (Some(_), Some(_)) => {}
                (a, b) => {
                    if a.is_none() {
                        missing.insert(f.clone());
                    }
                    if b.is_none() {
                        missing.insert(t.clone());
                    }
                }
            }
        }
    }
    (up, missing)
}

#[test]
fn every_import_points_down_the_layers_the_architecture_writes() {
    let (layers, edges) = (layers(), graph());
    assert!(layers.len() > 5, "{layers:?}");
    let (up, missing) = upward(&edges, &layers);
    assert!(
        missing.is_empty(),
        "modules docs/ARCHITECTURE.md's layers leave out: {missing:?}"
    );
    assert!(up.is_empty(), "imports that point up the layers: {up:?}");
}

#[test]
fn an_upward_import_is_caught() {
    // The check itself, on the real order and graph plus one import from the store up into the
    // engine, and one from an adapter up into config: both must be reported.
    let (layers, mut edges) = (layers(), graph());
    edges
        .entry("store/rotations".into())
        .or_default()
        .insert("engine/steps".into());
    edges
        .entry("adapters".into())
        .or_default()
        .insert("config".into());
    let (up, _) = upward(&edges, &layers);
    assert!(
        up.contains(&"store/rotations → engine/steps".to_owned()),
        "{up:?}"
    );
    assert!(up.contains(&"adapters → config".to_owned()), "{up:?}");
}

#[test]
fn the_engine_names_no_provider() {
    // Every provider brings its own words through the traits; the engine speaks only of
    // issuers, placements and verifiers. Module docs (`//!`) may point elsewhere.
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine")];
    let mut found = Vec::new();
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files += 1;
                found.extend(provider_words(&path));
            }
        }
    }
    assert!(files > 10, "read {files} files of the engine");
    assert!(
        found.is_empty(),
        "the engine names a provider:\n{}",
        found.join("\n")
    );
}

/// The lines of `path` (module docs aside) that name a provider.
fn provider_words(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let lower = line.to_lowercase();
        let named = ["signon", "synoptic", "gitlab", "gds-sso", "user.json"]
            .iter()
            .any(|word| lower.contains(word));
        if named && !line.trim_start().starts_with("//!") {
            found.push(format!("{}:{}: {line}", path.display(), n + 1));
        }
    }
    found
}
