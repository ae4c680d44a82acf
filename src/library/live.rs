//! Keeping the index live: the first full index, then every change the watcher reports or a
//! rescan finds, applied to the index and announced as [`MediaEvent`]s.
//!
//! One thread (`spis-live`) owns all of it, so changes are applied in the order they happened.
//! The inotify reader runs on a thread of its own and hands changes over through a bounded queue;
//! when that queue or the kernel's overflows, the lost events are replaced by a rescan of the
//! whole tree. A rescan lists only folders whose mtime changed since they were last listed, so it
//! is cheap when nothing changed. The rule it keeps: a file is announced `added` once, when it is
//! first complete; anything seen again with the same size and mtime is not news.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::indexer::{self, Inserted};
use super::{Item, Library, id};
use crate::config::WatchMode;
use crate::fs::watch::{self, Change, Watcher};
use crate::fs::{Found, Listing, RelPath};

/// What the rest of the server hears about.
#[derive(Debug, Clone)]
pub(crate) enum MediaEvent {
    /// A new file is in the index.
    Added(Item),
    /// A file was re-indexed, marked or unmarked as a favorite, or got its thumbnail.
    Changed(Item),
    /// A file left the index; the item is as it was.
    Removed(Item),
    /// A file came back from the trash.
    Restored(Item),
}

impl MediaEvent {
    pub(crate) fn item(&self) -> &Item {
        match self {
            MediaEvent::Added(i)
            | MediaEvent::Changed(i)
            | MediaEvent::Removed(i)
            | MediaEvent::Restored(i) => i,
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            MediaEvent::Added(_) => "added",
            MediaEvent::Changed(_) => "changed",
            MediaEvent::Removed(_) => "removed",
            MediaEvent::Restored(_) => "restored",
        }
    }
}

/// How the live thread runs.
#[derive(Debug, Clone)]
pub(crate) struct LiveOpts {
    pub mode: WatchMode,
    pub poll_interval: Duration,
    pub queue: usize,
    pub max_watches: usize,
}

/// How the live thread follows the folder, as `/api/status` reports it in `watch.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Watching {
    /// inotify reports every change.
    Inotify,
    /// inotify, and a rescan every poll interval too: the folder is on a network filesystem
    /// (whose other clients inotify cannot see), or some folders could not be watched.
    InotifyAndPoll,
    /// A rescan every poll interval only: asked for, or inotify is unavailable or stopped.
    Poll,
    /// The first index only.
    Off,
}

impl Watching {
    /// The name in `/api/status`; the web app and the tests read it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Watching::Inotify => "inotify",
            Watching::InotifyAndPoll => "inotify+poll",
            Watching::Poll => "poll",
            Watching::Off => "off",
        }
    }

    fn uses_inotify(self) -> bool {
        matches!(self, Watching::Inotify | Watching::InotifyAndPoll)
    }
}

/// What `/api/status` reports about watching.
#[derive(Debug, Default)]
pub(crate) struct LiveStats {
    /// Once decided (`None` before).
    mode: Mutex<Option<Watching>>,
    pub watched_folders: AtomicU64,
    pub unwatched_folders: AtomicU64,
    pub overflows: AtomicU64,
    pub rescans: AtomicU64,
    /// Changes applied (added + changed + removed) since the first index.
    pub applied: AtomicU64,
    /// The media folder is gone (unmounted, deleted); what was indexed is still listed.
    pub media_missing: AtomicBool,
    /// Asked for (SIGHUP, `systemctl reload spis`): watch every folder again and list it all.
    pub reload: AtomicBool,
    /// Bumped when the watches are replaced; an inotify thread of an older generation stops.
    generation: AtomicU64,
}

impl LiveStats {
    /// How the folder is followed ("" until the live thread has decided).
    pub(crate) fn mode(&self) -> &'static str {
        self.mode.lock().unwrap_or_else(|p| p.into_inner()).map_or("", Watching::as_str)
    }

    fn set_mode(&self, mode: Watching) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = Some(mode);
    }
}

/// A folder as last listed: its mtime and subfolders.
struct Memo {
    mtime_ns: i64,
    subdirs: Vec<Vec<u8>>,
}

