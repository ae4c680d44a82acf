//! The media library: the in-memory index, how it is filled from the folder, and favorites.
//!
//! It knows nothing about HTTP or thumbnails; it asks `fs` for every byte it reads or writes. The rule: the
//! index is built from the folder alone (paths, headers, attributes), so no database can drift.

pub(crate) mod dates;
pub(crate) mod id;
mod index;
mod indexer;
pub(crate) mod live;
pub(crate) mod probe;
mod record;
pub(crate) mod trash;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

pub(crate) use index::{Filter, Index, Item, Order, Within};
pub(crate) use live::{LiveOpts, LiveStats, MediaEvent};

use crate::fs::cache::HashRecord;
use crate::fs::{MediaFs, RelPath};

/// Counters that `/api/status` and the progress log report.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    /// Media files the walk has found so far.
    pub found: AtomicU64,
    /// Files whose metadata is in the index.
    pub indexed: AtomicU64,
    /// Records reused from `user.spis.meta` attributes.
    pub from_xattr: AtomicU64,
    /// Records reused from the state-dir cache.
    pub from_state_dir: AtomicU64,
    /// Files whose headers were parsed because no valid record existed.
    pub extracted: AtomicU64,
    /// Files that could not be read at all (they are left out until they change).
    pub errors: AtomicU64,
    pub walking: AtomicBool,
    pub done: AtomicBool,
    /// Milliseconds the last full index took.
    pub elapsed_ms: AtomicU64,
}

/// The library shared by the server's tasks.
#[derive(Debug)]
pub(crate) struct Library {
    /// Shared with the thumbnails, which read the same files.
    pub fs: Arc<MediaFs>,
    index: RwLock<Index>,
    pub progress: Progress,
    pub started: Instant,
    tz: jiff::tz::TimeZone,
    index_threads: usize,
    /// Every change after the first index, for WebSocket clients and hooks. A subscriber that
    /// falls more than `EVENT_BUFFER` events behind is told it lagged, and must refetch.
    events: tokio::sync::broadcast::Sender<Arc<MediaEvent>>,
    pub live: LiveStats,
    /// Ids of files being restored from the trash, announced as `restored` (see `trash`).
    restoring: std::sync::Mutex<std::collections::HashSet<u64>>,
}

/// Events kept for subscribers that are behind.
const EVENT_BUFFER: usize = 4096;

/// Why a favorite could not be changed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FavoriteError {
    #[error("no such media")]
    NotFound,
    #[error("the favorite could not be stored: {0}")]
    Io(#[from] std::io::Error),
}

impl Library {
    /// An empty library over `fs`; [`Library::spawn_live`] fills it, on `index_threads` threads.
    pub(crate) fn new(fs: Arc<MediaFs>, index_threads: usize) -> Arc<Library> {
        Arc::new(Library {
            fs,
            index: RwLock::new(Index::default()),
            progress: Progress::default(),
            started: Instant::now(),
            tz: jiff::tz::TimeZone::system(),
            index_threads,
            events: tokio::sync::broadcast::channel(EVENT_BUFFER).0,
            live: LiveStats::default(),
            restoring: std::sync::Mutex::default(),
        })
    }

    /// Starts the watcher and the first full index in the background and returns at once; the
    /// index then follows the folder as `opts` says. `fresh` hears the id of every file added or
    /// changed after the first index, just before its event goes out.
    pub(crate) fn spawn_live(
        self: &Arc<Self>,
        opts: LiveOpts,
        fresh: impl Fn(u64) + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let lib = Arc::clone(self);
        std::thread::Builder::new()
            .name("spis-live".into())
            .spawn(move || live::run(&lib, opts, &fresh))
            .expect("spawning the indexer thread")
    }

    /// Watches every folder again and lists the whole tree, as after the media folder came back:
    /// what SIGHUP asks for, e.g. after a drive was mounted under the media folder (inotify does
    /// not see mounts).
    pub(crate) fn request_rescan(&self) {
        self.live.reload.store(true, Ordering::Release);
    }

    /// Hears about every change from now on.
    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<MediaEvent>> {
        self.events.subscribe()
    }

    fn emit(&self, event: MediaEvent) {
        self.live.applied.fetch_add(1, Ordering::Relaxed);
        // An error only means nobody listens right now.
        let _ = self.events.send(Arc::new(event));
    }

