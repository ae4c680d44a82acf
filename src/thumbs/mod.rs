//! Thumbnails and previews: made once per file version, kept on disk and in memory.
//!
//! A request looks in the memory cache, then the disk cache, and only then decodes; one decode
//! makes both renditions. Concurrent requests for the same file share one job, and background
//! workers fill the cache newest first at a lowered priority so the grid is ready before anyone
//! scrolls. It never sees the library: it reads files through its own handle on the media
//! folder, is told which items to make, and hands back the thumbhashes it makes for the caller
//! to attach to the index. The rule: a file that cannot be rendered (unsupported, corrupt, too
//! large) costs one attempt and one log line per version, and is answered with a placeholder,
//! never an error.

pub(crate) mod external;
pub(crate) mod render;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use bytes::Bytes;

use crate::fs::cache::{DiskCache, HashRecord};
use crate::fs::{MediaFs, RelPath};
use crate::library::{Item, id};
use crate::media::{Format, Kind};

/// Bump when the output of the pipeline changes, so every cached rendition is made again.
const PIPELINE_VERSION: u32 = 1;

/// The two renditions every photo gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Rendition {
    /// For the grid.
    Thumb,
    /// For the viewer.
    Preview,
}

impl Rendition {
    pub(crate) fn parse(s: &str) -> Option<Rendition> {
        match s {
            "thumb" => Some(Rendition::Thumb),
            "preview" => Some(Rendition::Preview),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Rendition::Thumb => "thumb",
            Rendition::Preview => "preview",
        }
    }
}

/// Sizes, quality and limits of the renditions.
#[derive(Debug, Clone)]
pub(crate) struct ThumbOpts {
    /// Long side of the grid thumbnail, in pixels.
    pub thumb_px: u32,
    /// Long side of the viewer preview, in pixels.
    pub preview_px: u32,
    /// JPEG quality, 1..=100.
    pub quality: u8,
    /// Bytes of encoded renditions kept in memory.
    pub memory_bytes: usize,
    /// Background workers; 0 makes renditions only on request.
    pub workers: usize,
    /// Also make an AVIF of each thumbnail, from its preview, once the JPEGs are made.
    pub avif: bool,
    /// The only widths and heights `/resize` makes, so nobody can fill the disk with variants.
    pub resize_sizes: Vec<u32>,
    pub limits: render::Limits,
    /// How long heif-dec or ffmpeg may run for one file before it is killed.
    pub decoder_timeout: std::time::Duration,
}

/// An encoded rendition, ready to serve.
#[derive(Debug)]
pub(crate) struct Encoded {
    pub bytes: Bytes,
    /// Unique for the file version, rendition and pipeline version: the cache key itself.
    pub etag: String,
}

/// What a rendition request gets.
#[derive(Debug, Clone)]
pub(crate) enum Served {
    Ready(Arc<Encoded>),
    /// No picture can be made (yet): the reason, for a header and the log.
    Placeholder(&'static str),
}

/// Counters for `/api/status`.
#[derive(Debug, Default)]
pub(crate) struct ThumbStats {
    /// Files decoded (each decode makes both renditions).
    pub decoded: AtomicU64,
    /// Files that could not be rendered.
    pub failed: AtomicU64,
    pub memory_hits: AtomicU64,
    pub disk_hits: AtomicU64,
    /// Time to make one file's renditions (thumbnail and preview).
    pub render_time: crate::metrics::Histogram,
    /// Background pass: items to look at, and looked at so far.
    pub background_total: AtomicU64,
    pub background_done: AtomicU64,
    /// Milliseconds since start when the background pass began (0: not yet).
    pub background_started_ms: AtomicU64,
    /// The AVIF pass after it: items to look at, and looked at so far.
    pub avif_total: AtomicU64,
    pub avif_done: AtomicU64,
}

/// How far the background pass is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackgroundProgress {
    pub total: u64,
    pub done: u64,
    /// Items a second since the pass began; 0 before it begins and once it is over.
    pub per_second: f64,
    pub eta_s: Option<u64>,
}

/// One file version: (id, size, mtime).
type JobKey = (u64, u64, i64);

/// What one decode makes, or why there is no picture.
type Made = Result<Renditions, &'static str>;

/// Both renditions of a file version, and the thumbhash made with them.
#[derive(Debug, Clone)]
struct Renditions {
    thumb: Arc<Encoded>,
    preview: Arc<Encoded>,
    /// (id, file version, hash): the caller attaches it to the item in the index.
    thumbhash: HashRecord,
}

/// Why a job whose owner panicked has no picture.
const PANICKED: &str = "making the thumbnail failed (a bug)";

/// A decode in progress that other requests for the same file wait for.
#[derive(Default)]
struct Job {
    result: Mutex<Option<Made>>,
    done: Condvar,
}

/// The items a background pass goes through, newest first, one id at a time to whichever worker
/// asks. The library reads them off the index a batch at a time: a list of every id would be
/// 0.8 MB for 100k photos, held for the whole pass.
pub(crate) trait Todo: Sync {
    /// How many there are, for progress.
    fn total(&self) -> u64;
    /// The next one, or none when the pass is through.
    fn next(&self) -> Option<u64>;
    /// Starts again from the newest (the AVIF pass follows the JPEG one).
    fn restart(&self);
}