/// An mtime that never matches: the folder is listed again on the next rescan.
const DIRTY: i64 = i64::MIN;
/// Folders changed this recently may still change within the same mtime tick; list them again.
const SETTLE_NS: i64 = 2_000_000_000;
/// Every this many periodic rescans, every folder is listed again, to catch files rewritten in
/// place (which does not change their folder's mtime).
const DEEP_EVERY: u32 = 12;
const META_FLUSH_EVERY: Duration = Duration::from_secs(5);
/// How often the live thread applies favorites changed by other servers (requests also do).
const REPLICA_SYNC_EVERY: Duration = Duration::from_secs(1);
/// How often the live thread checks that the media folder is still the one it watches.
const ROOT_CHECK_EVERY: Duration = Duration::from_secs(2);
/// The longest the live thread waits for changes before it sees to its timed duties.
const TICK: Duration = Duration::from_millis(200);

type Memos = HashMap<Vec<u8>, Memo>;
/// (size, mtime) of the indexed files of one folder, by name.
type Versions<'a> = HashMap<&'a [u8], (u64, i64)>;

pub(super) fn run(lib: &Arc<Library>, opts: LiveOpts, fresh: &dyn Fn(u64)) {
    let (watcher, mode) = start_watching(lib, &opts);
    // The watches exist before the first walk starts, so nothing written meanwhile is missed.
    let overflowed = Arc::new(AtomicBool::new(false));
    let changes = watcher.map(|w| spawn_reader(Arc::clone(lib), w, opts.queue, Arc::clone(&overflowed), 0));
    let root = lib.fs.root_identity();
    // Started before the first index, so the media folder is checked as soon as it is done.
    let mut root_check = Every::new(ROOT_CHECK_EVERY);
    let memos = first_index(lib);
    if mode == Watching::Off {
        return;
    }
    let mut follower = Follower {
        live: Live { lib, memos, fresh },
        next_poll: Instant::now() + opts.poll_interval,
        opts,
        mode,
        changes,
        overflowed,
        root,
        polls: 0,
    };
    let mut replica_sync = Every::new(REPLICA_SYNC_EVERY);
    let mut meta_flush = Every::new(META_FLUSH_EVERY);
    loop {
        follower.apply_changes();
        follower.recover_from_overflow();
        if replica_sync.due() {
            sync_replicas(lib);
        }
        if meta_flush.due() {
            flush_meta_cache(lib);
        }
        if root_check.due() {
            follower.check_media_folder();
        }
        follower.reload_if_asked();
        follower.poll_if_due();
    }
}

/// Starts inotify as `opts.mode` asks, and decides from what it managed and what the folder is
/// on whether periodic rescans are needed too.
fn start_watching(lib: &Library, opts: &LiveOpts) -> (Option<Watcher>, Watching) {
    let stats = &lib.live;
    let watcher = match opts.mode {
        WatchMode::Auto | WatchMode::Inotify => match Watcher::try_new(&lib.fs, opts.max_watches) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot use inotify; rescanning the folder every poll_interval instead");
                None
            }
        },
        WatchMode::Poll | WatchMode::Off => None,
    };
    let network = watch::network_fs(lib.fs.root());
    let periodic = match (&watcher, opts.mode) {
        (_, WatchMode::Off) => false,
        (None, _) => true,
        (Some(w), _) => network.is_some() || w.unwatched > 0,
    };
    let mode = match (&watcher, periodic) {
        (Some(_), true) => Watching::InotifyAndPoll,
        (Some(_), false) => Watching::Inotify,
        (None, true) => Watching::Poll,
        (None, false) => Watching::Off,
    };
    stats.set_mode(mode);
    if let Some(w) = &watcher {
        stats.watched_folders.store(w.watched() as u64, Ordering::Relaxed);
        stats.unwatched_folders.store(w.unwatched as u64, Ordering::Relaxed);
    }
    if let (Some(kind), true) = (network, periodic) {
        tracing::info!(
            filesystem = kind,
            every_s = opts.poll_interval.as_secs(),
            "the media folder is on a network filesystem: also rescanning it periodically"
        );
    }
    (watcher, mode)
}

