//! The only place that touches the disk: walking the media folder, opening files, extended
//! attributes, and the state-dir files that stand in for them.
//!
//! The rule it keeps: originals are never modified. spis opens media files read-only, and what it
//! remembers about them goes into `user.spis.*` attributes (which change neither bytes nor mtime)
//! or, where those cannot be written, into files in the state dir.

pub mod cache;
pub mod journal;
pub mod private;
mod state;
pub mod watch;
pub mod xattr;

use std::fs::{File, Metadata};
use std::io::{self, BufReader};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};

use crate::config::XattrMode;
use state::{FavoriteFile, MetaCache};

/// Attribute holding what was extracted from a file (see `library::record`).
const META_ATTR: &str = "user.spis.meta";
/// Attribute marking a favorite; its presence is what counts.
const FAVORITE_ATTR: &str = "user.spis.favorite";

/// A media file's place below the media root, as raw bytes: Linux names need not be UTF-8.
#[derive(Debug, Clone, Copy)]
pub struct RelPath<'a> {
    /// Folder relative to the root, `/`-separated, empty for the root itself.
    pub dir: &'a [u8],
    pub name: &'a [u8],
}

impl RelPath<'_> {
    /// `dir/name`, the key under which the state dir remembers this file.
    pub fn key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.dir.len() + 1 + self.name.len());
        if !self.dir.is_empty() {
            k.extend_from_slice(self.dir);
            k.push(b'/');
        }
        k.extend_from_slice(self.name);
        k
    }

    fn under(&self, root: &Path) -> PathBuf {
        let mut p = root.to_path_buf();
        if !self.dir.is_empty() {
            p.push(std::ffi::OsStr::from_bytes(self.dir));
        }
        p.push(std::ffi::OsStr::from_bytes(self.name));
        p
    }
}

/// One media file found by [`MediaFs::walk`].
#[derive(Debug)]
pub struct Found {
    pub dir: Vec<u8>,
    pub name: Vec<u8>,
    pub size: u64,
    pub mtime_ns: i64,
}

/// One folder as [`MediaFs::list_dir`] saw it.
#[derive(Debug, Default)]
pub struct Listing {
    pub mtime_ns: i64,
    pub files: Vec<Found>,
    /// Subfolders as paths relative to the root.
    pub subdirs: Vec<Vec<u8>>,
}

/// `dir/name` for a folder path relative to the root (empty for the root itself).
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    RelPath { dir, name }.key()
}

/// Where a metadata record was read from or written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaSource {
    Xattr,
    StateDir,
}

/// The media folder and the state dir, with the fallbacks between them.
#[derive(Debug)]
pub struct MediaFs {
    root: PathBuf,
    state_dir: PathBuf,
    /// (device, inode) of the state dir, so a walk never descends into it.
    state_dir_id: (u64, u64),
    xattr: XattrMode,
    /// `--follow-symlinks`: links to files and folders are followed, loops excepted.
    follow_symlinks: bool,
    meta_cache: MetaCache,
    favorites: FavoriteFile,
    /// Favorite changes made by other servers sharing the state dir, and ours for them.
    journal: journal::Journal,
    /// Files or folders the walk could not read.
    pub walk_errors: AtomicU64,
}

