// Uploads from the browser: the Upload button with progress per file and overall, pause and
// resume mid-file on a slow connection, drag and drop onto the page, new items in the grid as they
// land; and tus-js-client, the protocol's reference client, against the same routes (a whole
// upload, then one resumed from the server's offset after it was aborted); and a photo shared to
// the app through the manifest's share target.

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { CORPUS, DESKTOP, PHONE, allItems, guardedContext, screenshot, setup, thumbsLoaded, waitUntil } from './lib/spis.js';

/** A camera JPEG of about 1.5 MB (big enough to pause mid-file on a throttled connection). */
const CAMERA = 'drewnoakes-metadata-extractor-images/jpg/Canon EOS 7D.jpg';
const SMALL = 'pypi-scikit-image-0.26.0/skimage/data/rocket.jpg';
const TUS_BUNDLE = path.join(path.dirname(new URL(import.meta.url).pathname), 'node_modules/tus-js-client/dist/tus.min.js');

let env;
let files;
before(async () => {
  env = await setup();
  // Copies under new names, with a known mtime (the upload keeps it and files it by month).
  files = path.join(env.dirs.state, '..', 'to-upload');
  fs.mkdirSync(files, { recursive: true });
  const when = new Date('2024-07-14T12:00:00Z');
  for (const [from, to] of [[CAMERA, 'IMG_7001.JPG'], [SMALL, 'IMG_7002.JPG'], [SMALL, 'dropped.jpg'], [CAMERA, 'IMG_7003.JPG']]) {
    fs.copyFileSync(path.join(CORPUS, from), path.join(files, to));
    // IMG_7003 differs from IMG_7001 in bytes (the same picture).
    if (to === 'IMG_7003.JPG') fs.appendFileSync(path.join(files, to), 'another file');
    fs.utimesSync(path.join(files, to), when, when);
  }
});
after(async () => {
  await env?.close();
});

const stored = (name) => path.join(env.dirs.media, 'Uploads/2024/07', name);

test('the Upload button sends files with progress and they appear in the grid', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 4);
  const before = (await allItems(env.server)).length;
  const chooser = page.waitForEvent('filechooser');
  await page.locator('#upload-btn').click();
  await (await chooser).setFiles([path.join(files, 'IMG_7001.JPG'), path.join(files, 'IMG_7002.JPG')]);
  await page.locator('#uploads').waitFor({ state: 'visible', timeout: 5000 });
  await page.waitForFunction(() => document.querySelector('.up-summary').textContent === '2 files uploaded', null, { timeout: 30000 });
  assert.deepEqual(await page.locator('.up-row .up-state').allTextContents(), ['Uploaded', 'Uploaded']);
  assert.equal(await page.locator('.up-total').evaluate((p) => p.value === p.max), true);
  for (const name of ['IMG_7001.JPG', 'IMG_7002.JPG']) {
    assert.deepEqual(fs.readFileSync(stored(name)), fs.readFileSync(path.join(files, name)), name);
  }
  await screenshot(page, 'upload-desktop');
  // The live update brings them to the gallery: the "new photos" pill or the tiles themselves.
  await waitUntil('the uploads are listed', async () => (await allItems(env.server)).length === before + 2);
  await page.waitForFunction(() => !document.querySelector('#pill').hidden || document.querySelectorAll('.tile').length > 0, null, { timeout: 10000 });
  // Uploading the same file again adds nothing.
  const again = page.waitForEvent('filechooser');
  await page.locator('#upload-btn').click();
  await (await again).setFiles([path.join(files, 'IMG_7002.JPG')]);
  await page.waitForFunction(() => [...document.querySelectorAll('.up-row .up-state')].some((s) => s.textContent === 'Already there'), null, { timeout: 20000 });
  assert.equal((await allItems(env.server)).length, before + 2);
  await page.locator('[data-u="close"]').click();
  await page.locator('#uploads').waitFor({ state: 'hidden', timeout: 5000 });
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('an upload paused mid-file on a slow phone connection resumes where it stopped', async () => {
  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 2);
  const cdp = await g.context.newCDPSession(page);
  // About 150 KB/s up: the 1.5 MB photo takes ten seconds.
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 20, downloadThroughput: 4e6, uploadThroughput: 150e3 });
  const chooser = page.waitForEvent('filechooser');
  await page.locator('#upload-btn').click();
  await (await chooser).setFiles([path.join(files, 'IMG_7003.JPG')]);
  await page.waitForFunction(() => (document.querySelector('.up-row progress')?.value ?? 0) > 200000, null, { timeout: 30000 });
  await page.locator('.up-row [data-u="pause"]').click();
  await page.waitForFunction(() => document.querySelector('.up-row').dataset.state === 'paused', null, { timeout: 5000 });
  assert.match(await page.locator('.up-row .up-state').textContent(), /^Paused at/);
  await screenshot(page, 'upload-paused-phone');
  assert.equal(fs.existsSync(stored('IMG_7003.JPG')), false, 'nothing visible while paused');
  await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
  await page.locator('.up-row [data-u="resume"]').click();
  await page.waitForFunction(() => document.querySelector('.up-row').dataset.state === 'done', null, { timeout: 30000 });
  assert.deepEqual(fs.readFileSync(stored('IMG_7003.JPG')), fs.readFileSync(path.join(files, 'IMG_7003.JPG')));
  const leftovers = fs.readdirSync(path.dirname(stored('x'))).filter((f) => f.startsWith('.spis-upload-'));
  assert.deepEqual(leftovers, []);
  // The aborted PATCH shows as a failed request on the console; nothing else may.
  assert.deepEqual(g.problems((e) => /net::ERR_ABORTED|Failed to load resource/.test(e)), []);
  await g.context.close();
});

