// @ts-check
// The gallery page: wires the timeline, grid, scrubber, filters, viewer, selection and live
// updates together, keeps the filter in the URL, and registers the service worker.

import { connection, currentShare, filterParams, getFacets, getItem, getStatus, isOffline } from './api.js';
import { ensureSession } from './login.js';
import { offerHttps } from './secure.js';
import { markFavorites } from './favorites.js';
import { Filters, describe, filterSearch, noFilter, readFilter, sameFilter } from './filters.js';
import { Grid } from './grid.js';
import { Live } from './live.js';
import { Scrubber } from './scrubber.js';
import { Selection } from './select.js';
import { Timeline } from './timeline.js';
import { formatCount, plural, toast } from './ui.js';

/** @typedef {import('./api.js').Item} Item */

const $ = (/** @type {string} */ sel) => /** @type {HTMLElement} */ (document.querySelector(sel));

let filter = readFilter();
/** @type {Timeline|null} */
let timeline = null;
/** @type {Item[]} live additions waiting for the "new photos" pill */
let pending = [];
/** @type {import('./live.js').Indexing|null} the last indexing progress the server sent */
let indexing = null;
/** @type {(Error & {code?: string})|null} why the facets did not load (an ApiError, mostly) */
let facetsError = null;

const selection = new Selection($('#selbar'), () => timeline);
const grid = new Grid($('#grid'), selection);
new Scrubber($('#scrubber'), grid);
/** @type {import('./viewer.js').Viewer|null} the viewer, loaded on first use (not needed for the first screen) */
let viewer = null;
const filters = new Filters(/** @type {HTMLDialogElement} */ ($('#filters')), $('#chips'));
const live = new Live();

/**
 * What `load` gives, loaded on first use and kept. A load that fails (offline, the server
 * restarting) is not kept: the next use asks again, where the browser fetches the module anew.
 * @template T
 * @param {() => Promise<T>} load
 * @returns {() => Promise<T>}
 */
function onFirstUse(load) {
  /** @type {Promise<T>|null} */
  let loading = null;
  return () => (loading ||= load().catch((e) => {
    loading = null;
    throw e;
  }));
}

/**
 * A catch for a part of the app whose module did not arrive: says so, and gives undefined.
 * @param {string} what e.g. "Couldn't open the photo"
 * @returns {() => undefined}
 */
const notLoaded = (what) => () => {
  toast(`${what}. Check the connection and try again.`);
  return undefined;
};

const trashModule = onFirstUse(() => import('./trash.js'));
/** "Recently deleted" */
const trashView = onFirstUse(async () => {
  const { TrashView } = await trashModule();
  return new TrashView(/** @type {HTMLDialogElement} */ ($('#trash')), () => timeline);
});
/** share links */
const shareModule = onFirstUse(() => import('./share.js'));
/** @type {import('./share.js').ShareDialog|null} */
let shareDialog = null;
/**
 * Opens "Share link" for a selection, a folder or a month.
 * @param {import('./share.js').What} what
 * @param {string} label
 */
const openShareDialog = async (what, label) => {
  const loaded = await shareModule().catch(notLoaded("Couldn't open sharing"));
  if (!loaded) return;
  const { ShareDialog } = loaded;
  shareDialog ||= new ShareDialog(/** @type {HTMLDialogElement} */ ($('#share')));
  shareDialog.open(what, label);
};
/** @type {import('./share.js').SharesView|null} */
let sharesView = null;
const openShares = async () => {
  const loaded = await shareModule().catch(notLoaded("Couldn't open the shared links"));
  if (!loaded) return;
  const { SharesView } = loaded;
  sharesView ||= new SharesView(/** @type {HTMLDialogElement} */ ($('#shares')));
  sharesView.open();
};
const openTrash = () => trashView().then((t) => t.open(), notLoaded("Couldn't open Recently deleted"));
// The uploads' own code (upload.js) arrives with the first files, off the first screen.
const uploads = onFirstUse(async () => {
  const { Uploads } = await import('./upload.js');
  return new Uploads($('#uploads'));
});
wireUploads((files) => {
  const list = [...files];
  uploads().then((u) => u.add(list), notLoaded(`Couldn't upload ${list.length === 1 ? 'this file' : `these ${formatCount(list.length)} files`}`));
});

