// @ts-check
// Share links, for the household: "Share link" on a selection, a folder or a month asks how long
// the link lives, an optional password and whether guests may download, and shows what will be
// visible; nothing is public until "Create link" is pressed. "Shared links" lists them with
// their views and revokes them.

import { ApiError, request } from './api.js';
import { h, icon, plural, sheet, toast } from './ui.js';

/** @typedef {{ids: string[]} | {dir: string} | {year: number, month: number}} What */

/**
 * A share link as the household sees it.
 * @typedef {{id: string, title: string, kind: 'items'|'folder'|'month', ids?: string[], dir?: string,
 *   year?: number, month?: number, count: number, created: string, expires: string|null,
 *   expired: boolean, password: boolean, downloads: boolean, views: number, url: string}} Share
 */

/**
 * Makes a share link of a selection (`ids`), a folder (`dir`) or a month (`year`, `month`).
 * @param {{ids?: string[], dir?: string, year?: number, month?: number, title?: string,
 *   expires_days: number, password?: string, downloads: boolean}} body
 * @returns {Promise<Share>}
 */
function createShare(body) {
  return request('/api/shares', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/**
 * The share links, newest first.
 * @returns {Promise<{items: Share[]}>}
 */
function listShares() {
  return request('/api/shares', { cache: 'no-store' });
}

/**
 * Revokes a share link: it stops working at once.
 * @param {string} id
 * @returns {Promise<void>}
 */
async function revokeShare(id) {
  const res = await fetch(`/api/shares/${encodeURIComponent(id)}`, { method: 'DELETE' });
  if (!res.ok && res.status !== 404) {
    const body = await res.json().catch(() => null);
    throw new ApiError(body?.error || `HTTP ${res.status}`, res.status, body?.code || 'http');
  }
}

/**
 * The full address of a share link.
 * @param {Share} s
 * @returns {string}
 */
function linkOf(s) {
  return new URL(s.url, location.origin).href;
}

/**
 * Copies a link, or offers the system's share sheet where there is one.
 * @param {Share} s
 * @param {boolean} send
 */
async function pass(s, send) {
  const url = linkOf(s);
  if (send && navigator.share) {
    await navigator.share({ title: s.title, url }).catch(() => {});
    return;
  }
  try {
    await navigator.clipboard.writeText(url);
    toast('Link copied');
  } catch {
    // Not a secure context, or no permission: the link is selectable in the sheet.
    toast('Copy the link from the box');
  }
}

/**
 * When a link stops working, for people.
 * @param {Share} s
 * @returns {string}
 */
function expiry(s) {
  if (s.expired) return 'expired';
  if (!s.expires) return 'never expires';
  const days = Math.ceil((Date.parse(s.expires) - Date.now()) / 86400000);
  return days <= 1 ? 'expires within a day' : `expires in ${plural(days, 'day', 'days')}`;
}

/** The "Share link" sheet. */
export class ShareDialog {
  /** @param {HTMLDialogElement} dialog */
  constructor(dialog) {
    this.dialog = dialog;
    this.form = /** @type {HTMLFormElement} */ (dialog.querySelector('form'));
    /** @type {What|null} */
    this.what = null;
    /** @type {Share|null} */
    this.made = null;
    /** @param {string} name @returns {HTMLElement} */
    this.part = (name) => /** @type {HTMLElement} */ (dialog.querySelector(`[data-sh="${name}"]`));
    this.part('cancel').addEventListener('click', () => this.close());
    this.part('close').addEventListener('click', () => this.close());
    this.part('copy').addEventListener('click', () => this.made && pass(this.made, false));
    this.part('send').addEventListener('click', () => this.made && pass(this.made, true));
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.create();
    });
    this.sheet = sheet(dialog);
  }

  /**
   * Opens the sheet for what to share.
   * @param {What} what
   * @param {string} label e.g. "3 photos", "the folder Rome", "May 2024"
   */
  open(what, label) {
    this.what = what;
    this.made = null;
    this.form.reset();
    this.part('what').textContent = `Anyone with the link will see ${label}${'ids' in what ? '' : ', and what is added to it later'}, until the link expires or you revoke it. Nothing is shared until you create the link.`;
    this.step(false);
    this.sheet.open();
  }

  /** @param {boolean} done whether the link exists (its box and buttons), else the choices */
  step(done) {
    this.part('choices').hidden = done;
    this.part('done').hidden = !done;
    this.part('create').hidden = done;
    this.part('cancel').hidden = done;
    this.part('copy').hidden = !done;
    this.part('send').hidden = !done || !('share' in navigator);
    this.part('error').textContent = '';
  }

  async create() {
    if (!this.what) return;
    const f = this.form.elements;
    const password = /** @type {HTMLInputElement} */ (f.namedItem('password')).value;
    if (password && password.length < 6) {
      this.part('error').textContent = 'A password needs at least 6 characters (or leave it empty).';
      return;
    }
    const button = /** @type {HTMLButtonElement} */ (this.part('create'));
    button.disabled = true;
    try {
      this.made = await createShare({
        ...this.what,
        expires_days: Number(/** @type {HTMLSelectElement} */ (f.namedItem('expires')).value),
        downloads: /** @type {HTMLInputElement} */ (f.namedItem('downloads')).checked,
        ...(password ? { password } : {}),
      });
    } catch (e) {
      this.part('error').textContent = `Could not make the link: ${/** @type {Error} */ (e).message}`;
      return;
    } finally {
      button.disabled = false;
    }
    const box = /** @type {HTMLInputElement} */ (this.part('link'));
    box.value = linkOf(this.made);
    this.part('summary').textContent = `${this.made.title}: ${plural(this.made.count, 'item', 'items')}, ${expiry(this.made)}${this.made.password ? ', with a password' : ''}${this.made.downloads ? '' : ', no downloads'}.`;
    this.step(true);
    box.select();
  }

  close() {
    this.sheet.close();
  }
}

