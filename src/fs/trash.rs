//! The trash: deleted files kept for a while, on their own filesystem, in the layout of the
//! freedesktop.org Trash specification, so a desktop file manager shows the same trash.
//!
//! The rule it keeps: a delete moves, never copies, and loses nothing. A file goes to
//! `<top>/.trash/files/<name>`, where `<top>` is the highest folder of the media folder on the
//! file's filesystem (the media root, or a drive mounted below it), and its original place to
//! `<top>/.trash/info/<name>.trashinfo`. The info is written and synced first, then the file
//! is renamed and the rename synced: a crash between the two leaves an info without a file,
//! which is dropped. The walk and the watcher skip `.trash` as any hidden folder.

use std::ffi::OsStr;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{AtFlags, Mode, OFlags, RenameFlags};

use super::beneath::{self, Kind, Open};
use super::{MediaFs, RelPath};

/// The trash folder in each top folder.
const TRASH: &[u8] = b".trash";
const INFO_SUFFIX: &str = ".trashinfo";
/// The state-dir file naming the top folders (other than the root) that have a trash.
const TOPS_FILE: &str = "trash-tops.txt";
/// An info file is a few lines; anything larger is not one of ours.
const INFO_MAX: u64 = 8192;
/// Characters kept as they are in the info's `Path=` (RFC 2396 unreserved, and `/`).
const PATH_SET: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'/').remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// One file in a trash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Trashed {
    /// Names the entry in the API: the top folder and the name in `files/`.
    pub id: String,
    /// Where it was, relative to the media root.
    pub dir: Vec<u8>,
    pub name: Vec<u8>,
    /// The folder holding it now (`<top>/.trash/files`), and its name there.
    pub trash_dir: Vec<u8>,
    pub trash_name: Vec<u8>,
    /// When it was deleted, seconds since the epoch.
    pub deleted: i64,
    pub size: u64,
    pub mtime_ns: i64,
}

/// Where a restored file went (its name may have a ` (2)` when its old one was taken again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Restored {
    pub dir: Vec<u8>,
    pub name: Vec<u8>,
}

/// `name`, or for `copy` 2 and up `stem (copy).ext`.
pub(crate) fn numbered(name: &str, copy: u32) -> String {
    if copy <= 1 {
        return name.to_owned();
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem} ({copy}).{ext}"),
        _ => format!("{name} ({copy})"),
    }
}

/// The most ` (N)` copies tried for a free name.
const MAX_COPIES: u32 = 999;

