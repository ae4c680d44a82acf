// The real spis binary on 127.0.0.1:0 over a temp library of real corpus photos, and a real
// Chromium (the system one, through playwright-core) that is only allowed to talk to it.

import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
export const SPIS_BIN = process.env.SPIS_BIN || path.join(REPO, 'target/debug/spis');
export const CORPUS = process.env.SPIS_CORPUS || path.join(REPO, '../shared/corpus');
/** The web app folder to serve; unset means the copy embedded in the binary. */
export const WEB_DIR = process.env.SPIS_WEB_DIR || '';
export const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || path.join(REPO, 'target/screenshots');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Real photos without an EXIF date, so the date in the copy's file name decides its month. */
export const PLAIN_JPEGS = [
  'pypi-scikit-image-0.26.0/skimage/data/rocket.jpg',
  'drewnoakes-metadata-extractor-images/jpg/Issue 587 (dotnet).jpg',
  'image-rs-jpeg-decoder/tests/reftest/images/rgb.jpg',
  'drewnoakes-metadata-extractor-images/jpg/Nikon E885.jpg',
  'drewnoakes-metadata-extractor-images/jpg/Issue 242.jpg',
  'drewnoakes-metadata-extractor-images/jpg/Nokia 3110c (Mobile Phone).jpg',
  'ianare-exif-samples/jpg/orientation/landscape_1.jpg',
  'image-rs-jpeg-decoder/tests/reftest/images/progressive3.jpg',
];

/** Small real photos without a date (cheap to thumbnail) for the bulk of the library. */
export const SMALL_JPEGS = [
  'python-pillow-Pillow/Tests/images/hopper.jpg',
  'image-rs-jpeg-decoder/tests/reftest/images/mozilla/jpg-progressive.jpg',
  'python-pillow-Pillow/Tests/images/hopper.jpg',
  'image-rs-jpeg-decoder/tests/reftest/images/rgb.jpg',
];

/** Real photos with their own EXIF dates (older years), and other formats. */
export const EXTRAS = [
  ['ianare-exif-samples/jpg/Canon_40D.jpg', 'Old cameras/Canon_40D.jpg'],
  ['ianare-exif-samples/jpg/Nikon_D70.jpg', 'Old cameras/Nikon_D70.jpg'],
  ['ianare-exif-samples/jpg/exif-org/fujifilm-finepix40i.jpg', 'Old cameras/fujifilm-finepix40i.jpg'],
  ['ianare-exif-samples/jpg/Canon_PowerShot_S40.jpg', 'Old cameras/Canon_PowerShot_S40.jpg'],
  // A phone photo whose EXIF names its lens (shown in the viewer's details).
  ['ianare-exif-samples/jpg/hdr/iphone_hdr_YES.jpg', 'Old cameras/iphone_hdr_YES.jpg'],
  // No date inside: the mtime (set below) decides.
  ['pypi-scikit-image-0.26.0/skimage/data/chelsea.png', 'Scans/chelsea.png', '2018-05-20T10:00:00Z'],
  ['python-pillow-Pillow/Tests/images/flower.webp', 'Scans/flower.webp'],
  ['pypi-scikit-image-0.26.0/skimage/data/no_time_for_that_tiny.gif', 'Scans/no_time_for_that.gif', '2018-05-21T18:30:00Z'],
];

/** A real JPEG used for files added while the server runs. */
export const NEW_JPEG = PLAIN_JPEGS[0];

const FOLDERS = ['Camera', 'Camera/Pixel', 'Trips/Alps', 'Trips/Lisbon', 'Family', 'Phone'];

const pad = (n, w = 2) => String(n).padStart(w, '0');

/**
 * Fills `media` with copies of corpus photos named `IMG_YYYYMMDD_HHMMSS.jpg` across many months
 * of 2019-2024 and folders, one big month (July 2023) bigger than a page, plus a few real EXIF-dated
 * photos and other formats. The newest months get the larger photos (they are on the first
 * screen); the rest small ones, so that making every thumbnail stays quick. Returns how many files
 * per "YYYY-MM" were written.
 * @param {string} media
 * With `video`, also a short MP4 made from a corpus photo (when ffmpeg is installed).
 * @param {{bigMonth?: number, video?: boolean}} [opts]
 * @returns {{total: number, months: Map<string, number>, video: string|null}}
 */
