// @ts-check
// Decodes ThumbHashes to PNG data URLs for the page (thumbhash.js's thumbHashLater), so that the
// grid's first screen spends no main-thread time on its blurred stand-ins.

import { thumbHashURL } from './thumbhash.js';

/** @param {MessageEvent<string[]>} e */
onmessage = (e) => {
  /** @type {any} */ (self).postMessage(e.data.map((hash) => [hash, thumbHashURL(hash)]));
};
