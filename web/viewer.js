// @ts-check
// The full-screen viewer: the 1600 px preview (the original only once zoomed in), swipe or arrow
// keys to move, swipe down or Esc to close, double-tap/pinch/wheel to zoom, inline video,
// favorite, download, details and a slideshow. The gestures are read in gestures.js and the zoom
// kept in zoom.js; the viewer owns the slides and what is shown.

import { canDownload, currentShare, downloadURL } from './api.js';
import { bindGestures } from './gestures.js';
import { thumbHashURL } from './thumbhash.js';
import { dateFormat, formatDuration, formatSize, formatTaken, h, icon, wallClock } from './ui.js';
import { Zoom } from './zoom.js';

/** @typedef {import('./api.js').Item} Item */
/** @typedef {import('./timeline.js').Timeline} Timeline */

/** Formats the browser shows natively, so the original can stand in when zoomed. */
const NATIVE = new Set(['jpeg', 'png', 'gif', 'webp', 'avif', 'bmp']);
const GAP = 16;
/** @type {Record<string, string>} what a date's source means, by `taken_source` */
const SOURCES = {
  exif: 'from the camera (EXIF)',
  xmp: 'from the photo’s XMP',
  iptc: 'from the photo’s IPTC',
  exif_digitized: 'when it was digitized (EXIF)',
  maker_note: 'from the camera maker’s record',
  xmp_created: 'when the file was made (XMP)',
  container: 'from the video',
  file_name: 'from the file name',
  exif_modified: 'when it was last edited (EXIF)',
  mtime: 'from the file date',
};

/**
 * Fires `close` (detail: {item}), `favorite` (detail: {item, on}), `delete` (detail: {item}) and
 * `filter` (detail: patch).
 */
export class Viewer extends EventTarget {
  /**
   * @param {HTMLElement} root the `#viewer` element
   * @param {() => Timeline|null} timeline
   */
  constructor(root, timeline) {
    super();
    this.root = root;
    this.timeline = timeline;
    this.stage = /** @type {HTMLElement} */ (root.querySelector('.v-stage'));
    this.track = /** @type {HTMLElement} */ (root.querySelector('.v-track'));
    this.info = /** @type {HTMLElement} */ (root.querySelector('.v-info'));
    /** @type {Map<string, {lens?: string|null}>} details fetched on demand, by item id */
    this.details = new Map();
    /** @type {Item|null} */
    this.item = null;
    /** @type {Item|null} */
    this.prevItem = null;
    /** @type {Item|null} */
    this.nextItem = null;
    /** @type {{key: string, i: number}|null} where the current item was last seen, for moving on after it is removed */
    this.lastPos = null;
    /** @type {Map<string, HTMLElement>} */
    this.slides = new Map();
    this.zoom = new Zoom(this.stage, root);
    this.playing = false;
    this.paused = false;
    this.showTimer = 0;
    this.interval = Number(localStorage.getItem('spis.slideshow') || 5);
    this.pushed = false;
    /** @type {HTMLElement|null} what had the focus before the viewer opened */
    this.returnFocus = null;
    this.bind();
  }

  /** @returns {boolean} */
  get isOpen() {
    return !this.root.hidden;
  }

  /**
   * Opens an item.
   * @param {Item} item
   * @param {{push?: boolean}} [opts] push a history entry (so Back closes the viewer)
   */
  open(item, { push = true } = {}) {
    const wasOpen = this.isOpen;
    this.returnFocus = wasOpen ? this.returnFocus : /** @type {HTMLElement} */ (document.activeElement);
    this.root.hidden = false;
    this.setBackgroundInert(true);
    document.documentElement.classList.add('viewer-open');
    this.root.classList.remove('chrome-hidden');
    const url = `${location.pathname}${location.search}#${item.id}`;
    if (push && !wasOpen) {
      history.pushState({ ...history.state, viewer: item.id }, '', url);
      this.pushed = true;
    } else if (!wasOpen) {
      this.pushed = false;
    }
    this.show(item, 0);
    this.root.focus({ preventScroll: true });
  }

