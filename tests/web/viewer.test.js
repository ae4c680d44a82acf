// The viewer: previews (never originals until zoomed), keys, swipes, favorites that persist,
// details, slideshow, deep links.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DESKTOP, PHONE, allItems, guardedContext, screenshot, setup, thumbsLoaded, waitUntil } from './lib/spis.js';

let env;
let items;
before(async () => {
  env = await setup({ video: true });
  items = await allItems(env.server);
});
after(async () => {
  await env?.close();
});

/**
 * The id of the item the viewer shows, once its preview has loaded.
 * @param {import('playwright-core').Page} page
 * @param {string} id
 */
async function showing(page, id) {
  await page.waitForFunction(
    (want) => {
      const slide = document.querySelector('.slide.current');
      const img = slide?.querySelector('img.full');
      return slide?.dataset.id === want && img && img.complete && img.naturalWidth > 0 && location.hash === `#${want}`;
    },
    id,
    { timeout: 15000 },
  );
}

test('keyboard: open, arrows, f, i, Esc; the favorite persists after reload', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  const originals = [];
  page.on('request', (r) => {
    if (r.url().includes('/original')) originals.push(r.url());
  });
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);

  // Tab to the first tile and open it with Enter.
  const first = page.locator(`.tile[data-id="${items[0].id}"]`);
  await first.focus();
  await page.keyboard.press('Enter');
  await showing(page, items[0].id);
  const src = await page.locator('.slide.current img.full').getAttribute('src');
  assert.equal(src, items[0].preview, 'the viewer shows the 1600 px preview');
  assert.equal(await page.locator('#viewer').getAttribute('role'), 'dialog');
  // Tab never reaches the page behind the viewer (it is inert while the viewer is open).
  let inside = 0;
  for (let i = 0; i < 12; i++) {
    await page.keyboard.press('Tab');
    const where = await page.evaluate(() => (document.getElementById('viewer').contains(document.activeElement) ? 'viewer' : document.activeElement === document.body ? 'none' : document.activeElement.outerHTML.slice(0, 80)));
    assert.ok(where === 'viewer' || where === 'none', `focus went behind the viewer: ${where}`);
    if (where === 'viewer') inside++;
  }
  assert.ok(inside >= 8, 'Tab moves through the viewer\'s buttons');

  await page.keyboard.press('ArrowRight');
  await showing(page, items[1].id);
  await page.keyboard.press('ArrowRight');
  await showing(page, items[2].id);
  await page.keyboard.press('ArrowLeft');
  await showing(page, items[1].id);
  // The neighbours' previews are already there.
  await page.waitForFunction((ids) => ids.every((id) => document.querySelector(`.slide[data-id="${id}"] img.full`)), [items[0].id, items[2].id], { timeout: 5000 });

  // f: the heart fills at once, and the server stores it.
  const target = items[1];
  assert.equal(target.favorite, false);
  await page.keyboard.press('f');
  assert.equal(await page.locator('[data-v="fav"]').getAttribute('aria-pressed'), 'true');
  await waitUntil('the favorite is stored', async () => (await env.server.json(`/api/media/${target.id}`)).favorite === true);

  // i: the details name the file, its folder and size.
  await page.keyboard.press('i');
  const details = page.locator('.v-info');
  await details.waitFor({ state: 'visible', timeout: 5000 });
  const text = await details.textContent();
  assert.ok(text.includes(target.name) && text.includes(target.dir), text);
  assert.match(text, /KB|MB/);
  await screenshot(page, 'viewer-desktop-details');
  await page.keyboard.press('i');
  await details.waitFor({ state: 'hidden', timeout: 5000 });
  await screenshot(page, 'viewer-desktop');

  // Esc closes and gives the focus back to the item's tile.
  await page.keyboard.press('Escape');
  await page.locator('#viewer').waitFor({ state: 'hidden', timeout: 5000 });
  await page.waitForFunction(() => location.hash === '', null, { timeout: 5000 });
  await page.waitForFunction((id) => document.activeElement?.dataset?.id === id, target.id, { timeout: 5000 });
  assert.ok(await page.locator(`.tile[data-id="${target.id}"].is-fav`).isVisible(), 'the tile shows the heart');
  assert.deepEqual(originals, [], 'no original was downloaded just to look');

  // After a reload the grid and the viewer show the favorite.
  await page.reload();
  await thumbsLoaded(page, 6);
  await page.locator(`.tile[data-id="${target.id}"].is-fav`).waitFor({ timeout: 10000 });
  await page.locator(`.tile[data-id="${target.id}"]`).click();
  await showing(page, target.id);
  assert.equal(await page.locator('[data-v="fav"]').getAttribute('aria-pressed'), 'true');
  await page.keyboard.press('f');
  await waitUntil('the favorite is removed', async () => (await env.server.json(`/api/media/${target.id}`)).favorite === false);
  assert.equal(await page.locator('[data-v="fav"]').getAttribute('aria-pressed'), 'false');

  // Back closes the viewer too.
  await page.goBack();
  await page.locator('#viewer').waitFor({ state: 'hidden', timeout: 5000 });
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('a failed favorite rolls back and says so', async () => {
  // Without the service worker. In CI this request once never reached page.route() within 5 s;
  // not reproduced here (not even with the page controlled by the worker), but Playwright says
  // page.route() cannot see requests a service worker handles, and a controlled page's requests
  // wait while the worker activates.
  const g = await guardedContext(env.browser, { ...DESKTOP, serviceWorkers: 'block' });
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 3);
  const refused = [];
  await page.route('**/favorite', (route) => {
    refused.push(route.request().method());
    return route.fulfill({ status: 500, contentType: 'application/json', body: '{"error":"disk full","code":"favorite_not_stored"}' });
  });
  await page.locator(`.tile[data-id="${items[3].id}"]`).click();
  await showing(page, items[3].id);
  assert.equal(await page.locator('[data-v="fav"]').getAttribute('aria-pressed'), 'false');
  await page.keyboard.press('f');
  await page
    .waitForFunction(() => document.querySelector('[data-v="fav"]').getAttribute('aria-pressed') === 'false' && document.querySelector('#toast.show'), null, { timeout: 5000 })
    .catch(async (e) => {
      // What the page shows, should it fail again.
      const state = await page.evaluate(() => ({
        pressed: document.querySelector('[data-v="fav"]').getAttribute('aria-pressed'),
        toast: `${document.querySelector('#toast').className}: ${document.querySelector('#toast').textContent}`,
        focus: document.activeElement?.outerHTML.slice(0, 80),
      }));
      throw new Error(`${e.message}; requests refused: ${JSON.stringify(refused)}; page: ${JSON.stringify(state)}`);
    });
  assert.match(await page.locator('#toast').textContent(), /Couldn't add/);
  assert.equal((await env.server.json(`/api/media/${items[3].id}`)).favorite, false);
  // The failed request is the only error the browser reports.
  assert.deepEqual(g.problems((e) => /status of 500/.test(e)), []);
  await g.context.close();
});

