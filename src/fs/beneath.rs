//! Opening paths beneath the media root, never by joining strings and opening the result.
//!
//! The rule: every open, stat and attribute call on a media file starts from a directory fd of
//! the media root and resolves the relative path below it without following any symlink:
//! `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`, or, where the kernel lacks `openat2`
//! (Linux < 5.6, or a seccomp filter answering `ENOSYS`), a walk of one `O_NOFOLLOW` open per
//! component. A folder swapped for a link after it was indexed therefore leads nowhere, whatever
//! the watcher has or has not noticed yet. With `--follow-symlinks` links are followed one
//! component at a time, and only the links the walk itself accepted, to the target it saw: a
//! link swapped in later is as good as missing, as without the flag.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

/// What a path names, as far as the media folder cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    /// FIFOs, sockets, devices: never media.
    Other,
}

/// The few facts of a `stat` that spis uses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stat {
    pub kind: Kind,
    pub size: u64,
    pub mtime_ns: i64,
    pub dev: u64,
    pub ino: u64,
}

impl Stat {
    fn of(st: &rustix::fs::Stat) -> Stat {
        let kind = match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Kind::File,
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            _ => Kind::Other,
        };
        Stat {
            kind,
            size: st.st_size as u64,
            mtime_ns: st.st_mtime.saturating_mul(1_000_000_000).saturating_add(st.st_mtime_nsec as i64),
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }

    pub(super) fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

/// `fstat` of an open fd.
pub(crate) fn fstat(fd: impl AsFd) -> io::Result<Stat> {
    Ok(Stat::of(&rustix::fs::fstat(fd)?))
}

/// `fstatat` of one name in an open folder, never following a link there.
pub(crate) fn stat_in(dir: impl AsFd, name: &[u8]) -> io::Result<Stat> {
    Ok(Stat::of(&rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)?))
}

/// `fstatat` of one name in an open folder, following a link there (`--follow-symlinks`).
pub(crate) fn stat_following(dir: impl AsFd, name: &[u8]) -> io::Result<Stat> {
    Ok(Stat::of(&rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::empty())?))
}

/// How the last component is opened.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Open {
    /// A handle for `fstat` and nothing else: opening it has no side effect on any kind of file.
    Path,
    /// A folder, for listing.
    Dir,
    /// Read-only data; `O_NONBLOCK` so that a FIFO swapped in answers at once instead of hanging.
    Read,
}

impl Open {
    fn flags(self) -> OFlags {
        OFlags::CLOEXEC
            | match self {
                Open::Path => OFlags::PATH,
                Open::Dir => OFlags::RDONLY | OFlags::DIRECTORY,
                Open::Read => OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
            }
    }
}

/// The media root as an open folder, reopened when the folder there is replaced (a USB stick
/// unplugged and plugged in again).
#[derive(Debug)]
pub(crate) struct Root {
    path: PathBuf,
    fd: RwLock<Arc<OwnedFd>>,
    /// `--follow-symlinks`.
    follow: bool,
    /// (device, inode) of the state dir, which a followed link never leads into.
    state_dir: (u64, u64),
    /// With `--follow-symlinks`: the links the walk followed (relative path of the link) and the
    /// (device, inode) each led to then.
    accepted: Mutex<HashMap<Vec<u8>, (u64, u64)>>,
    /// Cleared when the kernel answers `ENOSYS` to `openat2`: the component walk from then on.
    openat2: AtomicBool,
}

