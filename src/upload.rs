//! Photos and videos arriving over the network: where they go, what is refused, and how an
//! upload becomes a file in the media folder.
//!
//! The rule it keeps: an upload is acknowledged only once its file is durable under its final
//! name, and no name is ever overwritten. The same name with the same bytes is the file already
//! there (a phone backup run twice adds nothing); the same name with other bytes becomes
//! `name (2).jpg`. An unfinished upload is a hidden temp file in its destination folder plus a
//! record in the state dir, so it can go on after a dropped connection or a restart, and is swept
//! when abandoned. Nothing here knows about HTTP.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization as _;

use crate::fs::MediaFs;
use crate::fs::incoming::{Incoming, Published};
use crate::media::Format;

/// The longest file or folder name most Linux filesystems take, in bytes.
const NAME_MAX: usize = 255;
/// Bytes of a file's start that recognise every format spis knows (WebM's doctype is the latest).
const SNIFF_BYTES: usize = 64;
/// How long an unfinished resumable upload is kept after its last write.
pub(crate) const RESUMABLE_FOR: Duration = Duration::from_secs(24 * 3600);
/// How long a one-shot upload's temp file is left after its last write before it is swept (a
/// crash cut it short; one-shot uploads are never resumed).
const ONE_SHOT_FOR: Duration = Duration::from_secs(3600);
/// How long a finished resumable upload still answers its status (a client that lost the last
/// reply asks again).
const FINISHED_FOR: Duration = Duration::from_secs(24 * 3600);
/// `name (2).jpg` ... `name (999).jpg`; past that the upload is refused.
const MAX_COPIES: u32 = 999;
/// How often the free space is checked again while a body of unknown length is written.
const SPACE_CHECK_EVERY: u64 = 64 << 20;

/// Limits, from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct UploadOpts {
    /// The largest upload accepted (`upload_max_mb`).
    pub max_bytes: u64,
    /// Free space an upload must leave on the disk (`upload_reserve_mb`).
    pub reserve_bytes: u64,
}

/// Why an upload is refused; the HTTP layer maps each to its status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error("{0}")]
    BadName(String),
    #[error("this is not a photo or video spis can show: {0}")]
    NotMedia(String),
    #[error("the upload is {size} bytes; the most this server takes is {max} (upload_max_mb)")]
    TooLarge { size: u64, max: u64 },
    #[error(
        "the disk is too full for this upload: {free} bytes free, and {reserve} must stay free (upload_reserve_mb)"
    )]
    NoSpace { free: u64, reserve: u64 },
    #[error("the media folder is read-only here; uploads cannot be stored")]
    ReadOnly,
    #[error("this token may only add files under {0}")]
    OutsideScope(String),
    #[error("no such upload (it finished long ago, was cancelled or expired)")]
    UnknownUpload,
    #[error("the upload is at offset {have}, not {sent}")]
    WrongOffset { have: u64, sent: u64 },
    #[error("the body is longer than the upload's declared length ({0} bytes)")]
    TooLong(u64),
    #[error("another request is writing this upload right now")]
    Busy,
    #[error("too many files named like this one in that folder")]
    TooManyCopies,
    #[error("storing the upload failed")]
    Io(#[source] std::io::Error),
}

impl From<std::io::Error> for UploadError {
    fn from(e: std::io::Error) -> UploadError {
        match e.raw_os_error() {
            Some(libc::EROFS) => UploadError::ReadOnly,
            Some(libc::ENOSPC | libc::EDQUOT) => UploadError::NoSpace { free: 0, reserve: 0 },
            Some(libc::EWOULDBLOCK) => UploadError::Busy,
            _ => UploadError::Io(e),
        }
    }
}

/// Where a caller may put files.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    Anywhere,
    /// An upload-only token: this folder and below.
    Below(&'a str),
}

/// A checked destination: a folder below the media root and a file name, both NFC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Target {
    pub dir: String,
    pub name: String,
    /// The file's own modification time (seconds since the epoch), given it on arrival.
    pub mtime: Option<i64>,
}

/// A file that arrived: where it is, and whether it was there already.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Landed {
    pub dir: String,
    pub name: String,
    /// The same name with the same bytes was already there; nothing was added.
    pub existed: bool,
}