/// The first full index; returns each folder as it was listed, so rescans skip unchanged ones.
fn first_index(lib: &Arc<Library>) -> Memos {
    let memos = Mutex::new(Memos::new());
    indexer::run(lib, &|dir, listing| {
        memos.lock().unwrap_or_else(|p| p.into_inner()).insert(dir.to_vec(), memo_of(listing));
    });
    memos.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Favorites changed through other servers sharing the state dir reach this one's WebSocket
/// clients even when nobody asks this server anything.
fn sync_replicas(lib: &Library) {
    guarded(|| lib.sync_replicas());
}

/// Writes the metadata cache if records were added to it (no xattrs on this filesystem): every
/// few seconds, not once per file, as the whole file is rewritten each time.
fn flush_meta_cache(lib: &Library) {
    if let Err(e) = lib.fs.flush_meta_cache() {
        tracing::debug!(error = %e, "cannot write the metadata cache");
    }
}

/// A duty done at most once a period.
struct Every {
    period: Duration,
    last: Instant,
}

impl Every {
    fn new(period: Duration) -> Every {
        Every { period, last: Instant::now() }
    }

    /// Whether a period has passed since the duty was last done (or the timer made); if so, the
    /// next period starts now.
    fn due(&mut self) -> bool {
        let due = self.last.elapsed() >= self.period;
        if due {
            self.last = Instant::now();
        }
        due
    }
}

/// The live thread after the first index: what its duties share from one turn of the loop to
/// the next.
struct Follower<'a> {
    live: Live<'a>,
    opts: LiveOpts,
    /// As decided at start; a stopped inotify reader does not change it.
    mode: Watching,
    /// Changes from the inotify reader; `None` once it stopped (or when there is none).
    changes: Option<Queued>,
    /// Set when changes were lost (a queue overflowed, or applying them failed).
    overflowed: Arc<AtomicBool>,
    /// The media folder's identity when last checked; `None` while it is gone.
    root: Option<(u64, u64)>,
    next_poll: Instant,
    /// Periodic rescans so far; every `DEEP_EVERY`th is deep.
    polls: u32,
}

impl Follower<'_> {
    /// Waits up to a tick for changes from inotify and applies them. Without inotify, sleeps
    /// until the next rescan is due, for at most a tick.
    fn apply_changes(&mut self) {
        let Some(rx) = &self.changes else {
            std::thread::sleep(self.next_poll.saturating_duration_since(Instant::now()).min(TICK));
            return;
        };
        match rx.recv_timeout(TICK) {
            Ok(c) => {
                let mut batch = vec![c];
                batch.extend(rx.try_iter().take(4096));
                if !guarded(|| self.live.apply(batch)) {
                    self.overflowed.store(true, Ordering::Release);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                self.changes = None;
                tracing::warn!(
                    "the inotify watcher stopped; rescanning the folder every poll_interval instead"
                );
                self.live.lib.live.set_mode(Watching::Poll);
            }
        }
    }

    /// After changes were lost: lets the burst that overflowed the queue finish, then rescans
    /// once for all of it.
    fn recover_from_overflow(&mut self) {
        if !self.overflowed.swap(false, Ordering::AcqRel) {
            return;
        }
        if let Some(rx) = &self.changes {
            while rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                rx.try_iter().for_each(drop);
            }
        }
        self.overflowed.store(false, Ordering::Release);
        guarded(|| self.live.rescan(b"", true));
    }

    /// Notices the media folder going (unplugged, unmounted) and coming back; when it is back,
    /// asks for everything to be watched and listed again.
    fn check_media_folder(&mut self) {
        let lib = self.live.lib;
        let now = lib.fs.root_identity();
        if now == self.root {
            return;
        }
        match now {
            None => tracing::warn!(
                media = %lib.fs.root().display(),
                "the media folder is gone (unplugged or unmounted?); still serving what was indexed until it is back"
            ),
            Some(_) => {
                tracing::info!(media = %lib.fs.root().display(), "the media folder is back: watching and rescanning it");
                // The old watches are on the old folder; start over on this one.
                lib.live.reload.store(true, Ordering::Release);
            }
        }
        lib.live.media_missing.store(now.is_none(), Ordering::Relaxed);
        self.root = now;
    }

    /// When asked (SIGHUP, or the media folder came back) and the folder is there: watches every
    /// folder again and lists it all.
    fn reload_if_asked(&mut self) {
        let lib = self.live.lib;
        if self.root.is_none() || !lib.live.reload.swap(false, Ordering::AcqRel) {
            return;
        }
        // Watches are on folder inodes: a drive mounted over a watched folder, or a media folder
        // replaced, is only seen by watching everything again.
        if self.mode.uses_inotify() {
            let generation = lib.live.generation.fetch_add(1, Ordering::AcqRel) + 1;
            match Watcher::try_new(&lib.fs, self.opts.max_watches) {
                Ok(w) => {
                    let overflowed = Arc::clone(&self.overflowed);
                    self.changes =
                        Some(spawn_reader(Arc::clone(lib), w, self.opts.queue, overflowed, generation));
                }
                Err(e) => tracing::warn!(error = %e, "cannot watch the media folder again; polling it"),
            }
        }
        guarded(|| self.live.rescan(b"", true));
    }

    /// Rescans the whole folder every poll interval when inotify does not see everything: no
    /// inotify, a network filesystem, or folders left unwatched (out of inotify watches). Every
    /// `DEEP_EVERY`th rescan is deep.
    fn poll_if_due(&mut self) {
        let unwatched = self.live.lib.live.unwatched_folders.load(Ordering::Relaxed) > 0;
        let wanted = self.changes.is_none() || self.mode == Watching::InotifyAndPoll || unwatched;
        if wanted && self.root.is_some() && Instant::now() >= self.next_poll {
            self.polls += 1;
            let deep = self.polls.is_multiple_of(DEEP_EVERY);
            guarded(|| self.live.rescan(b"", deep));
            self.next_poll = Instant::now() + self.opts.poll_interval;
        }
    }
}