    /// Announces that an item's thumbnail (and thumbhash) is ready.
    pub(crate) fn thumbnail_ready(&self, id: u64) {
        let item = self.read().get(id).filter(|i| i.thumbhash != 0).cloned();
        if let Some(item) = item {
            self.emit(MediaEvent::Changed(item));
        }
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, Index> {
        // Index updates are single inserts that cannot be left half done by a panic.
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the item of the file at `dir`/`name` from the index and says `removed`. Only this
    /// path's item: an id collision's other file stays.
    pub(crate) fn remove_path(&self, dir: &[u8], name: &[u8]) {
        let id = id::from_rel_path(&RelPath { dir, name }.key());
        let removed = {
            let mut index = self.write();
            match index.get(id) {
                Some(i) if index.dir_of(i) == dir && &*i.name == name => index.remove(id),
                _ => None,
            }
        };
        if let Some(item) = removed {
            self.emit(MediaEvent::Removed(item));
        }
    }

    /// Marks or unmarks a favorite; returns once it is durable, with the updated item.
    pub(crate) fn set_favorite(&self, id: u64, on: bool) -> Result<Item, FavoriteError> {
        let (dir, name) = {
            let index = self.read();
            let item = index.get(id).ok_or(FavoriteError::NotFound)?;
            (index.dir_of(item).to_vec(), item.name.clone())
        };
        // Disk first, memory second: a failed write leaves the index unchanged.
        self.fs.set_favorite(RelPath { dir: &dir, name: &name }, on)?;
        self.fs.announce_favorite(id, on);
        let item = self.write().set_favorite(id, on).cloned().ok_or(FavoriteError::NotFound)?;
        self.emit(MediaEvent::Changed(item.clone()));
        Ok(item)
    }

    /// Applies the favorites other servers sharing the state dir changed (replicas behind a load
    /// balancer): called before answering, it costs one stat when nothing changed.
    pub(crate) fn sync_replicas(&self) {
        let changes = match self.fs.replica_changes() {
            crate::fs::journal::Changes::None => return,
            crate::fs::journal::Changes::Some(changes) => changes,
            crate::fs::journal::Changes::Resync => {
                // Entries were missed: every favorite from disk again.
                let index = self.read();
                index
                    .iter()
                    .map(|i| (i.id(), self.fs.is_favorite(RelPath { dir: index.dir_of(i), name: &i.name })))
                    .collect()
            }
        };
        for (id, on) in changes {
            let changed = {
                let mut index = self.write();
                match index.get(id) {
                    Some(item) if item.favorite != on => index.set_favorite(id, on).cloned(),
                    _ => None,
                }
            };
            if let Some(item) = changed {
                self.emit(MediaEvent::Changed(item));
            }
        }
    }

    /// Attaches a thumbhash to an item if it still has this file version.
    pub(crate) fn set_thumbhash(&self, id: u64, version: u32, hash: &[u8]) {
        self.write().set_thumbhash(id, version, hash);
    }

    /// Attaches many remembered thumbhashes at once (one lock), and returns those that are
    /// current: made for the file version in the index, and not replaced by a later record.
    pub(crate) fn attach_thumbhashes(&self, records: Vec<HashRecord>) -> Vec<HashRecord> {
        let mut index = self.write();
        for (id, version, hash) in &records {
            index.set_thumbhash(*id, *version, hash);
        }
        records
            .into_iter()
            .filter(|(id, version, hash)| {
                index.get(*id).is_some_and(|i| {
                    id::version_u32(i.size, i.mtime_ns) == *version
                        && index.thumbhash(i) == Some(hash.as_slice())
                })
            })
            .collect()
    }

    /// Where a media file lives, for serving it.
    pub(crate) fn locate(&self, id: u64) -> Option<(Item, Vec<u8>)> {
        self.with_item(id, |item, dir| (item.clone(), dir.to_vec()))
    }

    /// `f` of an item and its folder, under the index's read lock and without copying them (a
    /// cached picture's request looks its answer up this way). `f` must not wait on anything.
    pub(crate) fn with_item<R>(&self, id: u64, f: impl FnOnce(&Item, &[u8]) -> R) -> Option<R> {
        let index = self.read();
        let item = index.get(id)?;
        Some(f(item, index.dir_of(item)))
    }

    /// What the index does not keep (the lens, the camera's raw make and model), read from the
    /// file's header on demand, within the probe's read limits. `Ok(None)`: no such item.
    pub(crate) fn details(&self, id: u64) -> std::io::Result<Option<probe::Probe>> {
        let Some((item, dir)) = self.locate(id) else { return Ok(None) };
        let mut r = self.fs.open_reader(RelPath { dir: &dir, name: &item.name })?;
        probe::probe(&mut r, item.format, &self.tz).map(Some)
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.progress.done.load(Ordering::Acquire)
    }
}