impl Landed {
    /// The media id the index gives this file.
    pub(crate) fn id(&self) -> u64 {
        crate::library::id::from_rel_path(&crate::fs::join(self.dir.as_bytes(), self.name.as_bytes()))
    }
}

/// What the state dir keeps of an upload that has not finished (or finished recently).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    target: Target,
    length: Option<u64>,
    /// Resumable (tus); a one-shot upload's record only serves the sweep.
    resumable: bool,
    /// The upload-only token's folder that made it, which alone may go on with it.
    scope: Option<String>,
    /// Set once the file is in place.
    landed: Option<Landed>,
}

/// Where a resumable upload stands.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    pub offset: u64,
    pub length: Option<u64>,
    pub landed: Option<Landed>,
}

/// The uploads of one media folder.
#[derive(Debug)]
pub(crate) struct Uploads {
    fs: Arc<MediaFs>,
    opts: UploadOpts,
}

impl Uploads {
    pub(crate) fn new(fs: Arc<MediaFs>, opts: UploadOpts) -> Uploads {
        Uploads { fs, opts }
    }

    pub(crate) fn max_bytes(&self) -> u64 {
        self.opts.max_bytes
    }

    /// Checks a destination: `dir` (the caller's, else `Uploads/<YYYY>/<MM>` of the file's mtime
    /// or now, or the token's own folder) and `name`, cleaned to NFC and refused when they could
    /// not be a visible media file inside the media folder.
    pub(crate) fn target(
        &self,
        dir: Option<&str>,
        name: &str,
        mtime: Option<i64>,
        scope: Scope<'_>,
    ) -> Result<Target, UploadError> {
        let name = clean_name(name)?;
        if Format::from_extension(name.rsplit_once('.').map_or("", |(_, ext)| ext)).is_none() {
            return Err(UploadError::NotMedia(format!(
                "{name:?} does not end in a photo or video extension"
            )));
        }
        let dir = match (dir.map(str::trim).filter(|d| !d.trim_matches('/').is_empty()), scope) {
            (Some(d), _) => clean_dir(d)?,
            (None, Scope::Below(top)) => top.to_owned(),
            (None, Scope::Anywhere) => default_dir(mtime),
        };
        if let Scope::Below(top) = scope
            && !crate::fs::watch::is_within(dir.as_bytes(), top.as_bytes())
        {
            return Err(UploadError::OutsideScope(top.to_owned()));
        }
        Ok(Target { dir, name, mtime })
    }

    /// Refuses a declared length over the limit or one the disk has no room for (with the
    /// reserve), before any byte is read.
    pub(crate) fn check_room(&self, target: &Target, length: Option<u64>) -> Result<(), UploadError> {
        let size = length.unwrap_or(0);
        if size > self.opts.max_bytes {
            return Err(UploadError::TooLarge { size, max: self.opts.max_bytes });
        }
        let free = self.fs.free_bytes(target.dir.as_bytes())?;
        if free < size.saturating_add(self.opts.reserve_bytes) {
            return Err(UploadError::NoSpace { free, reserve: self.opts.reserve_bytes });
        }
        Ok(())
    }

    /// Starts an upload of `length` bytes (`None`: whatever the body holds) to `target`, after
    /// [`Uploads::check_room`]. A resumable one can be found again by its id after a restart.
    pub(crate) fn start(
        self: &Arc<Self>,
        target: Target,
        length: Option<u64>,
        resumable: bool,
        scope: Scope<'_>,
    ) -> Result<Upload, UploadError> {
        self.check_room(&target, length)?;
        let id = data_encoding::BASE32_NOPAD.encode(&crate::auth::random::<15>()).to_ascii_lowercase();
        let scope = match scope {
            Scope::Anywhere => None,
            Scope::Below(top) => Some(top.to_owned()),
        };
        let record = Record { target, length, resumable, scope, landed: None };
        // The record first: a crash between the two leaves a record the sweep removes, never a
        // temp file nothing knows about.
        self.save(&id, &record)?;
        let incoming = match self.fs.create_incoming(record.target.dir.as_bytes(), &id) {
            Ok(f) => f,
            Err(e) => {
                let _ = self.fs.remove_upload_record(&id);
                return Err(classify_dir_error(e, &record.target.dir));
            }
        };
        Ok(Upload::new(Arc::clone(self), id, record, incoming))
    }