export function buildLibrary(media, { bigMonth = 150, video = false } = {}) {
  const months = new Map();
  let n = 0;
  const put = (from, rel) => {
    const dest = path.join(media, rel);
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(path.join(CORPUS, from), dest);
    n++;
  };
  for (let y = 2019; y <= 2024; y++) {
    for (let m = 1; m <= 12; m++) {
      // 4 months a year, each with 3..13 photos; deterministic.
      if ((y * 7 + m * 5) % 3 !== 0) continue;
      const count = 3 + ((y + m * 3) % 11);
      months.set(`${y}-${pad(m)}`, count);
      for (let i = 0; i < count; i++) {
        const day = 1 + ((i * 5) % 27);
        const name = `IMG_${y}${pad(m)}${pad(day)}_${pad(8 + (i % 12))}${pad(i % 60)}${pad((i * 7) % 60)}.jpg`;
        const folder = FOLDERS[(y + m + i) % FOLDERS.length];
        const sources = y === 2024 ? PLAIN_JPEGS : SMALL_JPEGS;
        put(sources[(i + m) % sources.length], `${folder}/${name}`);
      }
    }
  }
  for (let i = 0; i < bigMonth; i++) {
    const day = 1 + (i % 30);
    const name = `IMG_202307${pad(day)}_${pad(6 + (i % 14))}${pad((i * 13) % 60)}${pad(i % 60)}.jpg`;
    put(i < 8 ? PLAIN_JPEGS[i] : SMALL_JPEGS[i % SMALL_JPEGS.length], `Trips/Summer 2023/${name}`);
  }
  months.set('2023-07', (months.get('2023-07') || 0) + bigMonth);
  for (const [from, rel, mtime] of EXTRAS) {
    put(from, rel);
    if (mtime) fs.utimesSync(path.join(media, rel), new Date(mtime), new Date(mtime));
  }
  let clip = null;
  if (video && makeVideo(path.join(media, 'Videos', VIDEO_NAME))) {
    clip = VIDEO_NAME;
    n++;
  }
  return { total: n, months, video: clip };
}

export const VIDEO_NAME = 'VID_20220618_153000.mp4';

/**
 * Makes a 3-second H.264/AAC MP4 (a slow zoom into a corpus photo, dated by its container) with
 * ffmpeg; false when ffmpeg is not installed.
 * @param {string} dest
 * @returns {boolean}
 */
export function makeVideo(dest) {
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  const tmp = `${dest}.part`;
  const r = spawnSync('ffmpeg', [
    '-loglevel', 'error', '-y', '-loop', '1', '-i', path.join(CORPUS, PLAIN_JPEGS[0]),
    '-f', 'lavfi', '-i', 'sine=frequency=440:duration=3', '-t', '3',
    '-vf', "scale=640:426,zoompan=z='min(zoom+0.002,1.2)':d=75:s=640x426:fps=25,format=yuv420p",
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '30', '-c:a', 'aac', '-b:a', '64k', '-shortest',
    '-movflags', '+faststart', '-metadata', 'creation_time=2022-06-18T15:30:00Z', '-f', 'mp4', tmp,
  ], { stdio: 'ignore', timeout: 60000 });
  if (r.status !== 0) {
    fs.rmSync(tmp, { force: true });
    return false;
  }
  fs.renameSync(tmp, dest);
  return true;
}

/** Servers still running and temp folders still there: undone if this process is ended early. */
const running = new Set();
const temps = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
  for (const dir of temps) fs.rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => process.exit(130));
}

/**
 * Makes fresh temp media and state folders.
 * @returns {{root: string, media: string, state: string, cleanup: () => void}}
 */
export function tempDirs() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'spis-web-'));
  const media = path.join(root, 'media');
  const state = path.join(root, 'state');
  fs.mkdirSync(media);
  fs.mkdirSync(state);
  temps.add(root);
  const cleanup = () => {
    fs.rmSync(root, { recursive: true, force: true });
    temps.delete(root);
  };
  return { root, media, state, cleanup };
}

/**
 * Polls `check` (sync or async) until it returns a truthy value, which is returned; throws naming
 * `what` after `timeout` ms.
 * @template T
 * @param {string} what
 * @param {() => T | Promise<T>} check
 * @param {number} [timeout]
 * @returns {Promise<T>}
 */
export async function waitUntil(what, check, timeout = 20000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what} (last: ${last})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * A running spis server.
 * @typedef {{base: string, url: (p: string) => string, json: (p: string) => Promise<any>,
 *   stop: () => Promise<void>, log: () => string, media: string}} Server
 */

/**
 * Starts the real binary over `media` on 127.0.0.1:0 and waits until indexing is done.
 * @param {{media: string, state: string, args?: string[], webDir?: string, auth?: boolean}} opts
 * @returns {Promise<Server>}
 */
