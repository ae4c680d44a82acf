//! Serialized answers to list and facet queries, reused while the index is unchanged.
//!
//! Every phone that opens the gallery asks for the same first page and the same facets; while
//! the index's generation is the same, the bytes made for the first request serve them all. The
//! rule: an entry is used only for the exact query string and index generation it was made for.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;

/// Answers larger than this are not kept (a page of 500 items is about 220 KB).
const MAX_ENTRY: usize = 512 * 1024;

#[derive(Debug)]
pub(super) struct Memo {
    entries: Mutex<lru::LruCache<String, (u64, Arc<Answer>)>>,
}

/// One remembered answer, and its gzip form once a client that takes gzip asked for it.
#[derive(Debug)]
pub(super) struct Answer {
    pub plain: Bytes,
    gzip: OnceLock<Bytes>,
}

impl Answer {
    pub(super) fn new(plain: Bytes) -> Answer {
        Answer { plain, gzip: OnceLock::new() }
    }

    /// The gzip form (fast level: a 13 KB page takes about 50 us and becomes 2-3 KB), made once.
    pub(super) fn gzip(&self) -> Bytes {
        self.gzip.get_or_init(|| super::assets::gzip_with(&self.plain, flate2::Compression::fast())).clone()
    }
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
    ) -> Result<Arc<Answer>, E> {
        if let Some((g, answer)) = self.lock().get(key)
            && *g == generation
        {
            return Ok(Arc::clone(answer));
        }
        let answer = Arc::new(Answer::new(make()?));
        if answer.plain.len() <= MAX_ENTRY {
            self.lock().put(key.to_owned(), (generation, Arc::clone(&answer)));
        }
        Ok(answer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, lru::LruCache<String, (u64, Arc<Answer>)>> {
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
        assert_eq!(memo.get_or_make("q", 1, || make("a")).unwrap().plain, "a");
        assert_eq!(memo.get_or_make("q", 1, || make("b")).unwrap().plain, "a");
        assert_eq!(made.get(), 1);
        assert_eq!(memo.get_or_make("q", 2, || make("c")).unwrap().plain, "c");
        assert!(memo.get_or_make("bad", 2, || Err::<Bytes, ()>(())).is_err());
        assert_eq!(memo.get_or_make("bad", 2, || make("d")).unwrap().plain, "d");
        // The gzip form is made once, and unpacks to the answer.
        let answer = memo.get_or_make("q", 2, || make("e")).unwrap();
        let gz = answer.gzip();
        assert_eq!(gz, answer.gzip());
        let mut plain = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        assert_eq!(plain, "c");
    }
}