#[derive(Debug)]
pub(crate) struct Thumbs {
    opts: ThumbOpts,
    /// The media folder, shared with the library.
    fs: Arc<MediaFs>,
    disk: DiskCache,
    memory: Mutex<MemoryCache>,
    jobs: Mutex<HashMap<JobKey, Arc<Job>>>,
    /// File versions that failed, and why: not tried again until the file changes or spis
    /// restarts.
    failed: Mutex<HashMap<JobKey, &'static str>>,
    pub stats: ThumbStats,
    started: Instant,
    tools: external::Tools,
    /// On-request work in flight at once: enough to keep every core busy, few enough that a
    /// burst of requests cannot hold a decode buffer each.
    slots: tokio::sync::Semaphore,
    /// Bytes the renders in flight may hold together (`Limits::decode_budget_bytes`).
    budget: Arc<Budget>,
    /// Ids of files that just arrived, made ahead of the background backlog.
    fresh: Mutex<std::collections::VecDeque<u64>>,
    fresh_ready: Condvar,
    /// Ids of new files whose JPEG renditions are made, waiting for their AVIF thumbnail.
    fresh_avif: Mutex<std::collections::VecDeque<u64>>,
    fresh_avif_ready: Condvar,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl Thumbs {
    pub(crate) fn try_new(
        opts: ThumbOpts,
        fs: Arc<MediaFs>,
        cache_dir: std::path::PathBuf,
    ) -> std::io::Result<Thumbs> {
        Ok(Thumbs {
            budget: Arc::new(Budget::new(opts.limits.decode_budget_bytes)),
            memory: Mutex::new(MemoryCache::new(opts.memory_bytes)),
            opts,
            fs,
            disk: DiskCache::try_new(cache_dir)?,
            jobs: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            stats: ThumbStats::default(),
            started: Instant::now(),
            tools: external::Tools::find(),
            slots: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()) * 2,
            ),
            fresh: Mutex::new(std::collections::VecDeque::new()),
            fresh_ready: Condvar::new(),
            fresh_avif: Mutex::new(std::collections::VecDeque::new()),
            fresh_avif_ready: Condvar::new(),
        })
    }

    /// New files waiting for their thumbnail.
    pub(crate) fn fresh_queued(&self) -> usize {
        lock(&self.fresh).len()
    }

    /// Asks for an item's thumbnail and preview to be made now, ahead of the background pass
    /// (for a file that just arrived); its `changed` event follows when they are ready.
    pub(crate) fn make_soon(&self, id: u64) {
        // With no workers, thumbnails are made only when requested, new files included.
        if self.opts.workers == 0 {
            return;
        }
        lock(&self.fresh).push_back(id);
        self.fresh_ready.notify_one();
    }

    pub(crate) fn opts(&self) -> &ThumbOpts {
        &self.opts
    }

    pub(crate) fn background_progress(&self) -> BackgroundProgress {
        let s = &self.stats;
        let (total, done) =
            (s.background_total.load(Ordering::Relaxed), s.background_done.load(Ordering::Relaxed));
        let started_ms = s.background_started_ms.load(Ordering::Relaxed);
        let elapsed_s =
            (self.started.elapsed().as_millis() as u64).saturating_sub(started_ms) as f64 / 1000.0;
        let running = started_ms > 0 && done < total && elapsed_s > 0.0;
        let per_second = if running { done as f64 / elapsed_s } else { 0.0 };
        let eta_s = (per_second > 0.0).then(|| ((total - done) as f64 / per_second).ceil() as u64);
        BackgroundProgress { total, done, per_second, eta_s }
    }

    /// The rendition if it is in memory: the fast path, safe to call on the async runtime.
    pub(crate) fn cached(&self, item: &Item, which: Rendition) -> Option<Arc<Encoded>> {
        self.memory_hit(&cache_key(item, which))
    }

    /// An output by key if it is in memory, counted as a memory hit.
    fn memory_hit(&self, key: &str) -> Option<Arc<Encoded>> {
        let hit = lock(&self.memory).get(key);
        if hit.is_some() {
            self.stats.memory_hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// The AVIF of an item's thumbnail if it is in memory (the fast path, safe on the runtime).
    pub(crate) fn avif_cached(&self, item: &Item) -> Option<Arc<Encoded>> {
        self.memory_hit(&avif_key(item))
    }

    /// The AVIF of an item's thumbnail from memory or disk, if the AVIF pass made it already
    /// (never made on request: an encode takes too long for someone waiting on a Pi). Blocks.
    pub(crate) fn avif_blocking(&self, item: &Item) -> Option<Arc<Encoded>> {
        self.lookup(avif_key(item))
    }

    /// Makes the AVIF of an item's thumbnail from its preview on disk (a 4x downscale of a
    /// q80 JPEG hides its artifacts, and costs a small decode instead of the original's). Not
    /// made when there is no preview yet or the AVIF exists.
    fn make_avif(&self, item: &Item, keep: Keep) {
        let key = avif_key(item);
        if self.disk.contains(&key) {
            return;
        }
        let Ok(Some(preview)) = self.disk.get(&cache_key(item, Rendition::Preview)) else { return };
        let (px, quality, limits) = (self.opts.thumb_px, self.opts.quality, self.opts.limits.clone());
        let input = render::Input::Bytes(preview);
        let held = self.budget.reserve(render::estimate_input(&input, Format::Jpeg, px, &limits));
        let made = bounded(limits.max_decode_time, move || {
            let _held = held;
            let (fit, avif) = (render::Fit::Contain, render::Encoding::Avif);
            render::resize(input, Format::Jpeg, 1, None, (px, px), fit, avif, quality, &limits)
        });
        match made {
            Ok(out) => {
                self.remember(key, out.jpeg, keep);
            }
            Err(e) => tracing::warn!(id = %id::encode(item.id()), error = %e, "no AVIF thumbnail"),
        }
    }

    /// Waits for one of the slots that bound concurrent on-request decodes and disk reads.
    pub(crate) async fn decode_slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.slots.acquire().await.expect("the semaphore is never closed")
    }

    /// The rendition of an item, from memory, disk, or a decode, with the thumbhash when a
    /// decode made one (for the caller to attach to the item). Blocks: call it off the async
    /// runtime (`spawn_blocking`).
    pub(crate) fn get_blocking(
        &self,
        item: &Item,
        dir: &[u8],
        which: Rendition,
    ) -> (Served, Option<HashRecord>) {
        if let Some(hit) = self.lookup(cache_key(item, which)) {
            return (Served::Ready(hit), None);
        }
        match self.make(item, dir, Keep::InMemory) {
            Ok(made) => {
                let picture = match which {
                    Rendition::Thumb => made.thumb,
                    Rendition::Preview => made.preview,
                };
                (Served::Ready(picture), Some(made.thumbhash))
            }
            Err(reason) => (Served::Placeholder(reason), None),
        }
    }

    /// Whether anything here can make a picture of this format (else it gets a placeholder that
    /// says what to install).
    pub(crate) fn can_render(&self, format: Format) -> bool {
        !matches!(self.source(format), Source::Missing(_))
    }

    fn source(&self, format: Format) -> Source<'_> {
        match format {
            Format::Jpeg | Format::Png | Format::Gif | Format::Webp | Format::Tiff | Format::Bmp => {
                Source::Pure(format)
            }
            Format::Heif | Format::Avif => match &self.tools.heif {
                Some(tool) => Source::External(tool),
                None => Source::Missing("HEIC and AVIF: install libheif (heif-dec or heif-convert)"),
            },
            Format::Mp4 | Format::Mov | Format::Webm | Format::Mkv => match &self.tools.ffmpeg {
                Some(tool) => Source::External(tool),
                None => Source::Missing("video: install ffmpeg for poster frames"),
            },
        }
    }

    /// The external decoders found at start, for `/api/status`.
    pub(crate) fn tools(&self) -> &external::Tools {
        &self.tools
    }

    /// A picture for a `width` x `height` box (the `/resize` endpoint), cached like the
    /// renditions under its own key. Blocks: call it off the async runtime.
    /// A resized picture if it is in memory: the fast path, safe to call on the async runtime
    /// (a cached signed URL then costs no trip through the blocking pool).
    pub(crate) fn resized_cached(
        &self,
        item: &Item,
        size: (u32, u32),
        fit: render::Fit,
        encoding: render::Encoding,
    ) -> Option<Arc<Encoded>> {
        self.memory_hit(&resize_key(item, size, fit, encoding))
    }

    pub(crate) fn resized_blocking(
        &self,
        item: &Item,
        dir: &[u8],
        size: (u32, u32),
        fit: render::Fit,
        encoding: render::Encoding,
    ) -> Result<Arc<Encoded>, &'static str> {
        let key = resize_key(item, size, fit, encoding);
        if let Some(hit) = self.lookup(key.clone()) {
            return Ok(hit);
        }
        let Source::Pure(format) = self.source(item.format) else {
            return Err("only photos the pure-Rust pipeline decodes can be resized");
        };
        let rel = RelPath { dir, name: &item.name };
        let input = self.open_input(rel, format).map_err(|_| "unreadable")?;
        self.stats.decoded.fetch_add(1, Ordering::Relaxed);
        let displayed = (item.width > 0 && item.height > 0).then_some((item.width, item.height));
        let (orientation, quality, limits) = (item.orientation, self.opts.quality, self.opts.limits.clone());
        let held = self.budget.reserve(render::estimate_input(&input, format, size.0.max(size.1), &limits));
        let out = bounded(limits.max_decode_time, move || {
            let _held = held;
            render::resize(input, format, orientation, displayed, size, fit, encoding, quality, &limits)
        })
        .map_err(|e| {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            e.reason()
        })?;
        Ok(self.remember(key, out.jpeg, Keep::InMemory))
    }

    /// What a render of a file the pure-Rust pipeline decodes reads: a JPEG open, for the decoder
    /// to read as it goes (see [`render::Input`]), anything else its bytes.
    fn open_input(&self, rel: RelPath<'_>, format: Format) -> std::io::Result<render::Input> {
        if format == Format::Jpeg {
            Ok(render::Input::Jpeg(self.fs.open_blocking(rel)?.0))
        } else {
            self.fs.read_all(rel, self.opts.limits.max_file_bytes).map(render::Input::Bytes)
        }
    }

    /// An encoded output from memory, else from disk (then kept in memory too).
    fn lookup(&self, key: String) -> Option<Arc<Encoded>> {
        if let Some(hit) = lock(&self.memory).get(&key) {
            self.stats.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Some(hit);
        }
        let bytes = self.disk.get(&key).ok()??;
        self.stats.disk_hits.fetch_add(1, Ordering::Relaxed);
        let encoded = Arc::new(Encoded { bytes: bytes.into(), etag: key.clone() });
        lock(&self.memory).put(key, Arc::clone(&encoded));
        Some(encoded)
    }

    /// Keeps a new output on disk and in memory.
    fn remember(&self, key: String, bytes: Vec<u8>, keep: Keep) -> Arc<Encoded> {
        if let Err(e) = self.disk.put(&key, &bytes) {
            tracing::warn!(error = %e, "cannot write to the thumbnail cache");
        }
        let encoded = Arc::new(Encoded { bytes: bytes.into(), etag: key.clone() });
        if keep == Keep::InMemory {
            lock(&self.memory).put(key, Arc::clone(&encoded));
        }
        encoded
    }

    /// Whether both renditions of an item are already on disk.
    fn cached_on_disk(&self, item: &Item) -> bool {
        [Rendition::Thumb, Rendition::Preview].iter().all(|&r| self.disk.contains(&cache_key(item, r)))
    }

    /// Decodes a file once for both renditions, sharing the work with concurrent callers.
    fn make(&self, item: &Item, dir: &[u8], keep: Keep) -> Made {
        let key: JobKey = (item.id(), item.size, item.mtime_ns);
        if let Some(&reason) = lock(&self.failed).get(&key) {
            return Err(reason);
        }
        self.shared(key, || self.decode(item, dir, keep))
    }

    /// Runs `work` for a file version, unless a concurrent caller already runs it for the same
    /// version: then its result is waited for and shared. A failure is remembered in `failed`.
    fn shared(&self, key: JobKey, work: impl FnOnce() -> Made) -> Made {
        let (job, owner) = {
            let mut jobs = lock(&self.jobs);
            match jobs.get(&key) {
                Some(job) => (Arc::clone(job), false),
                None => {
                    let job = Arc::new(Job::default());
                    jobs.insert(key, Arc::clone(&job));
                    (job, true)
                }
            }
        };
        if !owner {
            let mut result = lock(&job.result);
            while result.is_none() {
                result = job.done.wait(result).unwrap_or_else(|p| p.into_inner());
            }
            return result.clone().expect("checked above");
        }
        // Completes the job when dropped: after `work` returns, and also if it panics.
        let mut completion = Completion { thumbs: self, key, job, result: None };
        let result = work();
        completion.result = Some(result.clone());
        result
    }

    fn decode(&self, item: &Item, dir: &[u8], keep: Keep) -> Made {
        let name = String::from_utf8_lossy(&item.name);
        let rel = RelPath { dir, name: &item.name };
        let unreadable = |e: std::io::Error| {
            tracing::warn!(file = %name, error = %e, "cannot read for a thumbnail");
            "unreadable"
        };
        let (input, format, orientation) = match self.source(item.format) {
            Source::Pure(format) => {
                (self.open_input(rel, format).map_err(unreadable)?, format, item.orientation)
            }
            Source::External(tool) => {
                let input = self.fs.open_for_tool(rel).map_err(|e| {
                    tracing::warn!(file = %name, error = %e, "cannot open for a thumbnail");
                    "unreadable"
                })?;
                let out = self.disk.temp_path(&id::encode(item.id()), "jpg");
                let made = match item.kind() {
                    Kind::Video => external::video_poster(tool, input, &out, self.opts.decoder_timeout),
                    Kind::Image => external::heif_to_jpeg(tool, input, &out, self.opts.decoder_timeout),
                };
                // Both tools apply the file's rotation themselves.
                let bytes = made.map_err(|e| {
                    self.stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(file = %name, error = %e, "no thumbnail from the external decoder");
                    "the external decoder failed"
                })?;
                (render::Input::Bytes(bytes), Format::Jpeg, 1)
            }
            Source::Missing(hint) => return Err(hint),
        };
        self.stats.decoded.fetch_add(1, Ordering::Relaxed);
        let targets = [
            render::Target { long_side: self.opts.preview_px },
            render::Target { long_side: self.opts.thumb_px },
        ];
        let (quality, limits) = (self.opts.quality, self.opts.limits.clone());
        let need =
            render::estimate_input(&input, format, self.opts.preview_px.max(self.opts.thumb_px), &limits);
        let held = self.budget.reserve(need);
        let started = std::time::Instant::now();
        let rendered = bounded(limits.max_decode_time, move || {
            let _held = held;
            render::render(input, format, orientation, &targets, quality, &limits)
        });
        self.stats.render_time.observe(started.elapsed());
        let rendered = match rendered {
            Ok(r) => r,
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(file = %name, error = %e, "no thumbnail: using a placeholder");
                return Err(e.reason());
            }
        };
        let version = id::version_u32(item.size, item.mtime_ns);
        if let Err(e) = self.disk.append_hash(item.id(), version, &rendered.thumbhash) {
            tracing::warn!(error = %e, "cannot remember a thumbhash in the cache");
        }
        let mut out = rendered.outputs.into_iter();
        let (preview, thumb) = (out.next().ok_or("no output")?, out.next().ok_or("no output")?);
        let store = |which: Rendition, jpeg: Vec<u8>| self.remember(cache_key(item, which), jpeg, keep);
        Ok(Renditions {
            thumb: store(Rendition::Thumb, thumb.jpeg),
            preview: store(Rendition::Preview, preview.jpeg),
            thumbhash: (item.id(), version, rendered.thumbhash),
        })
    }

    /// Makes thumbnails for files that just arrived ([`Thumbs::make_soon`]), one at a time at
    /// normal priority: someone is probably waiting for them (a camera snapshot on a phone).
    /// Runs for good; `locate` finds an item as the index has it now, `made` hears each
    /// thumbhash made.
    pub(crate) fn run_fresh(
        &self,
        locate: impl Fn(u64) -> Option<(Item, Vec<u8>)>,
        made: impl Fn(HashRecord),
    ) -> ! {
        loop {
            let id = next_in(&self.fresh, &self.fresh_ready);
            let Some((item, dir)) = locate(id) else { continue };
            if !self.can_render(item.format) || self.cached_on_disk(&item) {
                continue;
            }
            if let Ok(r) = self.make(&item, &dir, Keep::InMemory) {
                made(r.thumbhash);
                // The AVIF on a thread of its own at low priority: an encode takes several times
                // a decode, and a camera's next snapshot must not wait behind it (made here, it
                // put 400 ms between a snapshot and its thumbnail instead of 70).
                if self.opts.avif {
                    let mut q = lock(&self.fresh_avif);
                    // Newest first; past the bound the oldest waits for the next background pass.
                    if q.len() >= FRESH_AVIF_QUEUE {
                        q.pop_back();
                    }
                    q.push_front(id);
                    self.fresh_avif_ready.notify_one();
                }
            }
        }
    }

    /// Makes the AVIF thumbnails of new files queued by [`Thumbs::run_fresh`], newest first, at
    /// a lowered priority. Runs for good.
    pub(crate) fn run_fresh_avif(&self, locate: impl Fn(u64) -> Option<(Item, Vec<u8>)>) -> ! {
        lower_priority();
        loop {
            let id = next_in(&self.fresh_avif, &self.fresh_avif_ready);
            if let Some((item, _)) = locate(id) {
                self.make_avif(&item, Keep::InMemory);
            }
        }
    }

    /// Hands the thumbhashes of `thumbhash.log` to `attach`, which returns those still current,
    /// and rewrites the log without the others once they are most of it.
    pub(crate) fn load_thumbhashes(&self, attach: impl FnOnce(Vec<HashRecord>) -> Vec<HashRecord>) {
        let records = match self.disk.load_hashes() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the thumbhash log; placeholders come back as thumbnails are made");
                return;
            }
        };
        let total = records.len();
        let current = attach(records);
        if total > 1024
            && current.len() * 2 < total
            && let Err(e) = self.disk.rewrite_hashes(&current)
        {
            tracing::warn!(error = %e, "cannot compact the thumbhash log");
        }
    }

    /// Fills the disk cache for the items of `todo` in that order, on `workers` low-priority
    /// threads, and returns when all are done. Ids only (8 bytes each): `locate` looks an item up
    /// when its turn comes, so 100k items cost no copy of the index, and a file removed meanwhile
    /// is simply skipped. `made` hears each thumbhash made.
    pub(crate) fn background_pass(
        &self,
        todo: &dyn Todo,
        locate: impl Fn(u64) -> Option<(Item, Vec<u8>)> + Sync,
        made: impl Fn(HashRecord) + Sync,
    ) {
        let workers = self.opts.workers;
        self.stats.background_total.store(todo.total(), Ordering::Relaxed);
        self.stats
            .background_started_ms
            .store(self.started.elapsed().as_millis().max(1) as u64, Ordering::Relaxed);
        tracing::info!(items = todo.total(), workers, "making thumbnails in the background");
        let started = Instant::now();
        self.on_workers(todo, &self.stats.background_done, true, |id| {
            if let Some((item, dir)) = locate(id)
                && !self.cached_on_disk(&item)
                && let Ok(r) = self.make(&item, &dir, Keep::OnDiskOnly)
            {
                made(r.thumbhash);
            }
        });
        tracing::info!(
            items = todo.total(),
            decoded = self.stats.decoded.load(Ordering::Relaxed),
            failed = self.stats.failed.load(Ordering::Relaxed),
            seconds = format_args!("{:.1}", started.elapsed().as_secs_f64()),
            "thumbnails done"
        );
        if !self.opts.avif {
            return;
        }
        // Every JPEG first, so the whole grid shows; then the smaller thumbnails, newest first.
        todo.restart();
        self.stats.avif_total.store(todo.total(), Ordering::Relaxed);
        let started = Instant::now();
        self.on_workers(todo, &self.stats.avif_done, false, |id| {
            if let Some((item, _)) = locate(id)
                && self.can_render(item.format)
            {
                self.make_avif(&item, Keep::OnDiskOnly);
            }
        });
        tracing::info!(
            items = todo.total(),
            seconds = format_args!("{:.1}", started.elapsed().as_secs_f64()),
            "AVIF thumbnails done"
        );
    }

    /// Runs `work` for each id of `todo` in order on the background workers (low priority),
    /// counting in `done`, and returns when all are done; `log` says the progress every 10 s.
    fn on_workers(&self, todo: &dyn Todo, done: &AtomicU64, log: bool, work: impl Fn(u64) + Sync) {
        std::thread::scope(|s| {
            let threads: Vec<_> = (0..self.opts.workers)
                .map(|n| {
                    let work = &work;
                    std::thread::Builder::new()
                        .name(format!("spis-thumb-{n}"))
                        .spawn_scoped(s, move || {
                            lower_priority();
                            while let Some(id) = todo.next() {
                                work(id);
                                done.fetch_add(1, Ordering::Relaxed);
                            }
                        })
                        .expect("spawning a thumbnail worker")
                })
                .collect();
            let mut last_log = Instant::now();
            while !threads.iter().all(|t| t.is_finished()) {
                std::thread::sleep(std::time::Duration::from_millis(100));
                if log && last_log.elapsed() >= std::time::Duration::from_secs(10) {
                    last_log = Instant::now();
                    let p = self.background_progress();
                    tracing::info!(
                        done = p.done,
                        total = p.total,
                        per_second = format_args!("{:.1}", p.per_second),
                        eta_s = p.eta_s,
                        "making thumbnails"
                    );
                }
            }
        });
    }

    /// Removes from the disk cache every entry but those of `current` (id, file version) and of
    /// this pipeline: entries of files that changed or went away only take space.
    pub(crate) fn sweep(&self, current: &HashSet<(u64, u32)>) {
        match self.disk.sweep(&|key| parse_key(key).is_some_and(|k| current.contains(&k))) {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed stale thumbnails from the cache"),
            Err(e) => tracing::warn!(error = %e, "cannot sweep the thumbnail cache"),
        }
    }
}

