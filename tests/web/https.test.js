// HTTPS at home: the page opened over plain HTTP by name (not a secure context) offers the trust
// flow; a browser that trusts the device's CA (a private NSS database, as Chromium on Linux
// reads it) is moved to HTTPS at once, where the service worker registers and the app installs.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM, DESKTOP, PHONE, buildLibrary, screenshot, startServer, tempDirs, thumbsLoaded } from './lib/spis.js';

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
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, HOME: home },
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run',
      '--host-resolver-rules=MAP spis.local 127.0.0.1'],
  });
}

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
