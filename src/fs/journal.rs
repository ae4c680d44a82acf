//! Favorites changed by other servers sharing the state dir (replicas behind a load balancer).
//!
//! Each server keeps its recent favorite changes in its own file, `replicas/<server id>.log` in
//! the state dir, rewritten whole (temp file, rename) after each change, so no two servers ever
//! write the same file. Before answering, a server stats the `replicas` folder; only when its
//! mtime moved (a file was replaced) does it read the files that changed and apply the entries it
//! has not seen. Entries are `<seq> <0|1> <item id>`; a server that missed entries (a file kept
//! only the newest [`KEEP`]) reads every favorite from disk again instead.
//!
//! Over NFS the folder's mtime is subject to attribute caching (`actimeo`): other replicas see a
//! change within that delay, not at once.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Changes kept in a server's file.
const KEEP: usize = 1024;
/// Younger folder mtimes may still change within the same clock tick.
const SETTLE_NS: i64 = 2_000_000_000;
/// Files untouched this long are removed at start-up (a server that is still running rewrites
/// its file with its next change; entries older than a server's start are never applied).
const STALE_SECS: i64 = 86_400;

/// What other servers changed since the last look.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Changes {
    None,
    /// (item id, favorite) in the order they were made on each server.
    Some(Vec<(u64, bool)>),
    /// Entries were missed: read every favorite from disk again.
    Resync,
}

#[derive(Debug)]
pub(crate) struct Journal {
    dir: PathBuf,
    own: String,
    /// When this server started (unix ms): older entries are already on disk as it read them.
    opened_ms: u64,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_seq: u64,
    recent: VecDeque<Entry>,
    /// The folder's mtime when last read.
    dir_mtime: Option<i64>,
    /// Per other server's file: its (size, inode) when last read, and the newest seq applied.
    seen: HashMap<String, ((u64, i64), u64)>,
    /// Alone (no other server's file) as of this moment: a single server does not stat the
    /// folder on every request, only every [`ALONE_RECHECK`].
    alone_since: Option<std::time::Instant>,
}

/// How often a server that is alone looks again for others.
const ALONE_RECHECK: std::time::Duration = std::time::Duration::from_millis(250);

impl Journal {
    /// Opens `replicas/` in the state dir under a new server id, marking what other servers
    /// wrote before as seen (this server reads the favorites from disk as it starts).
    pub(crate) fn open(state_dir: &Path) -> io::Result<Journal> {
        let dir = state_dir.join("replicas");
        std::fs::create_dir_all(&dir)?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let own =
            format!("{:08x}{:08x}", std::process::id(), nanos.subsec_nanos() ^ (nanos.as_secs() as u32));
        let opened_ms = nanos.as_millis() as u64;
        let journal = Journal { dir, own, opened_ms, state: Mutex::new(State::default()) };
        let now = nanos.as_secs() as i64;
        let mut state = journal.lock();
        for (name, meta) in journal.files()? {
            if now - meta.mtime() > STALE_SECS {
                let _ = std::fs::remove_file(journal.dir.join(format!("{name}.log")));
                continue;
            }
            let newest = read_entries(&journal.dir.join(format!("{name}.log"))).last().map_or(0, |e| e.seq);
            state.seen.insert(name, ((meta.len(), meta.ino() as i64), newest));
        }
        state.alone_since = state.seen.is_empty().then(std::time::Instant::now);
        drop(state);
        // Present from the start (empty), so the others know to look from now on.
        super::write_atomic(&journal.dir.join(format!("{}.log", journal.own)), b"")?;
        Ok(journal)
    }

    /// Records a favorite change made here, for the other servers.
    pub(crate) fn record(&self, id: u64, on: bool) -> io::Result<()> {
        let mut state = self.lock();
        state.next_seq += 1;
        let seq = state.next_seq;
        let at_ms = unix_ms();
        state.recent.push_back(Entry { seq, id, on, at_ms });
        while state.recent.len() > KEEP {
            state.recent.pop_front();
        }
        let mut text = String::with_capacity(state.recent.len() * 40);
        for e in &state.recent {
            text.push_str(&format!("{} {} {} {}\n", e.seq, u8::from(e.on), e.id, e.at_ms));
        }
        super::write_atomic(&self.dir.join(format!("{}.log", self.own)), text.as_bytes())
    }

