//! Small secret files in the state dir (the session key, the password hash, API token hashes):
//! written atomically and readable by their owner only.

use std::io;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::time::SystemTime;

/// The file's bytes, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the file (temp file, fsync, rename) with mode 0600.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    super::write_atomic_mode(path, bytes, 0o600)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

/// Creates the file with `bytes` (mode 0600) only if it does not exist yet, atomically even on
/// NFS (a temp file hard-linked into place): `false` when another process, possibly another
/// replica sharing the state dir, created it first.
pub(crate) fn create_new(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = super::write_temp(path, bytes, 0o600)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// A value parsed from a small state file, parsed again whenever the file is rewritten (by this
/// process, by `spis token`, or by another replica sharing the state dir): one stat per use.
#[derive(Debug, Default)]
pub(crate) struct Reloaded<T> {
    version: Option<(Option<SystemTime>, u64)>,
    value: T,
}

impl<T> Reloaded<T> {
    /// The value for the file as it is now; `parse` runs only when it changed.
    pub(crate) fn get(&mut self, path: &Path, parse: impl FnOnce(&Path) -> T) -> &T {
        // Modified time and inode: a rewrite (temp file renamed over) is always noticed.
        let now = version(path);
        if now != self.version {
            self.value = parse(path);
            self.version = now;
        }
        &self.value
    }
}

/// What changes when the file is rewritten (mtime and inode), for caches of its content.
pub(crate) fn version(path: &Path) -> Option<(Option<SystemTime>, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.modified().ok(), m.ino()))
}

/// The names of the files in a state dir folder (none when it does not exist).
pub(crate) fn names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut names = Vec::new();
    for entry in entries {
        if let Ok(name) = entry?.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes the file, durably (the folder is synced): `false` when it was not there.
pub(crate) fn remove(path: &Path) -> io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Appends `bytes` to the file (made with mode 0600) while it is shorter than `max`: appends from
/// several processes never overwrite each other (O_APPEND). Not synced: for counters.
pub(crate) fn append_below(path: &Path, bytes: &[u8], max: u64) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if size(path) >= max {
        return Ok(());
    }
    std::fs::OpenOptions::new().append(true).create(true).mode(0o600).open(path)?.write_all(bytes)
}

/// The file's length, 0 when it does not exist.
pub(crate) fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}
