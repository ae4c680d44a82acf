// @ts-check
// ThumbHash → a small blurred picture (a PNG data URL), shown while a thumbnail loads.
// The format is Evan Wallace's ThumbHash (https://evanw.github.io/thumbhash/): a DC colour and a few
// low-frequency cosine coefficients in LPQA space. This is an independent, compact decoder.

const cache = new Map();
const CACHE_MAX = 4000;

/**
 * Decodes a base64 ThumbHash to a PNG data URL (about 32 px on the long side), memoized.
 * @param {string | null | undefined} b64
 * @returns {string | null} null when there is no hash or it is malformed
 */
export function thumbHashURL(b64) {
  if (!b64) return null;
  let url = cache.get(b64);
  if (url !== undefined) return url;
  try {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const { w, h, rgba } = thumbHashToRGBA(bytes);
    url = rgbaToPngURL(w, h, rgba);
  } catch {
    url = null;
  }
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value);
  cache.set(b64, url);
  return url;
}

/**
 * The average colour of a ThumbHash (its DC term alone): cheap enough for every tile at once.
 * @param {string | null | undefined} b64
 * @returns {string} a CSS colour, or '' when there is no hash or it is malformed
 */
export function thumbHashColor(b64) {
  if (!b64 || b64.length < 4) return '';
  try {
    const b = atob(b64.slice(0, 4));
    const h24 = b.charCodeAt(0) | (b.charCodeAt(1) << 8) | (b.charCodeAt(2) << 16);
    const l = (h24 & 63) / 63;
    const p = ((h24 >> 6) & 63) / 31.5 - 1;
    const q = ((h24 >> 12) & 63) / 31.5 - 1;
    const blue = l - (2 / 3) * p;
    const red = (3 * l - blue + q) / 2;
    const c = (/** @type {number} */ v) => Math.round(255 * Math.max(0, Math.min(1, v)));
    return `rgb(${c(red)}, ${c(red - q)}, ${c(blue)})`;
  } catch {
    return '';
  }
}

/** @type {Worker|null|undefined} the decoder thread; null when the browser has none */
let worker;
/** @type {Map<string, ((url: string|null) => void)[]>} hashes sent to the worker, and who waits */
const waiting = new Map();
/** @type {string[]} hashes to send with the next batch */
let batch = [];

/**
 * The blurred picture of a ThumbHash, decoded off the main thread (a module worker), so that
 * a screen of new tiles costs the page no decoding; `ready` gets the data URL (or null), at once
 * when it was decoded before.
 * @param {string | null | undefined} b64
 * @param {(url: string|null) => void} ready
 */
export function thumbHashLater(b64, ready) {
  if (!b64) return ready(null);
  const known = cache.get(b64);
  if (known !== undefined) return ready(known);
  if (worker === undefined) {
    try {
      worker = new Worker(new URL('./thumbhash-worker.js', import.meta.url), { type: 'module' });
      worker.onmessage = (e) => {
        for (const [hash, url] of /** @type {[string, string|null][]} */ (e.data)) {
          if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value);
          cache.set(hash, url);
          for (const cb of waiting.get(hash) || []) cb(url);
          waiting.delete(hash);
        }
      };
    } catch {
      worker = null;
    }
  }
  if (!worker) return ready(thumbHashURL(b64));
  const queued = waiting.get(b64);
  if (queued) return void queued.push(ready);
  waiting.set(b64, [ready]);
  // One message per rendered screen, not per tile.
  if (!batch.length) {
    queueMicrotask(() => {
      worker?.postMessage(batch);
      batch = [];
    });
  }
  batch.push(b64);
}

/**
 * Decodes ThumbHash bytes to RGBA pixels.
 * @param {Uint8Array} hash
 * @returns {{w: number, h: number, rgba: Uint8ClampedArray}}
 */
