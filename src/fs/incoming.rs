//! Files arriving in the media folder (uploads), and the state-dir records of the unfinished ones.
//!
//! The rule it keeps: a name visible in the media folder is always a complete, durable file. An
//! upload is written under a hidden temp name in its destination folder (the walk and the watcher
//! skip hidden names), synced, and only then renamed to its name with `RENAME_NOREPLACE`, so
//! nothing that exists is ever replaced or truncated, and two uploads of one name never mix.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::os::fd::{AsFd, AsRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, Timespec, Timestamps};
use sha2::Digest as _;

use super::{MediaFs, beneath, xattr};

/// The prefix of an upload's temp file; the rest is the upload's id.
const TEMP_PREFIX: &str = ".spis-upload-";
/// The state-dir folder of upload records.
const RECORDS: &str = "uploads";
/// Attribute caching a file's content hash: `size mtime_ns hex`, stale once either changes.
const HASH_ATTR: &str = "user.spis.sha256";

/// An upload being written: its temp file, open for appending, in its destination folder.
#[derive(Debug)]
pub(crate) struct Incoming {
    dir: OwnedFd,
    temp: Vec<u8>,
    file: File,
    len: u64,
}

/// What [`Incoming::publish`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Published {
    /// The file is in place under this name.
    As(Vec<u8>),
    /// Something else already has that name.
    Taken,
}

impl MediaFs {
    /// Opens (making as needed) the folder `dir` beneath the root for uploads: see
    /// [`beneath::Root::make_dirs`].
    fn upload_dir(&self, dir: &[u8]) -> io::Result<OwnedFd> {
        self.root.make_dirs(dir)
    }

    /// Starts the temp file of upload `id` in `dir` (which is made if missing).
    pub(crate) fn create_incoming(&self, dir: &[u8], id: &str) -> io::Result<Incoming> {
        let fd = self.upload_dir(dir)?;
        let temp = format!("{TEMP_PREFIX}{id}").into_bytes();
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let file =
            File::from(rustix::fs::openat(&fd, OsStr::from_bytes(&temp), flags, Mode::from_raw_mode(0o644))?);
        // The temp file's name is durable too, so that a resumed upload finds it after a crash.
        rustix::fs::fsync(&fd)?;
        Incoming::locked(fd, temp, file)
    }

    /// Opens the temp file of upload `id` in `dir` again, to go on appending. `WouldBlock` when
    /// another request (here or on a replica) is writing it.
    pub(crate) fn reopen_incoming(&self, dir: &[u8], id: &str) -> io::Result<Incoming> {
        let fd = self.root.open_no_links(dir, beneath::Open::Dir)?;
        let temp = format!("{TEMP_PREFIX}{id}").into_bytes();
        let flags = OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let file = File::from(rustix::fs::openat(&fd, OsStr::from_bytes(&temp), flags, Mode::empty())?);
        Incoming::locked(fd, temp, file)
    }

    /// The bytes of upload `id`'s temp file so far (0 when it is gone).
    pub(crate) fn incoming_len(&self, dir: &[u8], id: &str) -> u64 {
        let temp = super::join(dir, format!("{TEMP_PREFIX}{id}").as_bytes());
        self.stat_rel(&temp).map_or(0, |st| st.size)
    }

    /// Seconds since upload `id`'s temp file was last written, `None` when it is gone.
    pub(crate) fn incoming_idle_secs(&self, dir: &[u8], id: &str) -> Option<u64> {
        let temp = super::join(dir, format!("{TEMP_PREFIX}{id}").as_bytes());
        let mtime_ns = self.stat_rel(&temp).ok()?.mtime_ns;
        let now_ns =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos() as i64;
        Some((now_ns.saturating_sub(mtime_ns) / 1_000_000_000).max(0) as u64)
    }