history.scrollRestoration = 'manual';

/**
 * Loads the current filter's facets and (re)builds the timeline. With `keep`, the items on
 * screen stay until fresh pages replace them (a refresh after offline or a resync).
 * @param {{keep?: boolean, restoreY?: number}} [opts]
 */
async function load({ keep = false, restoreY } = {}) {
  let t = timeline;
  if (!keep || !t || !sameFilter(t.filter, filter)) {
    t?.close();
    t = new Timeline(filter);
    timeline = t;
    pending = [];
    updatePill();
    const mine = t;
    t.addEventListener('change', (e) => {
      if (timeline !== mine) return;
      const { layout, ids } = /** @type {CustomEvent} */ (e).detail;
      if (viewer?.isOpen && viewer.item) {
        if (ids.includes(viewer.item.id)) viewer.updateChrome();
        if (layout) viewer.loadNeighbours(viewer.item);
      }
      if (layout) {
        updateHeader();
        selection.prune();
      }
    });
    grid.setTimeline(t);
  }
  updateHeader();
  try {
    const facets = await getFacets(filter);
    if (timeline !== t) return;
    facetsError = null;
    t.setFacets(facets, keep);
    filters.update(filter, facets);
    if (restoreY) requestAnimationFrame(() => scrollTo(0, restoreY));
  } catch (e) {
    if (timeline !== t) return;
    facetsError = /** @type {Error} */ (e);
  }
  updateHeader();
}

/**
 * " · thumbnails 42%, about 3 min left" while the server makes thumbnails in the background.
 * @returns {string}
 */
function thumbnailProgress() {
  const th = indexing?.thumbnails;
  if (!th || !th.total || th.done >= th.total) return '';
  const pct = Math.floor((th.done * 100) / th.total);
  const s = th.eta_s;
  const left = !s ? '' : s < 90 ? `, about ${s} s left` : s < 5400 ? `, about ${Math.round(s / 60)} min left` : `, about ${Math.round(s / 3600)} h left`;
  return ` · thumbnails ${pct}%${left}`;
}

/** Title, subtitle (count or indexing progress), the filter dot and the empty state. */
function updateHeader() {
  const t = timeline;
  const active = filterSearch(filter) !== '';
  const share = currentShare();
  // A share link's page is titled after the link; its filters narrow it.
  const title = share ? (active ? `${share.title} · ${describe(filter)}` : share.title) : describe(filter);
  $('#title').textContent = title;
  $('#filter-btn .dot').hidden = !active;
  const sub = $('#subtitle');
  if (indexing && !indexing.done) sub.textContent = `Indexing… ${formatCount(indexing.indexed || 0)} of ${formatCount(indexing.found || 0)} found`;
  else if (t?.ready) sub.textContent = plural(t.total, 'item', 'items') + thumbnailProgress();
  else sub.textContent = '';
  document.title = `${title} · spis`;

  const empty = $('#empty');
  const none = t?.ready ? t.total === 0 : !!facetsError;
  empty.hidden = !none;
  if (!none) return;
  const [heading, text] = facetsError
    ? facetsError.code === 'offline'
      ? ["You're offline", "This view hasn't been opened on this device before. It will appear when the connection is back."]
      : ["Couldn't load the gallery", facetsError.message]
    : active
      ? ['Nothing here', 'No photos or videos match these filters.']
      : share
        ? ['Nothing here yet', 'Nothing has been shared here yet, or it was removed.']
        : indexing && !indexing.done
          ? ['Reading your library…', 'Photos appear here as soon as they are indexed.']
          : ['No photos yet', 'Copy photos and videos into the media folder: they appear here as soon as they are written.'];
  $('#empty h2').textContent = heading;
  $('#empty p').textContent = text;
  $('#empty button').hidden = !active || !!facetsError;
}