  /**
   * Closes the viewer.
   * @param {{fromHistory?: boolean}} [opts] the Back button already left the entry
   */
  close({ fromHistory = false } = {}) {
    if (!this.isOpen) return;
    this.stopSlideshow();
    const item = this.item;
    for (const el of this.slides.values()) this.dropSlide(el);
    this.slides.clear();
    this.root.hidden = true;
    this.setBackgroundInert(false);
    this.setInfo(false);
    document.documentElement.classList.remove('viewer-open');
    if (!fromHistory) {
      if (this.pushed && history.state?.viewer) history.back();
      else history.replaceState({ ...history.state, viewer: null }, '', `${location.pathname}${location.search}`);
    }
    this.pushed = false;
    this.item = null;
    this.dispatchEvent(new CustomEvent('close', { detail: { item, focus: this.returnFocus } }));
  }

  /**
   * Keeps Tab and screen readers inside the viewer while it is open.
   * @param {boolean} on
   */
  setBackgroundInert(on) {
    for (const el of document.body.children) {
      if (el !== this.root && el.id !== 'toast' && el instanceof HTMLElement) el.inert = on;
    }
  }

  /**
   * Shows an item, animating from the side it came from.
   * @param {Item} item
   * @param {number} dir -1 from the left, 1 from the right, 0 in place
   * @param {number} [fromX] the track's offset when the move started (a swipe)
   */
  show(item, dir, fromX = 0) {
    // The picture being left goes back to its fitted size.
    this.resetZoom(false);
    this.item = item;
    const pos = this.timeline()?.position(item.id);
    if (pos) this.lastPos = { key: pos.s.key, i: pos.i };
    else if (!dir) this.lastPos = null;
    this.prevItem = this.peek(-1);
    this.nextItem = this.peek(1);
    this.renderSlides();
    if (dir) {
      // FLIP: start where the old slide was, glide to the new one.
      const w = this.stage.clientWidth + GAP;
      this.track.style.transition = 'none';
      this.track.style.transform = `translateX(${fromX + dir * w}px)`;
      void this.track.offsetWidth;
      this.track.style.transition = '';
    }
    this.track.style.transform = 'translateX(0)';
    history.replaceState({ ...history.state, viewer: item.id }, '', `${location.pathname}${location.search}#${item.id}`);
    this.updateChrome();
    this.loadNeighbours(item);
    if (this.playing) this.tick();
  }

  /**
   * Where the neighbour `d` steps away from the current item is in the timeline.
   * @param {number} d
   * @returns {{s: import('./timeline.js').Section, i: number}|null}
   */
  near(d) {
    const t = this.timeline();
    if (!t || !this.item) return null;
    const pos = t.position(this.item.id);
    if (pos) return t.locate(pos.s.key, pos.i + d);
    // The current item was removed: the next one moved up into its index.
    if (!this.lastPos) return null;
    return t.locate(this.lastPos.key, this.lastPos.i + (d > 0 ? d - 1 : d));
  }

  /**
   * The neighbour `d` steps away, when it is loaded already.
   * @param {number} d
   * @returns {Item|null}
   */
  peek(d) {
    const p = this.near(d);
    return (p && p.s.items[p.i]) || null;
  }

  /**
   * Finds the neighbours of an item (loading their pages when needed), then renders them and
   * warms the previews one further.
   * @param {Item} item
   */
  async loadNeighbours(item) {
    const t = this.timeline();
    if (!t) return;
    if (!t.position(item.id) && !this.lastPos && t.ready) {
      // Opened from a link: find it in the timeline to know its neighbours.
      const pos = await t.find(item);
      if (this.item !== item || !pos) return;
      this.lastPos = { key: pos.s.key, i: pos.i };
    }
    const [prev, next] = await Promise.all([t.itemAt(this.near(-1)), t.itemAt(this.near(1))]);
    if (this.item !== item) return;
    if (prev !== this.prevItem || next !== this.nextItem) {
      this.prevItem = prev;
      this.nextItem = next;
      this.renderSlides();
      this.updateChrome();
    }
    const [p2, n2] = await Promise.all([t.itemAt(this.near(-2)), t.itemAt(this.near(2))]);
    for (const it of [p2, n2]) if (it && it.kind === 'image') new Image().src = it.preview;
  }