test("the viewer's code that failed to arrive is asked for again on the first tap", async () => {
  const g = await guardedContext(env.browser, { ...DESKTOP, serviceWorkers: 'block' });
  const page = await g.context.newPage();
  // The first request for the viewer's module fails, as when the server restarts just then.
  let asked = 0;
  await page.route('**/viewer.js', (route) => (++asked === 1 ? route.abort('connectionrefused') : route.continue()));
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 3);
  // The page loads it by itself once the first screen is done: that load is the one that fails.
  await waitUntil('the page asked for the viewer', async () => asked === 1, 10000);
  await page.locator(`.tile[data-id="${items[1].id}"]`).click();
  await showing(page, items[1].id);
  assert.equal(asked, 2);
  // The failed load is the only error, and no page error (an unhandled rejection) came of it.
  assert.deepEqual(g.problems((e) => /^console error: Failed to load resource: net::ERR_CONNECTION_REFUSED/.test(e)), []);
  await g.context.close();
});

test('phone: swipe to move, zoom loads the original, swipe down closes, deep link opens', async () => {
  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  const originals = [];
  page.on('request', (r) => {
    if (r.url().includes('/original')) originals.push(r.url());
  });
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);
  await page.locator(`.tile[data-id="${items[0].id}"]`).tap();
  await showing(page, items[0].id);
  await screenshot(page, 'viewer-phone');

  // A swipe to the left (pointer events, as a finger makes them) moves to the next item.
  const drag = async (dx, dy) => {
    const x = 195;
    const y = 420;
    await page.mouse.move(x, y);
    await page.mouse.down();
    for (let i = 1; i <= 6; i++) await page.mouse.move(x + (dx * i) / 6, y + (dy * i) / 6);
    await page.mouse.up();
  };
  await drag(-220, 0);
  await showing(page, items[1].id);
  await drag(220, 0);
  await showing(page, items[0].id);

  // Pinch with two fingers: zoomed in, and the original replaces the preview.
  const cdp = await g.context.newCDPSession(page);
  const touch = (type, pts) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: pts.map(([x, y], id) => ({ x, y, id })) });
  await touch('touchStart', [[170, 420], [220, 420]]);
  for (let i = 1; i <= 8; i++) await touch('touchMove', [[170 - i * 12, 420 - i * 4], [220 + i * 12, 420 + i * 4]]);
  await touch('touchEnd', []);
  const scale = () => page.evaluate(() => new DOMMatrix(getComputedStyle(document.querySelector('.slide.current .frame')).transform).a);
  assert.ok((await scale()) > 1.5, `pinched to ${await scale()}`);
  await page.waitForFunction(() => document.querySelector('.slide.current .frame').dataset.original === 'loaded', null, { timeout: 15000 });
  assert.equal(originals.length, 1);
  assert.match(originals[0], new RegExp(`/api/media/${items[0].id}/original$`));
  assert.equal(await page.locator('.slide.current img.full').getAttribute('src'), items[0].original);
  // A double tap zooms back out; another zooms in.
  await page.touchscreen.tap(195, 420);
  await page.touchscreen.tap(195, 420);
  await page.waitForFunction(() => !document.querySelector('.slide.current .frame').style.transform, null, { timeout: 5000 });
  await page.touchscreen.tap(195, 420);
  await page.touchscreen.tap(195, 420);
  await page.waitForFunction(() => /scale\(2\.5\)/.test(document.querySelector('.slide.current .frame').style.transform), null, { timeout: 5000 });
  await page.keyboard.press('0');

  // A swipe down closes.
  await drag(0, 260);
  await page.locator('#viewer').waitFor({ state: 'hidden', timeout: 5000 });

  // A link to an item opens the viewer on it.
  await page.goto(env.server.url(`/#${items[5].id}`));
  await showing(page, items[5].id);
  await page.locator('[data-v="close"]').click();
  await page.locator('#viewer').waitFor({ state: 'hidden', timeout: 5000 });
  assert.equal(new URL(page.url()).hash, '');
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('slideshow advances by itself and stops with Esc', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 3);
  await page.locator(`.tile[data-id="${items[0].id}"]`).click();
  await showing(page, items[0].id);
  await page.keyboard.press('s');
  await page.locator('.v-show').waitFor({ state: 'visible', timeout: 5000 });
  await page.selectOption('[data-v="interval"]', '3');
  await page.locator('#viewer').focus();
  await showing(page, items[1].id);
  await page.keyboard.press('Escape');
  await page.locator('.v-show').waitFor({ state: 'hidden', timeout: 5000 });
  assert.ok(await page.locator('#viewer').isVisible(), 'Esc first stops the slideshow');
  await page.keyboard.press('Escape');
  await page.locator('#viewer').waitFor({ state: 'hidden', timeout: 5000 });
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('a video plays inline from the original, and the slideshow moves on when it ends', async (t) => {
  if (!env.library.video) {
    t.skip('ffmpeg is not installed: no video in the library');
    return;
  }
  const video = items.find((i) => i.kind === 'video');
  assert.ok(video, 'the video is indexed');
  const next = items[items.indexOf(video) + 1];
  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  const ranges = [];
  page.on('response', (r) => {
    if (r.url().endsWith(`/api/media/${video.id}/original`)) ranges.push(r.status());
  });
  await page.goto(env.server.url('/?kind=video'));
  await thumbsLoaded(page, 1);
  const tile = page.locator(`.tile[data-id="${video.id}"]`);
  assert.match(await tile.locator('.video-badge').textContent(), /0:03/);
  await page.goto(env.server.url(`/#${video.id}`));
  const el = page.locator('.slide.current video');
  await el.waitFor({ timeout: 10000 });
  assert.equal(await el.getAttribute('src'), video.original);
  assert.equal(await el.getAttribute('poster'), video.thumb);
  assert.ok(await el.evaluate((v) => v.playsInline && v.controls));
  await el.evaluate((v) => {
    v.muted = true;
    return v.play();
  });
  await page.waitForFunction(() => document.querySelector('.slide.current video').currentTime > 0.3, null, { timeout: 15000 });
  assert.ok(ranges.includes(206), `the original is streamed with ranges (${ranges})`);
  await screenshot(page, 'viewer-video-phone');

  // Slideshow with a long interval: the video still moves on as soon as it ends.
  await el.evaluate((v) => {
    v.pause();
    v.currentTime = 0;
  });
  await page.evaluate(() => localStorage.setItem('spis.slideshow', '20'));
  await page.keyboard.press('s');
  await page.selectOption('[data-v="interval"]', '20');
  await page.locator('#viewer').focus();
  await page.waitForFunction((id) => document.querySelector('.slide.current')?.dataset.id === id, next.id, { timeout: 10000 });
  await page.keyboard.press('Escape');
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('details show the lens, read from the file on demand', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  const item = (await allItems(env.server)).find((i) => i.name === 'iphone_hdr_YES.jpg');
  assert.ok(item, 'the phone photo is listed');
  await page.goto(env.server.url(`/#${item.id}`));
  await page.locator('#viewer').waitFor({ state: 'visible', timeout: 10000 });
  await page.keyboard.press('i');
  await page.locator('.v-info').filter({ hasText: 'iPhone 6 back camera 4.15mm f/2.2' }).waitFor({ timeout: 10000 });
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});
