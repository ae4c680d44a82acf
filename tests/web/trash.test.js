// Deleting: from the viewer (the Delete key, Undo in the toast) and from a selection; "Recently
// deleted" lists with thumbnails, restores, and deletes for good only after a confirmation.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DESKTOP, PHONE, allItems, guardedContext, screenshot, setup, thumbsLoaded, waitUntil } from './lib/spis.js';

let env;
before(async () => {
  env = await setup();
});
after(async () => {
  await env?.close();
});

const listed = async () => (await allItems(env.server)).map((i) => i.id);
const trashed = async () => (await env.server.json('/api/trash')).items;
const tile = (page, id) => page.locator(`.tile[data-id="${id}"]`);

test('Delete in the viewer moves the photo to the trash, shows the next one, and Undo brings it back', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);
  const [first, second] = await allItems(env.server);
  await tile(page, first.id).click();
  await page.waitForFunction((id) => document.querySelector('.slide.current')?.dataset.id === id, first.id, { timeout: 15000 });
  // Its preview has arrived: a request for it still queued would find the photo gone (a 404).
  await page.waitForFunction(() => document.querySelector('.slide.current img.full')?.classList.contains('loaded'), null, { timeout: 15000 });

  await page.keyboard.press('Delete');
  await page.waitForFunction((id) => document.querySelector('.slide.current')?.dataset.id === id, second.id, { timeout: 15000 });
  await page.locator('#toast.show', { hasText: 'Photo moved to Recently deleted' }).waitFor({ timeout: 5000 });
  assert.ok(!(await listed()).includes(first.id), 'the server no longer lists it');
  assert.equal((await trashed())[0].media_id, first.id);
  assert.ok(!fs.existsSync(path.join(env.dirs.media, first.dir, first.name)), 'the file left its folder');
  await screenshot(page, 'trash-toast');

  await page.locator('#toast .toast-action', { hasText: 'Undo' }).click();
  await waitUntil('the photo is back', async () => (await listed()).includes(first.id));
  assert.ok(fs.existsSync(path.join(env.dirs.media, first.dir, first.name)), 'back in its folder');
  await page.keyboard.press('Escape');
  await tile(page, first.id).waitFor({ timeout: 10000 });
  assert.deepEqual(await trashed(), []);
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('a selection goes to Recently deleted; one is restored, the other deleted for good', async () => {
  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 6);
  const items = await allItems(env.server);
  const [a, b] = [items[2], items[3]];
  await page.locator('#select-btn').click();
  await tile(page, a.id).click();
  await tile(page, b.id).click();
  await page.locator('[data-s="delete"]').click();
  await page.locator('#toast.show', { hasText: '2 items moved to Recently deleted' }).waitFor({ timeout: 5000 });
  await tile(page, a.id).waitFor({ state: 'detached', timeout: 5000 });
  await tile(page, b.id).waitFor({ state: 'detached', timeout: 5000 });

  await page.locator('#filter-btn').click();
  await page.locator('#filters [data-action="trash"]').click();
  const sheet = page.locator('#trash');
  await sheet.locator('.trash-item').nth(1).waitFor({ timeout: 5000 });
  assert.equal(await sheet.locator('.trash-item').count(), 2);
  await page.waitForFunction(() => [...document.querySelectorAll('#trash .trash-item img')].every((i) => i.complete && i.naturalWidth > 0), null, { timeout: 15000 });
  assert.match(await sheet.locator('.trash-note').textContent(), /30 days/);
  assert.match(await sheet.locator('.trash-item').first().textContent(), /30 days left/);
  await screenshot(page, 'trash-sheet-phone');

  const entries = await trashed();
  const entryOf = (item) => entries.find((e) => e.media_id === item.id);
  await sheet.locator(`.trash-item[data-id="${entryOf(a).id}"] button`, { hasText: 'Restore' }).click();
  await waitUntil('a is listed again', async () => (await listed()).includes(a.id));
  await sheet.locator('.trash-item').first().waitFor({ timeout: 5000 });
  assert.equal(await sheet.locator('.trash-item').count(), 1);

  // Deleting for good asks first; declining keeps it.
  let asked = 0;
  const answer = { accept: false };
  page.on('dialog', (d) => {
    asked++;
    return answer.accept ? d.accept() : d.dismiss();
  });
  await sheet.locator('button', { hasText: /^Delete$/ }).click();
  assert.equal(asked, 1);
  assert.equal((await trashed()).length, 1, 'declined: still in the trash');
  answer.accept = true;
  await sheet.locator('button', { hasText: /^Delete$/ }).click();
  await waitUntil('b is gone for good', async () => (await trashed()).length === 0);
  await sheet.locator('.trash-empty', { hasText: 'Nothing here' }).waitFor({ timeout: 5000 });
  assert.ok(!(await listed()).includes(b.id));
  assert.ok(!fs.existsSync(path.join(env.dirs.media, '.trash/files', b.name)), 'the file is gone');
  await sheet.locator('button[data-t="close"]').last().click();
  await tile(page, a.id).waitFor({ timeout: 10000 });
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});