  /**
   * A control of the viewer's markup, by its `data-v` name.
   * @param {string} name
   * @returns {HTMLElement}
   */
  control(name) {
    return /** @type {HTMLElement} */ (this.root.querySelector(`[data-v="${name}"]`));
  }

  /** Keeps three slides (previous, current, next) in the track, reusing the ones that stay. */
  renderSlides() {
    /** @type {[Item|null, number][]} */
    const want = [
      [this.prevItem, -1],
      [this.item, 0],
      [this.nextItem, 1],
    ];
    const ids = new Set(want.map(([it]) => it?.id).filter(Boolean));
    for (const [id, el] of this.slides) {
      if (!ids.has(id)) {
        this.dropSlide(el);
        this.slides.delete(id);
      }
    }
    for (const [it, offset] of want) {
      if (!it) continue;
      let el = this.slides.get(it.id);
      if (!el) {
        el = this.makeSlide(it);
        this.slides.set(it.id, el);
        this.track.append(el);
      }
      el.style.transform = `translateX(calc(${offset * 100}% + ${offset * GAP}px))`;
      el.classList.toggle('current', offset === 0);
      el.setAttribute('aria-hidden', String(offset !== 0));
      this.activate(el, it, offset === 0);
    }
  }

  /**
   * Builds a slide: a frame fitted to the stage with the blurred stand-in, the thumbnail, and the
   * preview (or the video) on top.
   * @param {Item} item
   * @returns {HTMLElement}
   */
  makeSlide(item) {
    const frame = h('div', { class: 'frame' });
    const hash = thumbHashURL(item.thumbhash);
    if (hash) frame.style.backgroundImage = `url("${hash}")`;
    frame.append(h('img', { class: 'stand-in', src: item.thumb, alt: '', draggable: 'false' }));
    if (item.kind === 'video') {
      const video = /** @type {HTMLVideoElement} */ (h('video', { class: 'full', controls: true, playsinline: true, preload: 'none', poster: item.thumb }));
      video.setAttribute('aria-label', item.name);
      video.addEventListener('ended', () => {
        if (this.playing && this.item?.id === item.id) this.go(1);
      });
      frame.append(video);
    } else {
      const img = /** @type {HTMLImageElement} */ (h('img', { class: 'full', alt: item.name, draggable: 'false', decoding: 'async' }));
      img.addEventListener('load', () => {
        img.classList.add('loaded');
        if (!item.width || !item.height) this.fit(frame, img.naturalWidth, img.naturalHeight);
      });
      // Ahead of the grid's thumbnails still queued behind the viewer.
      img.fetchPriority = 'high';
      img.src = item.preview;
      frame.append(img);
    }
    const slide = h('div', { class: 'slide' }, [frame]);
    slide.dataset.id = item.id;
    this.fit(frame, item.width, item.height);
    return slide;
  }

  /**
   * Starts or stops a slide's video as it becomes current or not.
   * @param {HTMLElement} el
   * @param {Item} item
   * @param {boolean} current
   */
  activate(el, item, current) {
    const video = /** @type {HTMLVideoElement|null} */ (el.querySelector('video'));
    if (!video) return;
    if (current) {
      if (!video.getAttribute('src')) {
        video.preload = 'metadata';
        video.src = item.original;
      }
    } else if (!video.paused) {
      video.pause();
    }
  }

  /**
   * Releases a slide (stops its video download).
   * @param {HTMLElement} el
   */
  dropSlide(el) {
    const video = el.querySelector('video');
    if (video) {
      video.pause();
      video.removeAttribute('src');
      video.load();
    }
    el.remove();
  }

  /**
   * Sizes a frame to fit the stage at the picture's aspect ratio.
   * @param {HTMLElement} frame
   * @param {number|null|undefined} w
   * @param {number|null|undefined} h
   */
  fit(frame, w, h) {
    const sw = this.stage.clientWidth || innerWidth;
    const sh = this.stage.clientHeight || innerHeight;
    const iw = w || 4;
    const ih = h || 3;
    const s = Math.min(sw / iw, sh / ih);
    const fw = Math.round(iw * s);
    const fh = Math.round(ih * s);
    frame.style.width = `${fw}px`;
    frame.style.height = `${fh}px`;
    frame.style.left = `${Math.round((sw - fw) / 2)}px`;
    frame.style.top = `${Math.round((sh - fh) / 2)}px`;
    frame.dataset.w = String(fw);
    frame.dataset.h = String(fh);
  }

