// The app as an installable PWA: manifest and icons, the service worker, offline use, and a new
// deploy replacing the old caches.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { PHONE, WEB_DIR, guardedContext, screenshot, setup, startServer, thumbsLoaded, waitUntil } from './lib/spis.js';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

test('the manifest is complete and its icons load at their sizes', async () => {
  const res = await fetch(env.server.url('/manifest.webmanifest'));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/manifest\+json/);
  const m = await res.json();
  assert.ok(m.name && m.short_name, 'name and short_name');
  assert.equal(m.display, 'standalone');
  assert.equal(m.start_url, '/');
  assert.equal(m.scope, '/');
  assert.match(m.theme_color, /^#[0-9a-f]{6}$/i);
  assert.match(m.background_color, /^#[0-9a-f]{6}$/i);
  const png = m.icons.filter((i) => i.type === 'image/png');
  const has = (size, purpose) => png.some((i) => i.sizes === size && (i.purpose || 'any').split(' ').includes(purpose));
  assert.ok(has('192x192', 'any') && has('512x512', 'any') && has('512x512', 'maskable'), JSON.stringify(m.icons));

  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  // Every icon the manifest and the page name is served as a PNG of the size it claims.
  const apple = await page.getAttribute('link[rel="apple-touch-icon"]', 'href');
  const icons = [...png.map((i) => [i.src, Number(i.sizes.split('x')[0])]), [apple, 180]];
  for (const [src, size] of icons) {
    assert.match(src, /^\/assets\/[0-9a-f]+\/icons\//, 'icons are versioned assets');
    const r = await fetch(env.server.url(src));
    assert.equal(r.status, 200, src);
    assert.equal(r.headers.get('content-type'), 'image/png');
    assert.ok(Number(r.headers.get('content-length') || (await r.clone().arrayBuffer()).byteLength) < 40000, `${src} is small`);
    const dims = await page.evaluate(async (u) => {
      const img = new Image();
      img.src = u;
      await img.decode();
      return [img.naturalWidth, img.naturalHeight];
    }, src);
    assert.deepEqual(dims, [size, size], src);
  }
  // iOS and Android meta tags.
  assert.equal(await page.getAttribute('meta[name="apple-mobile-web-app-capable"]', 'content'), 'yes');
  assert.ok(await page.getAttribute('meta[name="theme-color"]', 'content'));
  assert.equal(await page.getAttribute('link[rel="manifest"]', 'href'), '/manifest.webmanifest');
  // The strict policy is on the page.
  const page0 = await fetch(env.server.url('/'));
  assert.match(page0.headers.get('content-security-policy'), /script-src 'self'/);
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('the service worker takes control, and offline the app still shows what was seen', async () => {
  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/?year=2024'));
  await thumbsLoaded(page, 9);
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.reload();
  await page.waitForFunction(() => navigator.serviceWorker.controller?.state === 'activated', null, { timeout: 10000 });
  await thumbsLoaded(page, 9);
  const seen = await page.$$eval('.tile[data-id]', (ts) => ts.map((t) => t.dataset.id).sort());
  const caches = await page.evaluate(async () => (await caches.keys()).sort());
  assert.ok(caches.some((c) => c.startsWith('spis-shell-')) && caches.includes('spis-media-v1') && caches.includes('spis-api-v1'), caches.join());
  // Originals and the event socket are never cached.
  const cachedUrls = await page.evaluate(async () => {
    const out = [];
    for (const name of await caches.keys()) for (const r of await (await caches.open(name)).keys()) out.push(r.url);
    return out;
  });
  assert.ok(cachedUrls.some((u) => u.includes('/thumb?v=')), 'thumbnails are cached');
  assert.ok(!cachedUrls.some((u) => /\/original|\/api\/events|\/api\/status/.test(u)), cachedUrls.join('\n'));

  const fallbacks = [];
  page.on('response', (r) => {
    if (r.url().includes('/api/') && r.headers()['x-spis-offline'] === '1') fallbacks.push(r.url());
  });
  await g.context.setOffline(true);
  await page.reload();
  await page.locator('#offline').waitFor({ state: 'visible', timeout: 10000 });
  await thumbsLoaded(page, 9);
  const offline = await page.$$eval('.tile[data-id]', (ts) => ts.map((t) => t.dataset.id).sort());
  assert.deepEqual(offline, seen, 'the same photos, from the caches');
  assert.ok(fallbacks.some((u) => u.includes('/api/media?')), 'the pages came from the offline copies');
  assert.match(await page.locator('#offline').textContent(), /offline/i);
  await screenshot(page, 'offline-phone');

  // Back online: the banner goes and the page refreshes.
  await g.context.setOffline(false);
  await page.locator('#offline').waitFor({ state: 'hidden', timeout: 15000 });
  assert.deepEqual(g.problems((e) => /ERR_INTERNET_DISCONNECTED|Failed to load resource|WebSocket/.test(e)), []);
  await g.context.close();
});

test('a new deploy is picked up and the old caches are deleted', { skip: !WEB_DIR && 'needs SPIS_WEB_DIR (the embedded app cannot change)' }, async () => {
  // A copy of the web app that this test can change, served by a second server.
  const web = path.join(env.dirs.root, 'web');
  fs.cpSync(WEB_DIR, web, { recursive: true });
  fs.mkdirSync(path.join(env.dirs.root, 'state2'), { recursive: true });
  const server = await startServer({ media: env.dirs.media, state: path.join(env.dirs.root, 'state2'), webDir: web });
  try {
    const g = await guardedContext(env.browser, PHONE);
    const page = await g.context.newPage();
    await page.goto(server.url('/'));
    await page.evaluate(() => navigator.serviceWorker.ready);
    const shell = async () => page.evaluate(async () => (await caches.keys()).filter((c) => c.startsWith('spis-shell-')));
    const [before] = await shell();
    assert.ok(before);
    fs.appendFileSync(path.join(web, 'style.css'), '\n/* a new deploy */\n');
    await page.reload();
    await page.evaluate(() => navigator.serviceWorker.getRegistration().then((r) => r.update()));
    await waitUntil('the new version took over', async () => {
      const names = await shell();
      return names.length === 1 && names[0] !== before && (await page.evaluate(() => !!navigator.serviceWorker.controller));
    }, 15000);
    const [after] = await shell();
    assert.notEqual(after, before);
    // The page offers to reload into the new version.
    await page.locator('#toast.show').waitFor({ timeout: 10000 });
    assert.match(await page.locator('#toast').textContent(), /updated/);
    assert.deepEqual(g.problems(), []);
    await g.context.close();
  } finally {
    await server.stop();
  }
});
