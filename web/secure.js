// @ts-check
// HTTPS at home. A page opened over plain HTTP from another device (not a secure context: no
// install, no offline, no "Share to", the password in the clear) asks the server whether it has
// a certificate authority of its own. If this device already trusts it, the page moves to HTTPS
// at once (and the server's HSTS keeps it there); if not, a banner offers the steps: download the
// CA (an iOS profile, or a .crt), trust it, compare the fingerprint, switch.

import { h, sheet } from './ui.js';

/**
 * The same page over HTTPS: on the same port (spis answers both there), or 443 for a page on 80
 * (the appliance listens on both; CSP's 'self' allows exactly these two upgrades).
 */
function httpsUrl() {
  return `https://${location.host}${location.pathname}${location.search}${location.hash}`;
}

/**
 * Whether this device accepts the server's certificate: an opaque request over HTTPS succeeds
 * only when the handshake does.
 * @returns {Promise<boolean>}
 */
async function trusted() {
  try {
    await fetch(`https://${location.host}/api/health`, { mode: 'no-cors', cache: 'no-store', credentials: 'omit' });
    return true;
  } catch {
    return false;
  }
}

/** @returns {'ios'|'android'|'other'} */
function platform() {
  const ua = navigator.userAgent;
  if (/iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1)) return 'ios';
  if (/Android/.test(ua)) return 'android';
  return 'other';
}

/**
 * The steps for this device, with the CA's name as the device will show it.
 * @param {string} name
 * @returns {{file: string, label: string, steps: string[]}}
 */
function steps(name) {
  switch (platform()) {
    case 'ios':
      return {
        file: '/spis-ca.mobileconfig',
        label: 'Download the profile',
        steps: [
          'Download the profile, and allow it.',
          'Open Settings, tap "Profile Downloaded", then Install.',
          `In Settings, General, About, Certificate Trust Settings, switch on "${name}".`,
          'Come back here and switch to HTTPS.',
        ],
      };
    case 'android':
      return {
        file: '/spis-ca.crt',
        label: 'Download the certificate',
        steps: [
          'Download the certificate.',
          'In Settings, search for "CA certificate" (Security, Encryption & credentials, Install a certificate), and choose spis-ca.crt.',
          'Come back here and switch to HTTPS.',
        ],
      };
    default:
      return {
        file: '/spis-ca.crt',
        label: 'Download the certificate',
        steps: [
          'Download the certificate.',
          `macOS: open it, then in Keychain Access set "${name}" to Always Trust. Windows: open it, Install Certificate, Local Machine, Trusted Root Certification Authorities. Linux: see the README, HTTPS at home.`,
          'Restart the browser if it does not notice, then switch to HTTPS.',
        ],
      };
  }
}

/**
 * Moves to HTTPS when this device already trusts the server, else shows the banner. Resolves at
 * once on a secure context or when the server has no CA of its own to offer.
 * @returns {Promise<void>}
 */
export async function offerHttps() {
  if (window.isSecureContext || location.protocol !== 'http:') return;
  /** @type {{tls: string, ca: {name: string, fingerprint_sha256: string}|null}|null} */
  let tls = null;
  try {
    tls = await (await fetch('/api/tls', { cache: 'no-store' })).json();
  } catch {
    return;
  }
  if (!tls || tls.tls === 'off') return;
  if (await trusted()) {
    location.replace(httpsUrl());
    // Stay unresolved: the page is going.
    await new Promise(() => {});
  }
  if (!tls.ca) return;
  const banner = document.getElementById('insecure');
  const dialog = /** @type {HTMLDialogElement|null} */ (document.getElementById('secure'));
  if (!banner || !dialog) return;
  const { file, label, steps: list } = steps(tls.ca.name);
  const body = /** @type {HTMLElement} */ (dialog.querySelector('.sheet-body'));
  const result = h('p', { class: 'secure-result', role: 'status' });
  body.replaceChildren(
    h('p', { text: 'spis has a certificate authority of its own. Trust it once on this device, and spis opens over HTTPS: encrypted, installable as an app, and it works offline.' }),
    h('ol', { class: 'secure-steps' }, list.map((s) => h('li', { text: s }))),
    h('p', { text: 'The fingerprint (SHA-256) your device shows must be:' }),
    h('code', { class: 'secure-fp', text: tls.ca.fingerprint_sha256 }),
    h('p', { class: 'secure-note', text: 'It can only vouch for .local names and home network addresses, nothing else.' }),
    result,
  );
  const download = /** @type {HTMLAnchorElement} */ (dialog.querySelector('[data-t="download"]'));
  download.href = file;
  download.textContent = label;
  const s = sheet(dialog);
  dialog.querySelectorAll('[data-t="close"]').forEach((b) => b.addEventListener('click', () => s.close()));
  /** @type {HTMLElement} */ (dialog.querySelector('[data-t="switch"]')).addEventListener('click', async () => {
    result.textContent = 'Checking…';
    if (await trusted()) location.assign(httpsUrl());
    else result.textContent = 'This device does not trust spis yet: follow the steps above, then try again.';
  });
  /** @type {HTMLElement} */ (banner.querySelector('button')).addEventListener('click', () => s.open());
  banner.hidden = false;
}