  /** The current slide's frame. @returns {HTMLElement|null} */
  get frame() {
    return this.item ? this.slides.get(this.item.id)?.querySelector('.frame') || null : null;
  }

  /** Updates the bars: title, favorite, download link, details, arrows. */
  updateChrome() {
    const it = this.item;
    if (!it) return;
    const { date } = wallClock(it.taken);
    const known = !Number.isNaN(date.getTime());
    /** @type {HTMLElement} */ (this.root.querySelector('.v-date')).textContent = known ? dateFormat({ day: 'numeric', month: 'short', year: 'numeric' }).format(date) : it.name;
    /** @type {HTMLElement} */ (this.root.querySelector('.v-sub')).textContent = known ? `${dateFormat({ hour: 'numeric', minute: '2-digit' }).format(date)} · ${it.name}` : '';
    const fav = this.control('fav');
    fav.setAttribute('aria-pressed', String(it.favorite));
    fav.setAttribute('aria-label', it.favorite ? 'Remove from favorites (f)' : 'Add to favorites (f)');
    fav.classList.toggle('on', it.favorite);
    const dl = /** @type {HTMLAnchorElement} */ (this.control('download'));
    dl.href = downloadURL(it);
    dl.setAttribute('download', it.name);
    this.control('prev').toggleAttribute('disabled', !this.prevItem);
    this.control('next').toggleAttribute('disabled', !this.nextItem);
    if (!this.info.hidden) this.renderInfo();
  }

  /**
   * Shows or hides the details panel.
   * @param {boolean} [on]
   */
  setInfo(on = this.info.hidden) {
    this.info.hidden = !on;
    this.root.classList.toggle('with-info', on);
    this.control('info').setAttribute('aria-pressed', String(on));
    if (on) this.renderInfo();
    // The stage got narrower or wider: refit.
    requestAnimationFrame(() => this.refit());
  }

  /** Fills the details panel. */
  renderInfo() {
    const it = this.item;
    if (!it) return;
    /** @type {HTMLElement[]} */
    const rows = [];
    /** @param {string} label @param {string|null|undefined} value @param {HTMLElement} [extra] */
    const row = (label, value, extra) => {
      if (!value) return;
      rows.push(h('dt', { text: label }), h('dd', {}, [h('span', { text: value }), extra]));
    };
    const { offset } = wallClock(it.taken);
    row('Date', formatTaken(it.taken), h('small', { text: [offset && `UTC${offset}`, SOURCES[it.taken_source]].filter(Boolean).join(' · ') }));
    row('Camera', it.camera);
    const extra = this.details.get(it.id);
    row('Lens', extra?.lens);
    if (it.kind === 'image' && !extra) this.loadDetails(it);
    if (it.width && it.height) row('Dimensions', `${it.width} × ${it.height}`, h('small', { text: `${((it.width * it.height) / 1e6).toFixed(1)} MP` }));
    if (it.kind === 'video') row('Duration', formatDuration(it.duration_ms));
    row('Size', formatSize(it.size), h('small', { text: it.format.toUpperCase() }));
    row(
      'Folder',
      it.dir || 'Top folder',
      h('button', {
        type: 'button',
        class: 'link',
        text: 'Show folder',
        onclick: () => {
          this.dispatchEvent(new CustomEvent('filter', { detail: { dir: it.dir, year: null, month: null } }));
        },
      }),
    );
    row('File', it.name);
    /** @type {HTMLElement} */ (this.info.querySelector('dl')).replaceChildren(...rows);
  }

  /**
   * Fetches what the index does not keep (the lens) for the details panel, once per item.
   * @param {import('./api.js').Item} it
   */
  loadDetails(it) {
    this.details.set(it.id, {});
    fetch(`/api/media/${encodeURIComponent(it.id)}/details`, { credentials: 'same-origin' })
      .then((r) => (r.ok ? r.json() : {}))
      .then((/** @type {{lens?: string|null}} */ d) => {
        this.details.set(it.id, d);
        if (d.lens && this.item?.id === it.id && !this.info.hidden) this.renderInfo();
      })
      .catch(() => this.details.delete(it.id));
  }

