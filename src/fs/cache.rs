//! The rendition cache on disk: encoded thumbnails and previews under `<state dir>/cache`.
//!
//! Keys are made by spis (id, content version, rendition, pipeline version), never by a client,
//! and each entry is written to a temp file and renamed into place, so a reader (another thread,
//! or another replica sharing the state dir) sees a whole file or none. The rule: it is only a
//! cache; anything may be deleted at any time and costs only time.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub(crate) struct DiskCache {
    dir: PathBuf,
    /// Serializes appends to the thumbhash log.
    log: std::sync::Mutex<()>,
}

/// A thumbhash remembered for one file version: (id, version, hash).
pub(crate) type HashRecord = (u64, u32, Vec<u8>);

impl DiskCache {
    pub(crate) fn try_new(dir: PathBuf) -> io::Result<DiskCache> {
        std::fs::create_dir_all(&dir)?;
        Ok(DiskCache { dir, log: std::sync::Mutex::new(()) })
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("thumbhash.log")
    }

    /// Appends one record to `thumbhash.log`: `id u64, version u32, len u8, hash` (little
    /// endian). Appends of a few dozen bytes need no temp file: a crash can only cut the last
    /// record, which [`DiskCache::load_hashes`] then ignores.
    pub(crate) fn append_hash(&self, id: u64, version: u32, hash: &[u8]) -> io::Result<()> {
        use std::io::Write as _;
        let len = u8::try_from(hash.len()).map_err(|_| io::Error::other("thumbhash too long"))?;
        let mut record = Vec::with_capacity(13 + hash.len());
        record.extend_from_slice(&id.to_le_bytes());
        record.extend_from_slice(&version.to_le_bytes());
        record.push(len);
        record.extend_from_slice(hash);
        let _one_writer = self.log.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::OpenOptions::new().create(true).append(true).open(self.log_path())?.write_all(&record)
    }

    /// Every whole record of `thumbhash.log`, oldest first (later ones win); none if it is missing.
    pub(crate) fn load_hashes(&self) -> io::Result<Vec<HashRecord>> {
        let bytes = match std::fs::read(self.log_path()) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        let mut rest = &bytes[..];
        while rest.len() >= 13 {
            let len = rest[12] as usize;
            let Some(hash) = rest.get(13..13 + len) else { break };
            let id = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
            let version = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes"));
            out.push((id, version, hash.to_vec()));
            rest = &rest[13 + len..];
        }
        Ok(out)
    }

    /// Rewrites the log with only `keep` (when it has grown with stale records).
    pub(crate) fn rewrite_hashes(&self, keep: &[HashRecord]) -> io::Result<()> {
        let mut out = Vec::new();
        for (id, version, hash) in keep {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&version.to_le_bytes());
            out.push(hash.len() as u8);
            out.extend_from_slice(hash);
        }
        let _one_writer = self.log.lock().unwrap_or_else(|p| p.into_inner());
        super::write_atomic(&self.log_path(), &out)
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
    pub(crate) fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(key)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.path(key).is_file()
    }

    /// Stores an entry whole: temp file, then rename. No fsync: a cache entry lost in a crash is
    /// simply made again, and fsyncing every thumbnail would wear out an SD card.
    pub(crate) fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
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

    /// A fresh, hidden path for a tool's output inside the cache, ending in `.{ext}` (tools pick
    /// the output format by extension).
    pub(crate) fn temp_path(&self, tag: &str, ext: &str) -> PathBuf {
        let unique = super::temp_name(&self.dir.join(tag));
        let mut name = unique.file_name().expect("temp names have a file name").to_os_string();
        name.push(".");
        name.push(ext);
        unique.with_file_name(name)
    }

    /// Removes every entry for which `keep` says no, and leftover temp files; returns how many.
    pub(crate) fn sweep(&self, keep: &dyn Fn(&str) -> bool) -> io::Result<u64> {
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
        let tmp = tempfile::tempdir().unwrap();
        let cache = DiskCache::try_new(tmp.path().join("cache")).unwrap();
        assert_eq!(cache.get("abc-1-thumb").unwrap(), None);
        cache.put("abc-1-thumb", b"jpeg").unwrap();
        cache.put("xyz-1-thumb", b"jpeg2").unwrap();
        assert_eq!(cache.get("abc-1-thumb").unwrap().as_deref(), Some(&b"jpeg"[..]));
        assert!(cache.contains("xyz-1-thumb"));
        assert_eq!(cache.sweep(&|k| k.starts_with("abc")).unwrap(), 1);
        assert!(!cache.contains("xyz-1-thumb") && cache.contains("abc-1-thumb"));
    }

    #[test]
    fn the_thumbhash_log_survives_a_cut_last_record() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("cache");
        let cache = DiskCache::try_new(dir.clone()).unwrap();
        assert!(cache.load_hashes().unwrap().is_empty());
        cache.append_hash(1, 10, b"abc").unwrap();
        cache.append_hash(2, 20, b"defgh").unwrap();
        let log = dir.join("thumbhash.log");
        let bytes = std::fs::read(&log).unwrap();
        std::fs::write(&log, &bytes[..bytes.len() - 2]).unwrap();
        assert_eq!(cache.load_hashes().unwrap(), vec![(1, 10, b"abc".to_vec())]);
        cache.rewrite_hashes(&[(2, 20, b"x".to_vec())]).unwrap();
        assert_eq!(cache.load_hashes().unwrap(), vec![(2, 20, b"x".to_vec())]);
    }

    #[test]
    #[should_panic(expected = "invalid cache key")]
    fn a_key_that_could_escape_the_cache_is_refused() {
        let cache = DiskCache { dir: PathBuf::from("/nonexistent"), log: Default::default() };
        let _ = cache.get("../../etc/passwd");
    }
}