/**
 * Shows another filter: a new history entry (so Back returns), from the top.
 * @param {import('./api.js').Filter} next
 */
function navigate(next) {
  if (sameFilter(next, filter)) return;
  filter = next;
  history.pushState({}, '', `${location.pathname}${filterSearch(filter)}`);
  scrollTo(0, 0);
  selection.clear();
  filters.update(filter);
  load();
  startLive();
}

/** Live updates follow the filter; a share link's page has none (its guests get no events). */
function startLive() {
  if (!currentShare()) live.start(filterParams(filter).toString());
}

/** The "N new photos" pill. */
function updatePill() {
  const pill = $('#pill');
  pill.hidden = pending.length === 0;
  if (!pending.length) return;
  const videos = pending.filter((it) => it.kind === 'video').length;
  const what = videos === pending.length ? ['new video', 'new videos'] : videos ? ['new item', 'new items'] : ['new photo', 'new photos'];
  $('#pill span').textContent = plural(pending.length, what[0], what[1]);
}

/** Puts the waiting live additions into the grid. */
function applyPending() {
  const items = pending;
  pending = [];
  updatePill();
  for (const it of items) timeline?.add(it);
}

/** @returns {boolean} whether the user is looking at the top of the grid */
function atTop() {
  return scrollY < 80 && !viewer?.isOpen;
}

let recovering = false;

/**
 * Shows the offline banner while requests fail or come from the offline cache; refreshes once
 * the network answers again (and tries it as soon as the device says it is back online).
 * @param {Event} [e]
 */
function updateOffline(e) {
  const off = isOffline() || !navigator.onLine;
  const banner = $('#offline');
  const was = !banner.hidden;
  banner.hidden = !off;
  document.documentElement.classList.toggle('offline', off);
  if (recovering) return;
  if ((was && !off) || (e?.type === 'online' && off)) {
    recovering = true;
    load({ keep: true }).finally(() => {
      recovering = false;
      $('#offline').hidden = !(isOffline() || !navigator.onLine);
    });
  }
}

/**
 * Opens the viewer on an item id (a shared link or Forward).
 * @param {string} id
 */
async function openById(id) {
  const item = timeline?.byId.get(id) || (await getItem(id).catch(() => null));
  if (!item) return;
  const v = await getViewer().catch(notLoaded("Couldn't open the photo"));
  if (v && !v.isOpen) v.open(item, { push: false });
}

// Grid and selection.
grid.addEventListener('open', (e) => getViewer().then((v) => v.open(/** @type {CustomEvent} */ (e).detail.item), notLoaded("Couldn't open the photo")));
grid.addEventListener('select', (e) => {
  const { item, range } = /** @type {CustomEvent} */ (e).detail;
  selection.toggle(item, { range });
});
selection.addEventListener('change', () => grid.refreshSelection());
$('#select-btn').addEventListener('click', () => (selection.active() ? selection.clear() : selection.start()));

// Filters.
$('#filter-btn').addEventListener('click', () => filters.open());
$('#filters [data-action="trash"]').addEventListener('click', () => {
  filters.close();
  openTrash();
});
$('#filters [data-action="shares"]').addEventListener('click', () => {
  filters.close();
  openShares();
});
$('#filters [data-action="share"]').addEventListener('click', () => {
  filters.close();
  const what = filter.dir ? { dir: filter.dir } : filter.year && filter.month ? { year: filter.year, month: filter.month } : null;
  if (what) openShareDialog(what, filter.dir ? `the folder ${filter.dir.split('/').pop()}` : describe({ ...filter, dir: '', kind: '', favorite: false }));
});
selection.addEventListener('share', (e) => {
  const { items } = /** @type {CustomEvent} */ (e).detail;
  const videos = items.filter((/** @type {Item} */ it) => it.kind === 'video').length;
  const what = videos === 0 ? ['photo', 'photos'] : videos === items.length ? ['video', 'videos'] : ['item', 'items'];
  openShareDialog({ ids: items.map((/** @type {Item} */ it) => it.id) }, `these ${plural(items.length, what[0], what[1])}`.replace('these 1 ', 'this '));
});
filters.addEventListener('change', (e) => navigate(/** @type {CustomEvent} */ (e).detail));
$('#empty button').addEventListener('click', () => navigate(noFilter()));

