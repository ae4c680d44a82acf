// The door: a gallery with access control asks for a password to be chosen on first use, then
// for that password in every new browser, and shows nothing before.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { PHONE, buildLibrary, guardedContext, launchBrowser, screenshot, startServer, tempDirs, thumbsLoaded } from './lib/spis.js';

let dirs;
let server;
let browser;
before(async () => {
  dirs = tempDirs();
  buildLibrary(dirs.media, { bigMonth: 10 });
  server = await startServer({ media: dirs.media, state: dirs.state, auth: true });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
  dirs?.cleanup();
});

test('first use chooses a password, then a new browser must enter it', async () => {
  const first = await guardedContext(browser, PHONE);
  const page = await first.context.newPage();
  await page.goto(server.url('/'));
  await page.getByRole('heading', { name: 'Choose a password' }).waitFor();
  assert.equal(await page.locator('.tile img').count(), 0, 'no photo before the password');
  assert.equal((await fetch(server.url('/api/media'))).status, 401);
  await screenshot(page, 'login-setup-phone');
  const fields = page.locator('.door input[type=password]');
  await fields.nth(0).fill('our family');
  await fields.nth(1).fill('our family');
  await page.getByRole('button', { name: 'Set password and open' }).click();
  await thumbsLoaded(page, 3);

  const second = await guardedContext(browser, PHONE);
  const other = await second.context.newPage();
  await other.goto(server.url('/'));
  const password = other.locator('.door input[type=password]');
  await password.waitFor();
  assert.equal(await password.count(), 1, 'a login, not the first-run form');
  await password.fill('our familie');
  await other.getByRole('button', { name: 'Open' }).click();
  await other.getByRole('alert').filter({ hasText: 'Wrong password' }).waitFor();
  await screenshot(other, 'login-phone');
  await password.fill('our family');
  await other.getByRole('button', { name: 'Open' }).click();
  await thumbsLoaded(other, 3);
  // The wrong password's 401 is the only error these pages may log.
  const expected = (e) => /401|Unauthorized/.test(e);
  assert.deepEqual([...first.problems(expected), ...second.problems(expected)], []);
  await first.context.close();
  await second.context.close();
});

test('a config file with a mistake: the gallery still opens, and says what is wrong', async () => {
  const d = tempDirs();
  buildLibrary(d.media, { bigMonth: 3 });
  const broken = `${d.root}/broken.toml`;
  const factory = `${d.root}/factory.toml`;
  fs.writeFileSync(broken, 'thumb_wrokers = 2\n');
  fs.writeFileSync(factory, '# the factory settings\n');
  const s = await startServer({ media: d.media, state: d.state, args: ['--config', broken, '--config-fallback', factory] });
  try {
    const status = await s.json('/api/status');
    assert.match(status.config_error, /thumb_wrokers/);
    assert.match(s.log(), /config file is wrong.*thumb_wrokers|thumb_wrokers.*config file is wrong/s);
    const { context, problems } = await guardedContext(browser, PHONE);
    const page = await context.newPage();
    await page.goto(s.url('/'));
    await thumbsLoaded(page, 3);
    const banner = page.locator('#config-error');
    await banner.waitFor();
    assert.match(await banner.innerText(), /spis\.toml has a mistake[\s\S]*thumb_wrokers/);
    await screenshot(page, 'config-error-phone');
    assert.deepEqual(problems(), []);
    await context.close();
  } finally {
    await s.stop();
    d.cleanup();
  }
});