/// Runs one step of the live thread; a bug that panics in it costs that step (logged, and the
/// caller rescans), not the live index for the rest of the run. Returns whether it completed.
fn guarded(step: impl FnOnce()) -> bool {
    let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(step)).is_ok();
    if !done {
        tracing::error!("applying file changes failed (a bug); rescanning the folder to recover");
    }
    done
}

/// The receiving end of the inotify reader's queue, which holds at most `watch_queue` changes.
/// Not a `sync_channel`: that one allocates and writes every slot up front (1 MiB resident for
/// the default 16,384, for good); this one holds only what is queued, and counts it.
struct Queued {
    rx: mpsc::Receiver<Change>,
    pending: Arc<AtomicUsize>,
}

impl Queued {
    fn taken(&self, c: Change) -> Change {
        self.pending.fetch_sub(1, Ordering::AcqRel);
        c
    }

    fn recv_timeout(&self, wait: Duration) -> Result<Change, RecvTimeoutError> {
        self.rx.recv_timeout(wait).map(|c| self.taken(c))
    }

    fn try_iter(&self) -> impl Iterator<Item = Change> + '_ {
        self.rx.try_iter().map(|c| self.taken(c))
    }
}

/// Reads inotify events on a thread of its own, into a queue of `queue` changes: the receiver
/// returned. When the queue is full, the changes are dropped and `overflowed` is set instead.
fn spawn_reader(
    lib: Arc<Library>,
    mut watcher: Watcher,
    queue: usize,
    overflowed: Arc<AtomicBool>,
    generation: u64,
) -> Queued {
    let (tx, rx) = mpsc::channel::<Change>();
    let pending = Arc::new(AtomicUsize::new(0));
    let queued = Queued { rx, pending: Arc::clone(&pending) };
    std::thread::Builder::new()
        .name("spis-inotify".into())
        .spawn(move || {
            let mut changes = Vec::new();
            loop {
                if let Err(e) = watcher.wait(&lib.fs, &mut changes, Duration::from_secs(1)) {
                    tracing::error!(error = %e, "cannot read inotify events");
                    return;
                }
                if lib.live.generation.load(Ordering::Acquire) != generation {
                    // Replaced by a newer watcher: stop, and free this one's kernel watches.
                    return;
                }
                lib.live.watched_folders.store(watcher.watched() as u64, Ordering::Relaxed);
                lib.live.unwatched_folders.store(watcher.unwatched as u64, Ordering::Relaxed);
                for c in changes.drain(..) {
                    let lost = match c {
                        Change::Overflow => true,
                        _ if pending.load(Ordering::Acquire) >= queue => true,
                        c => {
                            pending.fetch_add(1, Ordering::AcqRel);
                            if tx.send(c).is_err() {
                                return;
                            }
                            false
                        }
                    };
                    if lost && !overflowed.swap(true, Ordering::AcqRel) {
                        let n = lib.live.overflows.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::warn!(
                            overflows = n,
                            "file events came faster than they could be queued; rescanning the whole folder \
                             (raise watch_queue, or fs.inotify.max_queued_events, if this repeats)"
                        );
                    }
                }
            }
        })
        .expect("spawning the inotify thread");
    queued
}

