//! The only place that touches the disk: walking the media folder, opening files, extended
//! attributes, and the state-dir files that stand in for them.
//!
//! The rule it keeps: originals are never modified. spis opens media files read-only, and what it
//! remembers about them goes into `user.spis.*` attributes (which change neither bytes nor mtime)
//! or, where those cannot be written, into files in the state dir.

mod beneath;
pub(crate) mod cache;
pub(crate) mod incoming;
pub(crate) mod journal;
pub(crate) mod private;
mod state;
pub(crate) mod trash;
pub(crate) mod watch;
pub(crate) mod xattr;

/// Whether a relative path could be an indexed one (no empty, `.` or `..` parts, no NUL).
pub(crate) use beneath::is_clean;
use std::fs::{File, Metadata};
use std::io::{self, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};

use crate::config::XattrMode;
use beneath::{Kind, Open, Stat};
use state::{FavoriteFile, MetaCache};

/// Attribute holding what was extracted from a file (see `library::record`).
const META_ATTR: &str = "user.spis.meta";
/// Attribute marking a favorite; its presence is what counts.
const FAVORITE_ATTR: &str = "user.spis.favorite";

/// A media file's place below the media root, as raw bytes: Linux names need not be UTF-8.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RelPath<'a> {
    /// Folder relative to the root, `/`-separated, empty for the root itself.
    pub dir: &'a [u8],
    pub name: &'a [u8],
}

impl RelPath<'_> {
    /// `dir/name`, the key under which the state dir remembers this file.
    pub(crate) fn key(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.dir.len() + 1 + self.name.len());
        if !self.dir.is_empty() {
            k.extend_from_slice(self.dir);
            k.push(b'/');
        }
        k.extend_from_slice(self.name);
        k
    }

    /// The absolute path, for log lines and the hook program: never opened by spis itself.
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
pub(crate) struct Found {
    pub dir: Vec<u8>,
    pub name: Vec<u8>,
    pub size: u64,
    pub mtime_ns: i64,
}

/// One folder as [`MediaFs::list_dir`] saw it.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub mtime_ns: i64,
    pub files: Vec<Found>,
    /// Subfolders as paths relative to the root.
    pub subdirs: Vec<Vec<u8>>,
}

/// `dir/name` for a folder path relative to the root (empty for the root itself).
pub(crate) fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    RelPath { dir, name }.key()
}

/// Where a metadata record was read from or written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetaSource {
    Xattr,
    StateDir,
}

