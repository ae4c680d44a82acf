// @ts-check
// Talking to the spis JSON API: lists, facets, items and favorites, and whether we are offline.

/**
 * A media item as the API returns it.
 * @typedef {{id: string, name: string, dir: string, kind: 'image'|'video', format: string,
 *   mime: string, taken: string, taken_source: string, width: number|null, height: number|null,
 *   size: number, favorite: boolean, camera: string|null, duration_ms: number|null,
 *   thumbhash: string|null, thumb: string, preview: string, original: string}} Item
 */

/**
 * The filters of the gallery, as kept in the URL.
 * @typedef {{year: number|null, month: number|null, dir: string, favorite: boolean,
 *   kind: ''|'image'|'video'}} Filter
 */

/** Items per page the grid asks for (a multiple of every column count up to 6). */
export const PAGE = 120;

/** Fires `change` when requests start or stop failing for lack of a connection. */
export const connection = new EventTarget();
let offline = false;

/** @returns {boolean} whether the last API answer came from the offline cache or failed to arrive */
export function isOffline() {
  return offline;
}

/** @param {boolean} value */
function setOffline(value) {
  if (value === offline) return;
  offline = value;
  connection.dispatchEvent(new Event('change'));
}

/** An API error with its HTTP status and stable code. */
export class ApiError extends Error {
  /** @param {string} message @param {number} status @param {string} code */
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * A share link as its guests see it.
 * @typedef {{id: string, title: string, kind: 'items'|'folder'|'month', count: number,
 *   expires: string|null, downloads: boolean}} GuestShare
 */

/** @type {GuestShare|null} the share link this page shows (a guest's, or the household's look at it) */
let shareView = null;

/**
 * Shows only a share link's items from now on, as its guests see them.
 * @param {GuestShare} share
 */
export function setShareView(share) {
  shareView = share;
  document.documentElement.classList.add('guest');
  document.documentElement.classList.toggle('no-downloads', !share.downloads);
}

/** @returns {GuestShare|null} the share link this page shows, if any */
export function currentShare() {
  return shareView;
}

/** @returns {boolean} whether originals and ZIPs may be saved here */
export function canDownload() {
  return !shareView || shareView.downloads;
}

/**
 * The API query for a filter: its parameters, and the share link seen through.
 * @param {Filter} f
 * @returns {URLSearchParams}
 */
export function apiParams(f) {
  const q = filterParams(f);
  if (shareView) q.set('share', shareView.id);
  return q;
}

/**
 * The query string for a filter (without `?`).
 * @param {Filter} f
 * @returns {URLSearchParams}
 */
export function filterParams(f) {
  const q = new URLSearchParams();
  if (f.year) q.set('year', String(f.year));
  if (f.month) q.set('month', String(f.month));
  if (f.dir) q.set('dir', f.dir);
  if (f.favorite) q.set('favorite', 'true');
  if (f.kind) q.set('kind', f.kind);
  return q;
}

/**
 * Fetches JSON; notes whether it came from the network or the service worker's offline copy.
 * @param {string} url
 * @param {RequestInit} [init]
 * @returns {Promise<any>}
 */
export async function request(url, init) {
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    setOffline(true);
    throw new ApiError('You are offline', 0, 'offline');
  }
  const cached = res.headers.get('x-spis-offline') === '1';
  setOffline(cached);
  const body = await res.json().catch(() => null);
  // The session ended (expired, or the password changed): the login form takes over; for a
  // guest, the share link ended (revoked or expired).
  if (res.status === 401 && body?.code === 'unauthorized') dispatchEvent(new Event(shareView ? 'spis:share-ended' : 'spis:login-required'));
  if (!res.ok) throw new ApiError(body?.error || `HTTP ${res.status}`, res.status, body?.code || 'http');
  return body;
}

/**
 * One page of items.
 * @param {Filter} filter
 * @param {{year?: number, month?: number, cursor?: string|null, limit?: number, signal?: AbortSignal}} opts
 * @returns {Promise<{items: Item[], next_cursor: string|null}>}
 */
export function listMedia(filter, { year, month, cursor, limit = PAGE, signal } = {}) {
  const q = apiParams(filter);
  if (year) q.set('year', String(year));
  if (month) q.set('month', String(month));
  q.set('limit', String(limit));
  if (cursor) q.set('cursor', cursor);
  return request(`/api/media?${q}`, { signal });
}

/**
 * The counts of a filter: years with their months, the folder tree, and per kind.
 * @typedef {{years: {year: number, count: number, months: {month: number, count: number}[]}[],
 *   folders: Folder, images: number, videos: number, favorites: number}} Facets
 */

/**
 * Years with months and the folder tree, with counts, for a filter.
 * @param {Filter} filter
 * @returns {Promise<Facets>}
 */
export function getFacets(filter) {
  // Unfiltered, this is the URL the server preloads with the page (FIRST_FACETS in assets.rs).
  return request(`/api/facets?${apiParams(filter)}`);
}

/** @typedef {{name: string, path: string, count: number, total: number, children: Folder[]}} Folder */

/**
 * One item by id.
 * @param {string} id
 * @returns {Promise<Item>}
 */
export function getItem(id) {
  return request(`/api/media/${encodeURIComponent(id)}`);
}

/**
 * Marks or unmarks a favorite; resolves with the updated item once the server stored it.
 * @param {string} id
 * @param {boolean} on
 * @returns {Promise<Item>}
 */
export function setFavorite(id, on) {
  return request(`/api/media/${encodeURIComponent(id)}/favorite`, { method: on ? 'PUT' : 'DELETE' });
}

/**
 * Server status (indexing progress, counts).
 * @returns {Promise<any>}
 */
export function getStatus() {
  return request('/api/status');
}

/**
 * The URL that downloads an item's original file.
 * @param {Item} item
 * @returns {string}
 */
export function downloadURL(item) {
  return `${item.original}?download=1`;
}

/**
 * A file in the trash ("Recently deleted").
 * @typedef {{id: string, media_id: string, name: string, dir: string, kind: 'image'|'video',
 *   size: number, deleted: string, purge: string, thumb: string}} TrashEntry
 */

/**
 * Moves items to the trash; resolves once the server moved them all (durably).
 * @param {string[]} ids
 * @returns {Promise<{items: TrashEntry[]}>}
 */
export function trashItems(ids) {
  return request('/api/trash', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ ids }),
  });
}

/**
 * What is in the trash, most recently deleted first.
 * @returns {Promise<{items: TrashEntry[], trash_days: number}>}
 */
export function listTrash() {
  return request('/api/trash', { cache: 'no-store' });
}

/**
 * Puts a trashed file back where it was; resolves with its item.
 * @param {string} trashId
 * @returns {Promise<Item>}
 */
export function restoreFromTrash(trashId) {
  return request(`/api/trash/${encodeURIComponent(trashId)}/restore`, { method: 'POST' });
}

/**
 * Deletes one trashed file for good, or with no id empties the whole trash.
 * @param {string} [trashId]
 * @returns {Promise<void>}
 */
export async function deleteForGood(trashId) {
  const url = trashId ? `/api/trash/${encodeURIComponent(trashId)}` : '/api/trash';
  const res = await fetch(url, { method: 'DELETE' });
  if (!res.ok) {
    const body = await res.json().catch(() => null);
    throw new ApiError(body?.error || `HTTP ${res.status}`, res.status, body?.code || 'http');
  }
}
