//! A token file for an application that reads its token from disk: written whole or not at all
//! (a temporary file, fsync, rename over, fsync of the directory), mode 0600, an optional
//! owner; the previous content kept as `<file>.previous` until the old token is gone.
//!
//! A crash at any point leaves the file with either the old or the new content, never a torn
//! one: the rename is the only moment the file changes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};

use super::{AdapterError, Distributor, Permit, Placement, TokenListing};

const UPSTREAM: &str = "file";

#[derive(Debug, Clone)]
pub struct FileDistributor {
    path: PathBuf,
    mode: u32,
    /// `(uid, gid)` to give the file (needs the privilege to chown).
    owner: Option<(u32, u32)>,
}

fn failed(what: &str, path: &Path, e: std::io::Error) -> AdapterError {
    // A full disk or a missing directory does not fix itself; say which and where.
    AdapterError::permanent(UPSTREAM, format!("{what} {}: {e}", path.display()))
}

impl FileDistributor {
    pub fn new(path: impl Into<PathBuf>, mode: u32, owner: Option<(u32, u32)>) -> Self {
        Self {
            path: path.into(),
            mode,
            owner,
        }
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.path.with_file_name(name)
    }

    /// Step one: the new content in a temporary file beside the target, synced. Until
    /// [`FileDistributor::commit`] the target is untouched.
    pub fn prepare(&self, value: &str) -> Result<PathBuf, AdapterError> {
        let temp = self.sibling(".token-rotator-tmp");
        let _ = fs::remove_file(&temp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(self.mode)
            .open(&temp)
            .map_err(|e| failed("create", &temp, e))?;
        file.write_all(value.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| failed("write", &temp, e))?;
        fs::set_permissions(&temp, fs::Permissions::from_mode(self.mode))
            .map_err(|e| failed("chmod", &temp, e))?;
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(&temp, Some(uid), Some(gid))
                .map_err(|e| failed("chown", &temp, e))?;
        }
        Ok(temp)
    }

    /// Step two: keep the current content as `.previous`, rename the temporary file over the
    /// target, and sync the directory so the rename survives a power cut.
    pub fn commit(&self, temp: &Path) -> Result<(), AdapterError> {
        if self.path.exists() {
            let previous = self.sibling(".previous");
            let keep = self.sibling(".previous.token-rotator-tmp");
            fs::copy(&self.path, &keep).map_err(|e| failed("copy", &self.path, e))?;
            fs::set_permissions(&keep, fs::Permissions::from_mode(self.mode))
                .map_err(|e| failed("chmod", &keep, e))?;
            fs::rename(&keep, &previous).map_err(|e| failed("rename", &previous, e))?;
        }
        fs::rename(temp, &self.path).map_err(|e| failed("rename", &self.path, e))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| failed("sync", dir, e))
    }
}

#[async_trait]
impl Distributor for FileDistributor {
    fn upstream(&self) -> &'static str {
        UPSTREAM
    }

    fn describe(&self, placement: &Placement) -> String {
        format!("file `{}`", placement.name)
    }

    fn plan(&self, placement: &Placement) -> String {
        format!(
            "write file {} (mode {:o}, atomic replace, the previous content kept until the old token is gone) and read it back",
            placement.name, self.mode
        )
    }

    fn placed_how(&self) -> &'static str {
        "was written (atomic replace)"
    }

    fn placement(&self, _listing: &TokenListing) -> Placement {
        Placement {
            name: self.path.display().to_string(),
        }
    }

    async fn read(&self, _placement: &Placement) -> Result<Option<SecretString>, AdapterError> {
        match fs::read_to_string(&self.path) {
            Ok(text) => Ok(Some(SecretString::from(text))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(failed("read", &self.path, e)),
        }
    }

    async fn place(
        &self,
        _permit: &Permit,
        _placement: &Placement,
        value: Option<&SecretString>,
        _rotation_id: &str,
    ) -> Result<(), AdapterError> {
        let value = value.ok_or_else(|| {
            AdapterError::permanent(UPSTREAM, "a token file is written from the token itself")
        })?;
        let temp = self.prepare(value.expose_secret())?;
        self.commit(&temp)
    }

    async fn settle(&self, _placement: &Placement) -> Result<(), AdapterError> {
        match fs::remove_file(self.sibling(".previous")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(failed("remove", &self.sibling(".previous"), e))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_keeps_the_previous_content_and_mode_0600_until_settled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let file = FileDistributor::new(&path, 0o600, None);
        fs::write(&path, "old").unwrap();
        let temp = file.prepare("new").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "old",
            "untouched until the rename"
        );
        file.commit(&temp).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(
            fs::read_to_string(dir.path().join("token.previous")).unwrap(),
            "old"
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let placement = Placement {
            name: path.display().to_string(),
        };
        rt.block_on(file.settle(&placement)).unwrap();
        assert!(!dir.path().join("token.previous").exists());
    }
}