    /// A resumable upload, to go on writing it.
    pub(crate) fn resume(self: &Arc<Self>, id: &str, scope: Scope<'_>) -> Result<Upload, UploadError> {
        let record = self.record(id, scope)?;
        if record.landed.is_some() || !record.resumable {
            return Err(UploadError::UnknownUpload);
        }
        let incoming = self.fs.reopen_incoming(record.target.dir.as_bytes(), id).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound { UploadError::UnknownUpload } else { e.into() }
        })?;
        Ok(Upload::new(Arc::clone(self), id.to_owned(), record, incoming))
    }

    /// Where a resumable upload stands.
    pub(crate) fn progress(&self, id: &str, scope: Scope<'_>) -> Result<Progress, UploadError> {
        let record = self.record(id, scope)?;
        if !record.resumable {
            return Err(UploadError::UnknownUpload);
        }
        let offset = match &record.landed {
            Some(_) => record.length.unwrap_or(0),
            None => self.fs.incoming_len(record.target.dir.as_bytes(), id),
        };
        Ok(Progress { offset, length: record.length, landed: record.landed })
    }

    /// Cancels a resumable upload: its temp file and record go (a finished one's file stays).
    pub(crate) fn cancel(&self, id: &str, scope: Scope<'_>) -> Result<(), UploadError> {
        let record = self.record(id, scope)?;
        if record.landed.is_none() {
            self.fs.remove_incoming(record.target.dir.as_bytes(), id)?;
        }
        self.fs.remove_upload_record(id)?;
        Ok(())
    }

    /// Removes what crashed or abandoned uploads left: temp files not written to for a while
    /// (a day for resumable ones, an hour for one-shot ones) and old records of finished ones.
    /// Returns how many uploads were swept.
    pub(crate) fn sweep(&self) -> usize {
        let mut swept = 0;
        for (id, bytes, age) in self.fs.upload_records() {
            let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
                let _ = self.fs.remove_upload_record(&id);
                continue;
            };
            let keep = match (&record.landed, record.resumable) {
                (Some(_), _) => FINISHED_FOR,
                (None, true) => RESUMABLE_FOR,
                (None, false) => ONE_SHOT_FOR,
            };
            // A record is rewritten only when it is made or finished; a temp file being written
            // counts as activity through its own mtime.
            let idle = match &record.landed {
                Some(_) => age,
                None => age.min(self.fs.incoming_idle_secs(record.target.dir.as_bytes(), &id).unwrap_or(age)),
            };
            if idle < keep.as_secs() {
                continue;
            }
            if record.landed.is_none()
                && let Err(e) = self.fs.remove_incoming(record.target.dir.as_bytes(), &id)
            {
                tracing::warn!(error = %e, id, "cannot remove an abandoned upload's temp file");
                continue;
            }
            let _ = self.fs.remove_upload_record(&id);
            if record.landed.is_none() {
                tracing::info!(
                    id,
                    dir = record.target.dir,
                    name = record.target.name,
                    "abandoned upload removed"
                );
            }
            swept += 1;
        }
        swept
    }

    fn record(&self, id: &str, scope: Scope<'_>) -> Result<Record, UploadError> {
        let bytes = self.fs.upload_record(id)?.ok_or(UploadError::UnknownUpload)?;
        let record: Record = serde_json::from_slice(&bytes).map_err(|_| UploadError::UnknownUpload)?;
        // SECURITY: an upload-only token reaches only the uploads it could have made.
        if let Scope::Below(top) = scope
            && record.scope.as_deref() != Some(top)
        {
            return Err(UploadError::UnknownUpload);
        }
        Ok(record)
    }

    fn save(&self, id: &str, record: &Record) -> Result<(), UploadError> {
        let bytes = serde_json::to_vec(record).map_err(|e| UploadError::Io(std::io::Error::other(e)))?;
        Ok(self.fs.save_upload_record(id, &bytes)?)
    }
}

/// An upload being written. Dropped without [`Upload::finish`] or [`Upload::pause`], a one-shot
/// upload's temp file is removed at once; a resumable one stays for a later request.
#[derive(Debug)]
pub(crate) struct Upload {
    uploads: Arc<Uploads>,
    id: String,
    record: Record,
    incoming: Option<Incoming>,
    sniffed: bool,
    next_space_check: u64,
}

