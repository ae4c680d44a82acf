// @ts-check
// Multi-select: long press (touch), shift/ctrl-click or the Select button; then favorite,
// unfavorite, download or delete the chosen items together.

import { apiParams, currentShare, downloadURL } from './api.js';
import { markFavorites } from './favorites.js';
import { plural, toast } from './ui.js';

/** @typedef {import('./api.js').Item} Item */
/** @typedef {import('./timeline.js').Timeline} Timeline */

export class Selection extends EventTarget {
  /**
   * @param {HTMLElement} bar the bottom action bar
   * @param {() => Timeline|null} timeline
   */
  constructor(bar, timeline) {
    super();
    this.bar = bar;
    this.timeline = timeline;
    /** @type {Map<string, Item>} */
    this.items = new Map();
    this.mode = false;
    /** @type {string|null} the last item clicked, for shift-click ranges */
    this.anchor = null;
    /** @param {string} name @param {() => void} fn */
    const on = (name, fn) => /** @type {HTMLElement} */ (bar.querySelector(`[data-s="${name}"]`)).addEventListener('click', fn);
    on('clear', () => this.clear());
    on('fav', () => this.favorite(true));
    on('unfav', () => this.favorite(false));
    on('download', () => this.download());
    on('delete', () => this.delete());
    on('share', () => {
      if (this.items.size) this.dispatchEvent(new CustomEvent('share', { detail: { items: [...this.items.values()] } }));
    });
  }

  /** @param {string} id @returns {boolean} */
  isSelected(id) {
    return this.items.has(id);
  }

  /** @returns {boolean} whether selection mode is on */
  active() {
    return this.mode;
  }

  /** Turns selection mode on (from the Select button). */
  start() {
    this.mode = true;
    this.changed();
  }

  /** Leaves selection mode. */
  clear() {
    this.items.clear();
    this.mode = false;
    this.anchor = null;
    this.changed();
  }

  /**
   * Applies a selection gesture on an item.
   * @param {Item} item
   * @param {{range?: boolean}} opts shift: select everything from the last clicked item
   */
  toggle(item, { range = false } = {}) {
    this.mode = true;
    if (range && this.anchor) {
      for (const it of this.timeline()?.range(this.anchor, item.id) || [item]) this.items.set(it.id, it);
    } else if (this.items.has(item.id)) {
      this.items.delete(item.id);
    } else {
      this.items.set(item.id, item);
    }
    this.anchor = item.id;
    this.changed();
  }

  /** Drops selected items that are gone from the timeline. */
  prune() {
    const t = this.timeline();
    let dropped = false;
    for (const id of this.items.keys()) {
      if (!t?.byId.has(id)) {
        this.items.delete(id);
        dropped = true;
      }
    }
    if (dropped) this.changed();
  }

  /** Updates the bar and tells the grid. */
  changed() {
    const n = this.items.size;
    this.bar.hidden = !this.mode;
    document.documentElement.classList.toggle('selecting', this.mode);
    /** @type {HTMLElement} */ (this.bar.querySelector('.sel-count')).textContent = n ? `${plural(n, 'selected', 'selected')}` : 'Select items';
    for (const b of this.bar.querySelectorAll('[data-s="fav"], [data-s="unfav"], [data-s="download"], [data-s="delete"], [data-s="share"]')) b.toggleAttribute('disabled', n === 0);
    this.dispatchEvent(new Event('change'));
  }

  /**
   * Marks or unmarks the selected items as favorites.
   * @param {boolean} on
   */
  async favorite(on) {
    const items = [...this.items.values()];
    const failed = await markFavorites(this.timeline, items, on);
    if (!failed) {
      toast(`${plural(items.length, 'item', 'items')} ${on ? 'added to' : 'removed from'} favorites`);
      this.clear();
    }
  }

  /** Moves the selection to the trash (with Undo in the toast). */
  async delete() {
    // Loaded on first use: the first screen does not need it.
    const { deleteItems } = await import('./trash.js');
    if (await deleteItems(this.timeline, [...this.items.values()])) this.clear();
  }

  /**
   * Downloads the selection: one original as itself, several as one ZIP. The ZIP is a form
   * POST, so the browser's own download shows its progress (the server sends its length) and
   * a selection of thousands does not need a long URL.
   */
  download() {
    const items = [...this.items.values()];
    if (items.length === 1) {
      const a = document.createElement('a');
      a.href = downloadURL(items[0]);
      a.download = items[0].name;
      document.body.append(a);
      a.click();
      a.remove();
    } else if (items.length > 1 && currentShare()) {
      // A share link's guest only reads (GET): the selection goes in the URL, with the share.
      toast(`Downloading ${plural(items.length, 'item', 'items')} as one ZIP…`);
      const q = apiParams({ year: null, month: null, dir: '', favorite: false, kind: '' });
      q.set('ids', items.map((it) => it.id).join(','));
      location.assign(`/api/zip?${q}`);
    } else if (items.length > 1) {
      toast(`Downloading ${plural(items.length, 'item', 'items')} as one ZIP…`);
      const form = document.createElement('form');
      form.method = 'post';
      form.action = '/api/zip';
      form.hidden = true;
      const ids = document.createElement('input');
      ids.type = 'hidden';
      ids.name = 'ids';
      ids.value = items.map((it) => it.id).join(',');
      form.append(ids);
      document.body.append(form);
      form.submit();
      form.remove();
    }
    this.clear();
  }
}
