// @ts-check
// The service worker: the app shell from a cache named after this version; API pages from the
// network first with the last copy as an offline fallback; thumbnails and previews (versioned,
// never changing URLs) from the cache first. Seen pages and pictures go in bounded caches.
// Originals, status and the events socket always go to the network.

/** The worker's own global scope (the WebWorker lib types `self` as any worker's). */
const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));
const VERSION = '__VERSION__';
const SHELL = `spis-shell-${VERSION}`;
const MEDIA = 'spis-media-v1';
const API = 'spis-api-v1';
const KEEP = [SHELL, MEDIA, API];
/** @type {string[]} */
const PRECACHE = __PRECACHE__;
/** @type {Record<string, number>} */
const LIMITS = { [MEDIA]: 2000, [API]: 300 };
/** How long the network may take before the cached copy answers (it still refreshes the cache). */
const NETWORK_TIMEOUT_MS = 4000;

sw.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL);
      await cache.addAll(['/', '/manifest.webmanifest', ...PRECACHE]);
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) if (!KEEP.includes(name)) await caches.delete(name);
      await sw.clients.claim();
      await Promise.all([trim(MEDIA), trim(API)]);
    })(),
  );
});

/** Files shared to the app ("Share -> spis"), until the page it opened takes them. */
/** @type {File[]} */
let shared = [];

sw.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method === 'POST' && url.origin === sw.location.origin && url.pathname === '/share') {
    event.respondWith(receiveShare(req));
    return;
  }
  if (req.method !== 'GET') return;
  if (url.origin !== sw.location.origin) return;
  const path = url.pathname;
  if (req.mode === 'navigate') {
    event.respondWith(shell(req, event));
  } else if (path.startsWith('/assets/') || path === '/manifest.webmanifest') {
    event.respondWith(fromCacheFirst(req, SHELL, false, event));
  } else if (/^\/api\/media\/[^/]+\/(thumb|preview)$/.test(path)) {
    event.respondWith(fromCacheFirst(req, MEDIA, true, event));
  } else if (path === '/api/media' || path === '/api/facets' || /^\/api\/media\/[^/]+$/.test(path)) {
    event.respondWith(networkFirst(req, event));
  }
  // Everything else (originals, /api/status, /api/events, /sw.js) is not touched.
});

/**
 * The manifest's share target: keeps the shared files and opens the gallery, which asks for them.
 * @param {Request} req
 * @returns {Promise<Response>}
 */
async function receiveShare(req) {
  const form = await req.formData().catch(() => null);
  shared = form ? /** @type {File[]} */ (form.getAll('media').filter((f) => f instanceof File)) : [];
  return Response.redirect('/?shared=1', 303);
}

sw.addEventListener('message', (event) => {
  if (event.data?.type !== 'take-shared-files' || !event.source) return;
  event.source.postMessage({ type: 'shared-files', files: shared });
  shared = [];
});

/**
 * The page: from the network (fresh deploys, filters in the URL), else the cached shell.
 * @param {Request} req
 * @param {FetchEvent} event
 * @returns {Promise<Response>}
 */
async function shell(req, event) {
  try {
    const res = await withTimeout(fetch(req), NETWORK_TIMEOUT_MS);
    if (res.ok) return res;
    throw new Error(`HTTP ${res.status}`);
  } catch {
    const cached = await caches.match('/', { cacheName: SHELL, ignoreVary: true });
    return cached || Response.error();
  }
}

/**
 * Cache first; on a miss, the network, storing good answers when `store` is set.
 * @param {Request} req
 * @param {string} cacheName
 * @param {boolean} store
 * @param {FetchEvent} event
 * @returns {Promise<Response>}
 */
async function fromCacheFirst(req, cacheName, store, event) {
  const cache = await caches.open(cacheName);
  const hit = await cache.match(req, { ignoreVary: true });
  if (hit) {
    // A JPEG thumbnail sent while its AVIF was being made is not `immutable`: shown, and asked
    // for again behind it, so the smaller picture replaces it once it exists.
    if (store && !(hit.headers.get('cache-control') || '').includes('immutable')) {
      event.waitUntil(fetch(req, { cache: 'no-cache' }).then((res) => {
        if ((res.headers.get('cache-control') || '').includes('immutable')) return cache.put(req, res);
      }).catch(() => {}));
    }
    return hit;
  }
  const res = await fetch(req);
  // Placeholders (for files that cannot be decoded yet) say so and are not kept.
  if (store && res.ok && res.status === 200 && !res.headers.has('x-spis-placeholder')) {
    event.waitUntil(cache.put(req, res.clone()).then(() => trimSoon(cacheName)));
  }
  return res;
}

/**
 * Network first for API answers; the last copy when the network fails or is too slow, marked
 * with `X-Spis-Offline: 1` so the page can say it is offline.
 * @param {Request} req
 * @param {FetchEvent} event
 * @returns {Promise<Response>}
 */
async function networkFirst(req, event) {
  const cache = await caches.open(API);
  const network = fetch(req).then((res) => {
    if (res.ok) event.waitUntil(cache.put(req, res.clone()).then(() => trimSoon(API)));
    return res;
  });
  // Keep the worker alive until the network answer is stored, even if the cache answered first.
  event.waitUntil(network.catch(() => {}));
  try {
    return await withTimeout(network, NETWORK_TIMEOUT_MS);
  } catch {
    const hit = await cache.match(req, { ignoreVary: true });
    if (!hit) {
      return new Response(JSON.stringify({ error: 'You are offline and this page was not saved', code: 'offline' }), {
        status: 503,
        headers: { 'content-type': 'application/json', 'x-spis-offline': '1' },
      });
    }
    const headers = new Headers(hit.headers);
    headers.set('x-spis-offline', '1');
    return new Response(hit.body, { status: hit.status, statusText: hit.statusText, headers });
  }
}

/**
 * Rejects when a promise takes longer than `ms`.
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @returns {Promise<T>}
 */
function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

/** @type {Record<string, number>} */
const trimTimers = {};

/**
 * Trims a cache a little later (puts come in bursts).
 * @param {string} name
 * @returns {Promise<void>}
 */
function trimSoon(name) {
  if (trimTimers[name]) return Promise.resolve();
  return new Promise((resolve) => {
    trimTimers[name] = setTimeout(() => {
      trimTimers[name] = 0;
      trim(name).then(resolve, resolve);
    }, 2000);
  });
}

/**
 * Keeps a bounded cache within its limit by deleting its oldest entries (insertion order).
 * @param {string} name
 */
async function trim(name) {
  const cache = await caches.open(name);
  const keys = await cache.keys();
  const extra = keys.length - LIMITS[name];
  for (let i = 0; i < extra; i++) await cache.delete(keys[i]);
}
