//! A tmpfs of a test's own, to fill: small, mounted where the journal's files go, unmounted when
//! dropped. Mounting needs root: [`Tmpfs::mount`] says so and returns `None` where it cannot.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of its own, unmounted (and its mount point removed) when dropped.
pub struct Tmpfs {
    point: tempfile::TempDir,
}

impl Tmpfs {
    /// `size` as mount(8) takes it ("8m"); only root may enter it.
    pub fn mount(size: &str) -> Option<Self> {
        Self::mount_with(&format!("size={size},mode=0700"))
    }

    /// The same, but any user may enter it (a server running as another user keeps its files in
    /// a directory of its own there).
    pub fn mount_open(size: &str) -> Option<Self> {
        Self::mount_with(&format!("size={size},mode=0755"))
    }

    fn mount_with(options: &str) -> Option<Self> {
        let point = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(point.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Self { point }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs to fill (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.point.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Writes until the filesystem refuses (ENOSPC): the disk is full.
    pub fn fill(&self) {
        let mut file = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            if let Err(e) = file.write_all(&chunk).and_then(|()| file.sync_all()) {
                assert_eq!(e.raw_os_error(), Some(28), "ENOSPC, not {e}");
                return;
            }
        }
    }

    pub fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: whatever still holds a file there lets go when it ends.
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}
