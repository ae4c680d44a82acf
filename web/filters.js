// @ts-check
// Filters: year, month, folder, favorites, photos/videos. They live in the page's query string
// (so back/forward, reload and shared links keep them); the sheet offers them with counts from
// /api/facets, and active ones show as removable chips under the header.

import { apiParams, currentShare, filterParams } from './api.js';
import { formatCount, h, icon, monthName, sheet } from './ui.js';

/** @typedef {import('./api.js').Filter} Filter */
/** @typedef {import('./api.js').Folder} Folder */
/** @typedef {import('./api.js').Facets} Facets */

/**
 * Reads the filter from a query string.
 * @param {string} [search]
 * @returns {Filter}
 */
export function readFilter(search = location.search) {
  const q = new URLSearchParams(search);
  /** @param {string} k @param {number} lo @param {number} hi @returns {number|null} */
  const num = (k, lo, hi) => {
    const n = Number(q.get(k));
    return Number.isInteger(n) && n >= lo && n <= hi ? n : null;
  };
  const kind = q.get('kind');
  return {
    year: num('year', 1, 9999),
    month: num('month', 1, 12),
    dir: (q.get('dir') || '').replace(/^\/+|\/+$/g, ''),
    favorite: q.get('favorite') === 'true',
    kind: kind === 'image' || kind === 'video' ? kind : '',
  };
}

/**
 * The query string ("?year=2014", or "") of a filter, in a stable order.
 * @param {Filter} f
 * @returns {string}
 */
export function filterSearch(f) {
  const s = filterParams(f).toString();
  return s ? `?${s}` : '';
}

/**
 * @param {Filter} a
 * @param {Filter} b
 * @returns {boolean}
 */
export function sameFilter(a, b) {
  return filterSearch(a) === filterSearch(b);
}

/** @returns {Filter} no filter */
export function noFilter() {
  return { year: null, month: null, dir: '', favorite: false, kind: '' };
}

/**
 * A short title for the current view: "Photos", "Videos", "Favorites", "Favorite videos".
 * @param {Filter} f
 * @returns {string}
 */
export function describe(f) {
  const kind = f.kind === 'video' ? 'videos' : f.kind === 'image' ? 'photos' : '';
  if (f.favorite) return kind ? `Favorite ${kind}` : 'Favorites';
  return kind === 'videos' ? 'Videos' : 'Photos';
}

/**
 * The label of a month filter alone or with its year.
 * @param {Filter} f
 * @returns {string}
 */
function when(f) {
  if (f.year && f.month) return monthName(f.year, f.month);
  if (f.month) return new Intl.DateTimeFormat(undefined, { month: 'long', timeZone: 'UTC' }).format(new Date(Date.UTC(2000, f.month - 1, 1)));
  return f.year ? String(f.year) : '';
}

/** The filter sheet and the chips; fires `change` with `detail` the new filter. */
export class Filters extends EventTarget {
  /**
   * @param {HTMLDialogElement} dialog
   * @param {HTMLElement} chips
   */
  constructor(dialog, chips) {
    super();
    this.dialog = dialog;
    this.chips = chips;
    this.body = /** @type {HTMLElement} */ (dialog.querySelector('.sheet-body'));
    /** @type {Filter} */
    this.filter = noFilter();
    /** @type {Facets|null} */
    this.facets = null;
    /** @type {Set<string>} folders opened in the tree */
    this.expanded = new Set();
    /** @type {HTMLElement} */ (dialog.querySelector('[data-action="clear"]')).addEventListener('click', () => this.set(noFilter()));
    dialog.querySelectorAll('[data-action="close"]').forEach((b) => b.addEventListener('click', () => this.close()));
    this.sheet = sheet(dialog);
  }

  /** Opens the sheet. */
  open() {
    this.render();
    this.sheet.open();
  }

  /** Closes the sheet. */
  close() {
    this.sheet.close();
  }