test('photos dropped on the page are uploaded', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await thumbsLoaded(page, 2);
  const bytes = [...fs.readFileSync(path.join(files, 'dropped.jpg'))];
  const transfer = await page.evaluateHandle((b) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(b)], 'dropped.jpg', { type: 'image/jpeg', lastModified: Date.parse('2024-07-14T12:00:00Z') }));
    return dt;
  }, bytes);
  await page.dispatchEvent('body', 'dragenter', { dataTransfer: transfer });
  await page.locator('#drop').waitFor({ state: 'visible', timeout: 5000 });
  await page.dispatchEvent('body', 'drop', { dataTransfer: transfer });
  await page.locator('#drop').waitFor({ state: 'hidden', timeout: 5000 });
  await page.waitForFunction(() => document.querySelector('.up-summary').textContent === '1 file uploaded', null, { timeout: 20000 });
  assert.deepEqual(fs.readFileSync(stored('dropped.jpg')), fs.readFileSync(path.join(files, 'dropped.jpg')));
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('tus-js-client uploads, and resumes an aborted upload from the offset the server reports', async () => {
  const g = await guardedContext(env.browser, DESKTOP);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  // The client's own browser bundle, evaluated in the page (a script tag would meet the CSP).
  await page.evaluate(fs.readFileSync(TUS_BUNDLE, 'utf8'));
  const bytes = [...fs.readFileSync(path.join(CORPUS, CAMERA))];
  const result = await page.evaluate(async (b) => {
    const tus = /** @type {any} */ (window).tus;
    const file = new Blob([new Uint8Array(b)], { type: 'image/jpeg' });
    const upload = (opts) => new Promise((resolve, reject) => {
      const u = new tus.Upload(file, { endpoint: '/api/uploads', retryDelays: null, onError: reject, ...opts });
      opts.start?.(u, resolve);
      u.start();
      if (!opts.start) u.options.onSuccess = () => resolve(u);
    });
    // Whole, in 256 KiB chunks.
    const whole = await upload({ chunkSize: 256 << 10, metadata: { filename: 'tus-whole.jpg', dir: 'tus' } });
    // Aborted after its first chunk; a new Upload with that URL asks the server (HEAD) and goes on.
    let aborted;
    const url = await upload({
      chunkSize: 256 << 10,
      metadata: { filename: 'tus-resumed.jpg', dir: 'tus' },
      start: (u, resolve) => {
        u.options.onChunkComplete = (_chunk, sent) => {
          if (aborted) return;
          aborted = sent;
          u.abort().then(() => resolve(u.url));
        };
      },
    });
    let resumedFrom = -1;
    await upload({
      uploadUrl: url,
      chunkSize: 256 << 10,
      onProgress: (sent) => {
        if (resumedFrom < 0) resumedFrom = sent;
      },
    });
    return { whole: whole.url, aborted, resumedFrom, url };
  }, bytes);
  assert.ok(result.aborted > 0 && result.aborted < bytes.length, JSON.stringify(result));
  assert.ok(result.resumedFrom >= result.aborted, `resumed from ${result.resumedFrom}, aborted at ${result.aborted}`);
  for (const name of ['tus-whole.jpg', 'tus-resumed.jpg']) {
    assert.deepEqual(fs.readFileSync(path.join(env.dirs.media, 'tus', name)), fs.readFileSync(path.join(CORPUS, CAMERA)), name);
  }
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});

test('a photo shared to the app ("Share -> spis") is uploaded by the service worker and the page', async () => {
  fs.copyFileSync(path.join(CORPUS, SMALL), path.join(files, 'shared.jpg'));
  fs.appendFileSync(path.join(files, 'shared.jpg'), 'shared from a phone');
  const g = await guardedContext(env.browser, PHONE);
  const page = await g.context.newPage();
  await page.goto(env.server.url('/'));
  await page.evaluate(() => navigator.serviceWorker.ready);
  await page.reload();
  await page.waitForFunction(() => navigator.serviceWorker.controller?.state === 'activated', null, { timeout: 10000 });
  // What the browser does when the OS share sheet picks spis: a navigation that POSTs the
  // manifest's share_target form (multipart, the files as `media`) to its action.
  const manifest = await (await fetch(env.server.url('/manifest.webmanifest'))).json();
  const target = manifest.share_target;
  assert.deepEqual([target.method, target.enctype, target.params.files[0].name], ['POST', 'multipart/form-data', 'media']);
  await page.evaluate(({ action, field }) => {
    const form = Object.assign(document.createElement('form'), { method: 'post', action, enctype: 'multipart/form-data', id: 'share-form' });
    form.append(Object.assign(document.createElement('input'), { type: 'file', name: field, multiple: true }));
    document.body.append(form);
  }, { action: target.action, field: target.params.files[0].name });
  await page.locator('#share-form input').setInputFiles(path.join(files, 'shared.jpg'));
  await Promise.all([page.waitForURL((u) => u.pathname === '/' && !u.search.includes('shared'), { timeout: 15000 }), page.evaluate(() => document.getElementById('share-form').submit())]);
  await page.locator('#uploads').waitFor({ state: 'visible', timeout: 10000 });
  await page.waitForFunction(() => document.querySelector('.up-summary').textContent === '1 file uploaded', null, { timeout: 30000 });
  await waitUntil('the shared photo is listed', async () => (await allItems(env.server)).some((i) => i.name === 'shared.jpg'));
  const item = (await allItems(env.server)).find((i) => i.name === 'shared.jpg');
  assert.deepEqual(fs.readFileSync(path.join(env.dirs.media, item.dir, item.name)), fs.readFileSync(path.join(files, 'shared.jpg')));
  assert.deepEqual(g.problems(), []);
  await g.context.close();
});
