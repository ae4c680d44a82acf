//! The inotify watcher: one watch per folder of the media tree, raw events turned into changes.
//!
//! Linux has no recursive watch, so every folder gets its own, and a folder that appears (made
//! or moved in) is watched before its contents are reported, so nothing written into it is
//! missed. The rule it keeps: a file is reported only when it is complete (`IN_CLOSE_WRITE` or
//! `IN_MOVED_TO`), never when it is merely created, and when events were lost it says so
//! (`Change::Overflow`) instead of staying silent.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};

use super::{MediaFs, RelPath, join};

/// What happened in the media tree, as paths relative to the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A file was closed after writing, or moved in: it is complete.
    File { dir: Vec<u8>, name: Vec<u8> },
    /// A file was deleted or moved away.
    FileGone { dir: Vec<u8>, name: Vec<u8> },
    /// A folder appeared and is now watched; whatever it already holds must be scanned.
    Dir(Vec<u8>),
    /// A folder was deleted or moved away, with everything below it.
    DirGone(Vec<u8>),
    /// A file or folder was renamed within the tree: reported after its `FileGone`/`DirGone` and
    /// before its `File`/`Dir`, for state that follows the path rather than the inode.
    Renamed { from: Vec<u8>, to: Vec<u8> },
    /// Events were lost (the kernel queue overflowed): only a full rescan can tell what changed.
    Overflow,
}

/// The inotify instance and which folder each watch stands for.
#[derive(Debug)]
pub(crate) struct Watcher {
    inotify: Inotify,
    dirs: HashMap<WatchDescriptor, Vec<u8>>,
    /// Folders left unwatched because the per-user watch limit (or `limit`) was reached.
    pub unwatched: usize,
    /// Most folders to watch (`--max-watches`).
    limit: usize,
    warned_limit: bool,
    buf: Vec<u8>,
    /// Recent `IN_MOVED_FROM`s by cookie, to pair with their `IN_MOVED_TO`.
    moved_from: std::collections::VecDeque<(u32, Vec<u8>)>,
}

/// What is kept of one inotify event: watch (none for an overflow), mask, cookie, name.
type RawEvent = (Option<WatchDescriptor>, EventMask, u32, Option<Vec<u8>>);

const MASK: WatchMask = WatchMask::CLOSE_WRITE
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::DELETE)
    .union(WatchMask::CREATE)
    .union(WatchMask::ONLYDIR)
    .union(WatchMask::DONT_FOLLOW)
    .union(WatchMask::EXCL_UNLINK);

impl Watcher {
    /// Starts watching every folder of the media tree, at most `limit` of them.
    pub(crate) fn try_new(fs: &MediaFs, limit: usize) -> io::Result<Watcher> {
        let inotify = Inotify::init()?;
        let mut w = Watcher {
            inotify,
            dirs: HashMap::new(),
            unwatched: 0,
            limit,
            warned_limit: false,
            buf: vec![0; 64 * 1024],
            moved_from: std::collections::VecDeque::new(),
        };
        w.watch_tree(fs, b"");
        Ok(w)
    }

    /// Folders watched now.
    pub(crate) fn watched(&self) -> usize {
        self.dirs.len()
    }

    /// Watches `dir` and every folder below it (hidden ones and the state dir excepted).
    fn watch_tree(&mut self, fs: &MediaFs, dir: &[u8]) {
        let mut stack = vec![dir.to_vec()];
        while let Some(dir) = stack.pop() {
            let abs = RelPath { dir: &[], name: &dir }.under(fs.root());
            if self.dirs.len() >= self.limit {
                self.unwatched += 1;
                self.warn_limit();
                continue;
            }
            // A followed link to a folder is watched at the folder it leads to.
            let mask = if fs.follows_symlinks() { MASK.difference(WatchMask::DONT_FOLLOW) } else { MASK };
            match self.inotify.watches().add(&abs, mask) {
                Ok(wd) => {
                    self.dirs.insert(wd, dir.clone());
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => {
                    self.unwatched += 1;
                    self.warn_limit();
                    continue;
                }
                // Gone or not a folder any more (replaced meanwhile): nothing to watch.
                Err(_) => continue,
            }
            let Ok(entries) = std::fs::read_dir(&abs) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let folder = entry
                    .file_type()
                    .is_ok_and(|t| t.is_dir() || (t.is_symlink() && fs.followed_dir(&dir, name.as_bytes())));
                if name.as_bytes().starts_with(b".") || !folder {
                    continue;
                }
                let sub = join(&dir, name.as_bytes());
                if !fs.is_state_dir(&sub) {
                    stack.push(sub);
                }
            }
        }
    }

    fn warn_limit(&mut self) {
        if !std::mem::replace(&mut self.warned_limit, true) {
            let kernel = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").unwrap_or_default();
            tracing::warn!(
                max_user_watches = kernel.trim(),
                max_watches = self.limit,
                "out of inotify watches: some folders are not watched and are rescanned every poll_interval \
                 instead; raise the limit with `sysctl fs.inotify.max_user_watches=524288` (and in \
                 /etc/sysctl.d/ to keep it), or --max-watches if set, and restart spis"
            );
        }
    }