impl MediaFs {
    /// Moves a file to the trash of its filesystem; durable when this returns.
    pub(crate) fn trash(&self, rel: RelPath<'_>, now: i64) -> io::Result<Trashed> {
        let dir_fd = self.root.open_no_links(rel.dir, Open::Dir)?;
        let st = beneath::stat_in(&dir_fd, rel.name)?;
        if st.kind != Kind::File {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        let top = self.top_of(rel.dir, st.dev)?;
        let (files, info) = self.trash_dirs(&top, true)?;
        let relative = strip_top(&rel.key(), &top);
        let text = format!(
            "[Trash Info]\nPath={}\nDeletionDate={}\nX-Spis-Deleted={now}\n",
            percent_encoding::percent_encode(&relative, PATH_SET),
            jiff::Timestamp::from_second(now)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
                .to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%dT%H:%M:%S"),
        );
        let wanted = String::from_utf8_lossy(rel.name).into_owned();
        for copy in 1..=MAX_COPIES {
            let name = if copy == 1 { rel.name.to_vec() } else { numbered(&wanted, copy).into_bytes() };
            // The info first, claimed with O_EXCL: it reserves the name in files/ too.
            let info_name = info_name_of(&name);
            let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
            let fd = match rustix::fs::openat(
                &info,
                OsStr::from_bytes(&info_name),
                flags,
                Mode::from_raw_mode(0o600),
            ) {
                Ok(fd) => fd,
                Err(rustix::io::Errno::EXIST) => continue,
                Err(e) => return Err(e.into()),
            };
            let mut f = std::fs::File::from(fd);
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            rustix::fs::fsync(&info)?;
            match rename_noreplace(&dir_fd, rel.name, &files, &name) {
                Ok(true) => {}
                Ok(false) => {
                    // A file of that name is in files/ without its info (put there by hand).
                    let _ = rustix::fs::unlinkat(&info, OsStr::from_bytes(&info_name), AtFlags::empty());
                    continue;
                }
                Err(e) => {
                    let _ = rustix::fs::unlinkat(&info, OsStr::from_bytes(&info_name), AtFlags::empty());
                    return Err(e);
                }
            }
            rustix::fs::fsync(&files)?;
            rustix::fs::fsync(&dir_fd)?;
            let trash_dir = super::join(&top, b".trash/files");
            let _ = self.renamed(&rel.key(), &super::join(&trash_dir, &name));
            return Ok(Trashed {
                id: entry_id(&top, &name),
                dir: rel.dir.to_vec(),
                name: rel.name.to_vec(),
                trash_dir,
                trash_name: name,
                deleted: now,
                size: st.size,
                mtime_ns: st.mtime_ns,
            });
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free name in the trash"))
    }

    /// Every file in every trash, most recently deleted first. A trash on a drive that is not
    /// plugged in is simply not listed.
    pub(crate) fn trash_list(&self) -> Vec<Trashed> {
        let mut out = Vec::new();
        for top in self.trash_tops() {
            let Ok((files, info)) = self.trash_dirs(&top, false) else { continue };
            let Ok(names) = list_names(&info) else { continue };
            for info_name in names {
                let Some(name) = info_name.strip_suffix(INFO_SUFFIX.as_bytes()) else { continue };
                if let Ok(entry) = read_entry(&files, &info, &top, name) {
                    out.push(entry);
                }
            }
        }
        out.sort_by(|a, b| b.deleted.cmp(&a.deleted).then_with(|| a.id.cmp(&b.id)));
        out
    }

    /// One entry by its id; `NotFound` when there is none.
    pub(crate) fn trash_entry(&self, id: &str) -> io::Result<Trashed> {
        let (top, name) = parse_id(id).ok_or_else(not_found)?;
        let (files, info) = self.trash_dirs(&top, false)?;
        read_entry(&files, &info, &top, &name)
    }

    /// Puts a file back where it was (making its folders again), or beside it as `name (2).ext`
    /// when that name was taken since; durable when this returns.
    /// `before` hears each name just before it is tried.
    pub(crate) fn restore(&self, id: &str, before: &dyn Fn(&[u8], &[u8]) -> bool) -> io::Result<Restored> {
        let (top, name) = parse_id(id).ok_or_else(not_found)?;
        let (files, info) = self.trash_dirs(&top, false)?;
        let entry = read_entry(&files, &info, &top, &name)?;
        let dir_fd = self.root.make_dirs(&entry.dir)?;
        let wanted = String::from_utf8_lossy(&entry.name).into_owned();
        for copy in 1..=MAX_COPIES {
            let name = if copy == 1 { entry.name.clone() } else { numbered(&wanted, copy).into_bytes() };
            before(&entry.dir, &name);
            if !rename_noreplace(&files, &entry.trash_name, &dir_fd, &name)? {
                continue;
            }
            rustix::fs::fsync(&dir_fd)?;
            rustix::fs::fsync(&files)?;
            remove_name(&info, &info_name_of(&entry.trash_name))?;
            rustix::fs::fsync(&info)?;
            let _ = self
                .renamed(&super::join(&entry.trash_dir, &entry.trash_name), &super::join(&entry.dir, &name));
            return Ok(Restored { dir: entry.dir, name });
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free name to restore to"))
    }

    /// Deletes a trashed file for good: the file, then its info.
    pub(crate) fn purge(&self, id: &str) -> io::Result<()> {
        let (top, name) = parse_id(id).ok_or_else(not_found)?;
        let (files, info) = self.trash_dirs(&top, false)?;
        let info_name = info_name_of(&name);
        // Only what the trash lists: an id naming no info deletes nothing.
        beneath::stat_in(&info, &info_name)?;
        remove_name(&files, &name)?;
        rustix::fs::fsync(&files)?;
        remove_name(&info, &info_name)?;
        rustix::fs::fsync(&info)?;
        Ok(())
    }

    /// Deletes a media file for good, not through the trash (retention); durable when this
    /// returns. Never through a link.
    pub(crate) fn remove_for_good(&self, rel: RelPath<'_>) -> io::Result<()> {
        let dir = self.root.open_no_links(rel.dir, Open::Dir)?;
        if beneath::stat_in(&dir, rel.name)?.kind != Kind::File {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
        }
        remove_name(&dir, rel.name)?;
        rustix::fs::fsync(&dir)?;
        Ok(())
    }

    /// Drops infos whose file is gone (a crash between the two steps of [`MediaFs::trash`], or
    /// a file removed by hand), and returns how many.
    pub(crate) fn trash_drop_orphans(&self) -> usize {
        let mut dropped = 0;
        for top in self.trash_tops() {
            let Ok((files, info)) = self.trash_dirs(&top, false) else { continue };
            let Ok(names) = list_names(&info) else { continue };
            for info_name in names {
                let Some(name) = info_name.strip_suffix(INFO_SUFFIX.as_bytes()) else { continue };
                let file_gone =
                    matches!(beneath::stat_in(&files, name), Err(e) if e.kind() == io::ErrorKind::NotFound);
                if file_gone && remove_name(&info, &info_name).is_ok() {
                    dropped += 1;
                }
            }
        }
        dropped
    }

    /// The highest folder on the way to `dir` (the root first) on device `dev`.
    fn top_of(&self, dir: &[u8], dev: u64) -> io::Result<Vec<u8>> {
        let mut prefix = Vec::new();
        let parts: Vec<&[u8]> = dir.split(|&b| b == b'/').filter(|p| !p.is_empty()).collect();
        for i in 0..=parts.len() {
            if i > 0 {
                prefix = parts[..i].join(&b'/');
            }
            let fd = self.root.open_no_links(&prefix, Open::Dir)?;
            if beneath::fstat(&fd)?.dev == dev {
                return Ok(prefix);
            }
        }
        Ok(prefix)
    }

    /// `files/` and `info/` of the trash in `top`, made (and the top remembered) when `make`.
    fn trash_dirs(&self, top: &[u8], make: bool) -> io::Result<(OwnedFd, OwnedFd)> {
        let top_fd = self.root.open_no_links(top, Open::Dir)?;
        let trash = open_or_make(&top_fd, TRASH, make, 0o700)?;
        let files = open_or_make(&trash, b"files", make, 0o700)?;
        let info = open_or_make(&trash, b"info", make, 0o700)?;
        if make && !top.is_empty() {
            self.remember_top(top)?;
        }
        Ok((files, info))
    }

    fn tops_path(&self) -> std::path::PathBuf {
        self.state_dir.join(TOPS_FILE)
    }

    /// The root, and the other top folders a file was ever trashed from.
    fn trash_tops(&self) -> Vec<Vec<u8>> {
        let mut tops = vec![Vec::new()];
        if let Ok(text) = std::fs::read(self.tops_path()) {
            tops.extend(text.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec));
        }
        tops.dedup();
        tops
    }

    fn remember_top(&self, top: &[u8]) -> io::Result<()> {
        let mut tops = self.trash_tops();
        if tops.iter().any(|t| t == top) {
            return Ok(());
        }
        tops.push(top.to_vec());
        let text: Vec<u8> =
            tops.iter().filter(|t| !t.is_empty()).flat_map(|t| [&t[..], b"\n"].concat()).collect();
        super::write_atomic(&self.tops_path(), &text)
    }
}

/// The entry `name` of the trash in `top`, whose `files/` and `info/` are open.
fn read_entry(files: &OwnedFd, info: &OwnedFd, top: &[u8], name: &[u8]) -> io::Result<Trashed> {
    let info_name = info_name_of(name);
    let fd = rustix::fs::openat(
        info,
        OsStr::from_bytes(&info_name),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let info_st = beneath::fstat(&fd)?;
    if info_st.kind != Kind::File {
        return Err(not_found());
    }
    let mut text = String::new();
    std::fs::File::from(fd).take(INFO_MAX).read_to_string(&mut text)?;
    let st = beneath::stat_in(files, name)?;
    if st.kind != Kind::File {
        return Err(not_found());
    }
    let (mut path, mut deleted) = (None, None);
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("Path=") {
            path = Some(percent_encoding::percent_decode_str(p.trim()).collect::<Vec<u8>>());
        } else if let Some(d) = line.strip_prefix("X-Spis-Deleted=") {
            deleted = d.trim().parse::<i64>().ok();
        }
    }
    let path = path
        .filter(|p| !p.is_empty() && beneath::is_clean(p))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a trash info without a usable Path="))?;
    let full = if top.is_empty() { path } else { super::join(top, &path) };
    let (dir, original) = match full.iter().rposition(|&b| b == b'/') {
        Some(i) => (full[..i].to_vec(), full[i + 1..].to_vec()),
        None => (Vec::new(), full),
    };
    Ok(Trashed {
        id: entry_id(top, name),
        dir,
        name: original,
        trash_dir: super::join(top, b".trash/files"),
        trash_name: name.to_vec(),
        // Written by another tool without our key: the info's own time.
        deleted: deleted.unwrap_or(info_st.mtime_ns.div_euclid(1_000_000_000)),
        size: st.size,
        mtime_ns: st.mtime_ns,
    })
}

/// `NAME.trashinfo`, the info file of `files/NAME`.
fn info_name_of(name: &[u8]) -> Vec<u8> {
    [name, INFO_SUFFIX.as_bytes()].concat()
}

/// The entry id: the top folder and the name in `files/`, base64url.
fn entry_id(top: &[u8], name: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(&[top, b"\0", name].concat())
}

fn parse_id(id: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let raw = data_encoding::BASE64URL_NOPAD.decode(id.as_bytes()).ok()?;
    let at = raw.iter().position(|&b| b == 0)?;
    let (top, name) = (raw[..at].to_vec(), raw[at + 1..].to_vec());
    let name_ok =
        !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0);
    (name_ok && (top.is_empty() || beneath::is_clean(&top))).then_some((top, name))
}

fn strip_top(path: &[u8], top: &[u8]) -> Vec<u8> {
    if top.is_empty() {
        return path.to_vec();
    }
    path.strip_prefix(top).and_then(|p| p.strip_prefix(b"/")).unwrap_or(path).to_vec()
}

fn not_found() -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, "no such file in the trash")
}