/// Completes a shared job when dropped: with the owner's result once its work returned, or as a
/// failure when the owner panicked, so the requests waiting for it get a placeholder instead of
/// waiting forever.
struct Completion<'a> {
    thumbs: &'a Thumbs,
    key: JobKey,
    job: Arc<Job>,
    /// Still `None` when the work panicked.
    result: Option<Made>,
}

impl Drop for Completion<'_> {
    fn drop(&mut self) {
        let result = self.result.take().unwrap_or_else(|| {
            tracing::error!(id = %id::encode(self.key.0), "making a thumbnail panicked (a bug)");
            Err(PANICKED)
        });
        if let Err(reason) = result {
            lock(&self.thumbs.failed).insert(self.key, reason);
        }
        *lock(&self.job.result) = Some(result);
        self.job.done.notify_all();
        lock(&self.thumbs.jobs).remove(&self.key);
    }
}

/// The (id, file version) of a current-pipeline cache key; `None` for anything else.
fn parse_key(key: &str) -> Option<(u64, u32)> {
    let rest = key
        .strip_suffix(&format!("-p{PIPELINE_VERSION}.jpg"))
        .or_else(|| key.strip_suffix(&format!("-p{PIPELINE_VERSION}.png")))
        .or_else(|| key.strip_suffix(&format!("-p{PIPELINE_VERSION}.avif")))?;
    let (rest, which) = rest.rsplit_once('-')?;
    let resized = which.strip_prefix('r').is_some_and(|r| r.bytes().all(|b| b.is_ascii_alphanumeric()));
    if Rendition::parse(which).is_none() && !resized {
        return None;
    }
    let (id, version) = rest.rsplit_once('-')?;
    Some((id::decode(id)?, u32::from_str_radix(version, 16).ok().filter(|_| version.len() == 8)?))
}

