// Live: files copied into the media folder appear without a reload (over the WebSocket), removed
// ones go, favorites set elsewhere show; a reconnect after the server restarts resyncs.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { CORPUS, DESKTOP, NEW_JPEG, PHONE, allItems, guardedContext, onScreen, screenshot, setup, startServer, thumbsLoaded, waitUntil } from './lib/spis.js';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

/**
 * Copies a corpus photo into the media folder the way a camera upload would: written elsewhere,
 * then moved in (complete at once).
 * @param {string} rel path under the media folder
 */
function addPhoto(rel) {
  const tmp = path.join(env.dirs.root, `incoming-${path.basename(rel)}`);
  fs.copyFileSync(path.join(CORPUS, NEW_JPEG), tmp);
  fs.mkdirSync(path.dirname(path.join(env.dirs.media, rel)), { recursive: true });
  fs.renameSync(tmp, path.join(env.dirs.media, rel));
}

/**
 * The id the server gave a file, once it is indexed.
 * @param {string} name
 * @returns {Promise<string>}
 */
async function idOf(name) {
  return waitUntil(`${name} is indexed`, async () => (await allItems(env.server)).find((i) => i.name === name)?.id);
}

test('a new photo appears at the top without a reload; a removed one goes', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);
  await page.evaluate(() => {
    window.notReloaded = true;
  });
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));

  // Newer than everything: a new month at the very top.
  addPhoto('Camera/IMG_20251224_180000.jpg');
  const id = await idOf('IMG_20251224_180000.jpg');
  const tile = page.locator(`.tile[data-id="${id}"]`);
  await tile.waitFor({ timeout: 10000 });
  await page.waitForFunction((i) => {
    const img = document.querySelector(`.tile[data-id="${i}"] img`);
    return img?.complete && img.naturalWidth > 0 && getComputedStyle(img).opacity === '1';
  }, id, { timeout: 15000 });
  const seen = await onScreen(page);
  assert.match(seen.months[0], /December 2025/);
  assert.equal(seen.tiles[0], id);
  assert.ok(await page.evaluate(() => window.notReloaded), 'the page was not reloaded');
  assert.match(await page.locator('#subtitle').textContent(), new RegExp(`${env.library.total + 1} items`));
  await screenshot(page, 'live-desktop');

  // Deleted: gone from the grid, and its month with it.
  fs.unlinkSync(path.join(env.dirs.media, 'Camera/IMG_20251224_180000.jpg'));
  await tile.waitFor({ state: 'detached', timeout: 10000 });
  await page.waitForFunction(() => ![...document.querySelectorAll('.month')].some((h) => h.textContent.includes('2025')), null, { timeout: 10000 });
  assert.match(await page.locator('#subtitle').textContent(), new RegExp(`${env.library.total} items`));
  assert.ok(await page.evaluate(() => window.notReloaded));

  // A favorite set on another device shows here.
  const items = await allItems(env.server);
  const r = await fetch(env.server.url(`/api/media/${items[1].id}/favorite`), { method: 'PUT' });
  assert.equal(r.status, 200);
  await page.locator(`.tile[data-id="${items[1].id}"].is-fav`).waitFor({ timeout: 10000 });
  await fetch(env.server.url(`/api/media/${items[1].id}/favorite`), { method: 'DELETE' });
  await page.locator(`.tile[data-id="${items[1].id}"]:not(.is-fav)`).waitFor({ timeout: 10000 });
  assert.ok(sockets.length === 0 || sockets.every((u) => u.startsWith(env.server.base.replace('http', 'ws'))));
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('while the user is scrolled down, new photos wait behind a pill', async () => {
  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);
  await page.evaluate(() => scrollTo(0, 3000));
  await thumbsLoaded(page, 3);
  const before = await page.evaluate(() => scrollY);

  addPhoto('Phone/IMG_20251225_090000.jpg');
  addPhoto('Phone/IMG_20251225_090500.jpg');
  await page.locator('#pill').waitFor({ state: 'visible', timeout: 10000 });
  await page.waitForFunction(() => document.querySelector('#pill').textContent.includes('2 new photos'), null, { timeout: 10000 });
  assert.equal(await page.evaluate(() => scrollY), before, 'what the user looks at did not move');
  await screenshot(page, 'live-pill-phone');

  await page.locator('#pill').click();
  await page.locator('#pill').waitFor({ state: 'hidden', timeout: 5000 });
  await page.waitForFunction(() => scrollY === 0, null, { timeout: 5000 });
  const ids = await Promise.all([idOf('IMG_20251225_090500.jpg'), idOf('IMG_20251225_090000.jpg')]);
  await waitUntil('the new photos lead the grid', async () => JSON.stringify((await onScreen(page)).tiles.slice(0, 2)) === JSON.stringify(ids), 10000);
  for (const name of ['IMG_20251225_090000.jpg', 'IMG_20251225_090500.jpg']) fs.unlinkSync(path.join(env.dirs.media, 'Phone', name));
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('after the server restarts, the page reconnects and catches up', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);
  const port = new URL(env.server.base).port;
  await env.server.stop();
  // Changed while nobody was listening.
  addPhoto('Camera/IMG_20251231_235900.jpg');
  env.server = await startServer({ media: env.dirs.media, state: env.dirs.state, args: ['--listen', `127.0.0.1:${port}`] });
  const id = await idOf('IMG_20251231_235900.jpg');
  // The socket comes back (backoff from 1 s) and the gallery refetches.
  await page.locator(`.tile[data-id="${id}"]`).waitFor({ timeout: 20000 });
  // While the server is down, loads fail: refused when the page asked itself, ERR_FAILED when
  // the service worker did (thumbnails still arriving when it stopped). Nothing else may.
  assert.deepEqual(g.problems((e) => /ERR_CONNECTION_REFUSED|ERR_FAILED|WebSocket connection/.test(e)), []);
  await g.context.close();
});