impl Root {
    pub(super) fn try_open(path: &Path, follow: bool, state_dir: (u64, u64)) -> io::Result<Root> {
        let fd = open_root(path)?;
        Ok(Root {
            path: path.to_path_buf(),
            fd: RwLock::new(Arc::new(fd)),
            follow,
            state_dir,
            accepted: Mutex::new(HashMap::new()),
            openat2: AtomicBool::new(true),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The (device, inode) at the root's path now, `None` when nothing is there; reopens the
    /// root when it changed, so later calls reach the folder that is there now.
    pub(super) fn identity(&self) -> Option<(u64, u64)> {
        let now = rustix::fs::stat(&self.path).ok().map(|s| Stat::of(&s)).filter(|s| s.kind == Kind::Dir)?;
        let held = fstat(&*self.fd()).ok().map(|s| s.id());
        if held != Some(now.id())
            && let Ok(fd) = open_root(&self.path)
        {
            *self.fd.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fd);
        }
        Some(now.id())
    }

    fn fd(&self) -> Arc<OwnedFd> {
        Arc::clone(&self.fd.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Remembers that the walk followed the link at `rel` to `target` (`--follow-symlinks`).
    pub(super) fn accept_link(&self, rel: Vec<u8>, target: (u64, u64)) {
        self.accepted.lock().unwrap_or_else(|p| p.into_inner()).insert(rel, target);
    }

    /// Opens `rel` (components separated by `/`, empty for the root itself) beneath the root.
    /// A link anywhere on the way is `NotFound`, unless links are followed and the walk
    /// accepted that one.
    pub(super) fn open(&self, rel: &[u8], how: Open) -> io::Result<OwnedFd> {
        self.open_with(rel, how, self.follow)
    }

    /// [`Root::open`] that never follows a link, even with `--follow-symlinks`.
    pub(super) fn open_no_links(&self, rel: &[u8], how: Open) -> io::Result<OwnedFd> {
        self.open_with(rel, how, false)
    }

    /// Opens the folder `rel` for adding files to it (uploads), making the folders missing on
    /// the way (mode 0755, each made durable in its parent). Never through a link, even with
    /// `--follow-symlinks`, never into the state dir, and never into a hidden folder (a leading
    /// `.`), which the walk would not index: those are `PermissionDenied`.
    pub(super) fn make_dirs(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        check(rel)?;
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut here = rustix::fs::openat(&*self.fd(), c".", dir_flags, Mode::empty())?;
        for part in rel.split(|&b| b == b'/').filter(|p| !rel.is_empty() && !p.is_empty()) {
            if part.starts_with(b".") {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "a hidden folder"));
            }
            let name = OsStr::from_bytes(part);
            let next = match rustix::fs::openat(&here, name, dir_flags, Mode::empty()) {
                Err(rustix::io::Errno::NOENT) => {
                    match rustix::fs::mkdirat(&here, name, Mode::from_raw_mode(0o755)) {
                        // Another upload made it meanwhile.
                        Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    rustix::fs::fsync(&here)?;
                    rustix::fs::openat(&here, name, dir_flags, Mode::empty()).map_err(link_is_missing)?
                }
                other => other.map_err(link_is_missing)?,
            };
            // SECURITY: uploads never land among the server's own files.
            if fstat(&next)?.id() == self.state_dir {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "the state dir"));
            }
            here = next;
        }
        Ok(here)
    }

    fn open_with(&self, rel: &[u8], how: Open, follow: bool) -> io::Result<OwnedFd> {
        check(rel)?;
        let root = self.fd();
        if rel.is_empty() {
            return Ok(rustix::fs::openat(&*root, c".", how.flags(), Mode::empty())?);
        }
        if follow {
            return self.walk(root.as_fd(), rel, how, true);
        }
        if self.openat2.load(Ordering::Relaxed) {
            // SECURITY: the kernel refuses any symlink on the way (also `..` and absolute links,
            // and /proc magic links) and any step out of the root: no check-then-open race.
            let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
            let mut tries = 0;
            loop {
                let flags = how.flags() | OFlags::NOFOLLOW;
                match rustix::fs::openat2(&*root, OsStr::from_bytes(rel), flags, Mode::empty(), resolve) {
                    Ok(fd) => return Ok(fd),
                    // A rename elsewhere in the tree raced the lookup; the kernel asks to retry.
                    Err(rustix::io::Errno::AGAIN) if tries < 8 => tries += 1,
                    Err(rustix::io::Errno::NOSYS) => {
                        self.openat2.store(false, Ordering::Relaxed);
                        break;
                    }
                    Err(e) => return Err(link_is_missing(e)),
                }
            }
        }
        self.walk(root.as_fd(), rel, how, false)
    }

    /// One open per component from the root: folders with `O_NOFOLLOW | O_DIRECTORY` (a link
    /// there fails), the last one with `O_NOFOLLOW`. With `follow`, a link the walk accepted is
    /// followed where it is met, if it still leads where it did then.
    fn walk(&self, root: BorrowedFd<'_>, rel: &[u8], how: Open, follow: bool) -> io::Result<OwnedFd> {
        let mut here: Option<OwnedFd> = None;
        let mut start = 0;
        while start <= rel.len() {
            let end = rel[start..].iter().position(|&b| b == b'/').map_or(rel.len(), |i| start + i);
            let at = here.as_ref().map_or(root, |f| f.as_fd());
            let last = end == rel.len();
            let flags = if last { how.flags() } else { OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC };
            let name = OsStr::from_bytes(&rel[start..end]);
            let fd = match rustix::fs::openat(at, name, flags | OFlags::NOFOLLOW, Mode::empty()) {
                // O_PATH opens a link itself: follow it when it names a followed folder or file.
                Ok(fd)
                    if follow && matches!(how, Open::Path) && last && fstat(&fd)?.kind == Kind::Symlink =>
                {
                    self.follow_link(at, &rel[..end], flags)?
                }
                Ok(fd) => fd,
                // A link: ELOOP for data, ENOTDIR for a folder.
                Err(rustix::io::Errno::LOOP | rustix::io::Errno::NOTDIR) if follow => {
                    self.follow_link(at, &rel[..end], flags)?
                }
                Err(e) => return Err(link_is_missing(e)),
            };
            here = Some(fd);
            start = end + 1;
        }
        here.ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    /// Follows the link at `link` (relative to the root; its last component is in `at`).
    fn follow_link(&self, at: BorrowedFd<'_>, link: &[u8], flags: OFlags) -> io::Result<OwnedFd> {
        let name = link.rsplit(|&b| b == b'/').next().unwrap_or(link);
        let fd = rustix::fs::openat(at, OsStr::from_bytes(name), flags, Mode::empty())?;
        let target = fstat(&fd)?.id();
        // SECURITY: only a link the walk accepted, to the target it saw (so never the state dir,
        // nor a link swapped in after the walk).
        let accepted = self.accepted.lock().unwrap_or_else(|p| p.into_inner()).get(link) == Some(&target);
        if !accepted || target == self.state_dir {
            return Err(io::Error::new(io::ErrorKind::NotFound, "a symlink the walk did not follow"));
        }
        Ok(fd)
    }
}

fn open_root(path: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?)
}

/// Whether `rel` could be an indexed path (see [`check`]).
pub(crate) fn is_clean(rel: &[u8]) -> bool {
    check(rel).is_ok()
}

/// Refuses what no indexed path can be: absolute, empty, `.` or `..` components, NUL bytes.
fn check(rel: &[u8]) -> io::Result<()> {
    let bad = rel.contains(&0)
        || (!rel.is_empty() && rel.split(|&b| b == b'/').any(|p| p.is_empty() || p == b"." || p == b".."));
    if bad {
        Err(io::Error::new(io::ErrorKind::InvalidInput, "not a relative path below the root"))
    } else {
        Ok(())
    }
}

/// A link met where none may be followed, or a step out of the root, is as good as a missing
/// file: the indexed item is not there any more.
fn link_is_missing(e: rustix::io::Errno) -> io::Error {
    match e {
        rustix::io::Errno::LOOP | rustix::io::Errno::XDEV | rustix::io::Errno::NOTDIR => {
            io::Error::new(io::ErrorKind::NotFound, "a symlink on the way (not followed)")
        }
        e => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, tempfile::TempDir) {
        let media = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(media.path().join("a/b")).unwrap();
        std::fs::write(media.path().join("a/b/p.jpg"), b"inside").unwrap();
        std::fs::write(outside.path().join("p.jpg"), b"outside").unwrap();
        (media, outside)
    }

    fn read(root: &Root, rel: &str) -> io::Result<String> {
        let fd = root.open(rel.as_bytes(), Open::Read)?;
        std::io::read_to_string(std::fs::File::from(fd))
    }

    /// A root that resolves with `openat2`, or with the component walk as on an old kernel.
    fn root_at(path: &Path, walk: bool) -> Root {
        let root = Root::try_open(path, false, (0, 0)).unwrap();
        root.openat2.store(!walk, Ordering::Relaxed);
        root
    }

    fn both_ways(test: impl Fn(&Root)) {
        for walk in [false, true] {
            let (media, _outside) = tree();
            test(&root_at(media.path(), walk));
        }
    }

    #[test]
    fn a_folder_swapped_for_a_link_leads_nowhere() {
        for walk in [false, true] {
            let (media, outside) = tree();
            let root = root_at(media.path(), walk);
            assert_eq!(read(&root, "a/b/p.jpg").unwrap(), "inside");
            std::fs::rename(media.path().join("a/b"), media.path().join("a/old")).unwrap();
            std::os::unix::fs::symlink(outside.path(), media.path().join("a/b")).unwrap();
            let e = read(&root, "a/b/p.jpg").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::NotFound, "walk={walk}: {e}");
            assert!(root.open(b"a/b/p.jpg", Open::Path).is_err());
            // Two levels up.
            std::fs::rename(media.path().join("a"), media.path().join("z")).unwrap();
            std::os::unix::fs::symlink(media.path().join("z"), media.path().join("a")).unwrap();
            assert!(read(&root, "a/old/p.jpg").is_err());
            assert_eq!(read(&root, "z/old/p.jpg").unwrap(), "inside");
        }
    }