/// Runs a render on a decode thread and waits at most `limit` for it. A render over the limit
/// is abandoned (its thread finishes in the background and its result is dropped) and a panic in
/// a decoder is an error for that file: a hostile file costs a placeholder, never a worker.
fn bounded<T: Send + 'static>(
    limit: std::time::Duration,
    work: impl FnOnce() -> Result<T, render::RenderError> + Send + 'static,
) -> Result<T, render::RenderError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    if let Err(e) = on_decode_thread(Box::new(move || {
        let _ = tx.send(work());
    })) {
        return Err(render::RenderError::Corrupt(format!("cannot start a decode thread: {e}")));
    }
    match rx.recv_timeout(limit) {
        Ok(result) => result,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(render::RenderError::TooSlow(limit)),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err(render::RenderError::Corrupt("the decoder panicked".into()))
        }
    }
}

/// The id at the front of `queue`, waiting on `ready` until there is one.
fn next_in(queue: &Mutex<std::collections::VecDeque<u64>>, ready: &Condvar) -> u64 {
    let mut q = lock(queue);
    loop {
        match q.pop_front() {
            Some(id) => return id,
            None => q = ready.wait(q).unwrap_or_else(|p| p.into_inner()),
        }
    }
}

type DecodeJob = Box<dyn FnOnce() + Send>;

