// Filters: chosen in the sheet, kept in the URL (reload, back/forward, shared links).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DESKTOP, PHONE, allItems, guardedContext, screenshot, scrollThroughGrid, setup, thumbsLoaded } from './lib/spis.js';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

test('a year filter shows only that year, and survives reload, back and forward', async () => {
  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);
  const all = await allItems(env.server);
  const of2021 = all.filter((i) => i.taken.startsWith('2021-')).map((i) => i.id);
  assert.ok(of2021.length > 10);

  await page.locator('#filter-btn').click();
  await page.locator('#filters').waitFor({ state: 'visible', timeout: 5000 });
  await page.locator('[data-k="year:2021"]').click();
  await page.waitForURL((u) => u.searchParams.get('year') === '2021', { timeout: 5000 });
  assert.equal(await page.locator('[data-k="year:2021"]').getAttribute('aria-pressed'), 'true');
  await screenshot(page, 'filters-phone');
  await page.locator('#filters [data-action="close"]').last().click();
  await page.locator('#filters').waitFor({ state: 'hidden', timeout: 5000 });

  const check = async () => {
    await thumbsLoaded(page, 3);
    const { ids } = await scrollThroughGrid(page);
    assert.deepEqual(ids, of2021);
    const headers = await page.$$eval('.month', (hs) => hs.map((h) => h.textContent));
    assert.ok(headers.every((h) => h.includes('2021')), headers.join());
    assert.match(await page.locator('#chips').textContent(), /2021/);
  };
  await check();

  await page.reload();
  assert.equal(new URL(page.url()).searchParams.get('year'), '2021');
  await check();

  await page.goBack();
  await page.waitForURL((u) => !u.searchParams.has('year'), { timeout: 5000 });
  await page.waitForFunction(() => document.querySelector('.month')?.textContent.includes('2024'), null, { timeout: 10000 });
  assert.ok(await page.locator('#chips').isHidden());
  await page.goForward();
  await page.waitForURL((u) => u.searchParams.get('year') === '2021', { timeout: 5000 });
  await page.waitForFunction(() => document.querySelector('.month')?.textContent.includes('2021'), null, { timeout: 10000 });

  // The chip removes the filter.
  await page.locator('#chips button', { hasText: '2021' }).click();
  await page.waitForURL((u) => !u.searchParams.has('year'), { timeout: 5000 });
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('a shared link with month, folder, favorites and kind filters shows just those', async () => {
  const all = await allItems(env.server);
  const inAlps = all.filter((i) => i.dir === 'Trips/Alps');
  // Make two of them favorites through the API, as another device would.
  for (const it of inAlps.slice(0, 2)) {
    const r = await fetch(env.server.url(`/api/media/${it.id}/favorite`), { method: 'PUT' });
    assert.equal(r.status, 200);
  }
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/?dir=Trips/Alps&favorite=true'));
  await thumbsLoaded(page, 2);
  const { ids } = await scrollThroughGrid(page);
  assert.deepEqual(ids, inAlps.slice(0, 2).map((i) => i.id));
  assert.equal(await page.locator('#title').textContent(), 'Favorites');

  // The sheet shows where we are: the folder in the tree, favorites on.
  await page.locator('#filter-btn').click();
  assert.equal(await page.locator('[data-k="dir:Trips/Alps"]').getAttribute('aria-pressed'), 'true');
  assert.equal(await page.locator('[data-k="favorite"]').getAttribute('aria-checked'), 'true');
  // Turning favorites off shows the whole folder; choosing a month narrows it.
  await page.locator('[data-k="favorite"]').click();
  await page.waitForURL((u) => !u.searchParams.has('favorite'), { timeout: 5000 });
  const months = new Set(inAlps.map((i) => Number(i.taken.slice(5, 7))));
  const month = [...months][0];
  await page.locator(`[data-k="month:${month}"]`).click();
  await page.waitForURL((u) => u.searchParams.get('month') === String(month), { timeout: 5000 });
  // What the sheet shows downloads as one ZIP.
  const zip = page.locator('#filters [data-action="zip"]');
  assert.equal(await zip.isVisible(), true);
  const href = await zip.getAttribute('href');
  const zipQuery = new URL(href, env.server.url('/')).searchParams;
  assert.equal(new URL(href, env.server.url('/')).pathname, '/api/zip');
  assert.equal(zipQuery.get('dir'), 'Trips/Alps');
  assert.equal(zipQuery.get('month'), String(month));
  const head = await page.evaluate(async (u) => {
    const r = await fetch(u, { method: 'HEAD' });
    return [r.status, r.headers.get('content-type'), Number(r.headers.get('content-length'))];
  }, href);
  assert.deepEqual(head.slice(0, 2), [200, 'application/zip']);
  assert.ok(head[2] > inAlps.filter((i) => Number(i.taken.slice(5, 7)) === month).reduce((n, i) => n + i.size, 0));
  await screenshot(page, 'filters-desktop');
  await page.keyboard.press('Escape');
  await page.locator('#filters').waitFor({ state: 'hidden', timeout: 5000 });
  // The page scrolls again.
  await page.waitForFunction(() => getComputedStyle(document.documentElement).overflowY === 'visible', null, { timeout: 5000 });
  await thumbsLoaded(page, 1);
  const { ids: monthIds } = await scrollThroughGrid(page);
  assert.deepEqual(monthIds, inAlps.filter((i) => Number(i.taken.slice(5, 7)) === month).map((i) => i.id));

  // Only videos: this library has none, and says so.
  await page.goto(env.server.url('/?kind=video'));
  await page.locator('#empty').waitFor({ state: 'visible', timeout: 10000 });
  assert.match(await page.locator('#empty').textContent(), /Nothing here/);
  await page.locator('#empty button').click();
  await page.waitForURL((u) => u.search === '', { timeout: 5000 });
  await thumbsLoaded(page, 3);
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});
