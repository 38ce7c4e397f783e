//! The SQLite journal's files are the owner's alone (0600): they hold targets, audit trails and
//! sealed tokens, and SQLite creates them with 0644 under the usual umask. SQLite gives its `-wal`
//! and `-shm` files the database file's own mode (sqlite3.c `findCreateFileMode`), so creating
//! the database file 0600 first is enough for new journals; a journal made before, or files a
//! restore left wider, are narrowed at every open.

use std::io;
use std::path::{Path, PathBuf};

/// The journal's files: the database, then its write-ahead log and shared-memory index.
fn journal_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// Creates the database file 0600 if it is missing, and narrows every journal file that exists to
/// 0600. Call before SQLite opens it (so the files it creates take the mode) and after.
#[cfg(unix)]
pub(super) fn owner_only(db: &Path) -> io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    // Not `create_new`: another process (the service beside an admin command) may create it too.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(db)?;
    for file in journal_files(db) {
        match std::fs::metadata(&file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub(super) fn owner_only(_db: &Path) -> io::Result<()> {
    Ok(())
}