/// New files waiting for their AVIF thumbnail at most (past it, the oldest waits for the next
/// background pass).
const FRESH_AVIF_QUEUE: usize = 256;

/// Decode threads waiting for a job, by a number of their own. They are kept, not made per
/// render (with jpeg-decoder's pool, two new threads a photo): 50 baseline 12 MP photos, index
/// and both renditions, took 3.96 s instead of 4.44 s on the static build. The peak RSS did not
/// change (BENCHMARKS.md).
static IDLE_DECODERS: Mutex<Vec<(u64, std::sync::mpsc::Sender<DecodeJob>)>> = Mutex::new(Vec::new());
/// How long a decode thread waits for another job before it ends.
const DECODER_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `job` on an idle decode thread, or on a new one when none is idle.
fn on_decode_thread(job: DecodeJob) -> std::io::Result<()> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let mut job = job;
    while let Some((_, idle)) = lock(&IDLE_DECODERS).pop() {
        // A thread that has just ended hands the job back.
        match idle.send(job) {
            Ok(()) => return Ok(()),
            Err(std::sync::mpsc::SendError(back)) => job = back,
        }
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    std::thread::Builder::new().name("spis-decode".into()).spawn(move || {
        let mut job = Some(job);
        while let Some(run) = job.take() {
            // A panicking decoder drops the job's result sender, which the caller reports; the
            // thread itself goes on.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
            let (tx, rx) = std::sync::mpsc::channel();
            lock(&IDLE_DECODERS).push((id, tx));
            job = rx.recv_timeout(DECODER_IDLE).ok().or_else(|| {
                // Leaving: off the idle list first, then any job that came in meanwhile is run.
                lock(&IDLE_DECODERS).retain(|(other, _)| *other != id);
                rx.try_recv().ok()
            });
        }
    })?;
    Ok(())
}