  /** Refits every slide after a resize. */
  refit() {
    for (const [id, el] of this.slides) {
      const it = [this.item, this.prevItem, this.nextItem].find((x) => x?.id === id);
      const img = /** @type {HTMLImageElement|null} */ (el.querySelector('img.full'));
      this.fit(/** @type {HTMLElement} */ (el.querySelector('.frame')), it?.width || img?.naturalWidth, it?.height || img?.naturalHeight);
    }
    this.resetZoom(false);
  }

  /**
   * Moves to the next (1) or previous (-1) item.
   * @param {number} dir
   * @param {number} [fromX] the track offset a swipe left it at
   */
  go(dir, fromX = 0) {
    const target = dir > 0 ? this.nextItem : this.prevItem;
    if (!target) {
      this.track.style.transform = 'translateX(0)';
      if (this.playing) {
        this.stopSlideshow();
      }
      return false;
    }
    const el = this.item && this.slides.get(this.item.id)?.querySelector('video');
    if (el && !el.paused) el.pause();
    this.show(target, dir, fromX);
    return true;
  }

  /** Asks for the current item to be deleted (the app moves it to the trash). */
  deleteCurrent() {
    if (this.item) this.dispatchEvent(new CustomEvent('delete', { detail: { item: this.item } }));
  }

  /**
   * After the current item went (deleted here or elsewhere): the next one, else the previous
   * one, else the viewer closes.
   */
  afterRemoved() {
    if (!this.go(1) && !this.go(-1)) this.close();
  }

  /** Toggles the current item's favorite. */
  toggleFavorite() {
    if (!this.item) return;
    const fav = this.control('fav');
    fav.classList.remove('pop');
    void fav.clientWidth;
    fav.classList.add('pop');
    this.dispatchEvent(new CustomEvent('favorite', { detail: { item: this.item, on: !this.item.favorite } }));
  }

  /**
   * Sets the zoom of the current frame: scale `s` about a point of the stage; the original
   * replaces the preview once zoomed in.
   * @param {number} s
   * @param {number} cx
   * @param {number} cy
   */
  zoomTo(s, cx, cy) {
    const frame = this.frame;
    if (!frame || this.item?.kind === 'video') return;
    if (this.zoom.to(frame, s, cx, cy) > 1.15) this.loadOriginal();
  }

  /** Keeps the zoomed picture covering the stage (after a pan) and applies the transform. */
  applyZoom() {
    this.zoom.apply(this.frame);
  }

  /**
   * Back to the fitted picture.
   * @param {boolean} [animate]
   */
  resetZoom(animate = true) {
    this.zoom.reset(this.frame, animate);
  }

  /** Swaps in the original file for the preview, once it has decoded (browser formats only). */
  loadOriginal() {
    const it = this.item;
    const frame = this.frame;
    if (!it || !frame || frame.dataset.original || !NATIVE.has(it.format) || it.kind !== 'image' || !canDownload()) return;
    frame.dataset.original = 'loading';
    const img = new Image();
    img.decoding = 'async';
    img.src = it.original;
    img.decode().then(
      () => {
        const full = /** @type {HTMLImageElement|null} */ (frame.querySelector('img.full'));
        if (full) full.src = it.original;
        frame.dataset.original = 'loaded';
      },
      () => {
        frame.dataset.original = 'failed';
      },
    );
  }

  /** Starts the slideshow. */
  startSlideshow() {
    this.playing = true;
    this.paused = false;
    this.root.classList.add('slideshow', 'chrome-hidden');
    /** @type {HTMLElement} */ (this.root.querySelector('.v-show')).hidden = false;
    this.syncShowControls();
    this.tick();
  }

  /** Stops the slideshow. */
  stopSlideshow() {
    if (!this.playing) return;
    this.playing = false;
    clearTimeout(this.showTimer);
    this.root.classList.remove('slideshow', 'chrome-hidden');
    /** @type {HTMLElement} */ (this.root.querySelector('.v-show')).hidden = true;
  }

