//! Serialized answers to list and facet queries, reused while the index is unchanged.
//!
//! Every phone that opens the gallery asks for the same first page and the same facets; while
//! the index's generation is the same, the bytes made for the first request serve them all. The
//! rule: an entry is used only for the exact query string and index generation it was made for.

use std::sync::Mutex;

use bytes::Bytes;

/// Answers larger than this are not kept (a page of 500 items is about 220 KB).
const MAX_ENTRY: usize = 512 * 1024;

#[derive(Debug)]
pub(super) struct Memo {
    entries: Mutex<lru::LruCache<String, (u64, Bytes)>>,
}

impl Memo {
    pub(super) fn new(capacity: usize) -> Memo {
        let capacity = std::num::NonZeroUsize::new(capacity.max(1)).expect("at least 1");
        Memo { entries: Mutex::new(lru::LruCache::new(capacity)) }
    }

    /// The answer for `key` at `generation`: remembered, or made now by `make` and remembered.
    /// Errors are returned, never remembered.
    pub(super) fn get_or_make<E>(
        &self,
        key: &str,
        generation: u64,
        make: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        if let Some((g, bytes)) = self.lock().get(key)
            && *g == generation
        {
            return Ok(bytes.clone());
        }
        let bytes = make()?;
        if bytes.len() <= MAX_ENTRY {
            self.lock().put(key.to_owned(), (generation, bytes.clone()));
        }
        Ok(bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, (u64, Bytes)>> {
        // A panic cannot leave the cache half updated: every use is one map call.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_serves_only_its_generation_and_errors_are_not_kept() {
        let memo = Memo::new(4);
        let made = std::cell::Cell::new(0);
        let make = |s: &'static str| {
            made.set(made.get() + 1);
            Ok::<_, ()>(Bytes::from_static(s.as_bytes()))
        };
        assert_eq!(memo.get_or_make("q", 1, || make("a")).unwrap(), "a");
        assert_eq!(memo.get_or_make("q", 1, || make("b")).unwrap(), "a");
        assert_eq!(made.get(), 1);
        assert_eq!(memo.get_or_make("q", 2, || make("c")).unwrap(), "c");
        assert!(memo.get_or_make("bad", 2, || Err::<Bytes, ()>(())).is_err());
        assert_eq!(memo.get_or_make("bad", 2, || make("d")).unwrap(), "d");
    }
}