    /// What the other servers changed since the last call (one stat when nothing did).
    pub(crate) fn poll(&self) -> Changes {
        let mut state = self.lock();
        if state.alone_since.is_some_and(|t| t.elapsed() < ALONE_RECHECK) {
            return Changes::None;
        }
        let mtime = self.dir_mtime();
        if mtime.is_some() && mtime == state.dir_mtime {
            if state.alone_since.is_some() {
                state.alone_since = Some(std::time::Instant::now());
            }
            return Changes::None;
        }
        // Timestamps are coarse (a clock tick): a change in the same tick as this look would not
        // move the mtime again, so a recent mtime is looked at again next time.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let settled = mtime.is_some_and(|m| m < now.as_nanos() as i64 - SETTLE_NS);
        state.dir_mtime = if settled { mtime } else { None };
        let Ok(files) = self.files() else { return Changes::None };
        let mut changes = Vec::new();
        let mut resync = false;
        for (name, meta) in files {
            if name == self.own {
                continue;
            }
            // Files are replaced whole by a rename: a new inode each time.
            let version = (meta.len(), meta.ino() as i64);
            let (seen_version, last) = state.seen.get(&name).copied().unwrap_or(((0, 0), 0));
            if seen_version == version {
                continue;
            }
            let entries = read_entries(&self.dir.join(format!("{name}.log")));
            if entries.first().is_some_and(|e| e.seq > last + 1) && last > 0 {
                resync = true;
            }
            changes.extend(
                entries.iter().filter(|e| e.seq > last && e.at_ms >= self.opened_ms).map(|e| (e.id, e.on)),
            );
            let newest = entries.last().map_or(last, |e| e.seq.max(last));
            state.seen.insert(name, (version, newest));
        }
        state.alone_since = state.seen.is_empty().then(std::time::Instant::now);
        if resync {
            Changes::Resync
        } else if changes.is_empty() {
            Changes::None
        } else {
            Changes::Some(changes)
        }
    }

    /// Removes this server's file (a clean shutdown); a crash leaves it until it is stale.
    pub(crate) fn leave(&self) {
        let _ = std::fs::remove_file(self.dir.join(format!("{}.log", self.own)));
    }

    fn dir_mtime(&self) -> Option<i64> {
        std::fs::metadata(&self.dir).ok().map(|m| m.mtime() * 1_000_000_000 + m.mtime_nsec())
    }

    /// The servers' files: (server id, metadata).
    fn files(&self) -> io::Result<Vec<(String, std::fs::Metadata)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.dir)?.flatten() {
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".log")) else { continue };
            if id.starts_with('.') {
                continue;
            }
            if let Ok(meta) = entry.metadata() {
                out.push((id.to_owned(), meta));
            }
        }
        Ok(out)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One favorite change: `<seq> <0|1> <item id> <unix ms>` in a file.
#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    id: u64,
    on: bool,
    at_ms: u64,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// The entries of a server's file; malformed lines (a torn read is impossible: files are
/// replaced whole) are skipped.
fn read_entries(path: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            let seq = f.next()?.parse().ok()?;
            let on = match f.next()? {
                "1" => true,
                "0" => false,
                _ => return None,
            };
            Some(Entry { seq, on, id: f.next()?.parse().ok()?, at_ms: f.next()?.parse().ok()? })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_sees_the_others_changes_once_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = Journal::open(dir.path()).unwrap();
        a.record(1, true).unwrap();
        // Started later: what came before is already on disk, not replayed.
        let b = Journal::open(dir.path()).unwrap();
        assert_eq!(b.poll(), Changes::None);
        a.record(2, true).unwrap();
        a.record(1, false).unwrap();
        assert_eq!(b.poll(), Changes::Some(vec![(2, true), (1, false)]));
        assert_eq!(b.poll(), Changes::None, "nothing twice");
        b.record(3, true).unwrap();
        // A started alone: it looks for others every ALONE_RECHECK, not on every call.
        std::thread::sleep(ALONE_RECHECK);
        assert_eq!(a.poll(), Changes::Some(vec![(3, true)]));
        assert_eq!(b.poll(), Changes::None, "its own changes are not news");
    }

    #[test]
    fn entries_older_than_a_server_are_never_replayed_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = Journal::open(dir.path()).unwrap();
        a.record(9, true).unwrap();
        // A's file removed as stale before B starts, so B does not know it...
        std::fs::remove_file(dir.path().join(format!("replicas/{}.log", a.own))).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        let b = Journal::open(dir.path()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
        // ...then A writes it again with its whole ring: only what is newer than B counts.
        a.record(10, true).unwrap();
        std::thread::sleep(ALONE_RECHECK);
        assert_eq!(b.poll(), Changes::Some(vec![(10, true)]));
    }

    #[test]
    fn a_server_alone_does_not_look_on_every_call() {
        let dir = tempfile::tempdir().unwrap();
        let a = Journal::open(dir.path()).unwrap();
        assert!(a.lock().alone_since.is_some());
        let b = Journal::open(dir.path()).unwrap();
        assert!(b.lock().alone_since.is_none(), "A's file is there from A's start");
        b.record(1, true).unwrap();
        // A finds B at its next look, at most ALONE_RECHECK later.
        std::thread::sleep(ALONE_RECHECK);
        assert_eq!(a.poll(), Changes::Some(vec![(1, true)]));
        assert!(a.lock().alone_since.is_none());
        b.leave();
        assert!(!dir.path().join(format!("replicas/{}.log", b.own)).exists());
    }

    #[test]
    fn a_server_that_fell_too_far_behind_resyncs() {
        let dir = tempfile::tempdir().unwrap();
        let a = Journal::open(dir.path()).unwrap();
        let b = Journal::open(dir.path()).unwrap();
        a.record(1, true).unwrap();
        assert_eq!(b.poll(), Changes::Some(vec![(1, true)]));
        for id in 0..(KEEP as u64 + 5) {
            a.record(id, true).unwrap();
        }
        assert_eq!(b.poll(), Changes::Resync);
    }
}
