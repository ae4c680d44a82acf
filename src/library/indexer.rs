//! The initial index: walk the media folder, resolve each file's metadata, fill the index.
//!
//! One thread walks and hands out batches; `index_threads` workers resolve them. A file's record
//! is taken from its `user.spis.meta` attribute (or the state-dir cache) while size and mtime
//! still match, and extracted from its header otherwise. The rule: items become visible batch by
//! batch, so the gallery fills while a large library is still being read.

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::dates::{self, DateSource};
use super::index::{Index, Item};
use super::probe;
use super::record::Meta;
use super::{Library, id};
use crate::fs::{Found, Listing, MetaSource, RelPath};
use crate::media::Format;

const BATCH: usize = 256;
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Indexes the whole folder; `folder` sees every folder listed (for the live rescans to start from).
pub(super) fn run(lib: &Arc<Library>, folder: &(dyn Fn(&[u8], &Listing) + Sync)) {
    let started = Instant::now();
    let p = &lib.progress;
    p.walking.store(true, Ordering::Release);
    tracing::info!(media = %lib.fs.root().display(), "indexing started");

    let (tx, rx) = mpsc::sync_channel::<Vec<Found>>(lib.index_threads * 4);
    let rx = Mutex::new(rx);
    std::thread::scope(|s| {
        let mut threads = Vec::new();
        for n in 0..lib.index_threads {
            let rx = &rx;
            let worker = std::thread::Builder::new()
                .name(format!("spis-index-{n}"))
                .spawn_scoped(s, move || worker(lib, rx))
                .expect("spawning an index worker");
            threads.push(worker);
        }
        let walker = std::thread::Builder::new()
            .name("spis-walk".into())
            .spawn_scoped(s, move || {
                let mut batch = Vec::with_capacity(BATCH);
                let found = &mut |f| {
                    lib.progress.found.fetch_add(1, Ordering::Relaxed);
                    batch.push(f);
                    if batch.len() == BATCH {
                        // A send fails only when every worker died; nothing is left to do then.
                        let _ = tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                    }
                };
                lib.fs.walk(b"", &is_media_name, found, &mut |dir, listing| folder(dir, listing));
                let _ = tx.send(batch);
                lib.progress.walking.store(false, Ordering::Release);
            })
            .expect("spawning the walker");
        threads.push(walker);
        let mut last_log = Instant::now();
        while !threads.iter().all(|t| t.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            if last_log.elapsed() >= PROGRESS_EVERY {
                last_log = Instant::now();
                tracing::info!(
                    found = p.found.load(Ordering::Relaxed),
                    indexed = p.indexed.load(Ordering::Relaxed),
                    walking = p.walking.load(Ordering::Relaxed),
                    "indexing"
                );
            }
        }
    });

    lib.write().compact();
    crate::memory::release_freed();
    if let Err(e) = lib.fs.flush_meta_cache() {
        tracing::warn!(error = %e, "cannot write the metadata cache to the state dir; the next start re-extracts");
    }
    let elapsed = started.elapsed();
    p.elapsed_ms.store(elapsed.as_millis() as u64, Ordering::Relaxed);
    p.done.store(true, Ordering::Release);
    tracing::info!(
        items = lib.read().len(),
        from_xattr = p.from_xattr.load(Ordering::Relaxed),
        from_state_dir = p.from_state_dir.load(Ordering::Relaxed),
        extracted = p.extracted.load(Ordering::Relaxed),
        errors = p.errors.load(Ordering::Relaxed),
        seconds = format_args!("{:.2}", elapsed.as_secs_f64()),
        "indexing done"
    );
}

fn worker(lib: &Library, rx: &Mutex<mpsc::Receiver<Vec<Found>>>) {
    loop {
        let batch = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(b) => b,
            Err(_) => return,
        };
        let resolved: Vec<Resolved> = batch.into_iter().filter_map(|f| resolve(lib, f)).collect();
        let n = resolved.len() as u64;
        let mut index = lib.write();
        for r in resolved {
            insert(&mut index, r);
        }
        drop(index);
        lib.progress.indexed.fetch_add(n, Ordering::Relaxed);
    }
}

/// An item ready for the index but for its interned strings.
pub(super) struct Resolved {
    pub(super) item: Item,
    dir: Vec<u8>,
    camera: Option<String>,
}

/// What [`insert`] did.
pub(super) enum Inserted {
    New,
    /// The item replaced an older version of itself.
    Replaced,
    /// Another file already has this id; nothing changed.
    Collision,
}

/// Puts a resolved item into the index, interning its strings.
pub(super) fn insert(index: &mut Index, r: Resolved) -> (Inserted, u64) {
    let mut item = r.item;
    let id = item.id();
    let existed = match index.get(id) {
        Some(old) if index.dir_of(old) != r.dir.as_slice() || old.name != item.name => {
            // Two paths with one 64-bit hash: astronomically rare, but never silently merged.
            tracing::error!(
                kept = %String::from_utf8_lossy(&old.name),
                skipped = %String::from_utf8_lossy(&item.name),
                "two files share one id; the second is not listed"
            );
            return (Inserted::Collision, id);
        }
        Some(_) => true,
        None => false,
    };
    item.dir = index.dirs.intern(&r.dir);
    item.camera = r.camera.map_or(0, |c| index.labels.intern(c.as_bytes()));
    index.upsert(item);
    (if existed { Inserted::Replaced } else { Inserted::New }, id)
}

