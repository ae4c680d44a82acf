// Share links in a real browser, with the household password on: the household shares a folder
// (with a password, no downloads) and a selection, and sees them in "Shared links"; a guest in
// another browser opens each link, sees only what was shared, read only; a revoked link says so.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DESKTOP, PHONE, buildLibrary, guardedContext, launchBrowser, screenshot, startServer, tempDirs, thumbsLoaded } from './lib/spis.js';

let dirs;
let server;
let browser;
/** The household's browser, logged in. */
let home;
before(async () => {
  dirs = tempDirs();
  buildLibrary(dirs.media, { bigMonth: 10 });
  server = await startServer({ media: dirs.media, state: dirs.state, auth: true });
  browser = await launchBrowser();
  home = await guardedContext(browser, DESKTOP);
  const r = await home.context.request.post(server.url('/api/setup'), { data: { password: 'our family' } });
  assert.equal(r.status(), 200);
});
after(async () => {
  await home?.context.close().catch(() => {});
  await browser?.close().catch(() => {});
  await server?.stop();
  dirs?.cleanup();
});

/** A screenshot once the sheets have finished fading in. */
async function still(page, name) {
  await page.waitForFunction(() => document.getAnimations().every((a) => a.playState !== 'running'), null, { timeout: 5000 });
  await screenshot(page, name);
}

/** What the household's API lists for a query. */
async function listed(query) {
  const r = await home.context.request.get(server.url(`/api/media?limit=500&${query}`));
  return (await r.json()).items;
}

/** 401s and 403s a test causes on purpose (a wrong password, a revoked link). */
const expected = (e) => /40[13]|Unauthorized|Forbidden/.test(e);

/** Makes a link in the open "Share link" sheet; answers its URL. */
async function createLink(page, { days, password, downloads }) {
  const sheet = page.locator('#share');
  await sheet.waitFor({ state: 'visible' });
  assert.match(await sheet.locator('[data-sh="what"]').textContent(), /Nothing is shared until you create the link/);
  if (days !== undefined) await sheet.locator('select[name="expires"]').selectOption(String(days));
  if (password) await sheet.locator('input[name="password"]').fill(password);
  if (downloads === false) await sheet.locator('input[name="downloads"]').uncheck();
  await sheet.getByRole('button', { name: 'Create link' }).click();
  const box = sheet.locator('[data-sh="link"]');
  await box.waitFor({ state: 'visible' });
  const url = await box.inputValue();
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/s\/[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}$/);
  return url;
}