/// Renders whose budget share is at least this are followed by [`crate::memory::release_freed`]
/// (when their [`Held`] is dropped, on their thread); small pictures (most of a surveillance
/// box's) need not pay for the call.
const LARGE_RENDER: u64 = 4 << 20;

/// The bytes renders in flight hold together, bounded: [`Budget::reserve`] waits for room.
#[derive(Debug)]
struct Budget {
    capacity: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

/// A render's share of the [`Budget`], given back when dropped (when the render ends, on its own
/// thread, even after `bounded` stopped waiting for it).
#[derive(Debug)]
struct Held {
    budget: Arc<Budget>,
    bytes: u64,
}

impl Budget {
    fn new(capacity: u64) -> Budget {
        Budget { capacity: capacity.max(1), used: Mutex::new(0), freed: Condvar::new() }
    }

    /// Waits until a render that holds `need` bytes ([`render::estimate_input`]) fits beside
    /// those in flight; one larger than the whole budget waits to run alone.
    fn reserve(self: &Arc<Self>, need: u64) -> Held {
        let need = need.min(self.capacity);
        let mut used = lock(&self.used);
        while *used + need > self.capacity {
            used = self.freed.wait(used).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *used += need;
        Held { budget: Arc::clone(self), bytes: need }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        *lock(&self.budget.used) -= self.bytes;
        self.budget.freed.notify_all();
        // Dropped on the render's thread as it ends: what the render freed there goes back.
        if self.bytes >= LARGE_RENDER {
            crate::memory::release_freed();
        }
    }
}

/// Background work yields to requests: nice 10 for this thread only (Linux applies
/// setpriority to a thread id).
fn lower_priority() {
    // SAFETY: gettid has no preconditions; setpriority on our own thread id only changes its nice.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// Whether a new output also goes into the memory cache. The background pass keeps its outputs on
/// disk only: the memory cache is for what people look at, and filling it with every preview
/// would hold tens of MB for nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    InMemory,
    OnDiskOnly,
}

/// Where the pixels of a format come from.
enum Source<'a> {
    /// The pure-Rust pipeline decodes it.
    Pure(Format),
    /// An external tool turns it into a JPEG first.
    External(&'a std::path::Path),
    /// Nothing here can: the placeholder says what to install.
    Missing(&'static str),
}

/// The URL of an item's rendition. Its `v` parameter changes with the file and the pipeline, so
/// the URL can be cached forever. A `Display`, so a page of items is written without allocating.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RenditionUrl {
    id: u64,
    version: u32,
    which: Rendition,
}

impl RenditionUrl {
    pub(crate) fn new(item: &Item, which: Rendition) -> RenditionUrl {
        RenditionUrl { id: item.id(), version: id::version_u32(item.size, item.mtime_ns), which }
    }
}

impl std::fmt::Display for RenditionUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let id = id::Text::new(self.id);
        write!(f, "/api/media/{id}/{}?v={:08x}.{PIPELINE_VERSION}", self.which.name(), self.version)
    }
}