  /**
   * Shows the current filter and the facets that go with it.
   * @param {Filter} filter
   * @param {Facets} [facets]
   */
  update(filter, facets) {
    this.filter = filter;
    if (facets) this.facets = facets;
    if (filter.dir) {
      const parts = filter.dir.split('/');
      for (let i = 1; i < parts.length; i++) this.expanded.add(parts.slice(0, i).join('/'));
    }
    this.renderChips();
    // What the filter shows, as one ZIP (the server sends its length, so the browser shows
    // progress); offered once something narrows the view, never for the whole library at once.
    // A share link's page offers all of it.
    const zip = /** @type {HTMLAnchorElement} */ (this.dialog.querySelector('[data-action="zip"]'));
    const search = filterSearch(filter);
    zip.hidden = !search && !currentShare();
    zip.href = `/api/zip?${apiParams(filter)}`;
    // A folder or a month can be shared as a link that shows what is added to it later.
    const share = /** @type {HTMLElement} */ (this.dialog.querySelector('[data-action="share"]'));
    share.hidden = !filter.dir && !(filter.year && filter.month);
    /** @type {HTMLElement} */ (share.querySelector('.grow')).textContent = filter.dir ? 'Share link to this folder' : 'Share link to this month';
    if (this.dialog.open) this.render();
  }

  /**
   * Applies a new filter.
   * @param {Filter} f
   */
  set(f) {
    this.dispatchEvent(new CustomEvent('change', { detail: f }));
  }

  /**
   * Applies a change to the current filter.
   * @param {Partial<Filter>} patch
   */
  patch(patch) {
    this.set({ ...this.filter, ...patch });
  }

  /** The chips of the active filters, each removable. */
  renderChips() {
    const f = this.filter;
    /** @type {HTMLElement[]} */
    const chips = [];
    /** @param {string} label @param {Partial<Filter>} patch @param {string} iconName */
    const chip = (label, patch, iconName) =>
      chips.push(
        h('button', { type: 'button', class: 'chip active', 'aria-label': `Remove filter ${label}`, onclick: () => this.patch(patch) }, [
          iconName && icon(iconName),
          h('span', { text: label }),
          icon('close'),
        ]),
      );
    if (f.year || f.month) chip(when(f), { year: null, month: null }, 'calendar');
    if (f.dir) chip(f.dir, { dir: '' }, 'folder');
    if (f.favorite) chip('Favorites', { favorite: false }, 'heart');
    if (f.kind) chip(f.kind === 'video' ? 'Videos' : 'Photos', { kind: '' }, f.kind === 'video' ? 'video' : 'image');
    if (chips.length > 1) chips.push(h('button', { type: 'button', class: 'chip clear', text: 'Clear all', onclick: () => this.set(noFilter()) }));
    this.chips.replaceChildren(...chips);
    this.chips.hidden = chips.length === 0;
    document.documentElement.classList.toggle('has-chips', chips.length > 0);
  }