    /// Waits up to `timeout` for events and appends the changes they mean to `out` (nothing when
    /// the time ran out), so the caller can notice that it should stop.
    pub(crate) fn wait(
        &mut self,
        fs: &MediaFs,
        out: &mut Vec<Change>,
        timeout: std::time::Duration,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd as _;
        let mut ready = libc::pollfd { fd: self.inotify.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd that outlives the call; the fd is ours and open.
        if unsafe { libc::poll(&mut ready, 1, ms) } < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(()) } else { Err(e) };
        }
        if ready.revents == 0 {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.buf);
        let read = self.inotify.read_events(&mut buf).map(|events| {
            events
                .map(|e| {
                    let wd = (e.mask != EventMask::Q_OVERFLOW).then_some(e.wd);
                    (wd, e.mask, e.cookie, e.name.map(|n| n.as_bytes().to_vec()))
                })
                .collect::<Vec<RawEvent>>()
        });
        self.buf = buf;
        let events = match read {
            Ok(events) => events,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        };
        for (wd, mask, cookie, name) in events {
            if mask.contains(EventMask::Q_OVERFLOW) {
                out.push(Change::Overflow);
                continue;
            }
            let Some(wd) = wd else { continue };
            if mask.contains(EventMask::IGNORED) {
                self.dirs.remove(&wd);
                continue;
            }
            let (Some(dir), Some(name)) = (self.dirs.get(&wd), name) else { continue };
            if name.starts_with(b".") {
                continue;
            }
            let dir = dir.clone();
            let path = join(&dir, &name);
            if mask.contains(EventMask::MOVED_FROM) {
                if self.moved_from.len() == 64 {
                    self.moved_from.pop_front();
                }
                self.moved_from.push_back((cookie, path.clone()));
            } else if mask.contains(EventMask::MOVED_TO)
                && let Some(at) = self.moved_from.iter().position(|(c, _)| *c == cookie)
                && let Some((_, from)) = self.moved_from.remove(at)
            {
                out.push(Change::Renamed { from, to: path.clone() });
            }
            if mask.contains(EventMask::ISDIR) {
                if mask.intersects(EventMask::CREATE | EventMask::MOVED_TO) {
                    if !fs.is_state_dir(&path) {
                        // Watch first, then report: whatever lands inside from now on has an event,
                        // and the scan the change asks for finds what was there before.
                        self.watch_tree(fs, &path);
                        out.push(Change::Dir(path));
                    }
                } else if mask.intersects(EventMask::MOVED_FROM | EventMask::DELETE) {
                    // A folder moved away keeps its watches (they follow the inode): drop them, or
                    // its events would be reported under its old path.
                    self.unwatch_below(&path);
                    out.push(Change::DirGone(path));
                }
            } else if mask.intersects(EventMask::CLOSE_WRITE | EventMask::MOVED_TO) {
                out.push(Change::File { dir, name });
            } else if mask.intersects(EventMask::MOVED_FROM | EventMask::DELETE) {
                out.push(Change::FileGone { dir, name });
            }
        }
        Ok(())
    }

    fn unwatch_below(&mut self, path: &[u8]) {
        let gone: Vec<WatchDescriptor> =
            self.dirs.iter().filter(|(_, d)| is_within(d, path)).map(|(wd, _)| wd.clone()).collect();
        for wd in gone {
            self.dirs.remove(&wd);
            let _ = self.inotify.watches().remove(wd);
        }
    }
}

/// Whether folder `dir` is `top` or below it.
pub(crate) fn is_within(dir: &[u8], top: &[u8]) -> bool {
    top.is_empty() || (dir.starts_with(top) && (dir.len() == top.len() || dir[top.len()] == b'/'))
}

/// The kind of a filesystem whose changes made by other machines inotify cannot see (NFS, SMB,
/// FUSE, 9p, Ceph), or `None` for a local one.
pub(crate) fn network_fs(path: &Path) -> Option<&'static str> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs writes into the zeroed struct we own; the path is a valid C string.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    // The f_type values from statfs(2); the field's type differs between libcs.
    #[allow(clippy::unnecessary_cast)]
    match st.f_type as u32 {
        0x6969 => Some("nfs"),
        0x517B => Some("smb"),
        0xFF53_4D42 => Some("cifs"),
        0xFE53_4D42 => Some("smb2"),
        0x6573_5546 => Some("fuse"),
        0x0102_1997 => Some("9p"),
        0x00C3_6400 => Some("ceph"),
        _ => None,
    }
}

/// An `OsStr` for a relative path (for log lines).
pub(crate) fn display(path: &[u8]) -> std::borrow::Cow<'_, str> {
    OsStr::from_bytes(path).to_string_lossy()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_matches_whole_path_components_only() {
        assert!(is_within(b"a/b", b"a"));
        assert!(is_within(b"a", b"a"));
        assert!(is_within(b"anything", b""));
        assert!(!is_within(b"ab", b"a"));
        assert!(!is_within(b"a", b"a/b"));
    }

    #[test]
    fn a_local_folder_is_not_a_network_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(network_fs(dir.path()), None);
    }
}