impl Upload {
    fn new(uploads: Arc<Uploads>, id: String, record: Record, incoming: Incoming) -> Upload {
        let offset = incoming.len();
        Upload {
            uploads,
            id,
            record,
            incoming: Some(incoming),
            sniffed: offset >= SNIFF_BYTES as u64,
            next_space_check: offset + SPACE_CHECK_EVERY,
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    fn file(&mut self) -> &mut Incoming {
        self.incoming.as_mut().expect("present until finished or dropped")
    }

    pub(crate) fn offset(&self) -> u64 {
        self.incoming.as_ref().map_or(0, Incoming::len)
    }

    pub(crate) fn length(&self) -> Option<u64> {
        self.record.length
    }

    /// Appends bytes, refusing more than the declared length or the limit, and a start that is
    /// not a photo or video.
    pub(crate) fn write(&mut self, bytes: &[u8]) -> Result<(), UploadError> {
        let end = self.offset() + bytes.len() as u64;
        if let Some(length) = self.record.length
            && end > length
        {
            return Err(UploadError::TooLong(length));
        }
        let max = self.uploads.opts.max_bytes;
        if end > max {
            return Err(UploadError::TooLarge { size: end, max });
        }
        if end >= self.next_space_check {
            self.next_space_check = end + SPACE_CHECK_EVERY;
            let free = self.uploads.fs.free_bytes(self.record.target.dir.as_bytes())?;
            if free < self.uploads.opts.reserve_bytes + bytes.len() as u64 {
                return Err(UploadError::NoSpace { free, reserve: self.uploads.opts.reserve_bytes });
            }
        }
        self.file().append(bytes)?;
        if !self.sniffed && self.offset() >= SNIFF_BYTES as u64 {
            self.sniff()?;
        }
        Ok(())
    }

    fn sniff(&mut self) -> Result<(), UploadError> {
        let head = self.file().head(SNIFF_BYTES)?;
        if Format::sniff(&head).is_none() {
            return Err(UploadError::NotMedia(
                "its first bytes are not those of any photo or video format".into(),
            ));
        }
        self.sniffed = true;
        Ok(())
    }

    /// Whether every declared byte has arrived (always false for an undeclared length).
    pub(crate) fn is_complete(&self) -> bool {
        self.record.length == Some(self.offset())
    }

    /// Keeps what arrived durably, for a later request to go on from (a resumable upload).
    pub(crate) fn pause(mut self) -> Result<u64, UploadError> {
        let file = self.incoming.take().expect("present");
        file.sync()?;
        Ok(file.len())
    }

    /// Puts the file in place under its name, or the first free `name (N).ext`, unless one of
    /// those has the same bytes already; durable when this returns.
    pub(crate) fn finish(mut self) -> Result<Landed, UploadError> {
        if let Some(length) = self.record.length
            && self.offset() != length
        {
            return Err(UploadError::WrongOffset { have: self.offset(), sent: length });
        }
        if !self.sniffed {
            self.sniff()?;
        }
        let target = self.record.target.clone();
        if let Some(secs) = target.mtime {
            self.file().set_mtime(secs)?;
        }
        let file = self.incoming.as_ref().expect("present");
        let mut copy = 1;
        let landed = loop {
            let name = crate::fs::trash::numbered(&target.name, copy);
            let existed = match file.sibling_size(name.as_bytes()) {
                Some(size) if size == file.len() => file.same_as(name.as_bytes())?,
                Some(_) => false,
                None => match file.publish(name.as_bytes())? {
                    Published::As(_) => break Landed { dir: target.dir.clone(), name, existed: false },
                    // Taken between the look and the rename: look at that name again.
                    Published::Taken => continue,
                },
            };
            if existed {
                break Landed { dir: target.dir.clone(), name, existed: true };
            }
            copy += 1;
            if copy > MAX_COPIES {
                return Err(UploadError::TooManyCopies);
            }
        };
        let file = self.incoming.take().expect("present");
        if landed.existed {
            file.discard()?;
        }
        if self.record.resumable {
            self.record.landed = Some(landed.clone());
            self.uploads.save(&self.id, &self.record)?;
        } else {
            self.uploads.fs.remove_upload_record(&self.id)?;
        }
        Ok(landed)
    }

    /// Gives up on the upload: its temp file and record go now.
    pub(crate) fn abandon(mut self) {
        if let Some(file) = self.incoming.take() {
            let _ = file.discard();
        }
        let _ = self.uploads.fs.remove_upload_record(&self.id);
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let Some(file) = self.incoming.take() else { return };
        if self.record.resumable {
            // What arrived before the connection dropped is kept for the client to go on from.
            let _ = file.sync();
        } else {
            let _ = file.discard();
            let _ = self.uploads.fs.remove_upload_record(&self.id);
        }
    }
}

/// A file name as it will be stored: NFC (so the same name typed on a Mac and on Linux is one
/// name), refused when it could not be one visible file: empty, with a separator or a control
/// character, hidden (a leading `.`), or longer than 255 bytes.
pub(crate) fn clean_name(raw: &str) -> Result<String, UploadError> {
    let name: String = raw.trim().nfc().collect();
    let bad = |why: &str| Err(UploadError::BadName(format!("the name {:?} {why}", truncated(raw))));
    if name.is_empty() {
        return bad("is empty");
    }
    if name.contains(['/', '\\']) {
        return bad("contains a path separator");
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    if name.starts_with('.') {
        return bad("starts with a dot (a hidden file)");
    }
    // Room for " (999)" so that a copy's name fits too.
    if name.len() + 6 > NAME_MAX {
        return bad("is longer than 249 bytes");
    }
    Ok(name)
}

/// A folder below the media root, `/`-separated, each part a [`clean_name`]-clean name.
pub(crate) fn clean_dir(raw: &str) -> Result<String, UploadError> {
    let parts: Vec<String> = raw
        .split('/')
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p == ".." || p == "." {
                return Err(UploadError::BadName(format!(
                    "the folder {:?} leaves the media folder",
                    truncated(raw)
                )));
            }
            clean_name(p)
        })
        .collect::<Result<_, _>>()?;
    Ok(parts.join("/"))
}

/// `Uploads/<YYYY>/<MM>` of the file's own mtime (local time), or of now.
fn default_dir(mtime: Option<i64>) -> String {
    let tz = jiff::tz::TimeZone::system();
    let when = mtime.and_then(|s| jiff::Timestamp::from_second(s).ok()).unwrap_or_else(jiff::Timestamp::now);
    let local = tz.to_datetime(when);
    format!("Uploads/{:04}/{:02}", local.year(), local.month())
}

fn classify_dir_error(e: std::io::Error, dir: &str) -> UploadError {
    if e.kind() == std::io::ErrorKind::PermissionDenied && e.raw_os_error().is_none() {
        return UploadError::BadName(format!(
            "the folder {:?} cannot take uploads (hidden or spis's own)",
            dir
        ));
    }
    if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) {
        return UploadError::BadName(format!("the folder {:?} is a link or a file, not a folder", dir));
    }
    e.into()
}