impl MediaFs {
    /// Checks the media folder and prepares the state dir; errors are start-up sentences.
    pub fn try_open(
        root: &Path,
        state_dir: &Path,
        xattr: XattrMode,
        follow_symlinks: bool,
    ) -> anyhow::Result<MediaFs> {
        let hint =
            "point spis at your photos with --media DIR (or SPIS_MEDIA, or `media` in the config file)";
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                bail!("the media folder {} does not exist: {hint}", root.display())
            }
            Err(e) => bail!("the media folder {} cannot be read ({e}): {hint}", root.display()),
        };
        if !meta.is_dir() {
            bail!("the media folder {} is not a folder: {hint}", root.display());
        }
        if let Err(e) = std::fs::read_dir(root) {
            bail!("the media folder {} cannot be read ({e}): {hint}", root.display());
        }
        let root = root.canonicalize().with_context(|| format!("resolving {}", root.display()))?;
        std::fs::create_dir_all(state_dir).with_context(|| {
            format!("cannot create the state dir {} (choose another with --state-dir)", state_dir.display())
        })?;
        let sd = std::fs::metadata(state_dir)?;
        Ok(MediaFs {
            root,
            state_dir: state_dir.to_path_buf(),
            state_dir_id: (sd.dev(), sd.ino()),
            xattr,
            follow_symlinks,
            meta_cache: MetaCache::load(state_dir.join("meta-cache.bin"))
                .context("reading the metadata cache in the state dir")?,
            favorites: FavoriteFile::load(state_dir.join("favorites.txt"))
                .context("reading favorites.txt in the state dir")?,
            journal: journal::Journal::open(state_dir).context("creating replicas/ in the state dir")?,
            walk_errors: AtomicU64::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Walks the media folder depth first, calling `found` for every regular file whose name
    /// `accept` takes and `folder` for every folder listed (with its mtime). Hidden entries (a
    /// leading `.`), special files and the state dir are skipped, and so are symlinks unless
    /// `--follow-symlinks`.
    pub fn walk(
        &self,
        from: &[u8],
        accept: &dyn Fn(&[u8]) -> bool,
        found: &mut dyn FnMut(Found),
        folder: &mut dyn FnMut(&[u8], &Listing),
    ) {
        let mut stack: Vec<Vec<u8>> = vec![from.to_vec()];
        while let Some(dir) = stack.pop() {
            let Ok(mut listing) = self.list_dir(&dir, accept) else { continue };
            folder(&dir, &listing);
            for f in listing.files.drain(..) {
                found(f);
            }
            // Popping from the end visits folders in name order.
            stack.extend(listing.subdirs.into_iter().rev());
        }
    }

    /// Lists one folder: its media files (with size and mtime) and its subfolders, both in name
    /// order. An unreadable folder is counted and logged, and its error returned.
    pub fn list_dir(&self, dir: &[u8], accept: &dyn Fn(&[u8]) -> bool) -> io::Result<Listing> {
        let abs = RelPath { dir: &[], name: dir }.under(&self.root);
        let read = self.metadata(&abs).and_then(|m| {
            if m.is_dir() {
                std::fs::read_dir(&abs).map(|e| (m, e))
            } else {
                Err(io::ErrorKind::NotADirectory.into())
            }
        });
        let (meta, entries) = match read {
            Ok(r) => r,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    self.walk_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(folder = %abs.display(), error = %e, "cannot read folder, skipping it");
                }
                return Err(e);
            }
        };
        let mut listing = Listing { mtime_ns: mtime_ns(&meta), files: Vec::new(), subdirs: Vec::new() };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.as_bytes();
            if name.starts_with(b".") {
                continue;
            }
            // SECURITY: d_type comes from readdir without following links, so a symlink is
            // never mistaken for the folder or file it points to, unless links are followed.
            let Ok(ft) = entry.file_type() else { continue };
            let (ft, followed) = if ft.is_symlink() {
                match self.follow(&abs, name) {
                    Some(m) => (m.file_type(), Some(m)),
                    None => continue,
                }
            } else {
                (ft, None)
            };
            if ft.is_dir() {
                // Skip the state dir when it lives inside the media folder.
                if entry.metadata().is_ok_and(|m| (m.dev(), m.ino()) == self.state_dir_id) {
                    continue;
                }
                listing.subdirs.push(join(dir, name));
            } else if ft.is_file() && accept(name) {
                match followed.map_or_else(|| entry.metadata(), Ok) {
                    Ok(m) => listing.files.push(Found {
                        dir: dir.to_vec(),
                        name: name.to_vec(),
                        size: m.len(),
                        mtime_ns: mtime_ns(&m),
                    }),
                    // Deleted since readdir: simply not there any more.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(_) => {
                        self.walk_errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        listing.subdirs.sort_unstable();
        listing.files.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(listing)
    }

    /// What a symlink at `abs_dir/name` leads to, when links are followed and it is neither the
    /// state dir nor a folder that contains the link (which would list it for ever).
    fn follow(&self, abs_dir: &Path, name: &[u8]) -> Option<Metadata> {
        if !self.follow_symlinks {
            return None;
        }
        let m = std::fs::metadata(abs_dir.join(std::ffi::OsStr::from_bytes(name))).ok()?;
        if m.is_dir() {
            let target = (m.dev(), m.ino());
            if target == self.state_dir_id {
                return None;
            }
            // The folders the walk came through, as followed: a loop leads back to one of them.
            let mut up = Some(abs_dir);
            while let Some(dir) = up {
                if std::fs::metadata(dir).is_ok_and(|d| (d.dev(), d.ino()) == target) {
                    tracing::debug!(link = %abs_dir.join(std::ffi::OsStr::from_bytes(name)).display(), "not following a link that loops");
                    return None;
                }
                if dir == self.root {
                    break;
                }
                up = dir.parent();
            }
        }
        Some(m)
    }

    /// Metadata of a path below the root: of a link itself unless links are followed.
    fn metadata(&self, abs: &Path) -> io::Result<Metadata> {
        if self.follow_symlinks { std::fs::metadata(abs) } else { std::fs::symlink_metadata(abs) }
    }

    /// Opens a media file for reading; see [`open_media`].
    fn open(&self, abs: &Path) -> io::Result<File> {
        open_media(abs, self.follow_symlinks)
    }

    /// Whether links are followed (`--follow-symlinks`).
    pub fn follows_symlinks(&self) -> bool {
        self.follow_symlinks
    }

    /// Whether `name` in the folder `dir` is a link to a folder that is followed.
    pub fn followed_dir(&self, dir: &[u8], name: &[u8]) -> bool {
        self.follow(&RelPath { dir: &[], name: dir }.under(&self.root), name).is_some_and(|m| m.is_dir())
    }

    /// The size and mtime of one media file, `None` when it is gone or not a regular file.
    pub fn stat(&self, rel: RelPath<'_>) -> Option<Found> {
        let m = self.metadata(&rel.under(&self.root)).ok().filter(|m| m.is_file())?;
        Some(Found { dir: rel.dir.to_vec(), name: rel.name.to_vec(), size: m.len(), mtime_ns: mtime_ns(&m) })
    }

    /// A folder's mtime, which changes whenever an entry is added, removed or renamed in it.
    pub fn dir_mtime(&self, dir: &[u8]) -> io::Result<i64> {
        let m = self.metadata(&RelPath { dir: &[], name: dir }.under(&self.root))?;
        if !m.is_dir() {
            return Err(io::ErrorKind::NotADirectory.into());
        }
        Ok(mtime_ns(&m))
    }

    /// The media folder's (device, inode) now: `None` when it is gone (an unplugged USB stick),
    /// a new value when something else is mounted or created there.
    pub fn root_identity(&self) -> Option<(u64, u64)> {
        std::fs::symlink_metadata(&self.root).ok().filter(|m| m.is_dir()).map(|m| (m.dev(), m.ino()))
    }

    /// Whether a folder below the root is the state dir (which is never indexed or watched).
    pub fn is_state_dir(&self, dir: &[u8]) -> bool {
        self.metadata(&RelPath { dir: &[], name: dir }.under(&self.root))
            .is_ok_and(|m| (m.dev(), m.ino()) == self.state_dir_id)
    }

    /// Opens a media file for reading its header.
    pub fn open_reader(&self, rel: RelPath<'_>) -> io::Result<BufReader<File>> {
        Ok(BufReader::with_capacity(16 * 1024, self.open(&rel.under(&self.root))?))
    }

    /// The absolute path of a media file, for an external decoder to open.
    pub fn path_of(&self, rel: RelPath<'_>) -> PathBuf {
        rel.under(&self.root)
    }

    /// Reads a whole media file for decoding, refusing one larger than `max_bytes` before reading.
    pub fn read_all(&self, rel: RelPath<'_>, max_bytes: u64) -> io::Result<Vec<u8>> {
        use std::io::Read as _;
        let file = self.open(&rel.under(&self.root))?;
        let len = file.metadata()?.len();
        if len > max_bytes {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, format!("{len} bytes")));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        // The file may grow meanwhile: never read more than the limit.
        file.take(max_bytes).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// The first `max_bytes` of the XMP sidecar beside a media file: `NAME.EXT.xmp` (darktable,
    /// digiKam), else `NAME.xmp` (Lightroom). `None` when neither can be read or the name would
    /// be hidden; a sidecar is opened like a media file, never through a final symlink unless
    /// links are followed.
    pub fn read_sidecar(&self, rel: RelPath<'_>, max_bytes: u64) -> Option<Vec<u8>> {
        use std::io::Read as _;
        let stem = rel.name.iter().rposition(|&b| b == b'.').map_or(rel.name, |dot| &rel.name[..dot]);
        [rel.name, stem].into_iter().find_map(|base| {
            let name = [base, b".xmp"].concat();
            if name.starts_with(b".") {
                return None;
            }
            let file = self.open(&RelPath { dir: rel.dir, name: &name }.under(&self.root)).ok()?;
            let mut bytes = Vec::new();
            file.take(max_bytes).read_to_end(&mut bytes).ok()?;
            Some(bytes)
        })
    }

    /// Opens a media file for serving, with its current metadata.
    pub async fn open_original(&self, rel: RelPath<'_>) -> io::Result<(tokio::fs::File, Metadata)> {
        let (path, follow) = (rel.under(&self.root), self.follow_symlinks);
        let file = tokio::task::spawn_blocking(move || open_media(&path, follow))
            .await
            .map_err(io::Error::other)??;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(io::ErrorKind::NotFound, "not a regular file"));
        }
        Ok((tokio::fs::File::from_std(file), meta))
    }

    /// The stored metadata record of a file: its attribute, else the state-dir cache.
    pub fn read_meta(&self, rel: RelPath<'_>) -> Option<(Vec<u8>, MetaSource)> {
        if self.xattr == XattrMode::Auto {
            let mut buf = [0u8; 1024];
            if let Ok(Some(v)) = xattr::get(&rel.under(&self.root), META_ATTR, &mut buf) {
                return Some((v.to_vec(), MetaSource::Xattr));
            }
        }
        self.meta_cache.get(&rel.key()).map(|v| (v, MetaSource::StateDir))
    }

    /// Remembers a metadata record: on the file where possible, else in the state-dir cache
    /// (written out by [`MediaFs::flush_meta_cache`]).
    pub fn write_meta(&self, rel: RelPath<'_>, record: &[u8]) -> MetaSource {
        if self.xattr == XattrMode::Auto {
            match xattr::set(&rel.under(&self.root), META_ATTR, record) {
                Ok(()) => {
                    self.meta_cache.remove(&rel.key());
                    return MetaSource::Xattr;
                }
                Err(xattr::XattrError::Unsupported(_)) => {}
                Err(e) => tracing::debug!(error = %e, "cannot write metadata attribute"),
            }
        }
        self.meta_cache.put(rel.key(), record.to_vec());
        MetaSource::StateDir
    }

    /// Writes the state-dir metadata cache if it changed; losing it only costs re-extraction.
    pub fn flush_meta_cache(&self) -> io::Result<()> {
        self.meta_cache.flush()
    }

    /// Whether a file is a favorite, by its attribute or the state-dir list.
    pub fn is_favorite(&self, rel: RelPath<'_>) -> bool {
        if self.xattr == XattrMode::Auto {
            let mut buf = [0u8; 8];
            if let Ok(Some(_)) = xattr::get(&rel.under(&self.root), FAVORITE_ATTR, &mut buf) {
                return true;
            }
        }
        self.favorites.contains(&rel.key())
    }

    /// Marks or unmarks a favorite durably: when this returns Ok, a crash or power loss keeps it.
    pub fn set_favorite(&self, rel: RelPath<'_>, on: bool) -> io::Result<()> {
        let path = rel.under(&self.root);
        let key = rel.key();
        if self.xattr == XattrMode::Auto {
            let done =
                if on { xattr::set(&path, FAVORITE_ATTR, b"1") } else { xattr::remove(&path, FAVORITE_ATTR) };
            match done {
                Ok(()) => {
                    // The attribute is durable once the inode is on disk.
                    self.open(&path)?.sync_all()?;
                    if !on {
                        // It may also have been stored in the list while attributes were unavailable.
                        self.favorites.set(&key, false)?;
                    }
                    return Ok(());
                }
                Err(xattr::XattrError::Unsupported(_)) => {}
                Err(xattr::XattrError::Io(e)) => return Err(e),
            }
        }
        self.favorites.set(&key, on)
    }

    /// Tells other servers sharing the state dir that item `id` became (or stopped being) a
    /// favorite here.
    pub fn announce_favorite(&self, id: u64, on: bool) {
        if let Err(e) = self.journal.record(id, on) {
            tracing::warn!(error = %e, "cannot write replicas/ in the state dir; other servers see this favorite after a rescan");
        }
    }

    /// This server stops announcing favorites (a clean shutdown).
    pub fn leave_replicas(&self) {
        self.journal.leave();
    }

    /// Favorite changes other servers sharing the state dir made since the last call.
    pub fn replica_changes(&self) -> journal::Changes {
        let changes = self.journal.poll();
        if changes != journal::Changes::None
            && let Err(e) = self.favorites.reload()
        {
            tracing::warn!(error = %e, "cannot re-read favorites.txt in the state dir");
        }
        changes
    }

    /// Follows a rename within the media folder in the state-dir files (favorites and metadata
    /// kept there for filesystems without xattrs); attributes move with the file by themselves.
    /// `from` and `to` are relative paths of a file, or of a folder and everything below it.
    pub fn renamed(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        self.meta_cache.rename(from, to);
        self.favorites.rename(from, to)
    }
}

