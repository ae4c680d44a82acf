// Multi-select: the Select button, ctrl/shift-click ranges, long press on a touch screen; bulk
// favorite, unfavorite and download. Also: every control has a name, and the blurred stand-ins
// decoded from thumbhashes look like their photos.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DESKTOP, PHONE, allItems, guardedContext, onScreen, screenshot, setup, thumbsLoaded, waitUntil } from './lib/spis.js';

let env;
let items;
before(async () => {
  env = await setup();
  items = await allItems(env.server);
});
after(async () => {
  await env?.close();
});

const favorites = async (ids) => Promise.all(ids.map(async (id) => (await env.server.json(`/api/media/${id}`)).favorite));

test('ctrl/shift-click selects a range; bulk favorite and unfavorite', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 8);
  const ids = (await onScreen(page)).tiles.slice(0, 5);
  assert.deepEqual(ids, items.slice(0, 5).map((i) => i.id));

  await page.locator(`.tile[data-id="${ids[0]}"]`).click({ modifiers: ['Control'] });
  await page.locator('#selbar').waitFor({ state: 'visible', timeout: 5000 });
  await page.locator(`.tile[data-id="${ids[4]}"]`).click({ modifiers: ['Shift'] });
  await page.waitForFunction(() => document.querySelector('.sel-count').textContent === '5 selected', null, { timeout: 5000 });
  // The tiles show it on the next frame.
  await page.waitForFunction(() => document.querySelectorAll('.tile.selected').length === 5, null, { timeout: 5000 });
  // A plain click in selection mode toggles instead of opening the viewer.
  await page.locator(`.tile[data-id="${ids[2]}"]`).click();
  await page.waitForFunction(() => document.querySelector('.sel-count').textContent === '4 selected', null, { timeout: 5000 });
  assert.ok(await page.locator('#viewer').isHidden());
  await screenshot(page, 'select-desktop');

  await page.locator('[data-s="fav"]').click();
  const chosen = [ids[0], ids[1], ids[3], ids[4]];
  await waitUntil('the favorites are stored', async () => (await favorites(chosen)).every(Boolean));
  assert.equal((await favorites([ids[2]]))[0], false);
  await page.locator('#selbar').waitFor({ state: 'hidden', timeout: 5000 });
  await page.waitForFunction(() => document.querySelectorAll('.tile.is-fav').length === 4, null, { timeout: 5000 });

  // Select, pick them again, unfavorite.
  await page.locator('#select-btn').click();
  for (const id of chosen) await page.locator(`.tile[data-id="${id}"]`).click();
  await page.waitForFunction(() => document.querySelector('.sel-count').textContent === '4 selected', null, { timeout: 5000 });
  await page.locator('[data-s="unfav"]').click();
  await waitUntil('the favorites are removed', async () => !(await favorites(chosen)).some(Boolean));
  await page.waitForFunction(() => document.querySelectorAll('.tile.is-fav').length === 0, null, { timeout: 5000 });

  // Esc leaves selection mode.
  await page.locator('#select-btn').click();
  await page.locator('#selbar').waitFor({ state: 'visible', timeout: 5000 });
  await page.keyboard.press('Escape');
  await page.locator('#selbar').waitFor({ state: 'hidden', timeout: 5000 });
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('bulk download is one ZIP of the selected originals', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 4);
  await page.locator('#select-btn').click();
  await page.locator(`.tile[data-id="${items[0].id}"]`).click();
  await page.locator(`.tile[data-id="${items[1].id}"]`).click();
  const download = page.waitForEvent('download', { timeout: 10000 });
  await page.locator('[data-s="download"]').click();
  const d = await download;
  assert.match(d.suggestedFilename(), /\.zip$/);
  assert.match(d.url(), /\/api\/zip$/);
  const file = await d.path();
  // The archive holds exactly the two originals: Python's zipfile reads it.
  const { execFileSync } = await import('node:child_process');
  const listed = execFileSync('python3', ['-c', 'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print("\\n".join(n.split("/")[-1] for n in z.namelist()))', file]).toString().trim().split('\n').sort();
  assert.deepEqual(listed, [items[0].name, items[1].name].sort());
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('a long press selects on a touch screen', async () => {
  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);
  const box = await page.locator(`.tile[data-id="${items[1].id}"]`).boundingBox();
  const cdp = await g.context.newCDPSession(page);
  const point = [{ x: box.x + box.width / 2, y: box.y + box.height / 2 }];
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: point });
  // Held down until the selection mode starts (about half a second).
  await page.locator('#selbar').waitFor({ state: 'visible', timeout: 5000 });
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await page.waitForFunction(() => document.querySelector('.sel-count').textContent === '1 selected', null, { timeout: 5000 });
  assert.ok(await page.locator('#viewer').isHidden(), 'the press did not also open the viewer');
  await page.locator(`.tile[data-id="${items[2].id}"]`).tap();
  await page.waitForFunction(() => document.querySelector('.sel-count').textContent === '2 selected', null, { timeout: 5000 });
  await screenshot(page, 'select-phone');
  await page.locator('[data-s="clear"]').click();
  await page.locator('#selbar').waitFor({ state: 'hidden', timeout: 5000 });
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('every control has a name, and Tab shows where the focus is', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 4);
  await page.locator('#filter-btn').click();
  const unnamed = await page.evaluate(() =>
    [...document.querySelectorAll('button, a[href], [role="slider"], select')]
      .filter((el) => !el.closest('[hidden]'))
      .filter((el) => !(el.getAttribute('aria-label') || el.textContent.trim() || el.getAttribute('aria-labelledby')))
      .map((el) => el.outerHTML.slice(0, 120)),
  );
  assert.deepEqual(unnamed, []);
  await page.keyboard.press('Escape');
  await page.locator('#filters').waitFor({ state: 'hidden', timeout: 5000 });
  // Tab moves through the controls, each with a visible focus ring.
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 4);
  const seen = [];
  for (let i = 0; i < 5; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const el = document.activeElement;
      const s = getComputedStyle(el);
      return { name: el.getAttribute('aria-label') || el.textContent.trim(), ring: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 };
    });
    seen.push(f.name);
    assert.ok(f.ring, `${f.name} shows focus`);
  }
  assert.ok(seen.includes('Filters') && seen.includes('Select'), seen.join(' | '));
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('thumbhash stand-ins have the colours of their photos', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);
  const withHash = (await allItems(env.server, 'year=2024')).filter((i) => i.thumbhash).slice(0, 6);
  assert.ok(withHash.length >= 3, 'thumbhashes were made');
  const diffs = await page.evaluate(async (list) => {
    const { thumbHashURL } = await import(document.querySelector('script[type=module]').src.replace('app.js', 'thumbhash.js'));
    const mean = async (src) => {
      const img = new Image();
      img.src = src;
      await img.decode();
      const c = document.createElement('canvas');
      c.width = 16;
      c.height = 16;
      const ctx = c.getContext('2d');
      ctx.drawImage(img, 0, 0, 16, 16);
      const d = ctx.getImageData(0, 0, 16, 16).data;
      const m = [0, 0, 0];
      for (let i = 0; i < d.length; i += 4) for (let k = 0; k < 3; k++) m[k] += d[i + k] / 256;
      return m;
    };
    const out = [];
    for (const it of list) {
      const a = await mean(thumbHashURL(it.thumbhash));
      const b = await mean(it.thumb);
      out.push(Math.max(...a.map((v, k) => Math.abs(v - b[k]))));
    }
    return out;
  }, withHash);
  for (const d of diffs) assert.ok(d < 30, `mean colour differs by ${d.toFixed(1)} of 255`);
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});
