//! The state-dir files that stand in for extended attributes where a filesystem has none.
//!
//! Both are loaded whole at start and rewritten whole and atomically: `favorites.txt` on every
//! change (a favorite is acknowledged only once it is on disk), `meta-cache.bin` when indexing
//! asks for it (it is only a cache: deleting it costs re-extraction, nothing else).

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use super::write_atomic;

const META_MAGIC: &[u8] = b"SPIS-META-CACHE 1\n";

/// Metadata records keyed by relative path.
#[derive(Debug)]
pub(super) struct MetaCache {
    path: PathBuf,
    inner: Mutex<MetaInner>,
}

#[derive(Debug, Default)]
struct MetaInner {
    records: HashMap<Vec<u8>, Vec<u8>>,
    dirty: bool,
}

impl MetaCache {
    /// Loads the cache; a missing file is an empty cache, a damaged one is dropped with a warning.
    pub(super) fn load(path: PathBuf) -> io::Result<MetaCache> {
        let records = match std::fs::read(&path) {
            Ok(bytes) => decode_records(&bytes).unwrap_or_else(|| {
                tracing::warn!(file = %path.display(), "metadata cache is damaged; it will be rebuilt");
                HashMap::new()
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(e),
        };
        Ok(MetaCache { path, inner: Mutex::new(MetaInner { records, dirty: false }) })
    }

    pub(super) fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.lock().records.get(key).cloned()
    }

    /// Moves the records of a renamed file, or of everything below a renamed folder.
    pub(super) fn rename(&self, from: &[u8], to: &[u8]) {
        let mut inner = self.lock();
        let moved = rename_keys(inner.records.keys(), from, to);
        for (old, new) in moved {
            if let Some(v) = inner.records.remove(&old) {
                inner.records.insert(new, v);
                inner.dirty = true;
            }
        }
    }

    pub(super) fn put(&self, key: Vec<u8>, record: Vec<u8>) {
        let mut inner = self.lock();
        if inner.records.get(&key) != Some(&record) {
            inner.records.insert(key, record);
            inner.dirty = true;
        }
    }

    pub(super) fn remove(&self, key: &[u8]) {
        let mut inner = self.lock();
        if inner.records.remove(key).is_some() {
            inner.dirty = true;
        }
    }

    pub(super) fn flush(&self) -> io::Result<()> {
        let mut inner = self.lock();
        if !inner.dirty {
            return Ok(());
        }
        write_atomic(&self.path, &encode_records(&inner.records))?;
        inner.dirty = false;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MetaInner> {
        // A panic while holding the lock cannot leave the map half-updated, so keep going.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Length-prefixed binary: paths may hold any byte but NUL, including newlines.
fn encode_records(records: &HashMap<Vec<u8>, Vec<u8>>) -> Vec<u8> {
    let mut out = META_MAGIC.to_vec();
    let mut keys: Vec<_> = records.keys().collect();
    keys.sort();
    for k in keys {
        for part in [k, &records[k]] {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

fn decode_records(bytes: &[u8]) -> Option<HashMap<Vec<u8>, Vec<u8>>> {
    let mut rest = bytes.strip_prefix(META_MAGIC)?;
    let take = |rest: &mut &[u8]| -> Option<Vec<u8>> {
        let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let part = rest.get(4..4 + len)?.to_vec();
        *rest = &rest[4 + len..];
        Some(part)
    };
    let mut records = HashMap::new();
    while !rest.is_empty() {
        let k = take(&mut rest)?;
        let v = take(&mut rest)?;
        records.insert(k, v);
    }
    Some(records)
}

/// `favorites.txt`: one relative path per line, `\` and newline escaped as `\\` and `\n`.
#[derive(Debug)]
pub(super) struct FavoriteFile {
    path: PathBuf,
    set: Mutex<HashSet<Vec<u8>>>,
}

impl FavoriteFile {
    pub(super) fn load(path: PathBuf) -> io::Result<FavoriteFile> {
        let set = read_set(&path)?;
        Ok(FavoriteFile { path, set: Mutex::new(set) })
    }

    /// Reads the file again (another replica sharing the state dir may have changed it).
    pub(super) fn reload(&self) -> io::Result<()> {
        let fresh = read_set(&self.path)?;
        *self.lock() = fresh;
        Ok(())
    }

    /// Changes the set as `change` says (it returns whether anything changed) and writes it,
    /// starting from the file as it is now, under an exclusive lock on `favorites.txt.lock`:
    /// replicas sharing the state dir never overwrite each other's favorites.
    fn update(&self, change: impl FnOnce(&mut HashSet<Vec<u8>>) -> bool) -> io::Result<()> {
        use std::os::fd::AsRawFd as _;
        let mut memory = self.lock();
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.path.with_extension("txt.lock"))?;
        // SAFETY: flock on a descriptor we own; released when `lock` is closed below.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut set = read_set(&self.path)?;
        if change(&mut set) {
            write_set(&self.path, &set)?;
        }
        *memory = set;
        drop(lock);
        Ok(())
    }

    pub(super) fn contains(&self, key: &[u8]) -> bool {
        self.lock().contains(key)
    }

    /// Moves the favorites of a renamed file, or of everything below a renamed folder.
    pub(super) fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        if !self.lock().iter().any(|k| k.starts_with(from)) {
            return Ok(());
        }
        self.update(|set| {
            let moved = rename_keys(set.iter(), from, to);
            for (old, new) in &moved {
                set.remove(old);
                set.insert(new.clone());
            }
            !moved.is_empty()
        })
    }

    /// Adds or removes `key` and rewrites the file before returning; unchanged sets skip the write.
    /// On an error memory keeps the file's state before the change (not acknowledged).
    pub(super) fn set(&self, key: &[u8], on: bool) -> io::Result<()> {
        self.update(|set| if on { set.insert(key.to_vec()) } else { set.remove(key) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Vec<u8>>> {
        self.set.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn read_set(path: &std::path::Path) -> io::Result<HashSet<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(unescape).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HashSet::new()),
        Err(e) => Err(e),
    }
}

fn write_set(path: &std::path::Path, set: &HashSet<Vec<u8>>) -> io::Result<()> {
    let mut lines: Vec<Vec<u8>> = set.iter().map(|k| escape(k)).collect();
    lines.sort();
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(&l);
        out.push(b'\n');
    }
    write_atomic(path, &out)
}

/// (old, new) for every key that is `from` or below it, with `from` replaced by `to`.
fn rename_keys<'a>(
    keys: impl Iterator<Item = &'a Vec<u8>>,
    from: &[u8],
    to: &[u8],
) -> Vec<(Vec<u8>, Vec<u8>)> {
    keys.filter(|k| k.starts_with(from) && (k.len() == from.len() || k[from.len()] == b'/'))
        .map(|k| {
            let mut new = to.to_vec();
            new.extend_from_slice(&k[from.len()..]);
            (k.clone(), new)
        })
        .collect()
}

fn escape(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len());
    for &b in key {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
    out
}

fn unescape(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    let mut it = line.iter();
    while let Some(&b) = it.next() {
        if b == b'\\' {
            match it.next() {
                Some(b'n') => out.push(b'\n'),
                Some(&other) => out.push(other),
                None => out.push(b'\\'),
            }
        } else {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_names_survive_the_favorites_escaping() {
        for name in [&b"a/b.jpg"[..], b"new\nline.jpg", b"back\\slash\\n.jpg", b"\xff\xfe.jpg"] {
            assert_eq!(unescape(&escape(name)), name);
        }
    }

    #[test]
    fn renames_move_a_file_or_a_whole_folder_but_not_lookalikes() {
        let keys: Vec<Vec<u8>> =
            [&b"a/x.jpg"[..], b"a/b/y.jpg", b"ab/z.jpg", b"a.jpg"].iter().map(|k| k.to_vec()).collect();
        let mut moved = rename_keys(keys.iter(), b"a", b"c/d");
        moved.sort();
        assert_eq!(
            moved,
            vec![
                (b"a/b/y.jpg".to_vec(), b"c/d/b/y.jpg".to_vec()),
                (b"a/x.jpg".to_vec(), b"c/d/x.jpg".to_vec())
            ]
        );
        assert_eq!(
            rename_keys(keys.iter(), b"a.jpg", b"b.jpg"),
            vec![(b"a.jpg".to_vec(), b"b.jpg".to_vec())]
        );
    }

    #[test]
    fn meta_records_round_trip_and_damage_is_detected() {
        let mut m = HashMap::new();
        m.insert(b"a/b\nc.jpg".to_vec(), b"{\"v\":1}".to_vec());
        m.insert(b"x.png".to_vec(), Vec::new());
        let bytes = encode_records(&m);
        assert_eq!(decode_records(&bytes), Some(m));
        assert_eq!(decode_records(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode_records(b"garbage"), None);
    }
}