/// Opens read-only without blocking on a FIFO, and without following a final symlink unless
/// `follow` (`--follow-symlinks`).
fn open_media(path: &Path, follow: bool) -> io::Result<File> {
    // SECURITY: O_NOFOLLOW refuses a symlink swapped in after the walk; O_NONBLOCK makes opening
    // a FIFO return at once instead of hanging a worker until a writer appears.
    let no_follow = if follow { 0 } else { libc::O_NOFOLLOW };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(no_follow | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}

/// A hidden temp name beside `path`, unique per process and call: replicas on other hosts may
/// share the state dir (and even a pid).
fn temp_name(path: &Path) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    path.with_file_name(format!(
        ".{}.tmp-{}-{}-{}",
        path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
        std::process::id(),
        nanos.subsec_nanos(),
        SEQ.fetch_add(1, Ordering::Relaxed),
    ))
}

/// A file's mtime in nanoseconds since the epoch, as the index and the record validators use it.
pub fn mtime_ns(m: &Metadata) -> i64 {
    m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec())
}

/// Writes `bytes` to `path` so that a crash leaves either the old or the new file, never a torn
/// one: temp file in the same folder, fsync, rename, fsync the folder.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_mode(path, bytes, 0o666)
}

/// [`write_atomic`], the new file created with `mode` (less the umask, as `File::create` does
/// with 0666), so a secret is never readable by others, not even for a moment.
pub(crate) fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = write_temp(path, bytes, mode)?;
    std::fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()
}

/// A new, synced temp file beside `path` holding `bytes`, created with `mode`, for the caller to
/// rename or link into place; nothing is left behind when writing it fails.
pub(crate) fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> io::Result<PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = temp_name(path);
    let written =
        std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}
