//! Deleting, restoring and purging items: the index follows at once, so the answer to a delete
//! or a restore already holds, and events say `removed` and `restored`.

use std::sync::Arc;

use super::{Library, MediaEvent, indexer};
use crate::fs::trash::Trashed;
use crate::fs::{Found, RelPath};
use crate::library::{Item, id};

/// Why a trash operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TrashError {
    #[error("no such item")]
    NotFound,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl TrashError {
    pub(crate) fn from_io(e: std::io::Error) -> TrashError {
        if e.kind() == std::io::ErrorKind::NotFound { TrashError::NotFound } else { TrashError::Io(e) }
    }
}

impl Library {
    /// Moves an item's file to the trash and drops it from the index; durable when this returns.
    pub(crate) fn trash(&self, id: u64, now: i64) -> Result<Trashed, TrashError> {
        let (item, dir) = self.locate(id).ok_or(TrashError::NotFound)?;
        let trashed =
            self.fs.trash(RelPath { dir: &dir, name: &item.name }, now).map_err(TrashError::from_io)?;
        // The watcher sees the rename too, and finds nothing left to remove.
        self.remove_path(&dir, &item.name);
        Ok(trashed)
    }

    /// Puts a trashed file back and indexes it; `restored` goes out for it, never `added`.
    pub(crate) fn restore(&self, trash_id: &str) -> Result<Item, TrashError> {
        let tried = std::cell::RefCell::new(Vec::new());
        let restored = self.fs.restore(trash_id, &|dir, name| {
            let id = path_id(dir, name);
            tried.borrow_mut().push(id);
            self.expect_restored(id, true)
        });
        let id = restored.as_ref().map_or(0, |r| path_id(&r.dir, &r.name));
        // The names that were taken will not appear as restored files.
        for other in tried.into_inner().into_iter().filter(|&t| t != id) {
            self.expect_restored(other, false);
        }
        let restored = restored.map_err(TrashError::from_io)?;
        if let Some(item) = self.read().get(id).cloned() {
            // The watcher was first.
            return Ok(item);
        }
        let rel = RelPath { dir: &restored.dir, name: &restored.name };
        let st = self.fs.stat(rel).ok_or(TrashError::NotFound)?;
        let resolved = indexer::resolve(self, st).ok_or(TrashError::NotFound)?;
        let item = {
            let mut index = self.write();
            let (_, id) = indexer::insert(&mut index, resolved);
            index.get(id).cloned().ok_or(TrashError::NotFound)?
        };
        if self.expect_restored(id, false) {
            self.emit(MediaEvent::Restored(item.clone()));
        }
        Ok(item)
    }

    /// Notes that the file about to appear with `id` is a restored one (`expect`), or takes
    /// that note back, saying whether it was there (the one who takes it announces it).
    pub(super) fn expect_restored(&self, id: u64, expect: bool) -> bool {
        let mut set = self.restoring.lock().unwrap_or_else(|p| p.into_inner());
        if expect { set.insert(id) } else { set.remove(&id) }
    }

    /// A trashed file as an item (for its thumbnail): its id is the one it had, so a thumbnail
    /// made before the delete is found again; the folder is where it is now.
    pub(crate) fn trashed_item(&self, entry: &Trashed) -> Option<(Item, Vec<u8>)> {
        let found = Found {
            dir: entry.trash_dir.clone(),
            name: entry.trash_name.clone(),
            size: entry.size,
            mtime_ns: entry.mtime_ns,
        };
        let mut item = indexer::resolve(self, found)?.item;
        item.key.1 = path_id(&entry.dir, &entry.name);
        Some((item, entry.trash_dir.clone()))
    }

    /// Deletes trashed files older than `days` for good (and infos left without a file);
    /// returns how many files went.
    pub(crate) fn empty_trash_older_than(self: &Arc<Self>, days: u64, now: i64) -> usize {
        let cutoff = now.saturating_sub(i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX));
        let mut purged = 0;
        for entry in self.fs.trash_list() {
            if entry.deleted <= cutoff {
                match self.fs.purge(&entry.id) {
                    Ok(()) => purged += 1,
                    Err(e) => tracing::warn!(error = %e, "cannot empty a file from the trash"),
                }
            }
        }
        self.fs.trash_drop_orphans();
        purged
    }
}

fn path_id(dir: &[u8], name: &[u8]) -> u64 {
    id::from_rel_path(&RelPath { dir, name }.key())
}

/// A file in a retention folder.
struct Candidate {
    mtime_ns: i64,
    dir: Vec<u8>,
    name: Box<[u8]>,
    /// Older than its folder's age.
    too_old: bool,
}

/// What [`Library::apply_retention`] removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Retained {
    /// Older than their folder's age.
    pub aged: usize,
    /// Removed to keep the free-space floor.
    pub for_space: usize,
}

impl Library {
    /// Deletes for good the files in each `(folder, max_age)` older than its age (by mtime, the
    /// time a camera wrote them), and then, while a retention folder's drive has less than
    /// `free_floor` bytes free, the oldest files of the retention folders on it.
    pub(crate) fn apply_retention(
        &self,
        rules: &[(String, std::time::Duration)],
        free_floor: Option<u64>,
        now_ns: i64,
    ) -> Retained {
        let mut done = Retained::default();
        if rules.is_empty() {
            return done;
        }
        let mut candidates: Vec<Candidate> = {
            let index = self.read();
            index
                .iter()
                .filter_map(|item| {
                    let dir = index.dir_of(item);
                    let (_, age) = rules
                        .iter()
                        .find(|(folder, _)| crate::fs::watch::is_within(dir, folder.as_bytes()))?;
                    let cutoff = now_ns.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
                    Some(Candidate {
                        mtime_ns: item.mtime_ns,
                        dir: dir.to_vec(),
                        name: item.name.clone(),
                        too_old: item.mtime_ns < cutoff,
                    })
                })
                .collect()
        };
        // Oldest first.
        candidates.sort_unstable_by(|a, b| a.mtime_ns.cmp(&b.mtime_ns).then_with(|| a.name.cmp(&b.name)));
        let low =
            |dir: &[u8]| free_floor.is_some_and(|floor| self.fs.free_bytes(dir).is_ok_and(|f| f < floor));
        let mut any_low = free_floor.is_some() && rules.iter().any(|(folder, _)| low(folder.as_bytes()));
        for Candidate { dir, name, too_old, .. } in candidates {
            let for_space = !too_old && any_low && low(&dir);
            // Folders have ages of their own, so a younger file here does not end the look.
            if !too_old && !for_space {
                continue;
            }
            let rel = RelPath { dir: &dir, name: &name };
            match self.fs.remove_for_good(rel) {
                Ok(()) => {
                    tracing::info!(
                        file = %String::from_utf8_lossy(&rel.key()),
                        reason = if too_old { "older than its folder's retention" } else { "the drive is nearly full" },
                        "retention removed a file"
                    );
                    if too_old {
                        done.aged += 1
                    } else {
                        done.for_space += 1
                    }
                    self.remove_path(&dir, &name);
                    if for_space {
                        any_low = rules.iter().any(|(folder, _)| low(folder.as_bytes()));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(
                    file = %String::from_utf8_lossy(&rel.key()), error = %e, "retention cannot remove a file"
                ),
            }
        }
        done
    }
}
