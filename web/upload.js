// @ts-check
// Uploading photos and videos from this device: a small tus 1.0 client (create, PATCH in chunks,
// HEAD to find where a broken upload stands), and the panel that shows each file's progress with
// pause, resume, retry and remove. Files come from the Upload button, drag and drop, or the
// phone's Share sheet (the service worker hands them over). New items reach the grid through the
// live updates, as any new file does.

import { h, icon, plural, toast } from './ui.js';

/** Bytes per PATCH: small enough to show progress and lose little to a dropped connection. */
const CHUNK = 8 << 20;
/** Files sent at once. */
const PARALLEL = 2;
/** Where the URL of an unfinished upload is remembered, by the file's name, size and date. */
const RESUME_KEY = 'spis-upload:';

/**
 * @typedef {'queued'|'uploading'|'paused'|'done'|'existed'|'failed'} State
 * @typedef {{file: File, state: State, offset: number, url: string|null, error: string,
 *   existed: boolean, xhr: XMLHttpRequest|null, row: HTMLElement|null}} Transfer
 */

/** @param {File} f @returns {string} */
function fingerprint(f) {
  return `${RESUME_KEY}${f.name}:${f.size}:${f.lastModified}`;
}

/** @param {string} s @returns {string} base64 of UTF-8 */
function b64(s) {
  return btoa(String.fromCharCode(...new TextEncoder().encode(s)));
}

