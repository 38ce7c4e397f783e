//! `completion` and `man`: both rendered from the clap tree itself, so they cannot drift from
//! what the binary accepts.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::Cli;

/// The completion script for `shell` (bash, zsh, fish, elvish, powershell).
pub fn completion(shell: clap_complete::Shell, out: &mut dyn Write) {
    clap_complete::generate(shell, &mut Cli::command(), "token-rotator", out);
}

/// The top-level manual page, in roff.
pub fn man(out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// token-rotator.1 and one token-rotator-COMMAND.1 per visible command, written into `dir`
/// (created if missing). Returns the files written, sorted.
pub fn man_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(Cli::command(), dir)?;
    let mut written: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("token-rotator") && n.ends_with(".1"))
        })
        .collect();
    written.sort();
    Ok(written)
}
