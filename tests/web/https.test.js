// HTTPS at home: the page opened over plain HTTP by name (not a secure context) offers the trust
// flow; a browser that trusts the device's CA (a private NSS database, as Chromium on Linux
// reads it) is moved to HTTPS at once, where the service worker registers, the app installs, an
// offline reload shows what was seen and the share target uploads.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM, CORPUS, DESKTOP, PHONE, allItems, buildLibrary, screenshot, startServer, tempDirs, thumbsLoaded } from './lib/spis.js';

/** A small JPEG for the share target. */
const SHARED = 'pypi-scikit-image-0.26.0/skimage/data/rocket.jpg';

let dirs;
let server;
let port;
before(async () => {
  dirs = tempDirs();
  buildLibrary(dirs.media, { bigMonth: 4 });
  server = await startServer({ media: dirs.media, state: dirs.state });
  port = new URL(server.url('/')).port;
});
after(async () => {
  await server?.stop();
  dirs?.cleanup();
});

/**
 * Chromium with spis.local mapped to 127.0.0.1 (no mDNS here), and HOME at `home`, whose
 * ~/.pki/nssdb is the certificate store it trusts.
 * @param {string} home
 */
function launch(home) {
  return chromium.launch({ ...LAUNCH, env: { ...process.env, HOME: home } });
}

const LAUNCH = {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run',
    '--host-resolver-rules=MAP spis.local 127.0.0.1'],
};

/** A HOME whose NSS database trusts the device's CA (certutil, from libnss3-tools). */
function trustingHome() {
  const home = fs.mkdtempSync(path.join(dirs.root, 'home-'));
  const db = path.join(home, '.pki', 'nssdb');
  fs.mkdirSync(db, { recursive: true });
  const pem = fs.readFileSync(path.join(dirs.state, 'tls', 'ca.pem'), 'utf8');
  const cert = path.join(home, 'ca.crt');
  fs.writeFileSync(cert, pem.slice(pem.indexOf('-----BEGIN CERTIFICATE-----')));
  execFileSync('certutil', ['-d', `sql:${db}`, '-N', '--empty-password']);
  execFileSync('certutil', ['-d', `sql:${db}`, '-A', '-t', 'C,,', '-n', 'spis', '-i', cert]);
  return home;
}