  /** Pauses or resumes the slideshow. */
  togglePause() {
    this.paused = !this.paused;
    this.syncShowControls();
    this.tick();
  }

  /** Updates the slideshow bar's pause button and interval. */
  syncShowControls() {
    this.control('pause').replaceChildren(icon(this.paused ? 'play' : 'pause'), h('span', { text: this.paused ? 'Play' : 'Pause' }));
    /** @type {HTMLSelectElement} */ (this.control('interval')).value = String(this.interval);
  }

  /** Plans the slideshow's next step: after the interval, or when a video ends. */
  tick() {
    clearTimeout(this.showTimer);
    if (!this.playing || this.paused || !this.item) return;
    const video = /** @type {HTMLVideoElement|null} */ (this.slides.get(this.item.id)?.querySelector('video'));
    if (video) {
      video.play().catch(() => {
        video.muted = true;
        video.play().catch(() => this.showTimer = setTimeout(() => this.go(1), this.interval * 1000));
      });
      return;
    }
    this.showTimer = setTimeout(() => this.go(1), this.interval * 1000);
  }

  /** Wires buttons, keys and gestures. */
  bind() {
    /** @param {string} name @param {() => void} fn */
    const on = (name, fn) => this.control(name).addEventListener('click', fn);
    on('close', () => this.close());
    on('prev', () => this.go(-1));
    on('next', () => this.go(1));
    on('fav', () => this.toggleFavorite());
    on('delete', () => this.deleteCurrent());
    on('info', () => this.setInfo());
    on('info-close', () => this.setInfo(false));
    on('slideshow', () => (this.playing ? this.stopSlideshow() : this.startSlideshow()));
    on('pause', () => this.togglePause());
    on('stop', () => this.stopSlideshow());
    this.control('interval').addEventListener('change', (e) => {
      this.interval = Number(/** @type {HTMLSelectElement} */ (e.target).value) || 5;
      localStorage.setItem('spis.slideshow', String(this.interval));
      this.tick();
    });
    document.addEventListener('keydown', (e) => this.onKey(e));
    addEventListener('resize', () => {
      if (this.isOpen) this.refit();
    });
    bindGestures(this);
  }

  /**
   * Keyboard: arrows move, Esc closes, f favorite, Delete deletes, i details, s slideshow, +/-/0
   * zoom, space.
   * @param {KeyboardEvent} e
   */
  onKey(e) {
    if (!this.isOpen || e.ctrlKey || e.metaKey || e.altKey) return;
    const tag = /** @type {HTMLElement} */ (e.target).tagName;
    if (tag === 'SELECT' || tag === 'INPUT') return;
    const stage = this.stage.getBoundingClientRect();
    /** @type {Record<string, () => unknown>} */
    const keys = {
      ArrowRight: () => this.go(1),
      ArrowLeft: () => this.go(-1),
      Escape: () => (this.playing ? this.stopSlideshow() : this.close()),
      // A share link's guest changes nothing.
      f: () => (currentShare() ? false : this.toggleFavorite()),
      Delete: () => (currentShare() ? false : this.deleteCurrent()),
      i: () => this.setInfo(),
      s: () => (this.playing ? this.stopSlideshow() : this.startSlideshow()),
      '+': () => this.zoomTo(this.zoom.s * 1.5, stage.width / 2, stage.height / 2),
      '=': () => this.zoomTo(this.zoom.s * 1.5, stage.width / 2, stage.height / 2),
      '-': () => this.zoomTo(this.zoom.s / 1.5, stage.width / 2, stage.height / 2),
      0: () => this.resetZoom(),
      ' ': () => {
        const video = this.item && this.slides.get(this.item.id)?.querySelector('video');
        if (this.playing) this.togglePause();
        else if (video) video.paused ? video.play() : video.pause();
        else return false;
      },
    };
    const fn = keys[e.key.length === 1 ? e.key.toLowerCase() : e.key] || keys[e.key];
    if (!fn) return;
    if (e.key === ' ' && tag === 'BUTTON') return;
    if (fn() === false) return;
    e.preventDefault();
  }
}