    /// Removes upload `id`'s temp file, if it is there.
    pub(crate) fn remove_incoming(&self, dir: &[u8], id: &str) -> io::Result<()> {
        let fd = match self.root.open_no_links(dir, beneath::Open::Dir) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        match rustix::fs::unlinkat(
            &fd,
            OsStr::from_bytes(format!("{TEMP_PREFIX}{id}").as_bytes()),
            AtFlags::empty(),
        ) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The upload records in the state dir: (id, bytes, seconds since it was last written).
    pub(crate) fn upload_records(&self) -> Vec<(String, Vec<u8>, u64)> {
        let Ok(entries) = std::fs::read_dir(self.records_dir()) else { return Vec::new() };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_str()?.strip_suffix(".json")?.to_owned();
                let age = e.metadata().ok()?.modified().ok()?.elapsed().map_or(0, |d| d.as_secs());
                Some((name, std::fs::read(e.path()).ok()?, age))
            })
            .collect()
    }

    /// Upload `id`'s record, `None` when there is none.
    pub(crate) fn upload_record(&self, id: &str) -> io::Result<Option<Vec<u8>>> {
        super::private::read_optional(&self.record_path(id))
    }

    /// Writes upload `id`'s record durably (owner-only, like every state file).
    pub(crate) fn save_upload_record(&self, id: &str, bytes: &[u8]) -> io::Result<()> {
        super::private::write(&self.record_path(id), bytes)
    }

    pub(crate) fn remove_upload_record(&self, id: &str) -> io::Result<()> {
        match std::fs::remove_file(self.record_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn records_dir(&self) -> PathBuf {
        self.state_dir.join(RECORDS)
    }

    fn record_path(&self, id: &str) -> PathBuf {
        // Ids are made by the upload module from random bytes; anything else names no record.
        let safe = !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        self.records_dir().join(if safe { id } else { "-" }).with_extension("json")
    }

    /// Free bytes for an unprivileged writer on the filesystem of the folder `dir` (or of the
    /// nearest existing folder above it).
    pub(crate) fn free_bytes(&self, dir: &[u8]) -> io::Result<u64> {
        let mut at = dir;
        loop {
            match self.root.open_no_links(at, beneath::Open::Dir) {
                Ok(fd) => {
                    let st = rustix::fs::fstatvfs(&fd)?;
                    return Ok(st.f_bavail.saturating_mul(st.f_frsize));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && !at.is_empty() => {
                    at = at.iter().rposition(|&b| b == b'/').map_or(&[][..], |i| &at[..i]);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl Incoming {
    /// Takes the temp file's lock: one writer at a time, across processes sharing the folder.
    fn locked(dir: OwnedFd, temp: Vec<u8>, mut file: File) -> io::Result<Incoming> {
        rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive)?;
        let len = file.seek(io::SeekFrom::End(0))?;
        Ok(Incoming { dir, temp, file, len })
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        let start = self.len;
        self.len += bytes.len() as u64;
        // Starts writing these bytes to the disk now, without waiting, so the disk works while
        // the rest arrives and the fsync that acknowledges the upload has little left to do.
        // Only a hint: an error here is the fsync's to report.
        if let (Ok(offset), Ok(len)) = (i64::try_from(start), i64::try_from(bytes.len())) {
            // SAFETY: a plain syscall on a file descriptor this struct owns; no memory is passed.
            unsafe {
                libc::sync_file_range(self.file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
            }
        }
        Ok(())
    }

    /// Makes what was appended durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        rustix::fs::fdatasync(&self.file)?;
        Ok(())
    }

    /// The first `n` bytes written (fewer if there are fewer).
    pub(crate) fn head(&self, n: usize) -> io::Result<Vec<u8>> {
        let mut f = File::from(rustix::fs::openat(
            &self.dir,
            OsStr::from_bytes(&self.temp),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?);
        let mut head = Vec::with_capacity(n);
        (&mut f).take(n as u64).read_to_end(&mut head)?;
        Ok(head)
    }

    /// The size of `name` in the destination folder, `None` when nothing (or not a file) is there.
    pub(crate) fn sibling_size(&self, name: &[u8]) -> Option<u64> {
        let st = beneath::stat_in(&self.dir, name).ok()?;
        (st.kind == beneath::Kind::File).then_some(st.size)
    }

    /// Whether the regular file `name` in the destination folder has the same bytes as this
    /// upload (sizes equal, then SHA-256, the existing file's kept in an attribute).
    pub(crate) fn same_as(&self, name: &[u8]) -> io::Result<bool> {
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let other = File::from(rustix::fs::openat(&self.dir, OsStr::from_bytes(name), flags, Mode::empty())?);
        let st = beneath::fstat(&other)?;
        if st.kind != beneath::Kind::File || st.size != self.len {
            return Ok(false);
        }
        let theirs = cached_hash(&other, st.size, st.mtime_ns)?;
        let ours = hash(&mut File::from(rustix::fs::openat(
            &self.dir,
            OsStr::from_bytes(&self.temp),
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?))?;
        Ok(theirs == ours)
    }

    /// Gives the file its own modification time (seconds since the epoch), as the upload said.
    pub(crate) fn set_mtime(&self, secs: i64) -> io::Result<()> {
        let when = Timespec { tv_sec: secs, tv_nsec: 0 };
        rustix::fs::futimens(&self.file, &Timestamps { last_access: when, last_modification: when })?;
        Ok(())
    }

    /// Syncs the file and renames it to `name`, unless something already has that name; the
    /// rename is synced too, so when this answers `As` a power cut keeps the file.
    pub(crate) fn publish(&self, name: &[u8]) -> io::Result<Published> {
        rustix::fs::fsync(&self.file)?;
        if !super::trash::rename_noreplace(&self.dir, &self.temp, &self.dir, name)? {
            return Ok(Published::Taken);
        }
        rustix::fs::fsync(&self.dir)?;
        Ok(Published::As(name.to_vec()))
    }

    /// Removes the temp file (an upload refused, cancelled, or the same as a file already there).
    pub(crate) fn discard(self) -> io::Result<()> {
        match rustix::fs::unlinkat(&self.dir, OsStr::from_bytes(&self.temp), AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn hash(f: &mut File) -> io::Result<[u8; 32]> {
    let mut h = sha2::Sha256::new();
    io::copy(f, &mut h)?;
    Ok(h.finalize().into())
}

/// The file's SHA-256 from its attribute when that is current, else read and remembered there
/// (the attribute changes neither the bytes nor the mtime; where none can be set, it is read
/// every time).
fn cached_hash(f: &File, size: u64, mtime_ns: i64) -> io::Result<[u8; 32]> {
    let stamp = format!("{size} {mtime_ns} ");
    let mut buf = [0u8; 128];
    if let Ok(Some(v)) = xattr::get(f.as_fd(), HASH_ATTR, &mut buf)
        && let Some(hex) = v.strip_prefix(stamp.as_bytes())
        && let Ok(bytes) = data_encoding::HEXLOWER.decode(hex)
        && let Ok(h) = <[u8; 32]>::try_from(bytes)
    {
        return Ok(h);
    }
    let h = hash(&mut f.try_clone()?)?;
    let value = format!("{stamp}{}", data_encoding::HEXLOWER.encode(&h));
    if let Err(e) = xattr::set(f.as_fd(), HASH_ATTR, value.as_bytes()) {
        tracing::debug!(error = %e, "cannot keep a content hash on the file");
    }
    Ok(h)
}