/** @param {number} n @returns {string} */
function bytes(n) {
  if (n < 1024 * 1024) return `${Math.max(1, Math.round(n / 1024))} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}

/**
 * One tus request through XMLHttpRequest (fetch cannot report upload progress).
 * @param {string} method
 * @param {string} url
 * @param {Record<string, string>} headers
 * @param {{body?: Blob, onProgress?: (sent: number) => void, onStart?: (xhr: XMLHttpRequest) => void}} [opts]
 * @returns {Promise<XMLHttpRequest>} resolves on any HTTP answer, rejects when none arrives
 */
function send(method, url, headers, { body, onProgress, onStart } = {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    xhr.setRequestHeader('Tus-Resumable', '1.0.0');
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    if (onProgress) xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new Error('The connection dropped'));
    xhr.onabort = () => reject(new DOMException('Paused', 'AbortError'));
    onStart?.(xhr);
    xhr.send(body ?? null);
  });
}

/** @param {XMLHttpRequest} xhr @returns {string} the server's error sentence */
function errorOf(xhr) {
  try {
    return JSON.parse(xhr.responseText).error || `HTTP ${xhr.status}`;
  } catch {
    return `HTTP ${xhr.status}`;
  }
}

export class Uploads {
  /** @param {HTMLElement} panel the uploads panel (#uploads) */
  constructor(panel) {
    this.panel = panel;
    /** @type {Transfer[]} */
    this.transfers = [];
    this.list = /** @type {HTMLElement} */ (panel.querySelector('.up-list'));
    this.summary = /** @type {HTMLElement} */ (panel.querySelector('.up-summary'));
    this.bar = /** @type {HTMLProgressElement} */ (panel.querySelector('.up-total'));
    const on = (/** @type {string} */ name, /** @type {() => void} */ fn) =>
      /** @type {HTMLElement} */ (panel.querySelector(`[data-u="${name}"]`)).addEventListener('click', fn);
    on('pause-all', () => this.pauseAll());
    on('resume-all', () => this.resumeAll());
    on('close', () => this.close());
  }

  /**
   * Queues files (photos and videos only; the server checks again).
   * @param {Iterable<File>} files
   */
  add(files) {
    const media = [...files].filter((f) => /^(image|video)\//.test(f.type) || /\.(heic|heif|avif|mkv|mov|dng)$/i.test(f.name));
    const skipped = [...files].length - media.length;
    if (skipped) toast(`${plural(skipped, 'file is', 'files are')} not a photo or video and will not be uploaded`);
    for (const file of media) {
      /** @type {Transfer} */
      const t = { file, state: 'queued', offset: 0, url: localStorage.getItem(fingerprint(file)), error: '', existed: false, xhr: null, row: null };
      this.transfers.push(t);
      this.list.append(this.row(t));
    }
    if (media.length) {
      this.panel.hidden = false;
      this.pump();
    }
    this.render();
  }

  /** Starts queued transfers up to PARALLEL at once. */
  pump() {
    const running = this.transfers.filter((t) => t.state === 'uploading').length;
    for (const t of this.transfers.filter((x) => x.state === 'queued').slice(0, Math.max(0, PARALLEL - running))) {
      this.run(t);
    }
  }

  /** @param {Transfer} t */
  async run(t) {
    t.state = 'uploading';
    t.error = '';
    this.render(t);
    try {
      if (t.url) {
        // A broken upload of this very file: ask the server where it stands.
        const head = await send('HEAD', t.url, {});
        if (head.status === 200) {
          t.offset = Number(head.getResponseHeader('Upload-Offset') || 0);
        } else {
          t.url = null;
          t.offset = 0;
        }
      }
      if (!t.url) {
        const meta = [`filename ${b64(t.file.name)}`, `mtime ${b64(String(Math.floor(t.file.lastModified / 1000)))}`];
        if (t.file.type) meta.push(`filetype ${b64(t.file.type)}`);
        const created = await send('POST', '/api/uploads', { 'Upload-Length': String(t.file.size), 'Upload-Metadata': meta.join(',') });
        if (created.status !== 201) throw new Error(errorOf(created));
        t.url = /** @type {string} */ (created.getResponseHeader('Location'));
        t.offset = 0;
        localStorage.setItem(fingerprint(t.file), t.url);
      }
      while (t.offset < t.file.size) {
        const start = t.offset;
        const chunk = t.file.slice(start, Math.min(t.file.size, start + CHUNK));
        const res = await send(
          'PATCH',
          t.url,
          { 'Upload-Offset': String(start), 'Content-Type': 'application/offset+octet-stream' },
          {
            body: chunk,
            onStart: (xhr) => (t.xhr = xhr),
            onProgress: (sent) => {
              t.offset = start + sent;
              this.render(t);
            },
          },
        );
        t.xhr = null;
        if (res.status === 404) {
          // Expired or cancelled on the server: start over.
          localStorage.removeItem(fingerprint(t.file));
          t.url = null;
          throw new Error(errorOf(res));
        }
        if (res.status !== 204) throw new Error(errorOf(res));
        t.offset = Number(res.getResponseHeader('Upload-Offset'));
        t.existed = res.getResponseHeader('Spis-Existed') === 'true';
      }
      localStorage.removeItem(fingerprint(t.file));
      t.state = t.existed ? 'existed' : 'done';
    } catch (e) {
      t.xhr = null;
      if (e instanceof DOMException && e.name === 'AbortError') {
        t.state = 'paused';
      } else {
        t.state = 'failed';
        t.error = /** @type {Error} */ (e).message;
        if (!navigator.onLine) t.error = "You're offline; retry when the connection is back";
      }
    }
    this.render(t);
    this.pump();
  }

  /** @param {Transfer} t */
  pause(t) {
    if (t.state === 'queued') t.state = 'paused';
    t.xhr?.abort();
    this.render(t);
  }

  /** @param {Transfer} t */
  resume(t) {
    if (t.state !== 'paused' && t.state !== 'failed') return;
    t.state = 'queued';
    this.pump();
    this.render(t);
  }

  /** @param {Transfer} t */
  remove(t) {
    t.xhr?.abort();
    if (t.url && t.state !== 'done' && t.state !== 'existed') {
      send('DELETE', t.url, {}).catch(() => {});
      localStorage.removeItem(fingerprint(t.file));
    }
    this.transfers = this.transfers.filter((x) => x !== t);
    t.row?.remove();
    this.render();
    if (!this.transfers.length) this.panel.hidden = true;
  }

  pauseAll() {
    for (const t of this.transfers) if (t.state === 'queued' || t.state === 'uploading') this.pause(t);
  }

  resumeAll() {
    for (const t of this.transfers) if (t.state === 'paused' || t.state === 'failed') t.state = 'queued';
    this.pump();
    this.render();
  }

  /** Hides the panel; finished rows go, unfinished ones stay for next time. */
  close() {
    for (const t of [...this.transfers]) if (t.state === 'done' || t.state === 'existed') this.remove(t);
    this.panel.hidden = true;
  }

  /**
   * @param {Transfer} t
   * @returns {HTMLElement}
   */
  row(t) {
    const action = (/** @type {string} */ name, /** @type {string} */ label, /** @type {string} */ ic, /** @type {() => void} */ fn) =>
      h('button', { type: 'button', class: 'btn icon-only', 'data-u': name, 'aria-label': `${label} ${t.file.name}`, onclick: fn }, [icon(ic)]);
    t.row = h('li', { class: 'up-row' }, [
      h('div', { class: 'up-name', text: t.file.name }),
      h('progress', { max: String(t.file.size || 1), value: '0', 'aria-label': `${t.file.name} uploaded` }),
      h('div', { class: 'up-state' }),
      action('pause', 'Pause', 'pause', () => this.pause(t)),
      action('resume', 'Resume', 'play', () => this.resume(t)),
      action('remove', 'Remove', 'close', () => this.remove(t)),
    ]);
    return t.row;
  }

  /**
   * Updates one row (or all) and the summary.
   * @param {Transfer} [only]
   */
  render(only) {
    for (const t of only ? [only] : this.transfers) {
      if (!t.row) continue;
      /** @type {HTMLProgressElement} */ (t.row.querySelector('progress')).value = t.offset;
      const words = {
        queued: 'Waiting',
        uploading: `${bytes(t.offset)} of ${bytes(t.file.size)}`,
        paused: `Paused at ${bytes(t.offset)} of ${bytes(t.file.size)}`,
        done: 'Uploaded',
        existed: 'Already there',
        failed: t.error || 'Failed',
      };
      /** @type {HTMLElement} */ (t.row.querySelector('.up-state')).textContent = words[t.state];
      t.row.dataset.state = t.state;
      /** @type {HTMLElement} */ (t.row.querySelector('[data-u="pause"]')).hidden = !(t.state === 'uploading' || t.state === 'queued');
      /** @type {HTMLElement} */ (t.row.querySelector('[data-u="resume"]')).hidden = !(t.state === 'paused' || t.state === 'failed');
      /** @type {HTMLElement} */ (t.row.querySelector('[data-u="resume"]')).setAttribute('aria-label', `${t.state === 'failed' ? 'Retry' : 'Resume'} ${t.file.name}`);
    }
    const total = this.transfers.reduce((n, t) => n + t.file.size, 0);
    const finished = (/** @type {Transfer} */ t) => t.state === 'done' || t.state === 'existed';
    const sent = this.transfers.reduce((n, t) => n + (finished(t) ? t.file.size : t.offset), 0);
    const done = this.transfers.filter(finished).length;
    const failed = this.transfers.filter((t) => t.state === 'failed').length;
    const active = this.transfers.some((t) => t.state === 'uploading' || t.state === 'queued');
    this.bar.max = total || 1;
    this.bar.value = sent;
    this.summary.textContent = !this.transfers.length
      ? ''
      : active
        ? `Uploading ${done + 1} of ${this.transfers.length} · ${Math.floor((sent * 100) / (total || 1))}%`
        : failed
          ? `${plural(done, 'file', 'files')} uploaded, ${failed} failed`
          : `${plural(done, 'file', 'files')} uploaded`;
    /** @type {HTMLElement} */ (this.panel.querySelector('[data-u="pause-all"]')).hidden = !active;
    /** @type {HTMLElement} */ (this.panel.querySelector('[data-u="resume-all"]')).hidden =
      active || !this.transfers.some((t) => t.state === 'paused' || t.state === 'failed');
  }
}