test('the household shares a folder with a password and no downloads; a guest sees only it, read only', async () => {
  const page = await home.context.newPage();
  await page.goto(server.url('/?dir=Trips/Alps'));
  await thumbsLoaded(page, 2);
  await page.locator('#filter-btn').click();
  await page.locator('#filters [data-action="share"]', { hasText: 'Share link to this folder' }).click();
  await page.locator('#share [data-sh="what"]', { hasText: 'the folder Alps, and what is added to it later' }).waitFor();
  await still(page, 'share-sheet');
  const link = await createLink(page, { days: 30, password: 'grandma', downloads: false });
  assert.match(await page.locator('#share [data-sh="summary"]').textContent(), /Alps: \d+ items, expires in 30 days, with a password, no downloads/);
  await page.locator('#share [data-sh="copy"]').click();
  await page.locator('#share [data-sh="close"]').click();

  const alps = await listed('dir=Trips/Alps');
  const guest = await guardedContext(browser, PHONE);
  const g = await guest.context.newPage();
  await g.goto(link);
  await g.getByRole('heading', { name: 'Shared photos' }).waitFor();
  assert.equal(await g.locator('.tile img').count(), 0, 'nothing before the password');
  const password = g.locator('.door input[type=password]');
  await password.fill('grandpa');
  await g.getByRole('button', { name: 'Open' }).click();
  await g.getByRole('alert').filter({ hasText: 'Wrong password' }).waitFor();
  await password.fill('grandma');
  await g.getByRole('button', { name: 'Open' }).click();
  await thumbsLoaded(g, 2);
  await g.locator('#subtitle', { hasText: `${alps.length} items` }).waitFor({ timeout: 15000 });
  assert.equal(await g.locator('#title').textContent(), 'Alps');
  const seen = (await (await guest.context.request.get(server.url('/api/media?limit=500'))).json()).items;
  assert.deepEqual(seen.map((i) => i.id).sort(), alps.map((i) => i.id).sort(), 'exactly the folder');
  const shown = await g.locator('.tile').evaluateAll((tiles) => tiles.map((t) => t.getAttribute('data-id')));
  assert.ok(shown.length > 0 && shown.every((id) => alps.some((i) => i.id === id)), 'every tile is in the folder');
  // Read only, and no downloads: the controls are not there.
  for (const sel of ['#upload-btn', '[data-s="fav"]', '[data-s="delete"]', '[data-s="share"]', '[data-s="download"]']) {
    assert.ok(await g.locator(sel).isHidden(), sel);
  }
  await screenshot(g, 'share-guest-phone');
  await g.locator('.tile').first().click();
  await g.locator('#viewer').waitFor({ state: 'visible' });
  for (const v of ['fav', 'delete', 'download']) assert.ok(await g.locator(`[data-v="${v}"]`).isHidden(), v);
  await g.keyboard.press('f');
  await g.keyboard.press('Delete');
  assert.equal((await listed('dir=Trips/Alps')).filter((i) => i.favorite).length, 0, 'f did not favorite');
  assert.equal((await listed('dir=Trips/Alps')).length, alps.length, 'Delete did not delete');
  // The folders a guest sees start at the shared one.
  await g.keyboard.press('Escape');
  const facets = await (await guest.context.request.get(server.url('/api/facets'))).json();
  assert.equal(facets.folders.total, alps.length);
  assert.equal(facets.folders.children.length, 0, 'no folder above or beside Alps');

  // "Shared links" has it, viewed once; revoked, the guest's page says so.
  await page.locator('#filter-btn').click();
  await page.locator('#filters [data-action="shares"]').click();
  const row = page.locator('#shares .share-row', { hasText: 'Alps' });
  await row.waitFor();
  assert.match(await row.textContent(), /1 view · expires in 30 days · password · no downloads/);
  await still(page, 'shares-sheet');
  await row.getByRole('button', { name: 'Revoke' }).click();
  await row.waitFor({ state: 'detached' });
  await g.reload();
  await g.getByRole('heading', { name: 'This link does not work' }).waitFor();
  // And the revoked link's 404, on purpose.
  assert.deepEqual([...home.problems(expected), ...guest.problems((e) => expected(e) || /404/.test(e))], []);
  await guest.context.close();
  await page.close();
});

test('a selection link shows those photos and lets the guest download them as one ZIP', async () => {
  const page = await home.context.newPage();
  await page.goto(server.url('/'));
  await thumbsLoaded(page, 4);
  const items = await listed('');
  await page.locator('#select-btn').click();
  await page.locator(`.tile[data-id="${items[0].id}"]`).click();
  await page.locator(`.tile[data-id="${items[1].id}"]`).click();
  await page.locator('[data-s="share"]').click();
  await page.locator('#share [data-sh="what"]', { hasText: 'these 2 photos' }).waitFor();
  const link = await createLink(page, {});

  const guest = await guardedContext(browser, DESKTOP);
  const g = await guest.context.newPage();
  await g.goto(link);
  await thumbsLoaded(g, 2);
  await g.waitForFunction(() => document.querySelectorAll('.tile').length === 2, null, { timeout: 15000 });
  assert.equal(await g.locator('#title').textContent(), '2 photos');
  await g.locator('#filter-btn').click();
  const zip = g.locator('#filters [data-action="zip"]');
  assert.ok(await zip.isVisible(), 'the whole share as one ZIP');
  assert.ok(await g.locator('#filters [data-action="trash"]').isHidden(), 'no household sheets');
  const download = g.waitForEvent('download', { timeout: 10000 });
  await zip.click();
  const d = await download;
  assert.equal(d.suggestedFilename(), '2 photos.zip');
  const { execFileSync } = await import('node:child_process');
  const names = execFileSync('python3', ['-c', 'import sys,zipfile; z=zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print("\\n".join(z.namelist()))', await d.path()]).toString().trim().split('\n').sort();
  assert.deepEqual(names, [items[0].name, items[1].name].sort());
  // The household's own gallery in this browser is still the whole library.
  assert.equal((await listed('')).length, items.length);
  assert.deepEqual([...home.problems(expected), ...guest.problems(expected)], []);
  await guest.context.close();
  await page.close();
});