export async function startServer({ media, state, args = [], webDir = WEB_DIR, auth = false }) {
  const logFile = path.join(state, '..', `spis-${path.basename(state)}.log`);
  const err = fs.openSync(logFile, 'w');
  const argv = ['--media', media, '--state-dir', state, ...args];
  if (!args.includes('--listen')) argv.push('--listen', '127.0.0.1:0');
  if (!args.includes('--thumb-workers')) argv.push('--thumb-workers', '1');
  if (webDir) argv.push('--web-dir', webDir);
  // Open access unless a test asks for the login (`auth: true`).
  const env = { ...process.env, TZ: 'UTC', SPIS_NO_AUTH: auth ? 'false' : 'true' };
  delete env.SPIS_CONFIG;
  delete env.SPIS_WEB_DIR;
  const child = spawn(SPIS_BIN, argv, { env, stdio: ['ignore', 'pipe', err] });
  running.add(child);
  child.once('exit', () => running.delete(child));
  fs.closeSync(err);
  const log = () => fs.readFileSync(logFile, 'utf8');
  const lines = createInterface({ input: child.stdout });
  let timer;
  let onExit;
  const base = await new Promise((resolve, reject) => {
    lines.on('line', (line) => {
      const m = /^spis listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(line.trim());
      if (m) resolve(m[1]);
    });
    onExit = (code) => reject(new Error(`spis exited (${code}) before listening:\n${log()}`));
    child.once('exit', onExit);
    timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`spis did not start within 20 s:\n${log()}`));
    }, 20000);
  }).finally(() => {
    clearTimeout(timer);
    child.off('exit', onExit);
  });
  const url = (p) => base + p;
  const json = async (p) => {
    const r = await fetch(url(p));
    if (!r.ok) throw new Error(`${p}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  const server = {
    base,
    media,
    url,
    json,
    log,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
  try {
    await waitUntil('indexing is done', async () => (await json('/api/health')).ready, 60000);
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

/**
 * Every item the API lists for `query`, following cursors.
 * @param {Server} server
 * @param {string} [query]
 * @returns {Promise<any[]>}
 */
export async function allItems(server, query = '') {
  const items = [];
  let cursor = null;
  for (let i = 0; i < 1000; i++) {
    const q = new URLSearchParams(query);
    q.set('limit', '500');
    if (cursor) q.set('cursor', cursor);
    const page = await server.json(`/api/media?${q}`);
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) return items;
  }
  throw new Error('too many pages');
}

/**
 * Launches the system Chromium headless.
 * @returns {Promise<import('playwright-core').Browser>}
 */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };
export const DESKTOP = { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 };

/**
 * A browser context whose every request is recorded and every page's console errors, page errors
 * and CSP violations are collected; `problems()` lists what went wrong so far, including any
 * request that left 127.0.0.1.
 * @param {import('playwright-core').Browser} browser
 * @param {object} [options] playwright context options (viewport, isMobile, ...); the service
 *   worker runs unless they say `serviceWorkers: 'block'` (page.route() cannot see requests a
 *   service worker handles, so a test that routes requests blocks it)
 */
export async function guardedContext(browser, options = DESKTOP) {
  const context = await browser.newContext({ serviceWorkers: 'allow', ...options });
  // Chromium reports CSP violations on the console too; this makes sure none is missed.
  await context.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  const requests = [];
  const errors = [];
  const allowed = (u) => /^(https?|wss?):\/\/127\.0\.0\.1(:\d+)?\//.test(u) || /^(data|blob|about|chrome-error):/.test(u);
  context.on('request', (r) => requests.push(r.url()));
  context.on('weberror', (e) => errors.push(`page error: ${e.error()}`));
  const watch = (page) => {
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console error: ${m.text()}`);
    });
    page.on('websocket', (ws) => requests.push(ws.url()));
  };
  context.on('page', watch);
  return {
    context,
    requests,
    errors,
    /** @param {(text: string) => boolean} [ignore] errors that a test caused on purpose */
    problems(ignore = () => false) {
      const out = errors.filter((e) => !ignore(e));
      for (const u of requests) if (!allowed(u)) out.push(`request left 127.0.0.1: ${u}`);
      return out;
    },
  };
}

/**
 * Saves a screenshot as SCREENSHOT_DIR/name.png.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function screenshot(page, name) {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`) });
}

/**
 * Waits until every rendered grid thumbnail in view has loaded a real picture.
 * @param {import('playwright-core').Page} page
 * @param {number} [atLeast] how many must be in view
 */
