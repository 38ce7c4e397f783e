//! Every relative link in the documentation reaches a file of the repository, and every
//! anchor (`#section`, `file.md#section`) a heading of its document. No network: links to
//! other sites are not followed.

use super::markdown::{anchors, links};
use super::{markdown_files, read, root};

#[test]
fn every_relative_link_and_anchor_in_the_documentation_resolves() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = read(&file.to_string_lossy());
        let dir = file.parent().unwrap();
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") || target.is_empty() {
                continue;
            }
            let (path, anchor) = match target.split_once('#') {
                Some((path, anchor)) => (path, Some(anchor)),
                None => (target.as_str(), None),
            };
            let resolved = if path.is_empty() {
                file.clone()
            } else {
                dir.join(path)
            };
            let on_disk = root().join(&resolved);
            if !on_disk.exists() {
                broken.push(format!("{}:{line}: {target}: no such file", file.display()));
                continue;
            }
            let Some(anchor) = anchor else { continue };
            if on_disk.extension().is_none_or(|e| e != "md") {
                continue;
            }
            let headings = anchors(&std::fs::read_to_string(&on_disk).unwrap());
            if !headings.iter().any(|h| h == anchor) {
                broken.push(format!(
                    "{}:{line}: {target}: no heading with that anchor (there are: {})",
                    file.display(),
                    headings.join(", ")
                ));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