fn open_or_make(dir: &OwnedFd, name: &[u8], make: bool, mode: u32) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::openat(dir, OsStr::from_bytes(name), flags, Mode::empty()) {
        Err(rustix::io::Errno::NOENT) if make => {
            match rustix::fs::mkdirat(dir, OsStr::from_bytes(name), Mode::from_raw_mode(mode)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            rustix::fs::fsync(dir)?;
            Ok(rustix::fs::openat(dir, OsStr::from_bytes(name), flags, Mode::empty())?)
        }
        // SECURITY: a link put where the trash is (ELOOP, ENOTDIR) is no trash.
        other => Ok(other?),
    }
}

/// Renames `from` in `from_dir` to `to` in `to_dir` unless `to` exists (`false` then).
pub(crate) fn rename_noreplace(
    from_dir: impl AsFd,
    from: &[u8],
    to_dir: impl AsFd,
    to: &[u8],
) -> io::Result<bool> {
    let (f, t) = (OsStr::from_bytes(from), OsStr::from_bytes(to));
    match rustix::fs::renameat_with(&from_dir, f, &to_dir, t, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) => Ok(false),
        // A filesystem without RENAME_NOREPLACE: a hard link fails the same way on a taken
        // name; then the old name goes.
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            match rustix::fs::linkat(&from_dir, f, &to_dir, t, AtFlags::empty()) {
                Ok(()) => {
                    rustix::fs::unlinkat(&from_dir, f, AtFlags::empty())?;
                    Ok(true)
                }
                Err(rustix::io::Errno::EXIST) => Ok(false),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn remove_name(dir: &OwnedFd, name: &[u8]) -> io::Result<()> {
    match rustix::fs::unlinkat(dir, OsStr::from_bytes(name), AtFlags::empty()) {
        Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn list_names(dir: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    let fd =
        rustix::fs::openat(dir, c".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&fd)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_a_top_and_a_plain_name_only() {
        for (top, name) in [(&b""[..], &b"IMG 1.jpg"[..]), (b"photos", b"a (2).jpg"), (b"usb/DCIM", b"x.mp4")]
        {
            assert_eq!(parse_id(&entry_id(top, name)), Some((top.to_vec(), name.to_vec())));
        }
        for (top, name) in [(&b""[..], &b".."[..]), (b"", b"a/b"), (b"../etc", b"passwd"), (b"", b"")] {
            assert_eq!(parse_id(&entry_id(top, name)), None, "{top:?} {name:?}");
        }
        assert_eq!(parse_id("not base64!"), None);
    }

    #[test]
    fn copies_are_numbered_before_the_extension() {
        assert_eq!(numbered("a.jpg", 1), "a.jpg");
        assert_eq!(numbered("a.jpg", 2), "a (2).jpg");
        assert_eq!(numbered(".jpg", 3), ".jpg (3)");
        assert_eq!(numbered("noext", 2), "noext (2)");
    }
}