    #[test]
    fn a_file_swapped_for_a_link_is_not_read() {
        both_ways(|root| {
            let p = root.path().join("a/b/p.jpg");
            std::fs::remove_file(&p).unwrap();
            std::os::unix::fs::symlink("/etc/hostname", &p).unwrap();
            assert_eq!(read(root, "a/b/p.jpg").unwrap_err().kind(), io::ErrorKind::NotFound);
            // O_PATH opens the link itself, which is never a file.
            assert_eq!(fstat(root.open(b"a/b/p.jpg", Open::Path).unwrap()).unwrap().kind, Kind::Symlink);
        });
    }

    #[test]
    fn paths_that_no_index_holds_are_refused() {
        both_ways(|root| {
            for bad in ["/etc/passwd", "../x", "a/../a/b/p.jpg", "a//b/p.jpg", "a/./b/p.jpg", "a/b/", "a\0b"]
            {
                assert!(root.open(bad.as_bytes(), Open::Read).is_err(), "{bad:?}");
            }
            assert_eq!(fstat(root.open(b"", Open::Path).unwrap()).unwrap().kind, Kind::Dir);
            assert_eq!(fstat(root.open(b"a/b", Open::Dir).unwrap()).unwrap().kind, Kind::Dir);
        });
    }

    #[test]
    fn followed_links_lead_out_but_never_into_the_state_dir() {
        let (media, outside) = tree();
        let state = tempfile::tempdir().unwrap();
        std::fs::write(state.path().join("secret.jpg"), b"secret").unwrap();
        let state_id = Stat::of(&rustix::fs::stat(state.path()).unwrap()).id();
        std::os::unix::fs::symlink(outside.path(), media.path().join("out")).unwrap();
        std::os::unix::fs::symlink(state.path(), media.path().join("state")).unwrap();
        let root = Root::try_open(media.path(), true, state_id).unwrap();
        assert!(read(&root, "out/p.jpg").is_err(), "not accepted by a walk yet");
        let out_id = Stat::of(&rustix::fs::stat(outside.path()).unwrap()).id();
        root.accept_link(b"out".to_vec(), out_id);
        root.accept_link(b"state".to_vec(), state_id);
        assert_eq!(read(&root, "out/p.jpg").unwrap(), "outside");
        assert_eq!(read(&root, "a/b/p.jpg").unwrap(), "inside");
        assert!(read(&root, "state/secret.jpg").is_err());
        assert_eq!(fstat(root.open(b"out", Open::Path).unwrap()).unwrap().kind, Kind::Dir);
        assert!(read(&root, "out/p.jpg").is_ok() && root.open_no_links(b"out/p.jpg", Open::Read).is_err());
        // The link now leads elsewhere: not what the walk accepted.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("p.jpg"), b"elsewhere").unwrap();
        std::fs::remove_file(media.path().join("out")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), media.path().join("out")).unwrap();
        assert_eq!(read(&root, "out/p.jpg").unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_root_replaced_is_reopened() {
        let parent = tempfile::tempdir().unwrap();
        let path = parent.path().join("media");
        std::fs::create_dir(&path).unwrap();
        let root = Root::try_open(&path, false, (0, 0)).unwrap();
        std::fs::rename(&path, parent.path().join("gone")).unwrap();
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("new.jpg"), b"new").unwrap();
        assert!(read(&root, "new.jpg").is_err(), "still the old folder");
        assert!(root.identity().is_some());
        assert_eq!(read(&root, "new.jpg").unwrap(), "new");
    }
}