test('over plain HTTP, a device that does not trust spis is shown how to', async () => {
  const home = fs.mkdtempSync(path.join(dirs.root, 'home-'));
  const browser = await launch(home);
  try {
    const context = await browser.newContext({ ...PHONE, userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1' });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://spis.local:${port}/`);
    assert.equal(await page.evaluate(() => window.isSecureContext), false);
    const banner = page.locator('#insecure');
    await banner.waitFor();
    await thumbsLoaded(page, 3);
    assert.equal(new URL(page.url()).protocol, 'http:', 'stays on HTTP: the certificate is not trusted');
    await banner.getByRole('button', { name: 'Secure it' }).click();
    const sheet = page.getByRole('dialog', { name: 'Make this device trust spis' });
    await sheet.waitFor();
    const tls = await (await fetch(server.url('/api/tls'))).json();
    assert.equal(await sheet.locator('.secure-fp').textContent(), tls.ca.fingerprint_sha256);
    const download = sheet.locator('[data-t="download"]');
    assert.equal(await download.getAttribute('href'), '/spis-ca.mobileconfig', 'an iPhone gets the profile');
    assert.match(await sheet.locator('.secure-steps').textContent(), /Certificate Trust Settings/);
    await screenshot(page, 'https-trust-flow-phone');
    await sheet.getByRole('button', { name: 'Switch to HTTPS' }).click();
    await sheet.getByText('does not trust spis yet').waitFor();
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test('a device that trusts the CA moves to HTTPS, where the app installs', async () => {
  const browser = await launch(trustingHome());
  try {
    const context = await browser.newContext({ ...DESKTOP, serviceWorkers: 'allow' });
    const page = await context.newPage();
    const answers = [];
    page.on('response', (r) => answers.push({ url: r.url(), hsts: r.headers()['strict-transport-security'] }));
    await page.goto(`http://spis.local:${port}/`);
    await page.waitForURL(`https://spis.local:${port}/`);
    assert.equal(await page.evaluate(() => window.isSecureContext), true);
    await thumbsLoaded(page, 3);
    assert.equal(await page.locator('#insecure').isVisible(), false);
    const reg = await page.evaluate(async () => {
      const r = await navigator.serviceWorker.ready;
      return r.active?.state;
    });
    assert.equal(reg, 'activated', 'the service worker runs: a secure context');
    const manifest = await page.evaluate(async () => {
      const link = /** @type {HTMLLinkElement|null} */ (document.querySelector('link[rel=manifest]'));
      return link ? (await fetch(link.href)).ok : false;
    });
    assert.ok(manifest, 'the manifest loads');
    // The page and the API answer over HTTPS with HSTS (what workers and caches report varies).
    const https = answers.filter((a) => a.url === `https://spis.local:${port}/` || a.url.startsWith(`https://spis.local:${port}/api/facets`));
    assert.ok(https.length >= 2, JSON.stringify(answers));
    for (const a of https) assert.equal(a.hsts, 'max-age=2592000', a.url);
    // With HSTS noted, typing the http:// address goes straight to HTTPS in the browser.
    await page.goto(`http://spis.local:${port}/`);
    assert.equal(new URL(page.url()).protocol, 'https:');
  } finally {
    await browser.close();
  }
});

test('over HTTPS on a phone: installable, an offline reload shows what was seen, and Share -> spis uploads', async () => {
  // A persistent profile, as on a phone: Chromium never offers to install from an incognito one.
  const home = trustingHome();
  const context = await chromium.launchPersistentContext(path.join(home, 'profile'), {
    ...PHONE,
    ...LAUNCH,
    env: { ...process.env, HOME: home },
    serviceWorkers: 'allow',
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const origin = `https://spis.local:${port}`;
    await page.goto(`${origin}/`);
    await thumbsLoaded(page, 3);
    await page.evaluate(() => navigator.serviceWorker.ready);
    await page.reload();
    await page.waitForFunction(() => navigator.serviceWorker.controller?.state === 'activated', null, { timeout: 10000 });
    await thumbsLoaded(page, 3);

    // Chromium's own installability checks (manifest, icons, service worker, secure context).
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(installabilityErrors, [], 'Chromium would offer to install the app');
    const { url: manifestUrl, errors: manifestErrors } = await cdp.send('Page.getAppManifest');
    assert.equal(manifestUrl, `${origin}/manifest.webmanifest`);
    assert.deepEqual(manifestErrors, []);

    // Offline: the same photos come back from the service worker's caches.
    const seen = await page.$$eval('.tile[data-id]', (ts) => ts.map((t) => t.dataset.id).sort());
    await context.setOffline(true);
    await page.reload();
    await page.locator('#offline').waitFor({ state: 'visible', timeout: 10000 });
    await thumbsLoaded(page, 3);
    // The grid renders the rows near the view; the offline banner moves them a little.
    const offline = await page.$$eval('.tile[data-id]', (ts) => ts.map((t) => t.dataset.id).sort());
    assert.ok(offline.length >= 3 && offline.every((id) => seen.includes(id)), `${offline} within ${seen}`);
    await screenshot(page, 'https-offline-phone');
    await context.setOffline(false);
    await page.locator('#offline').waitFor({ state: 'hidden', timeout: 15000 });

    // The share target: what the browser does when the OS share sheet picks spis.
    const photo = path.join(dirs.root, 'shared-over-https.jpg');
    fs.copyFileSync(path.join(CORPUS, SHARED), photo);
    fs.appendFileSync(photo, 'shared over https');
    const manifest = await (await fetch(server.url('/manifest.webmanifest'))).json();
    const target = manifest.share_target;
    await page.evaluate(({ action, field }) => {
      const form = Object.assign(document.createElement('form'), { method: 'post', action, enctype: 'multipart/form-data', id: 'share-form' });
      form.append(Object.assign(document.createElement('input'), { type: 'file', name: field, multiple: true }));
      document.body.append(form);
    }, { action: target.action, field: target.params.files[0].name });
    await page.locator('#share-form input').setInputFiles(photo);
    await Promise.all([
      page.waitForURL((u) => u.origin === origin && u.pathname === '/' && !u.search.includes('shared'), { timeout: 15000 }),
      page.evaluate(() => /** @type {HTMLFormElement} */ (document.getElementById('share-form')).submit()),
    ]);
    await page.waitForFunction(() => document.querySelector('.up-summary')?.textContent === '1 file uploaded', null, { timeout: 30000 });
    const item = (await allItems(server)).find((i) => i.name === 'shared-over-https.jpg');
    assert.ok(item, 'the shared photo is in the library');
    assert.deepEqual(fs.readFileSync(path.join(dirs.media, item.dir, item.name)), fs.readFileSync(photo));
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});
