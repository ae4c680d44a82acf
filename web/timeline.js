// @ts-check
// The gallery's data: month sections (counts from /api/facets, items paged in per month with the
// cursor API as they come into view), kept in order as live changes arrive.

import { listMedia, PAGE } from './api.js';
import { takenKey } from './ui.js';

/** @typedef {import('./api.js').Item} Item */
/** @typedef {import('./api.js').Filter} Filter */

/** One month of the timeline: how many items it has, and those loaded so far (newest first). */
export class Section {
  /** @param {number} year @param {number} month @param {number} count */
  constructor(year, month, count) {
    this.year = year;
    this.month = month;
    this.key = `${year}-${String(month).padStart(2, '0')}`;
    this.count = count;
    /** @type {Item[]} */
    this.items = [];
    /** @type {string|null} */
    this.cursor = null;
    this.done = count === 0;
    /** @type {Promise<void>|null} */
    this.loading = null;
    /** Items kept from before a refresh, shown until the fresh first page replaces them. */
    this.stale = false;
    this.failedAt = 0;
    // Layout, set by the grid.
    this.top = 0;
    this.rowsTop = 0;
    this.bottom = 0;
  }
}

/**
 * The month key ("2023-01") of an item, from its wall-clock date.
 * @param {Item} item
 * @returns {string}
 */
export function monthKey(item) {
  return takenKey(item.taken).slice(0, 7);
}

/**
 * Fires `change` events with `detail: {layout: boolean, ids: string[]}`: `layout` when counts or
 * sections changed (positions move), `ids` for items whose tiles need redrawing.
 */
export class Timeline extends EventTarget {
  /** @param {Filter} filter */
  constructor(filter) {
    super();
    this.filter = filter;
    /** @type {Section[]} newest month first */
    this.sections = [];
    /** @type {Map<string, Section>} */
    this.byKey = new Map();
    /** @type {Map<string, Item>} */
    this.byId = new Map();
    this.closed = false;
    this.ready = false;
  }

  /** Stops loading (the filter changed and a new timeline took over). */
  close() {
    this.closed = true;
  }

  /** @returns {number} items in all sections */
  get total() {
    let n = 0;
    for (const s of this.sections) n += s.count;
    return n;
  }

  /**
   * Builds the sections from facets. With `keep`, items already loaded stay visible (marked stale)
   * until their month's first page is fetched again.
   * @param {{years: {year: number, months: {month: number, count: number}[]}[]}} facets
   * @param {boolean} [keep]
   */
  setFacets(facets, keep = false) {
    const old = this.byKey;
    const f = this.filter;
    const sections = [];
    for (const y of facets.years) {
      if (f.year && y.year !== f.year) continue;
      for (const m of y.months) {
        if (f.month && m.month !== f.month) continue;
        if (!m.count) continue;
        const s = new Section(y.year, m.month, m.count);
        const prev = keep && old.get(s.key);
        if (prev && prev.items.length) {
          s.items = prev.items.slice(0, m.count);
          s.stale = true;
        }
        sections.push(s);
      }
    }
    sections.sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
    this.sections = sections;
    this.byKey = new Map(sections.map((s) => [s.key, s]));
    this.byId = new Map();
    for (const s of sections) for (const it of s.items) this.byId.set(it.id, it);
    this.ready = true;
    this.emit(true);
  }

  /**
   * Notifies listeners.
   * @param {boolean} layout
   * @param {string[]} [ids]
   */
  emit(layout, ids = []) {
    this.dispatchEvent(new CustomEvent('change', { detail: { layout, ids } }));
  }

  /**
   * Makes sure items up to index `need` of a section are loaded (or being loaded).
   * @param {Section} s
   * @param {number} need
   * @returns {Promise<void>}
   */
  ensure(s, need) {
    if (this.closed || s.loading) return s.loading || Promise.resolve();
    if (!s.stale && (s.done || s.items.length > need)) return Promise.resolve();
    if (Date.now() - s.failedAt < 4000) return Promise.resolve();
    s.loading = this.load(s, need).finally(() => {
      s.loading = null;
    });
    return s.loading;
  }

  /**
   * Fetches pages of a section until `need` is covered.
   * @param {Section} s
   * @param {number} need
   */
  async load(s, need) {
    try {
      while (!this.closed && (s.stale || (!s.done && s.items.length <= need))) {
        const fresh = s.stale;
        const wanted = fresh ? Math.max(need + 1, s.items.length) : need + 1 - s.items.length;
        const limit = Math.min(500, Math.max(PAGE, Math.ceil((wanted + PAGE / 2) / PAGE) * PAGE));
        const page = await listMedia(this.filter, { year: s.year, month: s.month, cursor: fresh ? null : s.cursor, limit });
        if (this.closed || this.byKey.get(s.key) !== s) return;
        if (fresh) {
          for (const it of s.items) this.byId.delete(it.id);
          s.items = [];
          s.stale = false;
        }
        for (const it of page.items) {
          if (this.byId.has(it.id) || monthKey(it) !== s.key) continue;
          this.byId.set(it.id, it);
          s.items.push(it);
        }
        s.cursor = page.next_cursor;
        s.done = !page.next_cursor;
        const before = s.count;
        if (s.done) s.count = s.items.length;
        else s.count = Math.max(s.count, s.items.length + 1);
        s.failedAt = 0;
        this.emit(s.count !== before, page.items.map((it) => it.id));
      }
    } catch (e) {
      s.failedAt = Date.now();
      this.emit(false);
      if (/** @type {import('./api.js').ApiError} */ (e).code !== 'offline') console.warn('loading', s.key, e);
    }
  }