/** The "Shared links" sheet. */
export class SharesView {
  /** @param {HTMLDialogElement} dialog */
  constructor(dialog) {
    this.dialog = dialog;
    this.body = /** @type {HTMLElement} */ (dialog.querySelector('.sheet-body'));
    for (const b of dialog.querySelectorAll('[data-ss="close"]')) b.addEventListener('click', () => this.close());
    this.sheet = sheet(dialog);
  }

  async open() {
    this.sheet.open();
    this.body.replaceChildren(h('p', { class: 'trash-note', text: 'Loading…' }));
    try {
      this.render((await listShares()).items);
    } catch (e) {
      this.body.replaceChildren(h('p', { class: 'trash-note', text: `Could not load the links: ${/** @type {Error} */ (e).message}` }));
    }
  }

  /** @param {Share[]} shares */
  render(shares) {
    if (!shares.length) {
      this.body.replaceChildren(
        h('div', { class: 'trash-empty' }, [
          icon('link'),
          h('h3', { text: 'No shared links' }),
          h('p', { text: 'Select photos, or open a folder or a month in Filters, and choose Share link.' }),
        ]),
      );
      return;
    }
    const list = h('ul', { class: 'share-list', 'aria-label': 'Shared links' });
    for (const s of shares) {
      const kind = s.kind === 'folder' ? 'folder' : s.kind === 'month' ? 'calendar' : 'photos';
      const facts = [plural(s.count, 'item', 'items'), plural(s.views, 'view', 'views'), expiry(s)];
      if (s.password) facts.push('password');
      if (!s.downloads) facts.push('no downloads');
      list.append(
        h('li', { class: `share-row${s.expired ? ' expired' : ''}`, 'data-id': s.id }, [
          icon(kind),
          h('div', { class: 'trash-meta grow' }, [
            h('span', { class: 'trash-name', text: s.title }),
            h('span', { class: 'count', text: facts.join(' · ') }),
          ]),
          s.expired ? null : h('button', { type: 'button', class: 'btn', text: 'Copy', 'aria-label': `Copy the link to ${s.title}`, onclick: () => pass(s, false) }),
          h('button', {
            type: 'button',
            class: 'btn danger',
            text: s.expired ? 'Remove' : 'Revoke',
            'aria-label': `${s.expired ? 'Remove' : 'Revoke'} the link to ${s.title}`,
            onclick: () => this.revoke(s, shares),
          }),
        ]),
      );
    }
    this.body.replaceChildren(h('p', { class: 'trash-note', text: 'A revoked link stops working at once, for everyone who has it.' }), list);
  }

  /**
   * @param {Share} s
   * @param {Share[]} shares
   */
  async revoke(s, shares) {
    try {
      await revokeShare(s.id);
    } catch (e) {
      toast(`Could not revoke the link: ${/** @type {Error} */ (e).message}`);
      return;
    }
    toast(s.expired ? 'Link removed' : `The link to ${s.title} no longer works`);
    this.render(shares.filter((x) => x !== s));
  }

  close() {
    this.sheet.close();
  }
}
