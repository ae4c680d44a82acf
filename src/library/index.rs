//! The in-memory media index: every item, sorted by date taken, with folder and label interning.
//!
//! Items live in a `BTreeSet` ordered by their key, (date taken, id), so newest-first pages, year
//! and month ranges and cursors are range scans; a `HashMap` finds an item's key from its id.
//! A set, not a map from the key: the item holds its key, and a map would store it twice. The rule: no
//! per-item heap allocation but the file name, so 100k items stay well under 30 MiB.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use super::dates::{self, DateSource};
use super::id::SortKey;
use crate::media::{Format, Kind};

/// One photo or video.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    /// (date taken, id): the item's place in the index. See [`Item::id`], [`Item::taken_ms`].
    pub key: SortKey,
    /// Index into the folder interner.
    pub dir: u32,
    pub name: Box<[u8]>,
    /// UTC offset in minutes, `i16::MIN` when unknown.
    pub offset_min: i16,
    pub date_source: DateSource,
    pub size: u64,
    pub mtime_ns: i64,
    /// Pixel size as displayed (orientation applied); 0 when unknown.
    pub width: u32,
    pub height: u32,
    pub format: Format,
    pub orientation: u8,
    pub favorite: bool,
    /// Interned camera label; 0 when unknown.
    pub camera: u32,
    /// A video's length; none when unknown (or 0). Four bytes, where `Option<u32>` takes eight.
    pub duration_ms: Option<std::num::NonZeroU32>,
    /// Where the item's thumbhash starts in the index's blob arena, plus one; 0 when there is none.
    pub thumbhash: u32,
}

impl Item {
    pub(crate) fn key(&self) -> SortKey {
        self.key
    }

    pub(crate) fn id(&self) -> u64 {
        self.key.1
    }

    /// Wall-clock milliseconds of the date taken (see [`dates::Taken`]).
    pub(crate) fn taken_ms(&self) -> i64 {
        self.key.0
    }

    pub(crate) fn kind(&self) -> Kind {
        self.format.kind()
    }

    pub(crate) fn taken(&self) -> dates::Taken {
        dates::Taken {
            local_ms: self.taken_ms(),
            offset_min: (self.offset_min != i16::MIN).then_some(self.offset_min),
            source: self.date_source,
        }
    }
}

/// Items compare by their key alone, as the index's set orders them.
impl PartialEq for Item {
    fn eq(&self, other: &Item) -> bool {
        self.key == other.key
    }
}

impl Eq for Item {}

impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Item) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Item {
    fn cmp(&self, other: &Item) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl Borrow<SortKey> for Item {
    fn borrow(&self) -> &SortKey {
        &self.key
    }
}

/// Strings that many items share (folders, cameras), stored once.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    strings: Vec<Box<[u8]>>,
    ids: HashMap<Box<[u8]>, u32>,
}

impl Interner {
    fn with_empty() -> Interner {
        let mut i = Interner::default();
        i.intern(b"");
        i
    }

    pub(crate) fn intern(&mut self, s: &[u8]) -> u32 {
        if let Some(&id) = self.ids.get(s) {
            return id;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.into());
        self.ids.insert(s.into(), id);
        id
    }

    pub(crate) fn get(&self, id: u32) -> &[u8] {
        self.strings.get(id as usize).map_or(&[], |s| s)
    }

    pub(crate) fn len(&self) -> usize {
        self.strings.len()
    }
}

/// Which items a list or facet request wants.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub year: Option<i32>,
    pub month: Option<u8>,
    /// Folder relative to the root, subfolders included; empty means everything.
    pub dir: Option<String>,
    pub favorite: Option<bool>,
    pub kind: Option<Kind>,
    /// A share link's items: every answer, facets included, stays inside them.
    pub within: Option<std::sync::Arc<Within>>,
}

/// The items a share link shows: a selection, a folder (and below), or a month. Unlike the
/// other filters, facets never drop it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Within {
    Ids(std::collections::HashSet<u64>),
    Folder(String),
    Month(i32, u8),
}

