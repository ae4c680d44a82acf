// @ts-check
// A share link's page (/s/TOKEN): opens the link, asking its password when it has one, then
// shows only what was shared; says plainly when the link has expired or was revoked.

import { ApiError, request, setShareView } from './api.js';
import { openDoor } from './login.js';

/**
 * Resolves once the share link is open (its view set); never resolves while the page asks for
 * its password or says it has ended.
 * @param {string} token
 * @returns {Promise<import('./api.js').GuestShare>}
 */
export async function ensureGuest(token) {
  /** @type {import('./api.js').GuestShare} */
  let share;
  try {
    // Opened before in this browser: the server knows it from the guest cookie.
    share = await openShare(token);
  } catch (e) {
    const err = /** @type {ApiError} */ (e);
    if (err.code === 'offline') {
      // What was seen before is in the service worker's cache: show it as a guest, read only.
      share = { id: token.split('.')[0], title: 'Shared photos', kind: 'items', count: 0, expires: null, downloads: false };
    } else if (err.code === 'share_password') {
      share = await askPassword(token);
    } else {
      ended(err);
      return new Promise(() => {});
    }
  }
  setShareView(share);
  return share;
}

/**
 * The link's password door; resolves with the share once it is right.
 * @param {string} token
 * @returns {Promise<import('./api.js').GuestShare>}
 */
function askPassword(token) {
  return new Promise((resolve) => {
    const door = openDoor({
      title: 'Shared photos',
      hint: 'Whoever sent you this link protected it with a password. Enter it to see the photos.',
      fields: [{ label: 'Password', autocomplete: 'current-password' }],
      async submit([password]) {
        try {
          const share = await openShare(token, password);
          door.remove();
          resolve(share);
        } catch (e) {
          const err = /** @type {ApiError} */ (e);
          if (err.code === 'wrong_password') return 'Wrong password.';
          if (err.code === 'too_many_attempts') return err.message;
          return err.message;
        }
      },
    });
  });
}

/**
 * Says the link cannot be used.
 * @param {ApiError} err
 */
function ended(err) {
  const [title, hint] =
    err.code === 'share_expired'
      ? ['This link has expired', 'Ask whoever sent it for a new one.']
      : err.code === 'unknown_share'
        ? ['This link does not work', 'It may have been revoked, or copied only in part. Ask whoever sent it for a new one.']
        : ["Couldn't open this link", err.message];
  openDoor({ title, hint });
}

// The link was revoked or expired while the page was open.
window.addEventListener('spis:share-ended', () => ended(new ApiError('', 410, 'unknown_share')));

/**
 * Opens a share link (with its password, when it has one).
 * @param {string} token
 * @param {string} [password]
 * @returns {Promise<import('./api.js').GuestShare>}
 */
function openShare(token, password) {
  return request('/api/guest', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    credentials: 'same-origin',
    body: JSON.stringify(password ? { token, password } : { token }),
  });
}
