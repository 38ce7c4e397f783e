//! The documentation is checked against the code it describes: every config key the parser
//! accepts (and no other), every metric family, every Slack method's scope in the app manifest,
//! links and anchors that resolve, and no reference to a tracker or to files outside the
//! repository. The picture of a Slack thread is rendered from the messages a rotation sends.

mod block_kit;
mod config_keys;
mod links;
mod markdown;
mod metrics;
mod readme;
mod references;
mod slack_scopes;
mod slack_thread;

use std::path::{Path, PathBuf};

/// The repository's root.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every Markdown file of the repository (not `target/` or `node_modules/`), relative to it.
fn markdown_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(root(), &mut out, &|p| {
        p.extension().is_some_and(|e| e == "md")
    });
    out
}

/// Every file under `dir` that `keep` accepts, relative to the root; build output, installed
/// packages and version control skipped.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, keep: &dyn Fn(&Path) -> bool) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !matches!(name.as_ref(), "target" | "node_modules" | ".git") {
                walk(&path, out, keep);
            }
        } else if keep(&path) {
            out.push(path.strip_prefix(root()).unwrap().to_path_buf());
        }
    }
}