/// The media folder and the state dir, with the fallbacks between them.
///
/// SECURITY: every call below the media root goes through [`beneath::Root`], which resolves the
/// relative path without following links (unless `--follow-symlinks`); nothing here opens a path
/// made by joining strings.
#[derive(Debug)]
pub(crate) struct MediaFs {
    root: beneath::Root,
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
    pub(crate) fn try_open(
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
        let state_dir_id = (sd.dev(), sd.ino());
        Ok(MediaFs {
            root: beneath::Root::try_open(&root, follow_symlinks, state_dir_id)
                .with_context(|| format!("opening the media folder {}", root.display()))?,
            state_dir: state_dir.to_path_buf(),
            state_dir_id,
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

    pub(crate) fn root(&self) -> &Path {
        self.root.path()
    }

    pub(crate) fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Walks the media folder depth first, calling `found` for every regular file whose name
    /// `accept` takes and `folder` for every folder listed (with its mtime). Hidden entries (a
    /// leading `.`), special files and the state dir are skipped, and so are symlinks unless
    /// `--follow-symlinks`.
    pub(crate) fn walk(
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
    pub(crate) fn list_dir(&self, dir: &[u8], accept: &dyn Fn(&[u8]) -> bool) -> io::Result<Listing> {
        let opened = self.root.open(dir, Open::Dir).and_then(|fd| Ok((beneath::fstat(&fd)?, fd)));
        let (meta, fd) = match opened {
            Ok(r) => r,
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    self.walk_errors.fetch_add(1, Ordering::Relaxed);
                    let folder = RelPath { dir: &[], name: dir }.under(self.root());
                    tracing::warn!(folder = %folder.display(), error = %e, "cannot read folder, skipping it");
                }
                return Err(e);
            }
        };
        let mut listing = Listing { mtime_ns: meta.mtime_ns, files: Vec::new(), subdirs: Vec::new() };
        let mut buf = Vec::with_capacity(32 * 1024);
        let mut entries = rustix::fs::RawDir::new(&fd, buf.spare_capacity_mut());
        while let Some(entry) = entries.next() {
            let Ok(entry) = entry else {
                self.walk_errors.fetch_add(1, Ordering::Relaxed);
                break;
            };
            let name = entry.file_name().to_bytes();
            if name.starts_with(b".") {
                continue;
            }
            // SECURITY: d_type comes from readdir without following links, so a symlink is
            // never mistaken for the folder or file it points to, unless links are followed.
            let (kind, known) = match entry.file_type() {
                rustix::fs::FileType::RegularFile => (Kind::File, None),
                rustix::fs::FileType::Directory => (Kind::Dir, None),
                rustix::fs::FileType::Symlink => (Kind::Symlink, None),
                // No d_type from this file system: the stat says, and is kept.
                rustix::fs::FileType::Unknown => match beneath::stat_in(&fd, name) {
                    Ok(st) => (st.kind, Some(st)),
                    Err(_) => continue,
                },
                _ => continue,
            };
            // Only folders, links and media files are worth a stat.
            if kind == Kind::Other || (kind == Kind::File && !accept(name)) {
                continue;
            }
            let stat = match (kind, known) {
                (Kind::Symlink, _) => match self.follow(&fd, dir, name) {
                    Some(st) => Ok(st),
                    None => continue,
                },
                (_, Some(st)) => Ok(st),
                (_, None) => beneath::stat_in(&fd, name),
            };
            let st = match stat {
                Ok(st) => st,
                // Deleted since readdir: simply not there any more.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(_) => {
                    self.walk_errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            match st.kind {
                // Skip the state dir when it lives inside the media folder.
                Kind::Dir if st.id() != self.state_dir_id => listing.subdirs.push(join(dir, name)),
                Kind::File if accept(name) => listing.files.push(Found {
                    dir: dir.to_vec(),
                    name: name.to_vec(),
                    size: st.size,
                    mtime_ns: st.mtime_ns,
                }),
                _ => {}
            }
        }
        listing.subdirs.sort_unstable();
        listing.files.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(listing)
    }

    /// What a symlink `name` in the open folder `dir` leads to, when links are followed and it is
    /// neither the state dir nor a folder that contains the link (which would list it for ever).
    fn follow(&self, dir_fd: &OwnedFd, dir: &[u8], name: &[u8]) -> Option<Stat> {
        if !self.follow_symlinks {
            return None;
        }
        let target = beneath::stat_following(dir_fd, name).ok()?;
        if target.kind == Kind::Dir {
            if target.id() == self.state_dir_id {
                return None;
            }
            // The folders the walk came through, as followed: a loop leads back to one of them.
            let mut d = dir;
            loop {
                if self.stat_rel(d).is_ok_and(|h| h.id() == target.id()) {
                    tracing::debug!(link = %String::from_utf8_lossy(&join(dir, name)), "not following a link that loops");
                    return None;
                }
                if d.is_empty() {
                    break;
                }
                d = d.iter().rposition(|&b| b == b'/').map_or(&[][..], |i| &d[..i]);
            }
        }
        self.root.accept_link(join(dir, name), target.id());
        Some(target)
    }

    /// Stat of a path below the root (of a link itself unless links are followed).
    fn stat_rel(&self, rel: &[u8]) -> io::Result<Stat> {
        beneath::fstat(self.root.open(rel, Open::Path)?)
    }

    /// Opens a media file for reading; a FIFO, device or folder found there is refused.
    fn open(&self, rel: RelPath<'_>) -> io::Result<File> {
        regular_file(self.root.open(&rel.key(), Open::Read)?).map(File::from)
    }

    /// Opens a media file for its attributes: never through a link, even with
    /// `--follow-symlinks`, so an attribute never lands on a file outside the media folder (the
    /// state dir keeps what belongs to files reached through links).
    fn open_for_attrs(&self, rel: RelPath<'_>) -> io::Result<OwnedFd> {
        regular_file(self.root.open_no_links(&rel.key(), Open::Read)?)
    }

    /// Whether links are followed (`--follow-symlinks`).
    pub(crate) fn follows_symlinks(&self) -> bool {
        self.follow_symlinks
    }

    /// Whether `name` in the folder `dir` is a link to a folder that is followed.
    pub(crate) fn followed_dir(&self, dir: &[u8], name: &[u8]) -> bool {
        self.follow_symlinks
            && self
                .root
                .open(dir, Open::Dir)
                .is_ok_and(|fd| self.follow(&fd, dir, name).is_some_and(|st| st.kind == Kind::Dir))
    }

    /// The size and mtime of one media file, `None` when it is gone or not a regular file.
    pub(crate) fn stat(&self, rel: RelPath<'_>) -> Option<Found> {
        let st = self.stat_rel(&rel.key()).ok().filter(|st| st.kind == Kind::File)?;
        Some(Found { dir: rel.dir.to_vec(), name: rel.name.to_vec(), size: st.size, mtime_ns: st.mtime_ns })
    }

    /// A folder's mtime, which changes whenever an entry is added, removed or renamed in it.
    pub(crate) fn dir_mtime(&self, dir: &[u8]) -> io::Result<i64> {
        let st = self.stat_rel(dir)?;
        if st.kind != Kind::Dir {
            return Err(io::ErrorKind::NotADirectory.into());
        }
        Ok(st.mtime_ns)
    }

    /// The media folder's (device, inode) now: `None` when it is gone (an unplugged USB stick),
    /// a new value when something else is mounted or created there (which is then opened).
    pub(crate) fn root_identity(&self) -> Option<(u64, u64)> {
        self.root.identity()
    }

    /// Whether a folder below the root is the state dir (which is never indexed or watched).
    pub(crate) fn is_state_dir(&self, dir: &[u8]) -> bool {
        self.stat_rel(dir).is_ok_and(|st| st.id() == self.state_dir_id)
    }

    /// Opens a media file for reading its header.
    pub(crate) fn open_reader(&self, rel: RelPath<'_>) -> io::Result<BufReader<File>> {
        Ok(BufReader::with_capacity(16 * 1024, self.open(rel)?))
    }

    /// The absolute path of a media file, for log lines and the hook program only.
    pub(crate) fn path_of(&self, rel: RelPath<'_>) -> PathBuf {
        rel.under(self.root())
    }

    /// Opens a media file for an external decoder, which gets the open file (as its standard
    /// input), never a path it would resolve again itself.
    pub(crate) fn open_for_tool(&self, rel: RelPath<'_>) -> io::Result<File> {
        self.open(rel)
    }

    /// Reads a whole media file for decoding, refusing one larger than `max_bytes` before reading.
    pub(crate) fn read_all(&self, rel: RelPath<'_>, max_bytes: u64) -> io::Result<Vec<u8>> {
        use std::io::Read as _;
        let file = self.open(rel)?;
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
    /// be hidden; a sidecar is opened like a media file: beneath the root, through no link the
    /// walk did not accept.
    pub(crate) fn read_sidecar(&self, rel: RelPath<'_>, max_bytes: u64) -> Option<Vec<u8>> {
        use std::io::Read as _;
        let stem = rel.name.iter().rposition(|&b| b == b'.').map_or(rel.name, |dot| &rel.name[..dot]);
        [rel.name, stem].into_iter().find_map(|base| {
            let name = [base, b".xmp"].concat();
            if name.starts_with(b".") {
                return None;
            }
            let file = self.open(RelPath { dir: rel.dir, name: &name }).ok()?;
            let mut bytes = Vec::new();
            file.take(max_bytes).read_to_end(&mut bytes).ok()?;
            Some(bytes)
        })
    }

    /// Opens a media file for serving, with its current metadata.
    pub(crate) async fn open_original(&self, rel: RelPath<'_>) -> io::Result<(tokio::fs::File, Metadata)> {
        let file = tokio::task::block_in_place(|| self.open(rel))?;
        let meta = file.metadata()?;
        Ok((tokio::fs::File::from_std(file), meta))
    }

    /// Opens a media file for reading from a blocking thread, with its length now.
    pub(crate) fn open_blocking(&self, rel: RelPath<'_>) -> io::Result<(File, u64)> {
        let file = self.open(rel)?;
        let len = file.metadata()?.len();
        Ok((file, len))
    }

    /// The stored metadata record of a file and whether it is a favorite, with one open: what
    /// the indexer asks of every file.
    pub(crate) fn read_attrs(&self, rel: RelPath<'_>) -> (Option<(Vec<u8>, MetaSource)>, bool) {
        let fd = if self.xattr == XattrMode::Auto { self.open_for_attrs(rel).ok() } else { None };
        (self.read_meta_from(fd.as_ref(), rel), self.is_favorite_from(fd.as_ref(), rel))
    }

    fn read_meta_from(&self, fd: Option<&OwnedFd>, rel: RelPath<'_>) -> Option<(Vec<u8>, MetaSource)> {
        if let Some(fd) = fd {
            let mut buf = [0u8; 1024];
            if let Ok(Some(v)) = xattr::get(fd, META_ATTR, &mut buf) {
                return Some((v.to_vec(), MetaSource::Xattr));
            }
        }
        self.meta_cache.get(&rel.key()).map(|v| (v, MetaSource::StateDir))
    }

    /// Remembers a metadata record: on the file where possible, else in the state-dir cache
    /// (written out by [`MediaFs::flush_meta_cache`]).
    pub(crate) fn write_meta(&self, rel: RelPath<'_>, record: &[u8]) -> MetaSource {
        if self.xattr == XattrMode::Auto
            && let Ok(fd) = self.open_for_attrs(rel)
        {
            match xattr::set(&fd, META_ATTR, record) {
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
    pub(crate) fn flush_meta_cache(&self) -> io::Result<()> {
        self.meta_cache.flush()
    }

    /// Whether a file is a favorite, by its attribute or the state-dir list.
    pub(crate) fn is_favorite(&self, rel: RelPath<'_>) -> bool {
        let fd = if self.xattr == XattrMode::Auto { self.open_for_attrs(rel).ok() } else { None };
        self.is_favorite_from(fd.as_ref(), rel)
    }

    fn is_favorite_from(&self, fd: Option<&OwnedFd>, rel: RelPath<'_>) -> bool {
        if let Some(fd) = fd {
            let mut buf = [0u8; 8];
            if let Ok(Some(_)) = xattr::get(fd, FAVORITE_ATTR, &mut buf) {
                return true;
            }
        }
        self.favorites.contains(&rel.key())
    }

    /// Marks or unmarks a favorite durably: when this returns Ok, a crash or power loss keeps it.
    /// A file that cannot be reached beneath the root (gone, or a link on the way that is not
    /// followed) is `NotFound`, and nothing is written anywhere.
    pub(crate) fn set_favorite(&self, rel: RelPath<'_>, on: bool) -> io::Result<()> {
        let key = rel.key();
        if self.xattr == XattrMode::Auto {
            // Reached without links: its attribute. Reached only through a followed link: the
            // state dir, so the link's target is never written.
            match self.open_for_attrs(rel) {
                Ok(fd) => {
                    let done = if on {
                        xattr::set(&fd, FAVORITE_ATTR, b"1")
                    } else {
                        xattr::remove(&fd, FAVORITE_ATTR)
                    };
                    match done {
                        Ok(()) => {
                            // The attribute is durable once the inode is on disk.
                            rustix::fs::fsync(&fd)?;
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
                Err(e) if !self.follow_symlinks => return Err(e),
                Err(_) => {}
            }
        }
        self.open(rel)?;
        self.favorites.set(&key, on)
    }

    /// Tells other servers sharing the state dir that item `id` became (or stopped being) a
    /// favorite here.
    pub(crate) fn announce_favorite(&self, id: u64, on: bool) {
        if let Err(e) = self.journal.record(id, on) {
            tracing::warn!(error = %e, "cannot write replicas/ in the state dir; other servers see this favorite after a rescan");
        }
    }

    /// This server stops announcing favorites (a clean shutdown).
    pub(crate) fn leave_replicas(&self) {
        self.journal.leave();
    }

    /// Favorite changes other servers sharing the state dir made since the last call.
    pub(crate) fn replica_changes(&self) -> journal::Changes {
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
    pub(crate) fn renamed(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        self.meta_cache.rename(from, to);
        self.favorites.rename(from, to)
    }
}

/// `fd` when it is a regular file: a FIFO, device or folder found where a media file was is refused.
fn regular_file(fd: OwnedFd) -> io::Result<OwnedFd> {
    if beneath::fstat(&fd)?.kind != Kind::File {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(fd)
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
pub(crate) fn mtime_ns(m: &Metadata) -> i64 {
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