/// Whether `dir` is `want` or a folder below it (`want` without slashes at its ends).
fn in_folder(dir: &[u8], want: &str) -> bool {
    let want = want.as_bytes();
    want.is_empty() || dir == want || (dir.starts_with(want) && dir.get(want.len()) == Some(&b'/'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A year's total and its (month, count) pairs, months ascending.
pub(super) type YearCount = (i32, u64, Vec<(u8, u64)>);

/// Folder and facet counts.
#[derive(Debug, Default)]
pub(crate) struct Facets {
    /// Newest year first.
    pub years: Vec<YearCount>,
    /// Count of matching items directly in each interned folder (index = folder id).
    pub folder_counts: Vec<u64>,
    pub images: u64,
    pub videos: u64,
    pub favorites: u64,
}

/// Running totals, kept so `/api/status` needs no scan.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub images: u64,
    pub videos: u64,
    pub favorites: u64,
}

impl Counts {
    fn apply(&mut self, item: &Item, add: bool) {
        let step = |n: &mut u64| if add { *n += 1 } else { *n = n.saturating_sub(1) };
        match item.kind() {
            Kind::Image => step(&mut self.images),
            Kind::Video => step(&mut self.videos),
        }
        if item.favorite {
            step(&mut self.favorites);
        }
    }
}

#[derive(Debug)]
pub(crate) struct Index {
    items: BTreeSet<Item>,
    by_id: HashMap<u64, i64>,
    counts: Counts,
    /// Bumped on every change, so answers computed from the index can be reused until then.
    generation: u64,
    /// Thumbhashes, each a length byte and its bytes: one allocation for all items.
    blobs: Vec<u8>,
    pub dirs: Interner,
    pub labels: Interner,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            items: BTreeSet::new(),
            by_id: HashMap::new(),
            counts: Counts::default(),
            generation: 0,
            blobs: Vec::new(),
            dirs: Interner::with_empty(),
            labels: Interner::with_empty(),
        }
    }
}

impl Index {
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn counts(&self) -> Counts {
        self.counts
    }

    /// Changes whenever any item is added, removed or changed.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Adds an item or replaces the one with the same id.
    pub(crate) fn upsert(&mut self, mut item: Item) {
        self.generation += 1;
        if let Some(old_taken) = self.by_id.insert(item.id(), item.taken_ms())
            && let Some(old) = self.items.take(&(old_taken, item.id()))
        {
            self.counts.apply(&old, false);
            // The same file version keeps its thumbhash when it is indexed again.
            if item.thumbhash == 0 && (old.size, old.mtime_ns) == (item.size, item.mtime_ns) {
                item.thumbhash = old.thumbhash;
            }
        }
        self.counts.apply(&item, true);
        self.items.insert(item);
    }

    /// Packs the item tree's nodes full once a large batch is in. Inserts leave a B-tree's nodes
    /// two thirds full when dates come in random order and half full when they come in date
    /// order, as a camera folder's do: 155-195 bytes an item here, against 106 packed.
    /// (`append` of two non-empty trees builds the result bottom-up, each node full, and frees
    /// the old nodes as it goes, so the peak stays about one tree.) Later inserts split nodes
    /// as usual.
    pub(crate) fn compact(&mut self) {
        let Some(item) = self.items.pop_first() else { return };
        let mut packed = BTreeSet::new();
        packed.insert(item);
        packed.append(&mut self.items);
        self.items = packed;
        self.blobs.shrink_to_fit();
        self.by_id.shrink_to_fit();
    }

    pub(crate) fn remove(&mut self, id: u64) -> Option<Item> {
        let taken = self.by_id.remove(&id)?;
        self.generation += 1;
        let item = self.items.take(&(taken, id))?;
        self.counts.apply(&item, false);
        Some(item)
    }

    /// Attaches a thumbhash to an item if it still has this file version (size and mtime).
    pub(crate) fn set_thumbhash(&mut self, id: u64, version: u32, hash: &[u8]) {
        let Ok(len) = u8::try_from(hash.len()) else { return };
        let Some(item) = self.get(id) else { return };
        if super::id::version_u32(item.size, item.mtime_ns) != version || self.thumbhash(item) == Some(hash) {
            return;
        }
        let at = self.blobs.len() as u32 + 1;
        self.update(id, |item| item.thumbhash = at);
        self.blobs.push(len);
        self.blobs.extend_from_slice(hash);
        self.generation += 1;
    }

