// @ts-check
// Small shared UI helpers: element building, icons from the page's SVG sprite, toasts, formatting.

/**
 * Creates an element with attributes and children.
 * @param {string} tag
 * @param {Record<string, any>} [attrs] `class`, `text`, `on<event>` handlers, or attributes
 * @param {(Node|string|null|false|undefined)[]} [children]
 * @returns {HTMLElement}
 */
export function h(tag, attrs = {}, children = []) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c) el.append(c);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

/**
 * An icon from the sprite in index.html.
 * @param {string} name symbol id without the `i-` prefix
 * @returns {SVGSVGElement}
 */
export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', `icon icon-${name}`);
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(SVG, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

/**
 * Wires a `<dialog class="sheet">`: a click on its backdrop closes it, and the page scrolls again
 * however it closes (Esc included).
 * @param {HTMLDialogElement} dialog
 * @returns {{open: () => void, close: () => void}}
 */
export function sheet(dialog) {
  const root = document.documentElement;
  const close = () => {
    if (dialog.open) dialog.close();
    root.classList.remove('sheet-open');
  };
  dialog.addEventListener('close', () => root.classList.remove('sheet-open'));
  dialog.addEventListener('click', (e) => {
    if (e.target === dialog) close();
  });
  return {
    open() {
      if (!dialog.open) dialog.showModal();
      root.classList.add('sheet-open');
    },
    close,
  };
}

/**
 * The height of the sticky top bar (app bar, filter chips, offline banner), in pixels.
 * @returns {number}
 */
export function topBarHeight() {
  return parseFloat(getComputedStyle(document.documentElement).getPropertyValue('--top-h')) || 56;
}

let toastTimer = 0;

/**
 * Shows a short message at the bottom of the screen, optionally with one action.
 * @param {string} message
 * @param {{action?: string, onAction?: () => void, ms?: number}} [opts]
 */
export function toast(message, { action, onAction, ms = 4000 } = {}) {
  const box = /** @type {HTMLElement} */ (document.getElementById('toast'));
  box.replaceChildren(h('span', { text: message }));
  if (action) {
    box.append(
      h('button', {
        type: 'button',
        class: 'toast-action',
        text: action,
        onclick: () => {
          box.classList.remove('show');
          onAction?.();
        },
      }),
    );
  }
  box.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove('show'), ms);
}

/**
 * The parts of an ISO 8601 local time (`2023-01-14T09:30:12.5+01:00`): the wall clock as a UTC
 * Date (format it with timeZone UTC to show the photo's own time) and the offset text.
 * @param {string} taken
 * @returns {{date: Date, offset: string}}
 */
export function wallClock(taken) {
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?)?(Z|[+-]\d\d:?\d\d)?/.exec(taken || '');
  if (!m) return { date: new Date(NaN), offset: '' };
  const ms = m[7] ? Number(m[7].slice(0, 3).padEnd(3, '0')) : 0;
  const date = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0), +(m[6] || 0), ms));
  return { date, offset: m[8] === 'Z' ? '+00:00' : m[8] || '' };
}

/**
 * A sortable key of an item's wall-clock time (newest sorts last).
 * @param {string} taken
 * @returns {string}
 */
export function takenKey(taken) {
  const { date } = wallClock(taken);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

const fmtCache = new Map();

/**
 * A cached Intl.DateTimeFormat in the browser's language, on the wall clock (UTC).
 * @param {Intl.DateTimeFormatOptions} opts
 * @returns {Intl.DateTimeFormat}
 */
export function dateFormat(opts) {
  const key = JSON.stringify(opts);
  let f = fmtCache.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat(undefined, { ...opts, timeZone: 'UTC' });
    fmtCache.set(key, f);
  }
  return f;
}

/**
 * "March 2014".
 * @param {number} year
 * @param {number} month 1-12
 * @param {Intl.DateTimeFormatOptions['month']} [style]
 * @returns {string}
 */
export function monthName(year, month, style = 'long') {
  return dateFormat({ month: style, year: 'numeric' }).format(new Date(Date.UTC(year, month - 1, 1)));
}

/**
 * "Sat, 14 Jan 2023, 09:30".
 * @param {string} taken
 * @returns {string}
 */
export function formatTaken(taken) {
  const { date } = wallClock(taken);
  if (Number.isNaN(date.getTime())) return '';
  return dateFormat({ weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: 'numeric', minute: '2-digit' }).format(date);
}

/**
 * "2.7 MB".
 * @param {number} bytes
 * @returns {string}
 */
export function formatSize(bytes) {
  if (!Number.isFinite(bytes)) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let n = bytes;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

/**
 * "1:05" for a video length.
 * @param {number|null} ms
 * @returns {string}
 */
export function formatDuration(ms) {
  if (!ms && ms !== 0) return '';
  const s = Math.round(ms / 1000);
  const hms = [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60];
  return hms[0] ? `${hms[0]}:${String(hms[1]).padStart(2, '0')}:${String(hms[2]).padStart(2, '0')}` : `${hms[1]}:${String(hms[2]).padStart(2, '0')}`;
}

/**
 * "1,234", as the English around it. Not Intl: the first NumberFormat loads the locale's data,
 * about 40 ms of a phone's main thread while the first screen is drawn.
 * @param {number} n
 * @returns {string}
 */
export function formatCount(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * "3 new photos" / "1 new video" style plurals.
 * @param {number} n
 * @param {string} one
 * @param {string} many
 * @returns {string}
 */
export function plural(n, one, many) {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}