/// Like [`cache_key`], for a `/resize` output: `r{w}x{h}{c|f}` in place of the rendition name.
fn resize_key(item: &Item, (w, h): (u32, u32), fit: render::Fit, encoding: render::Encoding) -> String {
    let fit = match fit {
        render::Fit::Contain => 'f',
        render::Fit::Cover => 'c',
    };
    let mut key = key_start(item);
    let _ = write!(key, "r{w}x{h}{fit}-p{PIPELINE_VERSION}.{}", encoding.ext());
    key
}

/// The AVIF of a thumbnail: its JPEG's key with another extension.
fn avif_key(item: &Item) -> String {
    let mut key = cache_key(item, Rendition::Thumb);
    key.truncate(key.len() - "jpg".len());
    key.push_str("avif");
    key
}

/// id, file version, rendition and pipeline version: a new file version or pipeline is a new key.
fn cache_key(item: &Item, which: Rendition) -> String {
    let mut key = key_start(item);
    let _ = write!(key, "{}-p{PIPELINE_VERSION}.jpg", which.name());
    key
}

/// `{id}-{version}-` in a string with room for the rest of a key: one allocation per key, on the
/// path of every cached answer.
fn key_start(item: &Item) -> String {
    let mut key = String::with_capacity(48);
    let _ = write!(key, "{}-{:08x}-", id::Text::new(item.id()), id::version_u32(item.size, item.mtime_ns));
    key
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here is a map operation that a panic cannot leave half done.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Encoded renditions by key, evicting the least recently used beyond a byte budget.
#[derive(Debug)]
struct MemoryCache {
    lru: lru::LruCache<String, Arc<Encoded>>,
    bytes: usize,
    max_bytes: usize,
}

impl MemoryCache {
    fn new(max_bytes: usize) -> MemoryCache {
        MemoryCache { lru: lru::LruCache::unbounded(), bytes: 0, max_bytes }
    }

    fn get(&mut self, key: &str) -> Option<Arc<Encoded>> {
        self.lru.get(key).cloned()
    }

    fn put(&mut self, key: String, value: Arc<Encoded>) {
        let size = value.bytes.len() + key.len();
        if size > self.max_bytes {
            return;
        }
        if let Some(old) = self.lru.put(key.clone(), value) {
            self.bytes -= old.bytes.len() + key.len();
        }
        self.bytes += size;
        while self.bytes > self.max_bytes {
            match self.lru.pop_lru() {
                Some((k, v)) => self.bytes -= v.bytes.len() + k.len(),
                None => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::time::Duration;

    fn encoded(n: usize) -> Arc<Encoded> {
        Arc::new(Encoded { bytes: Bytes::from(vec![0u8; n]), etag: String::new() })
    }

    fn jpeg_item(id: u64, name: &str, size: u64, mtime_ns: i64, (width, height): (u32, u32)) -> Item {
        Item {
            key: (0, id),
            dir: 0,
            name: Box::from(name.as_bytes()),
            offset_min: i16::MIN,
            date_source: crate::library::dates::DateSource::Mtime,
            size,
            mtime_ns,
            width,
            height,
            format: Format::Jpeg,
            orientation: 1,
            favorite: false,
            camera: 0,
            duration_ms: None,
            thumbhash: 0,
        }
    }

    /// Thumbnails over a media folder of their own (`<tmp>/media`, state in `<tmp>/state`), with
    /// no background workers.
    fn thumbs_in(tmp: &tempfile::TempDir) -> Thumbs {
        let (media, state) = (tmp.path().join("media"), tmp.path().join("state"));
        std::fs::create_dir_all(&media).unwrap();
        let fs = MediaFs::try_open(&media, &state, crate::config::XattrMode::Off, false).unwrap();
        let opts = ThumbOpts {
            thumb_px: 32,
            preview_px: 64,
            quality: 80,
            memory_bytes: 1 << 20,
            workers: 0,
            avif: false,
            resize_sizes: vec![],
            limits: render::Limits::sane_defaults(),
            decoder_timeout: std::time::Duration::from_secs(30),
        };
        Thumbs::try_new(opts, Arc::new(fs), state.join("cache")).unwrap()
    }

    /// Waits until `done`, for at most a few seconds.
    fn eventually(what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn the_decode_budget_makes_a_render_wait_for_room_and_lets_an_oversize_one_run_alone() {
        let budget = Arc::new(Budget::new(100));
        // Not pictures: each needs its own length.
        let need = |len| {
            let input = render::Input::Bytes(vec![0; len]);
            render::estimate_input(&input, Format::Png, 400, &render::Limits::sane_defaults())
        };
        let first = budget.reserve(need(60));
        let (tx, rx) = std::sync::mpsc::channel();
        let waiting = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || {
                let held = budget.reserve(need(60));
                tx.send(()).unwrap();
                drop(held);
                // Larger than the whole budget: clamped, so it runs once it is alone.
                let alone = budget.reserve(need(500));
                assert_eq!(*lock(&budget.used), 100);
                drop(alone);
            })
        };
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "60 + 60 bytes fitted in 100");
        drop(first);
        rx.recv_timeout(Duration::from_secs(10)).expect("the room freed was not given to the waiting render");
        waiting.join().unwrap();
        assert_eq!(*lock(&budget.used), 0);
    }

    #[test]
    fn a_jpeg_in_the_media_folder_gets_a_thumbnail_and_a_thumbhash() {
        let tmp = tempfile::tempdir().unwrap();
        let thumbs = thumbs_in(&tmp);
        let (w, h) = (128u16, 96u16);
        let pixels: Vec<u8> =
            (0..u32::from(w) * u32::from(h)).flat_map(|i| [(i % 256) as u8, (i / 64) as u8, 128]).collect();
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 90)
            .encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        std::fs::write(tmp.path().join("media/a.jpg"), &jpeg).unwrap();
        let item = jpeg_item(7, "a.jpg", jpeg.len() as u64, 1, (w.into(), h.into()));

        let (served, thumbhash) = thumbs.get_blocking(&item, b"", Rendition::Thumb);
        let Served::Ready(thumb) = served else { panic!("a placeholder: {served:?}") };
        let size = imagesize::blob_size(&thumb.bytes).unwrap();
        assert_eq!((size.width, size.height), (32, 24), "the long side is thumb_px");
        let (id, version, hash) = thumbhash.expect("a decode makes a thumbhash");
        assert_eq!((id, version), (7, id::version_u32(item.size, item.mtime_ns)));
        assert!(!hash.is_empty());
        assert!(thumbs.cached_on_disk(&item), "both renditions are kept on disk");

        // Asked again: from memory, with no new decode and no thumbhash to attach.
        let (again, thumbhash) = thumbs.get_blocking(&item, b"", Rendition::Thumb);
        assert!(matches!(again, Served::Ready(r) if r.bytes == thumb.bytes));
        assert!(thumbhash.is_none());
        assert_eq!(thumbs.stats.decoded.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_panic_while_making_a_thumbnail_releases_the_requests_waiting_for_it() {
        let tmp = tempfile::tempdir().unwrap();
        let thumbs = Arc::new(thumbs_in(&tmp));
        let key: JobKey = (7, 1, 1);
        // References to the job: the map's, its owner's, and one per waiter.
        let holders = |thumbs: &Thumbs| lock(&thumbs.jobs).get(&key).map_or(0, Arc::strong_count);
        let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
        let owner = {
            let thumbs = Arc::clone(&thumbs);
            std::thread::spawn(move || {
                thumbs.shared(key, || {
                    let _ = wait_for_go.recv();
                    panic!("a bug while making a thumbnail");
                })
            })
        };
        eventually("the owner holds the job", || holders(&thumbs) == 2);
        let (answer, answered) = std::sync::mpsc::channel();
        let waiter = {
            let thumbs = Arc::clone(&thumbs);
            std::thread::spawn(move || {
                let _ = answer.send(thumbs.shared(key, || Err("the waiter ran the job itself")));
            })
        };
        eventually("the waiter waits for the owner", || holders(&thumbs) == 3);
        go.send(()).unwrap();

        let got = answered.recv_timeout(Duration::from_secs(10)).expect("the waiter is released");
        assert_eq!(got.err(), Some(PANICKED));
        assert!(owner.join().is_err(), "the owner's panic goes on up");
        waiter.join().unwrap();
        assert_eq!(holders(&thumbs), 0, "the job is gone");
        assert_eq!(lock(&thumbs.failed).get(&key), Some(&PANICKED), "and not tried again");
    }

    #[test]
    fn cache_keys_parse_back_to_their_file_version() {
        let item = jpeg_item(42, "a.jpg", 10, 20, (1, 1));
        for which in [Rendition::Thumb, Rendition::Preview] {
            assert_eq!(parse_key(&cache_key(&item, which)), Some((42, id::version_u32(10, 20))));
        }
        let resized = resize_key(&item, (640, 480), render::Fit::Cover, render::Encoding::Png);
        assert_eq!(parse_key(&resized), Some((42, id::version_u32(10, 20))));
        assert!(avif_key(&item).ends_with("-thumb-p1.avif"), "{}", avif_key(&item));
        assert_eq!(parse_key(&avif_key(&item)), Some((42, id::version_u32(10, 20))));
        for stale in
            ["AAAAAAAAAAA-0000000a-thumb-p0.jpg", ".tmp", "x-y-thumb-p1.jpg", "AAAAAAAAAAA-zz-thumb-p1.jpg"]
        {
            assert_eq!(parse_key(stale), None, "{stale}");
        }
    }

    #[test]
    fn a_render_over_its_time_limit_or_panicking_is_an_error_not_a_stall() {
        let started = Instant::now();
        let slow = bounded(std::time::Duration::from_millis(50), || {
            std::thread::sleep(std::time::Duration::from_secs(2));
            Ok(())
        });
        assert!(matches!(slow, Err(render::RenderError::TooSlow(_))));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let panicked: Result<(), _> = bounded(std::time::Duration::from_secs(5), || panic!("hostile file"));
        assert!(matches!(panicked, Err(render::RenderError::Corrupt(_))));
        assert_eq!(bounded(std::time::Duration::from_secs(5), || Ok(7)).unwrap(), 7);
    }

    #[test]
    fn memory_cache_stays_within_its_byte_budget_and_keeps_recent_entries() {
        let mut c = MemoryCache::new(1000);
        c.put("a".into(), encoded(400));
        c.put("b".into(), encoded(400));
        assert!(c.get("a").is_some());
        c.put("c".into(), encoded(400));
        assert!(c.bytes <= 1000);
        assert!(c.get("b").is_none(), "least recently used goes first");
        assert!(c.get("a").is_some() && c.get("c").is_some());
        c.put("huge".into(), encoded(5000));
        assert!(c.get("huge").is_none());
        c.put("a".into(), encoded(10));
        assert_eq!(c.bytes, 10 + 1 + 400 + 1);
    }
}