export async function thumbsLoaded(page, atLeast = 1) {
  await page.waitForFunction(
    (n) => {
      const vh = innerHeight;
      const imgs = [...document.querySelectorAll('.tile img')].filter((img) => {
        const r = img.getBoundingClientRect();
        return r.bottom > 0 && r.top < vh;
      });
      // Loaded, and faded in (for screenshots).
      return imgs.length >= n && imgs.every((img) => img.complete && img.naturalWidth > 0 && getComputedStyle(img).opacity === '1');
    },
    atLeast,
    { timeout: 20000 },
  );
}

/**
 * Everything a test file needs: a library, the server over it, a browser; `close()` undoes it.
 * @param {{bigMonth?: number, video?: boolean, webDir?: string}} [opts]
 */
export async function setup(opts = {}) {
  const dirs = tempDirs();
  const library = buildLibrary(dirs.media, opts);
  let server;
  let browser;
  try {
    server = await startServer({ media: dirs.media, state: dirs.state, webDir: opts.webDir });
    browser = await launchBrowser();
  } catch (e) {
    await server?.stop();
    dirs.cleanup();
    throw e;
  }
  return {
    dirs,
    library,
    server,
    browser,
    async close() {
      await browser.close().catch(() => {});
      // A test may have restarted the server: stop the current one.
      await this.server.stop();
      dirs.cleanup();
    },
  };
}

/**
 * Waits for `n` animation frames of the page (the grid renders on the frame after a scroll).
 * @param {import('playwright-core').Page} page
 * @param {number} n
 */
export async function frames(page, n = 2) {
  await page.evaluate((k) => new Promise((resolve) => {
    const next = (left) => (left ? requestAnimationFrame(() => next(left - 1)) : resolve());
    next(k);
  }), n);
}

/**
 * The ids of the grid's tiles in view order, scrolling the page from top to bottom; checks on
 * the way that each place shows one item and each item one place, and that the DOM stays small.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<{ids: string[], maxTiles: number}>}
 */
export async function scrollThroughGrid(page) {
  await page.evaluate(() => scrollTo(0, 0));
  const byKey = new Map();
  const keyOf = new Map();
  let maxTiles = 0;
  for (let step = 0; step < 400; step++) {
    // The grid renders on the frame after a scroll; then every tile in view must get its item
    // (pages load ahead of the scroll position).
    await frames(page, 2);
    await page.waitForFunction(() => {
      const vh = innerHeight;
      return [...document.querySelectorAll('.tile')].every((t) => {
        const r = t.getBoundingClientRect();
        return r.bottom < 0 || r.top > vh || t.dataset.id;
      });
    }, null, { timeout: 15000 });
    const snap = await page.evaluate(() => ({
      tiles: [...document.querySelectorAll('.tile[data-id]:not([data-id=""])')].map((t) => [t.dataset.key, t.dataset.id]),
      count: document.querySelectorAll('.tile').length,
      atEnd: scrollY + innerHeight >= document.documentElement.scrollHeight - 2,
    }));
    maxTiles = Math.max(maxTiles, snap.count);
    for (const [key, id] of snap.tiles) {
      if (byKey.has(key) && byKey.get(key) !== id) throw new Error(`place ${key} showed ${byKey.get(key)} then ${id}`);
      if (keyOf.has(id) && keyOf.get(id) !== key) throw new Error(`item ${id} shown at ${keyOf.get(id)} and ${key}`);
      byKey.set(key, id);
      keyOf.set(id, key);
    }
    if (snap.atEnd) break;
    await page.evaluate(() => scrollBy(0, innerHeight * 0.9));
  }
  const order = ([a], [b]) => {
    const [ma, ia] = a.split(':');
    const [mb, ib] = b.split(':');
    return ma === mb ? Number(ia) - Number(ib) : ma < mb ? 1 : -1;
  };
  return { ids: [...byKey.entries()].sort(order).map(([, id]) => id), maxTiles };
}

/**
 * The grid's tiles (ids) and month headers (texts) in the order they are seen on screen.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<{tiles: string[], months: string[]}>}
 */
export function onScreen(page) {
  return page.evaluate(() => {
    const sorted = (sel) =>
      [...document.querySelectorAll(sel)]
        .map((el) => ({ el, r: el.getBoundingClientRect() }))
        .sort((a, b) => a.r.top - b.r.top || a.r.left - b.r.left)
        .map(({ el }) => el);
    return {
      tiles: sorted('.tile[data-id]').map((t) => t.dataset.id),
      months: sorted('.month').map((h) => h.textContent),
    };
  });
}
