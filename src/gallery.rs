//! The gallery: the library and the thumbnails, opened on one media folder and wired together.
//!
//! `library` keeps the index and `thumbs` makes pictures; neither knows the other. What passes
//! between them goes through here: a new file's id to thumbnail, the items the background pass
//! is to make, the thumbhashes made, to attach to the index. The rule: this is the only module
//! that holds both, and it starts every background thread that needs both.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context as _;

use crate::config::Config;
use crate::fs::MediaFs;
use crate::fs::cache::HashRecord;
use crate::library::{Library, LiveOpts, id};
use crate::thumbs::{ThumbOpts, Thumbs, render};
use crate::upload::{UploadOpts, Uploads};

/// How often what crashed or abandoned uploads left behind is looked for.
const UPLOAD_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// The library and its thumbnails, over the same media folder.
#[derive(Debug)]
pub(crate) struct Gallery {
    pub lib: Arc<Library>,
    pub thumbs: Arc<Thumbs>,
    /// Files arriving over the network, into the same media folder.
    pub uploads: Arc<Uploads>,
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
        }
        let uploads = Arc::clone(&self.uploads);
        std::thread::Builder::new()
            .name("spis-uploads".into())
            .spawn(move || {
                loop {
                    let swept = uploads.sweep();
                    if swept > 0 {
                        tracing::info!(swept, "abandoned uploads swept");
                    }
                    std::thread::sleep(UPLOAD_SWEEP_EVERY);
                }
            })
            .expect("spawning the upload sweeper");
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
    let todo: Vec<u64> =
        lib.read().iter().rev().filter(|i| thumbs.can_render(i.format)).map(|i| i.id).collect();
    let attach = |(id, version, hash): HashRecord| lib.set_thumbhash(id, version, &hash);
    thumbs.background_pass(&todo, |id| lib.locate(id), attach);
    let current: HashSet<(u64, u32)> =
        lib.read().iter().map(|i| (i.id, id::version_u32(i.size, i.mtime_ns))).collect();
    thumbs.sweep(&current);
}