fn truncated(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_nfc_and_refused_when_they_could_not_be_a_visible_file() {
        // "é" as e + combining acute (macOS) becomes the one precomposed character.
        assert_eq!(clean_name("Cafe\u{301}.jpg").unwrap(), "Caf\u{e9}.jpg");
        assert_eq!(clean_name("  IMG_0001.HEIC ").unwrap(), "IMG_0001.HEIC");
        for bad in
            ["", "  ", "a/b.jpg", "a\\b.jpg", ".hidden.jpg", "bell\u{7}.jpg", "nl\n.jpg", &"x".repeat(250)]
        {
            assert!(matches!(clean_name(bad), Err(UploadError::BadName(_))), "{bad:?}");
        }
        assert_eq!(clean_dir("/Cameras//cam1/").unwrap(), "Cameras/cam1");
        for bad in ["a/../b", "./a", "a/.git", "a/\u{1}"] {
            assert!(clean_dir(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn copies_are_numbered_before_the_extension() {
        assert_eq!(crate::fs::trash::numbered("a.jpg", 1), "a.jpg");
        assert_eq!(crate::fs::trash::numbered("a.jpg", 2), "a (2).jpg");
        assert_eq!(crate::fs::trash::numbered("a.b.mp4", 3), "a.b (3).mp4");
    }

    #[test]
    fn default_folder_is_the_files_month() {
        // 2021-06-15 12:00 UTC is in June everywhere.
        assert_eq!(default_dir(Some(1_623_758_400)), "Uploads/2021/06");
    }
}