fn memo_of(listing: &Listing) -> Memo {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let fresh = listing.mtime_ns > now.as_nanos() as i64 - SETTLE_NS;
    Memo { mtime_ns: if fresh { DIRTY } else { listing.mtime_ns }, subdirs: listing.subdirs.clone() }
}

struct Live<'a> {
    lib: &'a Arc<Library>,
    memos: Memos,
    /// Told of each file added or changed (its thumbnails are made next).
    fresh: &'a dyn Fn(u64),
}

impl Live<'_> {
    /// Applies a batch of watcher changes in order.
    fn apply(&mut self, changes: Vec<Change>) {
        let mut files: Vec<Found> = Vec::new();
        for c in changes {
            match c {
                Change::File { dir, name } => {
                    if !indexer::is_media_name(&name) {
                        continue;
                    }
                    match self.lib.fs.stat(RelPath { dir: &dir, name: &name }) {
                        Some(found) => files.push(found),
                        // Gone again already (a temp file renamed away): nothing to add.
                        None => {
                            self.flush(&mut files);
                            self.remove_file(&dir, &name);
                        }
                    }
                }
                Change::FileGone { dir, name } => {
                    self.flush(&mut files);
                    self.remove_file(&dir, &name);
                }
                Change::Dir(dir) => {
                    self.flush(&mut files);
                    self.rescan(&dir, true);
                }
                Change::DirGone(dir) => {
                    self.flush(&mut files);
                    self.remove_below(&dir);
                    self.memos.retain(|d, _| !watch::is_within(d, &dir));
                }
                Change::Renamed { from, to } => {
                    self.flush(&mut files);
                    if let Err(e) = self.lib.fs.renamed(&from, &to) {
                        tracing::warn!(
                            error = %e,
                            from = %watch::display(&from),
                            "cannot move the favorite of a renamed file in the state dir"
                        );
                    }
                }
                Change::Overflow => {}
            }
        }
        self.flush(&mut files);
    }

    /// Indexes files that are new or changed since the index last saw them.
    fn flush(&self, files: &mut Vec<Found>) {
        if files.is_empty() {
            return;
        }
        let mut seen = HashSet::new();
        let todo: Vec<Found> = {
            let index = self.lib.read();
            files
                .drain(..)
                .filter(|f| seen.insert((f.dir.clone(), f.name.clone())))
                .filter(|f| {
                    let id = id::from_rel_path(&RelPath { dir: &f.dir, name: &f.name }.key());
                    index.get(id).is_none_or(|i| (i.size, i.mtime_ns) != (f.size, f.mtime_ns))
                })
                .collect()
        };
        let resolved: Vec<_> = todo.into_iter().filter_map(|f| indexer::resolve(self.lib, f)).collect();
        if resolved.is_empty() {
            return;
        }
        let mut events = Vec::with_capacity(resolved.len());
        {
            let mut index = self.lib.write();
            for r in resolved {
                let (inserted, id) = indexer::insert(&mut index, r);
                let Some(item) = index.get(id).cloned() else { continue };
                match inserted {
                    Inserted::New if self.lib.expect_restored(id, false) => {
                        events.push(MediaEvent::Restored(item))
                    }
                    Inserted::New => events.push(MediaEvent::Added(item)),
                    Inserted::Replaced => events.push(MediaEvent::Changed(item)),
                    Inserted::Collision => {}
                }
            }
        }
        for e in events {
            (self.fresh)(e.item().id());
            self.lib.emit(e);
        }
    }

    fn remove_file(&self, dir: &[u8], name: &[u8]) {
        // The event may be late: a file deleted to the trash and restored before the watcher read
        // its IN_MOVED_FROM is there again, and must not be removed (and then added) once more.
        if self.lib.fs.stat(RelPath { dir, name }).is_some() {
            return;
        }
        self.lib.remove_path(dir, name);
    }

    /// Removes every item in `dir` and below.
    fn remove_below(&self, dir: &[u8]) {
        let removed: Vec<Item> = {
            let mut index = self.lib.write();
            let ids: Vec<u64> =
                index.iter().filter(|i| watch::is_within(index.dir_of(i), dir)).map(|i| i.id()).collect();
            ids.into_iter().filter_map(|id| index.remove(id)).collect()
        };
        for item in removed {
            self.lib.emit(MediaEvent::Removed(item));
        }
    }

    /// Brings the index in line with the folder `top` and below. A folder whose mtime did not
    /// change is not listed again, unless `deep`.
    fn rescan(&mut self, top: &[u8], deep: bool) {
        let started = Instant::now();
        self.lib.live.rescans.fetch_add(1, Ordering::Relaxed);
        let mut visited: HashSet<Vec<u8>> = HashSet::new();
        let mut listed: HashMap<Vec<u8>, Vec<Found>> = HashMap::new();
        let mut stack = vec![top.to_vec()];
        while let Some(dir) = stack.pop() {
            let Ok(mtime) = self.lib.fs.dir_mtime(&dir) else { continue };
            if !deep
                && let Some(m) = self.memos.get(&dir)
                && m.mtime_ns == mtime
            {
                stack.extend(m.subdirs.iter().cloned());
                visited.insert(dir);
                continue;
            }
            let Ok(listing) = self.lib.fs.list_dir(&dir, &indexer::is_media_name) else { continue };
            self.memos.insert(dir.clone(), memo_of(&listing));
            stack.extend(listing.subdirs.iter().cloned());
            listed.insert(dir.clone(), listing.files);
            visited.insert(dir);
        }
        self.memos.retain(|d, _| !watch::is_within(d, top) || visited.contains(d));
        if listed.is_empty() {
            return;
        }

        // Compare the listed folders with the index: what is gone, what is new or changed.
        let mut gone = Vec::new();
        let mut fresh = Vec::new();
        {
            let index = self.lib.read();
            let mut known: HashMap<&[u8], Versions> = HashMap::new();
            for item in index.iter() {
                let dir = index.dir_of(item);
                if !watch::is_within(dir, top) {
                    continue;
                }
                if !visited.contains(dir) {
                    gone.push((dir.to_vec(), item.name.to_vec()));
                } else if listed.contains_key(dir) {
                    known.entry(dir).or_default().insert(&item.name, (item.size, item.mtime_ns));
                }
            }
            for (dir, files) in &listed {
                let mut present = known.remove(dir.as_slice()).unwrap_or_default();
                for f in files {
                    match present.remove(f.name.as_slice()) {
                        Some(v) if v == (f.size, f.mtime_ns) => {}
                        _ => fresh.push(Found { dir: f.dir.clone(), name: f.name.clone(), ..*f }),
                    }
                }
                gone.extend(present.into_keys().map(|name| (dir.clone(), name.to_vec())));
            }
        }
        let (n_gone, n_fresh) = (gone.len(), fresh.len());
        for (dir, name) in gone {
            self.remove_file(&dir, &name);
        }
        // In batches, so a large folder moved in shows up while it is still being read.
        let mut fresh = fresh.into_iter().peekable();
        while fresh.peek().is_some() {
            let mut batch: Vec<Found> = fresh.by_ref().take(256).collect();
            self.flush(&mut batch);
        }
        if n_gone + n_fresh > 0 || started.elapsed() > Duration::from_secs(1) {
            tracing::info!(
                folder = %watch::display(top),
                listed = listed.len(),
                removed = n_gone,
                new_or_changed = n_fresh,
                ms = started.elapsed().as_millis() as u64,
                "rescanned"
            );
        }
    }
}