  /**
   * Where an item is: its section and index.
   * @param {string} id
   * @returns {{s: Section, i: number}|null}
   */
  position(id) {
    const it = this.byId.get(id);
    if (!it) return null;
    const s = this.byKey.get(monthKey(it));
    if (!s) return null;
    const i = s.items.indexOf(it);
    return i < 0 ? null : { s, i };
  }

  /**
   * Finds an item that may not be loaded yet (a shared link): loads its month's pages until it
   * shows up.
   * @param {Item} item
   * @returns {Promise<{s: Section, i: number}|null>}
   */
  async find(item) {
    const s = this.byKey.get(monthKey(item));
    if (!s) return null;
    for (let guard = 0; guard < 100 && !this.closed; guard++) {
      const pos = this.position(item.id);
      if (pos || s.done || this.byKey.get(s.key) !== s) return pos;
      const before = s.items.length;
      await this.ensure(s, s.items.length);
      if (s.items.length === before && !s.loading) return this.position(item.id);
    }
    return null;
  }

  /**
   * Normalizes a position that may run past its section into the neighbouring ones.
   * @param {string} key section key
   * @param {number} i index, possibly negative or past the end
   * @returns {{s: Section, i: number}|null}
   */
  locate(key, i) {
    let si = this.sections.findIndex((s) => s.key === key);
    if (si < 0) {
      // The section went away: find where it was.
      si = this.sections.findIndex((s) => s.key < key);
      if (si < 0) return null;
      i = i < 0 ? -1 : 0;
      if (i < 0) {
        si--;
        if (si < 0) return null;
        i = this.sections[si].count - 1;
      }
    }
    while (i >= this.sections[si].count) {
      i -= this.sections[si].count;
      si++;
      if (si >= this.sections.length) return null;
    }
    while (i < 0) {
      si--;
      if (si < 0) return null;
      i += this.sections[si].count;
    }
    return { s: this.sections[si], i };
  }

  /**
   * The item at a position, loading its page when needed.
   * @param {{s: Section, i: number}|null} pos
   * @returns {Promise<Item|null>}
   */
  async itemAt(pos) {
    if (!pos) return null;
    const { s, i } = pos;
    for (let tries = 0; tries < 3 && !s.items[i] && !this.closed; tries++) {
      await this.ensure(s, i);
      if (s.done && i >= s.items.length) break;
    }
    return s.items[i] || null;
  }

  /**
   * The items between two loaded items, inclusive, in timeline order.
   * @param {string} fromId
   * @param {string} toId
   * @returns {Item[]}
   */
  range(fromId, toId) {
    const flat = [];
    for (const s of this.sections) flat.push(...s.items);
    let a = flat.findIndex((it) => it.id === fromId);
    let b = flat.findIndex((it) => it.id === toId);
    if (a < 0 || b < 0) return b >= 0 ? [flat[b]] : [];
    if (a > b) [a, b] = [b, a];
    return flat.slice(a, b + 1);
  }

  /**
   * Inserts a new item where it belongs. Items older than what a partly loaded month has shown
   * only count (they arrive with its next page).
   * @param {Item} item
   * @param {boolean} [isNew] false for an item that may already be counted (a `changed` one)
   * @returns {boolean} whether anything changed
   */
  add(item, isNew = true) {
    // Before the first facets arrive there is nothing to add to (they will count it).
    if (!this.ready) return false;
    if (this.byId.has(item.id)) return this.change(item);
    const key = monthKey(item);
    const f = this.filter;
    const [y, m] = key.split('-').map(Number);
    if (!y || (f.year && y !== f.year) || (f.month && m !== f.month)) return false;
    let s = this.byKey.get(key);
    if (!s) {
      // A month this view did not have: the item is its first.
      s = new Section(y, m, 0);
      s.done = true;
      const at = this.sections.findIndex((o) => o.key < key);
      this.sections.splice(at < 0 ? this.sections.length : at, 0, s);
      this.byKey.set(key, s);
    }
    const k = takenKey(item.taken);
    let j = s.items.findIndex((o) => takenKey(o.taken) < k);
    if (j < 0) j = s.items.length;
    if (j === s.items.length && !s.done) {
      if (!isNew) return false;
      s.count++;
      this.emit(true);
      return true;
    }
    s.items.splice(j, 0, item);
    this.byId.set(item.id, item);
    s.count++;
    this.emit(true, [item.id]);
    return true;
  }

  /**
   * Applies a changed item: in place, or moved when its date changed.
   * @param {Item} item
   * @returns {boolean}
   */
  change(item) {
    const old = this.byId.get(item.id);
    if (!old) return this.add(item, false);
    if (takenKey(old.taken) !== takenKey(item.taken)) {
      this.remove(item.id);
      return this.add(item, true);
    }
    Object.assign(old, item);
    this.emit(false, [item.id]);
    return true;
  }

  /**
   * Removes an item by id.
   * @param {string} id
   * @returns {Item|null} the removed item, when it was loaded
   */
  remove(id) {
    const pos = this.position(id);
    if (!pos) return null;
    const { s, i } = pos;
    const [it] = s.items.splice(i, 1);
    this.byId.delete(id);
    s.count = Math.max(s.items.length, s.count - 1);
    if (s.count === 0) {
      this.sections.splice(this.sections.indexOf(s), 1);
      this.byKey.delete(s.key);
    }
    this.emit(true, [id]);
    return it;
  }
}
