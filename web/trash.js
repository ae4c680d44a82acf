// @ts-check
// Deleting and "Recently deleted": a delete moves the files to the server's trash at once and
// offers Undo; the trash sheet lists what is there with the days left, restores one or all, and
// deletes for good only after a confirmation.

import { deleteForGood, listTrash, restoreFromTrash, trashItems } from './api.js';
import { formatSize, h, icon, plural, sheet, toast } from './ui.js';

/** @typedef {import('./api.js').Item} Item */
/** @typedef {import('./api.js').TrashEntry} TrashEntry */
/** @typedef {import('./timeline.js').Timeline} Timeline */

const DAY = 86400000;

/**
 * Moves items to the trash, takes them off the timeline, and says so with an Undo.
 * @param {() => Timeline|null} timeline
 * @param {Item[]} items
 * @returns {Promise<boolean>} whether they were moved
 */
export async function deleteItems(timeline, items) {
  if (!items.length) return false;
  let entries;
  try {
    entries = (await trashItems(items.map((it) => it.id))).items;
  } catch (e) {
    toast(`Could not delete: ${/** @type {Error} */ (e).message}`);
    return false;
  }
  // The WebSocket says so too; this is for a page whose live connection is down.
  for (const it of items) timeline()?.remove(it.id);
  const what = items.length === 1 ? (items[0].kind === 'video' ? 'Video' : 'Photo') : plural(items.length, 'item', 'items');
  toast(`${what} moved to Recently deleted`, {
    action: 'Undo',
    ms: 8000,
    onAction: () => restoreAll(timeline, entries),
  });
  return true;
}

/**
 * Restores trash entries; the restored items come back to the timeline.
 * @param {() => Timeline|null} timeline
 * @param {TrashEntry[]} entries
 * @returns {Promise<number>} how many came back
 */
async function restoreAll(timeline, entries) {
  let back = 0;
  for (const e of entries) {
    try {
      const item = await restoreFromTrash(e.id);
      back += 1;
      const t = timeline();
      if (t?.ready && !t.byId.has(item.id)) t.add(item);
    } catch (err) {
      toast(`Could not restore ${e.name}: ${/** @type {Error} */ (err).message}`);
      return back;
    }
  }
  toast(`${plural(back, 'item', 'items')} restored`);
  return back;
}

/** The "Recently deleted" sheet. */
export class TrashView {
  /**
   * @param {HTMLDialogElement} dialog
   * @param {() => Timeline|null} timeline
   */
  constructor(dialog, timeline) {
    this.dialog = dialog;
    this.timeline = timeline;
    this.body = /** @type {HTMLElement} */ (dialog.querySelector('.sheet-body'));
    /** @type {TrashEntry[]} */
    this.entries = [];
    this.days = 30;
    /** @param {string} name @param {() => void} fn */
    const on = (name, fn) => dialog.querySelectorAll(`[data-t="${name}"]`).forEach((b) => b.addEventListener('click', fn));
    on('close', () => this.close());
    on('restore-all', () => this.restore(this.entries));
    on('empty', () => this.empty());
    this.sheet = sheet(dialog);
  }

  /** Opens the sheet and loads what is in the trash. */
  async open() {
    this.sheet.open();
    this.body.replaceChildren(h('p', { class: 'trash-note', text: 'Loading…' }));
    try {
      const t = await listTrash();
      this.entries = t.items;
      this.days = t.trash_days;
    } catch (e) {
      this.body.replaceChildren(h('p', { class: 'trash-note', text: `Could not load the trash: ${/** @type {Error} */ (e).message}` }));
      return;
    }
    this.render();
  }

  close() {
    this.sheet.close();
  }

  render() {
    const n = this.entries.length;
    for (const b of this.dialog.querySelectorAll('[data-t="restore-all"], [data-t="empty"]')) b.toggleAttribute('disabled', n === 0);
    const note = this.days > 0
      ? `Items are deleted for good ${plural(this.days, 'day', 'days')} after they were moved here.`
      : 'Deleted items are removed at once on this server.';
    if (!n) {
      this.body.replaceChildren(
        h('div', { class: 'trash-empty' }, [icon('trash'), h('h3', { text: 'Nothing here' }), h('p', { text: note })]),
      );
      return;
    }
    const list = h('ul', { class: 'trash-grid', 'aria-label': 'Recently deleted items' });
    for (const e of this.entries) {
      const left = Math.max(0, Math.ceil((Date.parse(e.purge) - Date.now()) / DAY));
      const where = e.dir ? `${e.dir}/${e.name}` : e.name;
      list.append(
        h('li', { class: 'trash-item', 'data-id': e.id }, [
          h('img', { src: e.thumb, alt: e.name, loading: 'lazy', decoding: 'async' }),
          h('div', { class: 'trash-meta' }, [
            h('span', { class: 'trash-name', text: e.name, title: where }),
            h('span', { class: 'count', text: `${left === 0 ? 'today' : plural(left, 'day', 'days') + ' left'} · ${formatSize(e.size)}` }),
          ]),
          h('div', { class: 'trash-actions' }, [
            h('button', { type: 'button', class: 'btn', text: 'Restore', 'aria-label': `Restore ${e.name}`, onclick: () => this.restore([e]) }),
            h('button', { type: 'button', class: 'btn danger', text: 'Delete', 'aria-label': `Delete ${e.name} for good`, onclick: () => this.purge(e) }),
          ]),
        ]),
      );
    }
    this.body.replaceChildren(h('p', { class: 'trash-note', text: note }), list);
  }

  /** @param {TrashEntry[]} entries */
  async restore(entries) {
    const back = await restoreAll(this.timeline, [...entries]);
    if (back) this.entries = this.entries.filter((e) => !entries.slice(0, back).includes(e));
    this.render();
  }

  /** @param {TrashEntry} e */
  async purge(e) {
    if (!confirm(`Delete “${e.name}” for good? This cannot be undone.`)) return;
    try {
      await deleteForGood(e.id);
    } catch (err) {
      toast(`Could not delete ${e.name}: ${/** @type {Error} */ (err).message}`);
      return;
    }
    this.entries = this.entries.filter((x) => x !== e);
    this.render();
  }

  async empty() {
    const n = this.entries.length;
    if (!n || !confirm(`Delete ${plural(n, 'item', 'items')} for good? This cannot be undone.`)) return;
    try {
      await deleteForGood();
    } catch (err) {
      toast(`Could not empty the trash: ${/** @type {Error} */ (err).message}`);
      return;
    }
    this.entries = [];
    this.render();
    toast(`${plural(n, 'item', 'items')} deleted for good`);
  }
}