    /// An item's thumbhash, when one has been made.
    pub(crate) fn thumbhash(&self, item: &Item) -> Option<&[u8]> {
        let at = (item.thumbhash as usize).checked_sub(1)?;
        let len = *self.blobs.get(at)? as usize;
        self.blobs.get(at + 1..at + 1 + len)
    }

    /// Sets an item's favorite flag; returns the updated item.
    pub(crate) fn set_favorite(&mut self, id: u64, on: bool) -> Option<&Item> {
        if self.get(id)?.favorite != on {
            self.generation += 1;
            self.update(id, |item| item.favorite = on);
            if on {
                self.counts.favorites += 1;
            } else {
                self.counts.favorites = self.counts.favorites.saturating_sub(1);
            }
        }
        self.get(id)
    }

    /// Changes an item, all but its key. A set hands out no mutable elements, so a changed copy
    /// replaces it where it stands (`replace` swaps the element in its node). Taking it out and
    /// inserting it again would not do: a key taken from an inner node is refilled from a leaf,
    /// and putting it back splits the full leaf beside it, so a pass that touches every item
    /// would undo `compact`.
    fn update(&mut self, id: u64, change: impl FnOnce(&mut Item)) {
        let Some(mut item) = self.get(id).cloned() else { return };
        let key = item.key;
        change(&mut item);
        debug_assert_eq!(item.key, key, "an update keeps the key");
        self.items.replace(item);
    }

    pub(crate) fn get(&self, id: u64) -> Option<&Item> {
        let taken = *self.by_id.get(&id)?;
        self.items.get(&(taken, id))
    }

    /// Whether one item passes a filter (for events; pages use a compiled matcher).
    pub(crate) fn matches(&self, filter: &Filter, item: &Item) -> bool {
        let dir = self.dir_of(item);
        let folder = |want: Option<&str>| want.is_none_or(|d| in_folder(dir, d.trim_matches('/')));
        let within = match filter.within.as_deref() {
            Some(Within::Folder(d)) => Some(d.as_str()),
            _ => None,
        };
        folder(filter.dir.as_deref()) && folder(within) && Matcher::rest(filter, item, true)
    }

    /// The relative folder of an item, as bytes.
    pub(crate) fn dir_of(&self, item: &Item) -> &[u8] {
        self.dirs.get(item.dir)
    }

    /// One page: up to `limit` items after `cursor` in `order`, and whether more follow.
    pub(crate) fn page(
        &self,
        filter: &Filter,
        order: Order,
        cursor: Option<SortKey>,
        limit: usize,
    ) -> (Vec<&Item>, bool) {
        let matcher = Matcher::new(self, filter, true);
        let (mut lo, mut hi) = taken_range(filter.year, filter.month);
        if let Some(Within::Month(y, m)) = filter.within.as_deref() {
            let (wlo, whi) = taken_range(Some(*y), Some(*m));
            (lo, hi) = (tighter_lo(lo, wlo), tighter_hi(hi, whi));
        }
        if let Some(c) = cursor {
            match order {
                Order::NewestFirst => hi = tighter_hi(hi, Bound::Excluded(c)),
                Order::OldestFirst => lo = tighter_lo(lo, Bound::Excluded(c)),
            }
        }
        if range_is_empty(&lo, &hi) {
            return (Vec::new(), false);
        }
        let range = self.items.range((lo, hi));
        let mut hits: Vec<&Item> = match order {
            Order::NewestFirst => range.rev().filter(|i| matcher.matches(i)).take(limit + 1).collect(),
            Order::OldestFirst => range.filter(|i| matcher.matches(i)).take(limit + 1).collect(),
        };
        let more = hits.len() > limit;
        hits.truncate(limit);
        (hits, more)
    }

    /// How many items pass a filter.
    pub(crate) fn count(&self, filter: &Filter) -> usize {
        let matcher = Matcher::new(self, filter, false);
        self.items.iter().filter(|i| matcher.matches(i)).count()
    }

