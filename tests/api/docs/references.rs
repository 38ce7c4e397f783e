//! Nothing the repository holds points at a tracker's entries or at files it does not hold:
//! no tracker number ("issue" and digits) anywhere, no `#` and digits in a document, no `../shared` or `reference/*.md` path
//! (notes kept beside the repository while it was written, which a reader of it cannot open).

use super::{markdown_files, read, root, walk};

/// Text files a reader meets: documents, code and its comments, scripts and manifests.
fn text_files() -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    walk(root(), &mut out, &|p| {
        p.extension().is_some_and(|e| {
            matches!(
                e.to_str().unwrap_or(""),
                "md" | "rs" | "sh" | "lua" | "rb" | "py" | "toml" | "yaml" | "yml" | "json" | "sql"
            )
        }) || p
            .parent()
            .and_then(|d| d.file_name())
            .is_some_and(|d| d == ".ci")
    });
    // Recorded upstream payloads and generated data are quoted, not written. A migration is
    // never edited once shipped: sqlx refuses a journal whose applied migration's checksum
    // changed, so an old comment in one stays.
    out.retain(|p| {
        let data = p
            .extension()
            .is_some_and(|e| !matches!(e.to_str().unwrap_or(""), "rb" | "sh" | "py" | "md"));
        let skipped = (p.starts_with("fixtures") && data)
            || p.starts_with("tests/browser")
            || p.starts_with("migrations")
            || p == "Cargo.lock";
        !skipped
    });
    out
}

/// "issue", "Issue #" or "issues" followed by digits.
fn issue_number(line: &str) -> bool {
    let lower = line.to_lowercase();
    lower.match_indices("issue").any(|(at, _)| {
        let rest = lower[at + 5..].trim_start_matches('s');
        let rest = rest.trim_start_matches([' ', '#']);
        rest.starts_with(|c: char| c.is_ascii_digit())
    })
}

/// `#` and digits in running text (a heading's `#` is followed by a space; a colour `#d4351c` has letters).
fn hash_number(line: &str) -> bool {
    line.match_indices('#').any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let digits: String = line[at + 1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '&' || c == '/')
            && !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
    })
}

fn outside_path(line: &str) -> bool {
    line.contains("../shared")
        || line.contains("/work/")
        || line.match_indices("reference/").any(|(at, _)| {
            let name: String = line[at + 10..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect();
            name.ends_with(".md")
        })
}

#[test]
fn the_detectors_catch_what_they_are_for() {
    assert!(issue_number(&format!("fixed in {} 12", "issue")));
    assert!(issue_number("see Issue #7."));
    assert!(!issue_number("the issuer 12"));
    assert!(!issue_number("issues a token"));
    assert!(hash_number("as asked in #42"));
    assert!(!hash_number("## Heading 2"));
    assert!(!hash_number("border-left-color:#d4351c"));
    assert!(!hash_number("a fragment: page.html#section-2b"));
    assert!(outside_path("see ../shared/reference/signon.md"));
    assert!(outside_path("(`reference/signon.md` §2.5)"));
    assert!(!outside_path("docs/reference/ of Kubernetes' API"));
}

#[test]
fn no_file_names_a_tracker_entry_or_a_file_outside_the_repository() {
    let mut found = Vec::new();
    for file in text_files() {
        let Ok(text) = std::fs::read_to_string(root().join(&file)) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            if issue_number(line) || outside_path(line) {
                found.push(format!("{}:{}: {}", file.display(), i + 1, line.trim()));
            }
        }
    }
    // This file spells the patterns out to test its own detectors.
    found.retain(|f| !f.starts_with("tests/api/docs/references.rs"));
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn no_document_names_an_entry_by_number() {
    let mut found = Vec::new();
    for file in markdown_files() {
        let text = read(&file.to_string_lossy());
        for (number, line) in super::markdown::prose(&text) {
            if hash_number(&super::markdown::without_code(line)) {
                found.push(format!("{}:{number}: {}", file.display(), line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}