export function thumbHashToRGBA(hash) {
  if (hash.length < 5) throw new Error('short thumbhash');
  const h24 = hash[0] | (hash[1] << 8) | (hash[2] << 16);
  const h16 = hash[3] | (hash[4] << 8);
  const alpha = (h24 >> 23) & 1;
  const landscape = (h16 >> 15) & 1;
  const lCount = h16 & 7;
  const lx = Math.max(3, landscape ? (alpha ? 5 : 7) : lCount);
  const ly = Math.max(3, landscape ? lCount : alpha ? 5 : 7);
  const dc = {
    l: (h24 & 63) / 63,
    p: ((h24 >> 6) & 63) / 31.5 - 1,
    q: ((h24 >> 12) & 63) / 31.5 - 1,
    a: alpha ? (hash[5] & 15) / 15 : 1,
  };
  const lScale = ((h24 >> 18) & 31) / 31;
  const pScale = ((h16 >> 3) & 63) / 63;
  const qScale = ((h16 >> 9) & 63) / 63;
  const aScale = alpha ? (hash[5] >> 4) / 15 : 0;

  // AC coefficients: 4-bit nibbles, low nibble first, in triangle order per channel.
  let nibble = 0;
  const start = alpha ? 6 : 5;
  /**
   * @param {number} nx @param {number} ny @param {number} scale
   * @returns {[number, number, number][]} (cx, cy, coefficient)
   */
  const readChannel = (nx, ny, scale) => {
    /** @type {[number, number, number][]} */
    const out = [];
    for (let cy = 0; cy < ny; cy++) {
      for (let cx = cy === 0 ? 1 : 0; cx * ny < nx * (ny - cy); cx++) {
        const byte = hash[start + (nibble >> 1)] ?? 0;
        const v = (byte >> ((nibble & 1) * 4)) & 15;
        nibble++;
        out.push([cx, cy, (v / 7.5 - 1) * scale]);
      }
    }
    return out;
  };
  const lAC = readChannel(lx, ly, lScale);
  // Chroma is boosted by 1.25 to make up for quantization, as the encoder expects.
  const pAC = readChannel(3, 3, pScale * 1.25);
  const qAC = readChannel(3, 3, qScale * 1.25);
  const aAC = alpha ? readChannel(5, 5, aScale) : [];

  // The picture's aspect ratio, from the coefficient counts before they were raised to 3.
  const nAlong = alpha ? 5 : 7;
  const ratio = landscape ? nAlong / Math.max(1, lCount) : Math.max(1, lCount) / nAlong;
  const w = Math.round(ratio > 1 ? 32 : 32 * ratio);
  const h = Math.round(ratio > 1 ? 32 / ratio : 32);
  const nMax = 7;
  // Cosine tables per axis: cosX[x * nMax + cx].
  const cosX = new Float32Array(w * nMax);
  const cosY = new Float32Array(h * nMax);
  for (let x = 0; x < w; x++) for (let c = 0; c < nMax; c++) cosX[x * nMax + c] = Math.cos((Math.PI / w) * (x + 0.5) * c);
  for (let y = 0; y < h; y++) for (let c = 0; c < nMax; c++) cosY[y * nMax + c] = Math.cos((Math.PI / h) * (y + 0.5) * c);

  /** @param {[number, number, number][]} terms @param {number} x @param {number} y */
  const sum = (terms, x, y) => {
    let s = 0;
    for (const [cx, cy, v] of terms) s += v * cosX[x * nMax + cx] * cosY[y * nMax + cy] * 2;
    return s;
  };
  const rgba = new Uint8ClampedArray(w * h * 4);
  for (let y = 0, i = 0; y < h; y++) {
    for (let x = 0; x < w; x++, i += 4) {
      const l = dc.l + sum(lAC, x, y);
      const p = dc.p + sum(pAC, x, y);
      const q = dc.q + sum(qAC, x, y);
      const a = alpha ? dc.a + sum(aAC, x, y) : 1;
      const b = l - (2 / 3) * p;
      const r = (3 * l - b + q) / 2;
      rgba[i] = 255 * Math.min(1, r);
      rgba[i + 1] = 255 * Math.min(1, r - q);
      rgba[i + 2] = 255 * Math.min(1, b);
      rgba[i + 3] = 255 * Math.min(1, a);
    }
  }
  return { w, h, rgba };
}

/** @type {Uint32Array|undefined} */
let crcTable;

/** @param {Uint8Array} bytes @param {number} from @param {number} to @returns {number} CRC-32 */
function crc32(bytes, from, to) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = ~0;
  for (let i = from; i < to; i++) c = crcTable[(c ^ bytes[i]) & 255] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * Encodes RGBA pixels as an uncompressed PNG (zlib "stored" blocks) data URL.
 * @param {number} w
 * @param {number} h
 * @param {Uint8ClampedArray} rgba
 * @returns {string}
 */
export function rgbaToPngURL(w, h, rgba) {
  const row = w * 4 + 1;
  const raw = new Uint8Array(row * h);
  for (let y = 0; y < h; y++) raw.set(rgba.subarray(y * w * 4, (y + 1) * w * 4), y * row + 1);
  // zlib: header, stored blocks of at most 65535 bytes, Adler-32.
  const blocks = Math.max(1, Math.ceil(raw.length / 65535));
  const zlib = new Uint8Array(2 + raw.length + blocks * 5 + 4);
  zlib[0] = 0x78;
  zlib[1] = 0x01;
  let o = 2;
  for (let b = 0; b < blocks; b++) {
    const part = raw.subarray(b * 65535, (b + 1) * 65535);
    zlib[o++] = b === blocks - 1 ? 1 : 0;
    zlib[o++] = part.length & 255;
    zlib[o++] = part.length >> 8;
    zlib[o++] = ~part.length & 255;
    zlib[o++] = (~part.length >> 8) & 255;
    zlib.set(part, o);
    o += part.length;
  }
  let s1 = 1;
  let s2 = 0;
  for (const v of raw) {
    s1 = (s1 + v) % 65521;
    s2 = (s2 + s1) % 65521;
  }
  const adler = ((s2 << 16) | s1) >>> 0;
  zlib.set([adler >>> 24, (adler >> 16) & 255, (adler >> 8) & 255, adler & 255], o);

  /** @type {[string, ArrayLike<number>][]} */
  const chunks = [
    ['IHDR', [w >>> 24, (w >> 16) & 255, (w >> 8) & 255, w & 255, h >>> 24, (h >> 16) & 255, (h >> 8) & 255, h & 255, 8, 6, 0, 0, 0]],
    ['IDAT', zlib],
    ['IEND', []],
  ];
  const size = 8 + chunks.reduce((n, [, d]) => n + 12 + d.length, 0);
  const png = new Uint8Array(size);
  png.set([137, 80, 78, 71, 13, 10, 26, 10]);
  let p = 8;
  for (const [type, data] of chunks) {
    const len = data.length;
    png.set([len >>> 24, (len >> 16) & 255, (len >> 8) & 255, len & 255], p);
    for (let i = 0; i < 4; i++) png[p + 4 + i] = type.charCodeAt(i);
    png.set(data, p + 8);
    const crc = crc32(png, p + 4, p + 8 + len);
    png.set([crc >>> 24, (crc >> 16) & 255, (crc >> 8) & 255, crc & 255], p + 8 + len);
    p += 12 + len;
  }
  let bin = '';
  for (let i = 0; i < png.length; i += 0x8000) bin += String.fromCharCode(...png.subarray(i, i + 0x8000));
  return `data:image/png;base64,${btoa(bin)}`;
}
