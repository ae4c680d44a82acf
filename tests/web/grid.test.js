// The grid: first screen, endless scroll over every item exactly once, the page weight.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DESKTOP, PHONE, allItems, guardedContext, onScreen, screenshot, scrollThroughGrid, setup, thumbsLoaded } from './lib/spis.js';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

test('the first screen shows loaded thumbnails under month headers, light enough', async () => {
  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  const asked = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/')) asked.push(new URL(r.url()).pathname);
  });
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 9);
  // The page knew its session, and the facets it preloaded were used: asked for once, no more.
  assert.equal(asked.filter((p) => p === '/api/session').length, 0, asked.join(' '));
  assert.equal(asked.filter((p) => p === '/api/facets').length, 1, asked.join(' '));
  const initiators = await page.evaluate(() => performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/facets')).map((r) => r.initiatorType));
  assert.deepEqual(initiators, ['link'], 'the preload, not a fetch from the scripts');
  const items = await allItems(env.server);
  // So were the newest month's first page and the newest photo's thumbnail (the top-left tile).
  const preloaded = await page.evaluate(() => performance.getEntriesByType('resource').filter((r) => /\/api\/media(\?|\/[^/]+\/thumb)/.test(r.name)).map((r) => [new URL(r.name).pathname + new URL(r.name).search, r.initiatorType]));
  const byUrl = (u) => preloaded.filter(([name]) => name === u).map(([, how]) => how);
  assert.deepEqual(byUrl(items[0].thumb), ['link'], JSON.stringify(preloaded));
  assert.deepEqual(byUrl('/api/media?year=2024&month=11&limit=120'), ['link'], JSON.stringify(preloaded));
  // Newest first: the first tile is the newest item, under its month's header.
  const seen = await onScreen(page);
  assert.equal(seen.tiles[0], items[0].id);
  assert.match(seen.months[0], /November 2024/);
  const alt = await page.locator(`.tile[data-id="${items[0].id}"] img`).getAttribute('alt');
  assert.equal(alt, items[0].name, 'alt text is the file name');
  assert.match(await page.locator('#subtitle').textContent(), new RegExp(`${items.length} items`));
  // Thumbnails are the 400 px renditions, never originals.
  const srcs = await page.$$eval('.tile img[src]', (imgs) => imgs.map((i) => i.getAttribute('src')));
  assert.ok(srcs.length >= 9 && srcs.every((s) => /\/thumb\?v=/.test(s)), srcs.join(' '));

  // HTML + CSS + the modules loaded at start, as transferred (gzip).
  const weight = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    // What the page needs to show the grid: fetched before the load event (the viewer's code
    // comes later, in the background).
    const assets = performance.getEntriesByType('resource').filter((r) => /\/assets\/[^/]+\/[^?]+\.(js|css)$/.test(r.name) && r.startTime < nav.loadEventEnd);
    return { total: nav.encodedBodySize + assets.reduce((n, r) => n + r.encodedBodySize, 0), decoded: nav.decodedBodySize + assets.reduce((n, r) => n + r.decodedBodySize, 0), files: assets.length + 1 };
  });
  console.log(`first screen: ${weight.files} files, ${weight.total} bytes gzip (${weight.decoded} bytes unpacked)`);
  assert.ok(weight.files >= 5, 'the modules were loaded');
  assert.ok(weight.total < 50 * 1024, `first screen is ${weight.total} bytes`);
  assert.ok(weight.total < weight.decoded / 2, 'text assets arrive compressed');

  await screenshot(page, 'grid-phone');
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('scrolling loads page after page until every item appeared exactly once, in order', async () => {
  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  const listRequests = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/media?')) listRequests.push(new URL(r.url()).searchParams);
  });
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 9);
  const expected = (await allItems(env.server)).map((i) => i.id);
  assert.ok(expected.length > 300);
  const { ids, maxTiles } = await scrollThroughGrid(page);
  const missing = expected.filter((id) => !ids.includes(id));
  assert.equal(ids.length, expected.length, `missing: ${JSON.stringify((await allItems(env.server)).map((i, n) => [n, i.id, i.taken]).filter(([, id]) => missing.includes(id)))}`);
  assert.deepEqual(ids, expected);
  // Only the tiles around the viewport exist, not one per item.
  assert.ok(maxTiles < 120, `${maxTiles} tiles in the DOM at once`);
  // The big month (more than a page) was followed through its cursor.
  assert.ok(listRequests.some((q) => q.get('cursor')), 'a page was fetched with a cursor');
  assert.ok(listRequests.length < 60, `${listRequests.length} list requests`);
  // At the bottom, the last tile shows a real thumbnail.
  await page.waitForFunction(() => {
    const imgs = [...document.querySelectorAll('.tile img[src]')];
    const last = imgs.sort((a, b) => b.getBoundingClientRect().top - a.getBoundingClientRect().top)[0];
    return last && last.complete && last.naturalWidth > 0;
  }, null, { timeout: 15000 });
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('on a desktop the grid has more columns and the scrubber jumps to an old year', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 12);
  const tops = await page.$$eval('.tile[data-id]', (ts) => ts.slice(0, 12).map((t) => Math.round(t.getBoundingClientRect().top)));
  assert.ok(new Set(tops).size <= 3, 'several tiles per row');
  await screenshot(page, 'grid-desktop');

  // One drag on the scrubber, to its bottom: the oldest year is in view.
  const rail = await page.locator('#scrubber').boundingBox();
  await page.mouse.move(rail.x + rail.width - 10, rail.y + 30);
  await page.mouse.down();
  await page.mouse.move(rail.x + rail.width - 10, rail.y + rail.height * 0.5, { steps: 5 });
  await page.mouse.move(rail.x + rail.width - 10, rail.y + rail.height - 2, { steps: 5 });
  assert.ok(await page.locator('.scrub-bubble').isVisible(), 'the bubble names the month while dragging');
  await screenshot(page, 'scrubber-desktop');
  await page.mouse.up();
  await page.waitForFunction(() => [...document.querySelectorAll('.month')].some((h) => /2000/.test(h.textContent)), null, { timeout: 10000 });
  await thumbsLoaded(page, 1);

  // The keyboard slider moves by month.
  await page.evaluate(() => scrollTo(0, 0));
  await page.locator('.scrub-thumb').focus();
  await page.keyboard.press('End');
  await page.waitForFunction(() => scrollY > 1000, null, { timeout: 5000 });
  await page.keyboard.press('Home');
  await page.waitForFunction(() => scrollY < 200, null, { timeout: 5000 });
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('dark theme follows the system', async () => {
  const g = await guardedContext(env.browser, { ...PHONE, colorScheme: 'dark' });
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const [r, gr, b] = bg.match(/\d+/g).map(Number);
  assert.ok(r + gr + b < 120, `dark background: ${bg}`);
  await screenshot(page, 'grid-phone-dark');
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('readable at 320 px wide', async () => {
  const g = await guardedContext(env.browser, { ...PHONE, viewport: { width: 320, height: 640 } });
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling (${overflow}px)`);
  // The header's buttons keep their names for screen readers even when only icons show.
  const names = await page.$$eval('.actions button', (bs) => bs.map((b) => b.textContent.trim()));
  assert.deepEqual(names, ['Filters', 'Upload', 'Select']);
  await screenshot(page, 'grid-320');
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});