  /** Rebuilds the sheet's controls, keeping focus on the same control. */
  render() {
    const focusKey = /** @type {HTMLElement} */ (document.activeElement)?.dataset?.k;
    const scroll = this.body.scrollTop;
    const f = this.filter;
    /** @type {{years: Facets['years'], folders: Folder|null, favorites: number}} */
    const facets = this.facets || { years: [], folders: null, favorites: 0 };
    const groups = [];

    // What: all, photos, videos; favorites.
    const kinds = /** @type {[Filter['kind'], string][]} */ ([
      ['', 'All'],
      ['image', 'Photos'],
      ['video', 'Videos'],
    ]).map(([k, label]) =>
      h('button', { type: 'button', class: 'seg', 'data-k': `kind:${k}`, 'aria-pressed': String(f.kind === k), text: label, onclick: () => this.patch({ kind: k }) }),
    );
    groups.push(this.group('Show', [h('div', { class: 'segmented', role: 'group', 'aria-label': 'Kind' }, kinds)]));
    const fav = h('button', {
      type: 'button',
      class: 'switch-row',
      role: 'switch',
      'data-k': 'favorite',
      'aria-checked': String(f.favorite),
      onclick: () => this.patch({ favorite: !f.favorite }),
    }, [icon('heart'), h('span', { class: 'grow', text: 'Favorites only' }), h('span', { class: 'count', text: f.favorite ? '' : formatCount(facets.favorites || 0) }), h('span', { class: 'switch', 'aria-hidden': 'true' })]);
    // The household's favorites are its own: a share link's page has no such filter.
    if (!currentShare()) groups.push(fav);

    // When: years, then months of the chosen year (or of every year).
    const years = [h('button', { type: 'button', class: 'chip', 'data-k': 'year:', 'aria-pressed': String(!f.year), text: 'All years', onclick: () => this.patch({ year: null }) })];
    for (const y of facets.years) {
      years.push(
        h('button', {
          type: 'button',
          class: 'chip',
          'data-k': `year:${y.year}`,
          'aria-pressed': String(f.year === y.year),
          onclick: () => this.patch({ year: f.year === y.year ? null : y.year, month: f.year === y.year ? null : f.month }),
        }, [h('span', { text: String(y.year) }), h('span', { class: 'count', text: formatCount(y.count) })]),
      );
    }
    groups.push(this.group('Year', [h('div', { class: 'chips-wrap' }, years)]));
    const perMonth = new Array(13).fill(0);
    for (const y of facets.years) if (!f.year || y.year === f.year) for (const m of y.months) perMonth[m.month] += m.count;
    const short = new Intl.DateTimeFormat(undefined, { month: 'short', timeZone: 'UTC' });
    const months = [h('button', { type: 'button', class: 'chip', 'data-k': 'month:', 'aria-pressed': String(!f.month), text: 'Any', onclick: () => this.patch({ month: null }) })];
    for (let m = 1; m <= 12; m++) {
      months.push(
        h('button', {
          type: 'button',
          class: 'chip',
          'data-k': `month:${m}`,
          'aria-pressed': String(f.month === m),
          disabled: !perMonth[m] && f.month !== m,
          'aria-label': `${new Intl.DateTimeFormat(undefined, { month: 'long', timeZone: 'UTC' }).format(new Date(Date.UTC(2000, m - 1, 1)))}, ${perMonth[m]} items`,
          onclick: () => this.patch({ month: f.month === m ? null : m }),
        }, [h('span', { text: short.format(new Date(Date.UTC(2000, m - 1, 1))) })]),
      );
    }
    groups.push(this.group('Month', [h('div', { class: 'chips-wrap months' }, months)]));

    // Where: the folder tree.
    const tree = h('ul', { class: 'tree', role: 'tree', 'aria-label': 'Folders' });
    tree.append(this.folderRow({ name: 'All folders', path: '', total: facets.folders?.total || 0, children: [] }, 0));
    for (const c of facets.folders?.children || []) this.folderRows(tree, c, 0);
    groups.push(this.group('Folder', [tree]));

    this.body.replaceChildren(...groups);
    this.body.scrollTop = scroll;
    if (focusKey) /** @type {HTMLElement|null} */ (this.body.querySelector(`[data-k="${CSS.escape(focusKey)}"]`))?.focus();
  }

  /**
   * A titled group of controls.
   * @param {string} title
   * @param {Node[]} content
   * @returns {HTMLElement}
   */
  group(title, content) {
    return h('section', { class: 'group' }, [h('h3', { text: title }), ...content]);
  }

  /**
   * Appends a folder and, when expanded, its children.
   * @param {HTMLElement} list
   * @param {Folder} node
   * @param {number} depth
   */
  folderRows(list, node, depth) {
    list.append(this.folderRow(node, depth));
    if (node.children.length && this.expanded.has(node.path)) for (const c of node.children) this.folderRows(list, c, depth + 1);
  }

  /**
   * One row of the folder tree.
   * @param {Pick<Folder, 'name'|'path'|'total'|'children'>} node
   * @param {number} depth
   * @returns {HTMLElement}
   */
  folderRow(node, depth) {
    const f = this.filter;
    const open = this.expanded.has(node.path);
    const row = h('li', { class: 'tree-row', role: 'treeitem', 'aria-level': depth + 1, 'aria-expanded': node.children.length ? String(open) : null });
    row.style.setProperty('--depth', String(depth));
    const toggle = node.children.length
      ? h('button', {
          type: 'button',
          class: 'tree-toggle',
          'data-k': `open:${node.path}`,
          'aria-label': `${open ? 'Collapse' : 'Expand'} ${node.name}`,
          onclick: () => {
            if (open) this.expanded.delete(node.path);
            else this.expanded.add(node.path);
            this.render();
          },
        }, [icon(open ? 'chevron-down' : 'chevron-right')])
      : h('span', { class: 'tree-toggle' });
    row.append(
      toggle,
      h('button', {
        type: 'button',
        class: 'tree-pick',
        'data-k': `dir:${node.path}`,
        'aria-pressed': String(f.dir === node.path),
        onclick: () => this.patch({ dir: node.path }),
      }, [icon(node.path ? 'folder' : 'photos'), h('span', { class: 'grow', text: node.name }), h('span', { class: 'count', text: formatCount(node.total) })]),
    );
    return row;
  }
}