// Viewer.
/**
 * The viewer, loading its module the first time.
 * @type {() => Promise<import('./viewer.js').Viewer>}
 */
const getViewer = onFirstUse(async () => {
  const { Viewer } = await import('./viewer.js');
  const v = new Viewer($('#viewer'), () => timeline);
  v.addEventListener('favorite', async (e) => {
    const { item, on } = /** @type {CustomEvent} */ (e).detail;
    const done = markFavorites(() => timeline, [item], on);
    v.updateChrome();
    await done;
    v.updateChrome();
  });
  v.addEventListener('delete', async (e) => {
    const { item } = /** @type {CustomEvent} */ (e).detail;
    // The neighbours are known before the item leaves the timeline.
    const trash = await trashModule().catch(notLoaded("Couldn't delete this item"));
    if (trash && (await trash.deleteItems(() => timeline, [item])) && v.item === item) v.afterRemoved();
  });
  v.addEventListener('close', (e) => {
    const { item } = /** @type {CustomEvent} */ (e).detail;
    if (!item) return;
    grid.scrollToItem(item.id);
    requestAnimationFrame(() => grid.tileOf(item.id)?.focus({ preventScroll: true }));
    if (atTop() && pending.length) applyPending();
  });
  v.addEventListener('filter', (e) => {
    v.close();
    navigate({ ...noFilter(), .../** @type {CustomEvent} */ (e).detail });
  });
  viewer = v;
  return v;
});

// New items arrive at the top, or wait behind the pill while the user is elsewhere.
$('#pill').addEventListener('click', () => {
  scrollTo(0, 0);
  applyPending();
});
addEventListener('scroll', () => {
  if (pending.length && atTop()) applyPending();
}, { passive: true });

// Live changes.
live.addEventListener('message', (e) => {
  const m = /** @type {CustomEvent} */ (e).detail;
  const t = timeline;
  if (m.type === 'indexing') {
    const was = indexing;
    indexing = m;
    updateHeader();
    if (was && !was.done && m.done) load({ keep: true });
    return;
  }
  if (!t?.ready) return;
  if (m.type === 'added' || m.type === 'restored') {
    if (t.byId.has(m.item.id)) t.change(m.item);
    else if (atTop()) t.add(m.item);
    else {
      pending.push(m.item);
      updatePill();
    }
  } else if (m.type === 'changed') {
    const waiting = pending.find((it) => it.id === m.item.id);
    if (waiting) Object.assign(waiting, m.item);
    else t.change(m.item);
  } else if (m.type === 'removed') {
    const before = pending.length;
    pending = pending.filter((it) => it.id !== m.id);
    if (pending.length !== before) updatePill();
    t.remove(m.id);
  }
});
live.addEventListener('resync', () => load({ keep: true }));
live.addEventListener('status', (e) => {
  if (/** @type {CustomEvent} */ (e).detail.connected && isOffline()) load({ keep: true });
});

// Offline and back.
connection.addEventListener('change', updateOffline);
addEventListener('online', updateOffline);
addEventListener('offline', updateOffline);

// Back/forward: another filter, or the viewer opening/closing.
addEventListener('popstate', () => {
  const f = readFilter();
  if (!sameFilter(f, filter)) {
    filter = f;
    selection.clear();
    filters.update(filter);
    load({ restoreY: history.state?.y });
    startLive();
  }
  const id = history.state?.viewer || location.hash.slice(1);
  if (!id && viewer?.isOpen) viewer.close({ fromHistory: true });
  else if (id && !viewer?.isOpen) openById(id);
});

// Remember the scroll position in the history entry (reload and Back restore it).
let saveTimer = 0;
addEventListener('scroll', () => {
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => {
    if (!viewer?.isOpen) history.replaceState({ ...history.state, y: Math.round(scrollY) }, '');
  }, 300);
}, { passive: true });

