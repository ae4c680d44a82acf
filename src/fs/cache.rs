//! The rendition cache on disk: encoded thumbnails and previews under `<state dir>/cache`.
//!
//! Keys are made by spis (id, content version, rendition, pipeline version), never by a client,
//! and each entry is written to a temp file and renamed into place, so a reader (another thread,
//! or another replica sharing the state dir) sees a whole file or none. The rule: it is only a
//! cache; anything may be deleted at any time and costs only time.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct DiskCache {
    dir: PathBuf,
}

impl DiskCache {
    pub fn try_new(dir: PathBuf) -> io::Result<DiskCache> {
        std::fs::create_dir_all(&dir)?;
        Ok(DiskCache { dir })
    }

    /// Entries are spread over 64 folders by the first character of the key (an id), so no folder
    /// grows to hundreds of thousands of files.
    fn path(&self, key: &str) -> PathBuf {
        // SECURITY: keys are built by spis from base64url ids and constants; anything else would
        // be a bug, and must never become a path outside the cache.
        assert!(
            !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
            "invalid cache key {key:?}"
        );
        self.dir.join(&key[..1]).join(key)
    }

    /// The cached bytes, or `None` when the entry does not exist.
    pub fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(key)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.path(key).is_file()
    }

    /// Stores an entry whole: temp file, then rename. No fsync: a cache entry lost in a crash is
    /// simply made again, and fsyncing every thumbnail would wear out an SD card.
    pub fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(key);
        let dir = path.parent().expect("entries live in a shard folder");
        std::fs::create_dir_all(dir)?;
        let tmp = super::temp_name(&path);
        if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, &path)) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(())
    }

    /// Removes every entry for which `keep` says no, and leftover temp files; returns how many.
    pub fn sweep(&self, keep: &dyn Fn(&str) -> bool) -> io::Result<u64> {
        let mut removed = 0;
        for shard in std::fs::read_dir(&self.dir)? {
            let shard = shard?.path();
            if !shard.is_dir() {
                continue;
            }
            for entry in std::fs::read_dir(&shard)?.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') || !keep(&name) {
                    remove_quietly(&entry.path(), &mut removed);
                }
            }
        }
        Ok(removed)
    }
}

fn remove_quietly(path: &Path, removed: &mut u64) {
    if std::fs::remove_file(path).is_ok() {
        *removed += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_sweep_removes_what_is_not_kept() {
        let dir = std::env::temp_dir().join(format!("spis-cache-test-{}", std::process::id()));
        let cache = DiskCache::try_new(dir.clone()).unwrap();
        assert_eq!(cache.get("abc-1-thumb").unwrap(), None);
        cache.put("abc-1-thumb", b"jpeg").unwrap();
        cache.put("xyz-1-thumb", b"jpeg2").unwrap();
        assert_eq!(cache.get("abc-1-thumb").unwrap().as_deref(), Some(&b"jpeg"[..]));
        assert!(cache.contains("xyz-1-thumb"));
        assert_eq!(cache.sweep(&|k| k.starts_with("abc")).unwrap(), 1);
        assert!(!cache.contains("xyz-1-thumb") && cache.contains("abc-1-thumb"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    #[should_panic(expected = "invalid cache key")]
    fn a_key_that_could_escape_the_cache_is_refused() {
        let cache = DiskCache { dir: PathBuf::from("/nonexistent") };
        let _ = cache.get("../../etc/passwd");
    }
}