    /// Counts for the filter UI. Each facet respects the other filters but not its own, so the
    /// year list still offers other years while one is selected.
    pub(crate) fn facets(&self, filter: &Filter) -> Facets {
        let for_years = Filter { year: None, month: None, ..filter.clone() };
        let for_folders = Filter { dir: None, ..filter.clone() };
        let years_m = Matcher::new(self, &for_years, false);
        let folders_m = Matcher::new(self, &for_folders, false);
        let for_kinds = Filter { kind: None, ..filter.clone() };
        let for_favorites = Filter { favorite: None, ..filter.clone() };
        let kinds_m = Matcher::new(self, &for_kinds, false);
        let favorites_m = Matcher::new(self, &for_favorites, false);

        let mut f = Facets { folder_counts: vec![0; self.dirs.len()], ..Facets::default() };
        let mut months: BTreeMap<(i32, u8), u64> = BTreeMap::new();
        for item in self.items.iter() {
            if years_m.matches(item) {
                *months.entry(dates::year_month(item.taken_ms())).or_default() += 1;
            }
            if folders_m.matches(item) {
                f.folder_counts[item.dir as usize] += 1;
            }
            // Like years and folders, each count respects the other filters but not its own.
            if kinds_m.matches(item) {
                match item.kind() {
                    Kind::Image => f.images += 1,
                    Kind::Video => f.videos += 1,
                }
            }
            if favorites_m.matches(item) {
                f.favorites += u64::from(item.favorite);
            }
        }
        for ((year, month), count) in months.into_iter().rev() {
            match f.years.last_mut() {
                Some((y, total, ms)) if *y == year => {
                    *total += count;
                    ms.insert(0, (month, count));
                }
                _ => f.years.push((year, count, vec![(month, count)])),
            }
        }
        f
    }

    /// Every item, oldest first (for full scans; `.rev()` for newest first).
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &Item> {
        self.items.iter()
    }
}

/// A filter compiled against the index: the folder tests become table lookups.
struct Matcher<'a> {
    filter: &'a Filter,
    /// Per interned folder: inside the requested folder? `None` when there is no folder filter.
    dirs: Option<Vec<bool>>,
    /// The same for a share link's folder.
    within_dirs: Option<Vec<bool>>,
    /// Whether year/month still need checking (a page already restricts the range by year).
    check_dates: bool,
}

impl<'a> Matcher<'a> {
    fn new(index: &Index, filter: &'a Filter, range_covers_year: bool) -> Matcher<'a> {
        let table = |want: &str| -> Vec<bool> {
            let want = want.trim_matches('/');
            (0..index.dirs.len() as u32).map(|i| in_folder(index.dirs.get(i), want)).collect()
        };
        let dirs = filter.dir.as_deref().filter(|d| !d.trim_matches('/').is_empty()).map(table);
        let within_dirs = match filter.within.as_deref() {
            Some(Within::Folder(d)) => Some(table(d)),
            _ => None,
        };
        // With a year the page range already covers year and month; a month alone is checked here.
        let check_dates = !range_covers_year || filter.year.is_none();
        Matcher { filter, dirs, within_dirs, check_dates }
    }

    fn matches(&self, item: &Item) -> bool {
        let inside = |table: &Option<Vec<bool>>| {
            table.as_ref().is_none_or(|dirs| dirs.get(item.dir as usize).copied().unwrap_or(false))
        };
        inside(&self.dirs) && inside(&self.within_dirs) && Matcher::rest(self.filter, item, self.check_dates)
    }

    /// Everything but the folders.
    fn rest(f: &Filter, item: &Item, check_dates: bool) -> bool {
        if f.favorite.is_some_and(|want| item.favorite != want) {
            return false;
        }
        if f.kind.is_some_and(|k| item.kind() != k) {
            return false;
        }
        let month = || dates::year_month(item.taken_ms());
        if check_dates && (f.year.is_some() || f.month.is_some()) {
            let (y, m) = month();
            if f.year.is_some_and(|want| y != want) || f.month.is_some_and(|want| m != want) {
                return false;
            }
        }
        match f.within.as_deref() {
            Some(Within::Ids(ids)) => ids.contains(&item.id()),
            Some(Within::Month(y, m)) => month() == (*y, *m),
            Some(Within::Folder(_)) | None => true,
        }
    }
}

type KeyBound = Bound<SortKey>;

/// The key range covering a year, or a month of a year.
fn taken_range(year: Option<i32>, month: Option<u8>) -> (KeyBound, KeyBound) {
    let Some(year) = year else {
        return (Bound::Unbounded, Bound::Unbounded);
    };
    let (start, end) = match month {
        Some(m) => {
            (dates::month_start_ms(year, m), dates::month_start_ms(year + (m / 12) as i32, m % 12 + 1))
        }
        None => (dates::month_start_ms(year, 1), dates::month_start_ms(year + 1, 1)),
    };
    (Bound::Included((start, 0)), Bound::Excluded((end, 0)))
}

fn tighter_hi(a: KeyBound, b: KeyBound) -> KeyBound {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            if y < x || (y == x && matches!(b, Bound::Excluded(_))) { b } else { a }
        }
    }
}