// Esc leaves selection mode.
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && selection.active() && !viewer?.isOpen && !(/** @type {HTMLDialogElement} */ ($('#filters')).open)) selection.clear();
});

// The top bar's height, for the pill and scrubber.
new ResizeObserver(([entry]) => {
  document.documentElement.style.setProperty('--top-h', `${Math.round(entry.target.getBoundingClientRect().height)}px`);
}).observe($('#top'));

// A private gallery: nothing loads before the password is known (offline, the cache decides).
// A share link's page (/s/TOKEN) opens the link instead, and shows only what it shares.
// Not a top-level await: the code below must still see the page's load event.
const token = location.pathname.startsWith('/s/') ? location.pathname.slice(3) : null;
// First, over plain HTTP by name, HTTPS if this device trusts the server (secure.js).
offerHttps().then(async () => {
  if (token) await import('./guest.js').then(({ ensureGuest }) => ensureGuest(token));
  else await ensureSession();
}).then(() => {
  filters.update(filter);
  load({ restoreY: history.state?.y });
  startLive();
  updateOffline();
  if (location.hash.length > 1) openById(location.hash.slice(1));
  if (!token) showConfigError();
});

/** Says so when the server could not use its config file (spis.toml) and fell back. */
async function showConfigError() {
  const status = await getStatus().catch(() => null);
  const why = status?.config_error;
  const banner = $('#config-error');
  if (typeof why !== 'string' || !why) return;
  /** @type {HTMLElement} */ (banner.querySelector('code')).textContent = why;
  banner.hidden = false;
}

// The service worker: offline use, and cached thumbnails. A new version takes over at once.
if ('serviceWorker' in navigator) {
  const hadController = !!navigator.serviceWorker.controller;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (hadController) toast('spis was updated', { action: 'Reload', onAction: () => location.reload(), ms: 10000 });
  });
  addEventListener('load', () => {
    navigator.serviceWorker.register('/sw.js').catch((e) => console.warn('service worker', e));
  });
}

// The viewer's code arrives once the first screen is done, so the first tap opens it at once.
// If it cannot (the server restarting), the first tap asks again.
addEventListener('load', () => setTimeout(() => getViewer().catch(() => {}), 500));

/**
 * Wires the Upload button, drag and drop over the page, and files shared to the app.
 * @param {(files: Iterable<File>) => void} add
 */
function wireUploads(add) {
  const input = /** @type {HTMLInputElement} */ (document.getElementById('upload-input'));
  /** @type {HTMLElement} */ (document.getElementById('upload-btn')).addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    if (input.files) add(input.files);
    input.value = '';
  });
  const drop = /** @type {HTMLElement} */ (document.getElementById('drop'));
  let depth = 0;
  // A share link's guest adds nothing.
  const hasFiles = (/** @type {DragEvent} */ e) => !currentShare() && !!e.dataTransfer?.types.includes('Files');
  addEventListener('dragenter', (e) => {
    if (!hasFiles(e)) return;
    depth++;
    drop.hidden = false;
  });
  addEventListener('dragleave', (e) => {
    if (!hasFiles(e)) return;
    depth = Math.max(0, depth - 1);
    if (!depth) drop.hidden = true;
  });
  addEventListener('dragover', (e) => {
    if (hasFiles(e)) e.preventDefault();
  });
  addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    depth = 0;
    drop.hidden = true;
    if (e.dataTransfer?.files.length) add(e.dataTransfer.files);
  });
  // "Share -> spis" on a phone: the service worker kept the shared files and opened /?shared=1.
  const params = new URLSearchParams(location.search);
  if (params.has('shared') && navigator.serviceWorker) {
    navigator.serviceWorker.addEventListener('message', (e) => {
      if (e.data?.type === 'shared-files' && e.data.files?.length) add(e.data.files);
    });
    navigator.serviceWorker.ready.then((reg) => reg.active?.postMessage({ type: 'take-shared-files' }));
    params.delete('shared');
    history.replaceState(history.state, '', `${location.pathname}${params.size ? `?${params}` : ''}`);
  }
}
