//! The gallery: the library and the thumbnails, opened on one media folder and wired together.
//!
//! `library` keeps the index and `thumbs` makes pictures; neither knows the other. What passes
//! between them goes through here: a new file's id to thumbnail, the items the background pass
//! is to make, the thumbhashes made, to attach to the index. The rule: this is the only module
//! that holds both, and it starts every background thread that needs both.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;

use crate::config::Config;
use crate::fs::MediaFs;
use crate::fs::cache::HashRecord;
use crate::library::{Filter, Library, LiveOpts, Order, id};
use crate::thumbs::{ThumbOpts, Thumbs, render};
use crate::upload::{UploadOpts, Uploads};

/// How often retention runs at least (an index scan: cheap), besides just after new files.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// How often abandoned uploads are swept and the trash emptied of what is older than
/// `trash_days`.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// The library and its thumbnails, over the same media folder.
#[derive(Debug)]
pub(crate) struct Gallery {
    pub lib: Arc<Library>,
    pub thumbs: Arc<Thumbs>,
    /// Files arriving over the network, into the same media folder.
    pub uploads: Arc<Uploads>,
    /// How long deleted files stay in the trash (`trash_days`).
    pub trash_days: u64,
    retention: crate::config::Retention,
    retention_free_bytes: Option<u64>,
}

impl Gallery {
    /// Opens the media folder and the state dir; errors are start-up sentences.
    pub(crate) fn try_open(config: &Config) -> anyhow::Result<Gallery> {
        let fs = Arc::new(MediaFs::try_open(
            &config.media,
            &config.state_dir,
            config.xattr,
            config.follow_symlinks,
        )?);
        let thumb_opts = ThumbOpts {
            thumb_px: 400,
            preview_px: 1600,
            quality: 80,
            memory_bytes: config.thumb_cache_mb << 20,
            workers: config.thumb_workers,
            avif: config.thumb_avif,
            resize_sizes: config.resize_sizes.clone(),
            limits: render::Limits::sane_defaults(),
            decoder_timeout: config.decoder_timeout,
        };
        let thumbs = Thumbs::try_new(thumb_opts, Arc::clone(&fs), config.state_dir.join("cache"))
            .context("creating the thumbnail cache in the state dir")?;
        let uploads = Uploads::new(
            Arc::clone(&fs),
            UploadOpts { max_bytes: config.upload_max_bytes, reserve_bytes: config.upload_reserve_bytes },
        );
        Ok(Gallery {
            lib: Library::new(fs, config.index_threads),
            thumbs: Arc::new(thumbs),
            uploads: Arc::new(uploads),
            trash_days: config.trash_days,
            retention: config.retention.clone(),
            retention_free_bytes: config.retention_free_bytes,
        })
    }