fn tighter_lo(a: KeyBound, b: KeyBound) -> KeyBound {
    match (&a, &b) {
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            if y > x || (y == x && matches!(b, Bound::Excluded(_))) { b } else { a }
        }
    }
}

/// `BTreeMap::range` panics on an inverted range, and a hostile cursor can produce one.
fn range_is_empty(lo: &KeyBound, hi: &KeyBound) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a >= b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: u64, taken_ms: i64, dir: u32) -> Item {
        Item {
            key: (taken_ms, id),
            dir,
            name: format!("{id}.jpg").into_bytes().into(),
            offset_min: i16::MIN,
            date_source: DateSource::Exif,
            size: 1,
            mtime_ns: 0,
            width: 1,
            height: 1,
            format: Format::Jpeg,
            orientation: 1,
            favorite: id.is_multiple_of(3),
            camera: 0,
            duration_ms: None,
            thumbhash: 0,
        }
    }

    #[test]
    fn each_facet_count_ignores_its_own_filter() {
        let mut index = Index::default();
        // 3: an image and a favorite; 4: a video, not a favorite; 6: a video and a favorite.
        for (id, format) in [(3, Format::Jpeg), (4, Format::Mp4), (6, Format::Mp4)] {
            index.upsert(Item { format, ..item(id, 0, 0) });
        }
        let f = index.facets(&Filter { kind: Some(Kind::Video), favorite: Some(true), ..Filter::default() });
        // Kinds among favorites; favorites among videos.
        assert_eq!((f.images, f.videos, f.favorites), (1, 1, 1));
        let f = index.facets(&Filter::default());
        assert_eq!((f.images, f.videos, f.favorites), (1, 2, 2));
    }

    fn walk_all(index: &Index, filter: &Filter, order: Order, limit: usize) -> Vec<u64> {
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let (page, more) = index.page(filter, order, cursor, limit);
            seen.extend(page.iter().map(|i| i.id()));
            if !more {
                return seen;
            }
            cursor = Some(page.last().unwrap().key());
        }
    }

    #[test]
    fn an_item_stays_within_80_bytes() {
        // Each byte is 100 KB of a 100k-photo index (issue 17): a field added here is measured.
        assert!(std::mem::size_of::<Item>() <= 80, "{} bytes", std::mem::size_of::<Item>());
    }

    #[test]
    fn a_compacted_index_answers_as_before_and_keeps_changing() {
        let mut index = Index::default();
        for id in 0..3000u64 {
            index.upsert(item(id, (id * 7919 % 10007) as i64 * 1000, 0));
        }
        index.set_thumbhash(5, super::super::id::version_u32(1, 0), b"hash");
        let before = walk_all(&index, &Filter::default(), Order::NewestFirst, 100);
        let counts = index.counts();
        index.compact();
        assert_eq!(walk_all(&index, &Filter::default(), Order::NewestFirst, 100), before);
        assert_eq!((index.counts().images, index.counts().favorites), (counts.images, counts.favorites));
        assert_eq!(index.get(5).and_then(|i| index.thumbhash(i)), Some(&b"hash"[..]));
        // Inserts and removals after it land where they belong.
        index.upsert(item(9999, i64::MAX / 2, 0));
        assert!(index.remove(7).is_some());
        let after = walk_all(&index, &Filter::default(), Order::NewestFirst, 100);
        assert_eq!(after.len(), before.len());
        assert_eq!(after[0], 9999);
        assert!(!after.contains(&7));
        Index::default().compact();
    }

    #[test]
    fn cursor_pages_reach_every_item_once_with_equal_dates() {
        let mut index = Index::default();
        for id in 0..1000u64 {
            index.upsert(item(id * 7919 % 10007, (id % 5) as i64 * 1000, 0));
        }
        for order in [Order::NewestFirst, Order::OldestFirst] {
            for limit in [1, 7, 100, 999, 1000, 5000] {
                let mut ids = walk_all(&index, &Filter::default(), order, limit);
                assert_eq!(ids.len(), 1000, "{order:?} {limit}");
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(ids.len(), 1000);
            }
        }
    }

    #[test]
    fn year_and_month_ranges_select_only_their_items() {
        let mut index = Index::default();
        let dec31 = dates::month_start_ms(2021, 12) + 30 * 86_400_000 + (23 * 60 + 30) * 60_000;
        index.upsert(item(1, dec31, 0));
        index.upsert(item(2, dates::month_start_ms(2022, 1), 0));
        index.upsert(item(3, dates::month_start_ms(2021, 12) - 1, 0));
        let f = |year, month| Filter { year, month, ..Filter::default() };
        assert_eq!(walk_all(&index, &f(Some(2021), Some(12)), Order::NewestFirst, 10), vec![1]);
        assert_eq!(walk_all(&index, &f(Some(2021), None), Order::NewestFirst, 10), vec![1, 3]);
        assert_eq!(walk_all(&index, &f(Some(2022), None), Order::OldestFirst, 10), vec![2]);
        assert_eq!(walk_all(&index, &f(None, Some(12)), Order::NewestFirst, 1), vec![1]);
        let facets = index.facets(&Filter::default());
        assert_eq!(facets.years[0], (2022, 1, vec![(1, 1)]));
        assert_eq!(facets.years[1], (2021, 2, vec![(11, 1), (12, 1)]));
    }

    #[test]
    fn folder_filter_includes_subfolders_but_not_lookalikes() {
        let mut index = Index::default();
        let a = index.dirs.intern(b"2023");
        let b = index.dirs.intern(b"2023/trip");
        let c = index.dirs.intern(b"2023-old");
        index.upsert(item(1, 1, a));
        index.upsert(item(2, 2, b));
        index.upsert(item(3, 3, c));
        let f = Filter { dir: Some("2023".into()), ..Filter::default() };
        assert_eq!(walk_all(&index, &f, Order::OldestFirst, 10), vec![1, 2]);
        let f = Filter { dir: Some("/2023/trip/".into()), ..Filter::default() };
        assert_eq!(walk_all(&index, &f, Order::OldestFirst, 10), vec![2]);
    }

    #[test]
    fn a_cursor_outside_the_year_range_gives_an_empty_page() {
        let mut index = Index::default();
        index.upsert(item(1, dates::month_start_ms(2020, 6), 0));
        let f = Filter { year: Some(2020), ..Filter::default() };
        let (page, more) = index.page(&f, Order::NewestFirst, Some((i64::MIN, 0)), 10);
        assert!(page.is_empty() && !more);
        let (page, _) = index.page(&f, Order::OldestFirst, Some((i64::MAX, u64::MAX)), 10);
        assert!(page.is_empty());
    }

    #[test]
    fn upsert_moves_an_item_whose_date_changed() {
        let mut index = Index::default();
        index.upsert(item(1, 10, 0));
        index.upsert(item(1, 20, 0));
        assert_eq!(index.len(), 1);
        assert_eq!(index.get(1).unwrap().taken_ms(), 20);
        assert_eq!(index.counts().images, 1);
        assert!(index.set_favorite(1, true).is_some());
        assert!(index.set_favorite(1, true).is_some());
        assert_eq!(index.counts().favorites, 1);
        let version = crate::library::id::version_u32(1, 0);
        index.set_thumbhash(1, version ^ 1, b"stale");
        assert_eq!(index.thumbhash(index.get(1).unwrap()), None);
        index.set_thumbhash(1, version, b"hash");
        assert_eq!(index.thumbhash(index.get(1).unwrap()), Some(&b"hash"[..]));
        assert!(index.remove(1).is_some());
        assert!(index.is_empty());
        assert_eq!((index.counts().images, index.counts().favorites), (0, 0));
    }
}