/// Builds the index item for one file, extracting its metadata only when no valid record exists.
pub(super) fn resolve(lib: &Library, f: Found) -> Option<Resolved> {
    let p = &lib.progress;
    let rel = RelPath { dir: &f.dir, name: &f.name };
    let (stored, favorite) = lib.fs.read_attrs(rel);
    let stored = stored.and_then(|(bytes, source)| {
        Meta::decode_valid(&bytes, f.size, f.mtime_ns).map(|meta| (meta, source))
    });
    let mut meta = match stored {
        Some((meta, source)) => {
            match source {
                MetaSource::Xattr => p.from_xattr.fetch_add(1, Ordering::Relaxed),
                MetaSource::StateDir => p.from_state_dir.fetch_add(1, Ordering::Relaxed),
            };
            meta
        }
        None => {
            let ext_format = Format::from_extension(extension(&f.name))?;
            // A parser bug on a hostile file must cost that file, not the indexer.
            let probed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut r = lib.fs.open_reader(rel)?;
                let mut probe = probe::probe(&mut r, ext_format, &lib.tz)?;
                // A sidecar's dates count as the file's own. A sidecar changing alone is not
                // noticed: the record is validated by the media file's size and mtime only.
                if let Some(xmp) = lib.fs.read_sidecar(rel, probe::XMP_LIMIT) {
                    probe.add_xmp(&xmp);
                }
                Ok(probe)
            }))
            .unwrap_or_else(|_| Err(std::io::Error::other("the metadata parser panicked")));
            let probe = match probed {
                Ok(probe) => probe,
                Err(e) => {
                    p.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(file = %String::from_utf8_lossy(&rel.key()), error = %e, "cannot read media file");
                    return None;
                }
            };
            p.extracted.fetch_add(1, Ordering::Relaxed);
            let meta = Meta::from_probe(probe);
            lib.fs.write_meta(rel, &meta.encode(f.size, f.mtime_ns));
            meta
        }
    };
    let camera = meta.camera.take();
    let item = build_item(lib, &f, &meta, favorite);
    Some(Resolved { item, dir: f.dir, camera })
}

fn build_item(lib: &Library, f: &Found, meta: &Meta, favorite: bool) -> Item {
    let name_str = String::from_utf8_lossy(&f.name);
    // A header's modification date (EXIF IFD0 DateTime) says less than a date in the name.
    let stored = meta.taken.filter(|t| t.source < DateSource::FileName);
    let taken = stored.or_else(|| dates::from_file_name(&name_str)).or(meta.taken).unwrap_or_else(|| {
        let secs = f.mtime_ns.div_euclid(1_000_000_000);
        let nanos = f.mtime_ns.rem_euclid(1_000_000_000) as u32;
        dates::from_unix_utc(secs, nanos, &lib.tz, DateSource::Mtime)
    });
    let (width, height) = meta.display_size().unwrap_or((0, 0));
    Item {
        key: (taken.local_ms, id::from_rel_path(&RelPath { dir: &f.dir, name: &f.name }.key())),
        dir: 0,
        name: f.name.clone().into_boxed_slice(),
        offset_min: taken.offset_min.unwrap_or(i16::MIN),
        date_source: taken.source,
        size: f.size,
        mtime_ns: f.mtime_ns,
        width,
        height,
        format: meta.format,
        orientation: meta.orientation,
        favorite,
        camera: 0,
        duration_ms: meta.duration_ms.and_then(|d| u32::try_from(d).ok()).and_then(std::num::NonZeroU32::new),
        thumbhash: 0,
    }
}

/// Whether a file name has the extension of a format spis indexes.
pub(super) fn is_media_name(name: &[u8]) -> bool {
    Format::from_extension(extension(name)).is_some()
}

fn extension(name: &[u8]) -> &str {
    name.iter().rposition(|&b| b == b'.').and_then(|i| std::str::from_utf8(&name[i + 1..]).ok()).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_are_not_media() {
        for name in [&b"IMG_1234.xmp"[..], b"IMG_1234.JPG.xmp", b"IMG_1234.XMP"] {
            assert!(!is_media_name(name), "{}", String::from_utf8_lossy(name));
        }
        assert!(is_media_name(b"IMG_1234.JPG"));
    }

    #[test]
    fn extensions_are_found_without_utf8_assumptions() {
        assert_eq!(extension(b"a.b.JPG"), "JPG");
        assert_eq!(extension(b"noext"), "");
        assert_eq!(extension(b"\xff.png"), "png");
    }
}