    /// Starts the background threads and returns at once: the first index and the live index
    /// (as `live` says), thumbnails for files that arrive, and, once the index is complete, the
    /// remembered thumbhashes and the background pass (no thumbnail threads with 0 workers).
    pub(crate) fn start(&self, live: LiveOpts) {
        let thumbs = Arc::clone(&self.thumbs);
        self.lib.spawn_live(live, move |id| thumbs.make_soon(id));
        if self.thumbs.opts().workers > 0 {
            let (lib, thumbs) = (Arc::clone(&self.lib), Arc::clone(&self.thumbs));
            std::thread::Builder::new()
                .name("spis-thumb-new".into())
                .spawn(move || {
                    thumbs.run_fresh(
                        |id| lib.locate(id),
                        |(id, version, hash)| {
                            lib.set_thumbhash(id, version, &hash);
                            lib.thumbnail_ready(id);
                        },
                    )
                })
                .expect("spawning the new-file thumbnail thread");
            if self.thumbs.opts().avif {
                let (lib, thumbs) = (Arc::clone(&self.lib), Arc::clone(&self.thumbs));
                std::thread::Builder::new()
                    .name("spis-avif-new".into())
                    .spawn(move || thumbs.run_fresh_avif(|id| lib.locate(id)))
                    .expect("spawning the new-file AVIF thread");
            }
        }
        let (uploads, lib) = (Arc::clone(&self.uploads), Arc::clone(&self.lib));
        let (trash_days, retention, floor) =
            (self.trash_days, self.retention.clone(), self.retention_free_bytes);
        let mut events = self.lib.subscribe();
        std::thread::Builder::new()
            .name("spis-housekeeping".into())
            .spawn(move || {
                let mut last_retention: Option<std::time::Instant> = None;
                let mut last_sweep: Option<std::time::Instant> = None;
                loop {
                    // New files (a camera's snapshots) bring retention forward: the floor is
                    // kept within a second of them landing.
                    let mut arrived = false;
                    loop {
                        match events.try_recv() {
                            Ok(e) => arrived |= matches!(*e, crate::library::MediaEvent::Added(_)),
                            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => arrived = true,
                            Err(_) => break,
                        }
                    }
                    let due =
                        |last: Option<std::time::Instant>, every| last.is_none_or(|t| t.elapsed() >= every);
                    // Retention waits for the first index: it removes what the index lists.
                    if lib.is_ready()
                        && !retention.0.is_empty()
                        && (arrived || due(last_retention, RETENTION_EVERY))
                    {
                        last_retention = Some(std::time::Instant::now());
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_nanos() as i64);
                        let done = lib.apply_retention(&retention.0, floor, now);
                        if done.aged + done.for_space > 0 {
                            tracing::info!(
                                aged = done.aged,
                                for_space = done.for_space,
                                "retention removed files"
                            );
                        }
                    }
                    if due(last_sweep, SWEEP_EVERY) {
                        last_sweep = Some(std::time::Instant::now());
                        let swept = uploads.sweep();
                        if swept > 0 {
                            tracing::info!(swept, "abandoned uploads swept");
                        }
                        let purged =
                            lib.empty_trash_older_than(trash_days, jiff::Timestamp::now().as_second());
                        if purged > 0 {
                            tracing::info!(purged, trash_days, "old files emptied from the trash");
                        }
                    }
                    std::thread::sleep(std::time::Duration::from_secs(1));
                }
            })
            .expect("spawning the housekeeping thread");
        let (lib, thumbs) = (Arc::clone(&self.lib), Arc::clone(&self.thumbs));
        std::thread::Builder::new()
            .name("spis-thumbs".into())
            .spawn(move || background(&lib, &thumbs))
            .expect("spawning the thumbnail thread");
    }
}

/// Once the index is complete: attaches the remembered thumbhashes, then fills the thumbnail
/// cache for every item, newest first, and sweeps what no item needs any more.
fn background(lib: &Library, thumbs: &Thumbs) {
    while !lib.is_ready() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    thumbs.load_thumbhashes(|records| lib.attach_thumbhashes(records));
    if thumbs.opts().workers == 0 {
        return;
    }
    let total = lib.read().iter().filter(|i| thumbs.can_render(i.format)).count() as u64;
    let todo = Walk { lib, thumbs, total, at: Mutex::new(Batch::default()) };
    let attach = |(id, version, hash): HashRecord| lib.set_thumbhash(id, version, &hash);
    thumbs.background_pass(&todo, |id| lib.locate(id), attach);
    let current: HashSet<(u64, u32)> =
        lib.read().iter().map(|i| (i.id(), id::version_u32(i.size, i.mtime_ns))).collect();
    thumbs.sweep(&current);
}

/// The background pass's items: the index walked newest first, [`Walk::BATCH`] ids at a time.
/// Items that arrive meanwhile are the fresh path's; items that go are skipped by `locate`.
struct Walk<'a> {
    lib: &'a Library,
    thumbs: &'a Thumbs,
    total: u64,
    at: Mutex<Batch>,
}

#[derive(Default)]
struct Batch {
    /// The batch's ids, the newest last (handed out by `pop`).
    ids: Vec<u64>,
    /// The key of the oldest item read so far; none before the first batch.
    after: Option<id::SortKey>,
    through: bool,
}

impl Walk<'_> {
    const BATCH: usize = 256;
}

impl crate::thumbs::Todo for Walk<'_> {
    fn total(&self) -> u64 {
        self.total
    }

    fn next(&self) -> Option<u64> {
        let mut at = self.at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while at.ids.is_empty() && !at.through {
            let index = self.lib.read();
            let (items, more) = index.page(&Filter::default(), Order::NewestFirst, at.after, Self::BATCH);
            at.after = items.last().map(|i| i.key());
            at.ids =
                items.iter().rev().filter(|i| self.thumbs.can_render(i.format)).map(|i| i.id()).collect();
            at.through = !more;
        }
        at.ids.pop()
    }

    fn restart(&self) {
        *self.at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Batch::default();
    }
}
