// @ts-check
// The photo grid: square tiles under month headers, laid out for the whole timeline at once (from
// the month counts) and rendered only around the viewport, so a 40k-photo library keeps a few
// dozen tiles in the DOM. Pages are requested ahead of the scroll position.

import { thumbHashColor, thumbHashLater } from './thumbhash.js';
import { formatDuration, formatTaken, h, icon, monthName, plural, topBarHeight } from './ui.js';

/** @typedef {import('./timeline.js').Timeline} Timeline */
/** @typedef {import('./timeline.js').Section} Section */
/** @typedef {import('./api.js').Item} Item */

const POOL_MAX = 240;

/**
 * The tile an event happened in.
 * @param {EventTarget|null} target
 * @returns {HTMLElement|null}
 */
function closestTile(target) {
  return /** @type {Element} */ (target).closest('.tile');
}

/**
 * Fires `open` (detail: {item}) when a tile is activated outside selection mode, and `select`
 * (detail: {item, range, toggle, longPress}) for selection gestures.
 */
export class Grid extends EventTarget {
  /**
   * @param {HTMLElement} root the element that holds the tiles (its height is set to the timeline's)
   * @param {{isSelected: (id: string) => boolean, active: () => boolean}} selection
   */
  constructor(root, selection) {
    super();
    this.root = root;
    this.selection = selection;
    /** @type {Timeline|null} */
    this.timeline = null;
    /** @type {Map<string, HTMLElement>} key → rendered tile or header */
    this.nodes = new Map();
    /** @type {HTMLElement[]} */
    this.pool = [];
    this.cols = 3;
    this.tile = 120;
    this.gap = 2;
    this.headerH = 48;
    this.width = 0;
    this.total = 0;
    /** The grid's top in the page, measured by each layout and render. */
    this.rootTop = 0;
    /** @type {[number, number]} the screen's top and bottom in grid coordinates (render() sets it) */
    this.view = [0, 0];
    /**
     * Until the first screen's thumbnails have loaded, the rows rendered ahead of it wait: on a
     * slow link they would share its bandwidth (Chromium fetches lazy images this near at once).
     * @type {Promise<unknown>[]|null}
     */
    this.firstScreen = [];
    this.releasing = false;
    this.shownAny = false;
    /**
     * The first screen's first picture (the newest photo, which the page preloads: see
     * first_screen_preloads in src/http/api.rs) is painted before the others are asked for, so
     * that they do not share the link with it: 'waiting' until then, 'done' after.
     * @type {'none'|'waiting'|'done'}
     */
    this.lead = 'none';
    /** While true (scrubbing), no thumbnails are requested and no pages loaded. */
    this.fast = false;
    this.frame = 0;
    this.dirty = new Set();
    this.layoutDirty = true;
    this.lastScroll = scrollY;
    this.lastTime = 0;
    this.direction = 1;
    this.flying = false;
    this.settleTimer = 0;

    addEventListener('scroll', () => this.schedule(), { passive: true });
    new ResizeObserver(() => {
      if (this.root.clientWidth !== this.width) {
        this.layoutDirty = true;
        this.schedule(true);
      }
    }).observe(this.root);
    this.bindInput();
  }

  /**
   * Shows a timeline (a new filter) from its top.
   * @param {Timeline} timeline
   */
  setTimeline(timeline) {
    this.timeline = timeline;
    for (const el of this.nodes.values()) el.remove();
    this.nodes.clear();
    timeline.addEventListener('change', (e) => {
      if (this.timeline !== timeline) return;
      const { layout, ids } = /** @type {CustomEvent} */ (e).detail;
      if (layout) this.layoutDirty = true;
      for (const id of ids) this.dirty.add(id);
      this.schedule(layout);
    });
    this.layoutDirty = true;
    this.schedule();
  }

  /**
   * Requests a render on the next frame; with `keepAnchor`, the first visible item stays put
   * while the layout above it changes.
   * @param {boolean} [keepAnchor]
   */
  schedule(keepAnchor = false) {
    if (keepAnchor && !this.anchor) this.anchor = this.captureAnchor();
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const anchor = this.anchor;
      this.anchor = null;
      if (this.layoutDirty) this.layout();
      if (anchor) this.restoreAnchor(anchor);
      this.render();
    });
  }

  /** Computes columns, tile size and every section's position. */
  layout() {
    this.layoutDirty = false;
    const width = this.root.clientWidth;
    this.width = width;
    const phone = width < 600;
    this.gap = phone ? 2 : 4;
    this.cols = phone ? (width < 300 ? 2 : width < 480 ? 3 : 4) : Math.max(4, Math.min(10, Math.round(width / 200)));
    this.tile = Math.floor((width - this.gap * (this.cols - 1)) / this.cols);
    this.headerH = phone ? 48 : 60;
    let y = phone ? 4 : 8;
    for (const s of this.timeline?.sections || []) {
      s.top = y;
      s.rowsTop = y + this.headerH;
      y = s.rowsTop + Math.ceil(s.count / this.cols) * (this.tile + this.gap);
      s.bottom = y;
    }
    this.total = y + (phone ? 96 : 64);
    this.root.style.height = `${this.total}px`;
    this.rootTop = this.root.getBoundingClientRect().top + scrollY;
    this.dispatchEvent(new Event('layout'));
  }

  /** @returns {boolean} whether thumbnails wait (scrubbing or flinging) */
  get lazy() {
    return this.fast || this.flying;
  }

  /** @returns {number} the row pitch */
  get rowH() {
    return this.tile + this.gap;
  }

  /**
   * The top of an item's tile, relative to the grid.
   * @param {Section} s
   * @param {number} i
   * @returns {number}
   */
  itemTop(s, i) {
    return s.rowsTop + Math.floor(i / this.cols) * this.rowH;
  }

  /** @returns {{id?: string, key?: string, offset: number}|null} what is at the top of the view */
  captureAnchor() {
    if (!this.timeline || scrollY < 2) return null;
    const view = scrollY - this.rootTop + topBarHeight();
    for (const el of this.nodes.values()) {
      if (!el.dataset.id) continue;
      const pos = this.timeline.position(el.dataset.id);
      if (!pos) continue;
      const top = this.itemTop(pos.s, pos.i);
      if (top >= view && top < view + this.rowH) return { id: el.dataset.id, offset: top - scrollY };
    }
    const s = this.timeline.sections.find((x) => x.bottom > view);
    return s ? { key: s.key, offset: s.top - scrollY } : null;
  }

  /** @param {{id?: string, key?: string, offset: number}} a */
  restoreAnchor(a) {
    const t = this.timeline;
    if (!t) return;
    let top = null;
    if (a.id) {
      const pos = t.position(a.id);
      if (pos) top = this.itemTop(pos.s, pos.i);
    }
    if (top === null && a.key) top = t.byKey.get(a.key)?.top ?? null;
    if (top !== null && Math.abs(top - a.offset - scrollY) > 1) scrollTo(0, top - a.offset);
  }

  /** Renders the tiles and headers around the viewport and asks for the pages they need. */
  render() {
    const t = this.timeline;
    if (!t) return;
    const vh = innerHeight;
    const y = scrollY;
    this.rootTop = this.root.getBoundingClientRect().top + y;
    this.direction = y > this.lastScroll ? 1 : y < this.lastScroll ? -1 : this.direction;
    // Flinging past tiles: no thumbnails until the scroll slows down (they would queue ahead of
    // the ones the user stops at).
    const now = performance.now();
    const speed = Math.abs(y - this.lastScroll) / Math.max(1, now - this.lastTime);
    this.lastTime = now;
    this.lastScroll = y;
    this.flying = speed > 4;
    clearTimeout(this.settleTimer);
    if (this.flying) this.settleTimer = setTimeout(() => this.schedule(), 150);
    const viewTop = y - this.rootTop;
    /** The screen, in grid coordinates: its tiles load first, and eagerly. */
    this.view = [viewTop, viewTop + vh];
    const over = vh * 0.75;
    const wTop = viewTop - over;
    const wBottom = viewTop + vh + over;
    // Pages are fetched further ahead in the scroll direction.
    const lTop = viewTop - (this.direction < 0 ? vh * 2.5 : vh);
    const lBottom = viewTop + vh + (this.direction > 0 ? vh * 2.5 : vh);
    const want = new Set();
    const sections = t.sections;
    let lo = 0;
    let hi = sections.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sections[mid].bottom < Math.min(wTop, lTop)) lo = mid + 1;
      else hi = mid;
    }
    const rowH = this.rowH;
    for (let si = lo; si < sections.length; si++) {
      const s = sections[si];
      if (s.top > Math.max(wBottom, lBottom)) break;
      if (s.rowsTop > wTop && s.top < wBottom) {
        const key = `h:${s.key}`;
        want.add(key);
        this.header(key, s);
      }
      const rows = Math.ceil(s.count / this.cols);
      const r0 = Math.max(0, Math.floor((wTop - s.rowsTop) / rowH));
      const r1 = Math.min(rows - 1, Math.floor((wBottom - s.rowsTop) / rowH));
      for (let i = r0 * this.cols; i <= Math.min(s.count - 1, (r1 + 1) * this.cols - 1); i++) {
        const key = `${s.key}:${i}`;
        want.add(key);
        this.place(key, s, i);
      }
      if (!this.fast && s.bottom > lTop && s.top < lBottom) {
        const need = Math.min(s.count - 1, (Math.floor((lBottom - s.rowsTop) / rowH) + 1) * this.cols - 1);
        if (need >= 0 && (s.stale || s.items.length <= need)) t.ensure(s, need);
      }
    }
    for (const [key, el] of this.nodes) {
      if (want.has(key)) continue;
      this.nodes.delete(key);
      if (el.classList.contains('tile') && this.pool.length < POOL_MAX) {
        const img = /** @type {HTMLImageElement} */ (el.querySelector('img'));
        img.removeAttribute('src');
        delete img.dataset.src;
        this.pool.push(el);
      }
      el.remove();
    }
    this.dirty.clear();
    this.releaseFirstScreen();
    this.dispatchEvent(new Event('render'));
  }

  /**
   * Renders one month header.
   * @param {string} key
   * @param {Section} s
   */
  header(key, s) {
    let el = this.nodes.get(key);
    if (!el) {
      el = h('h2', { class: 'month' }, [h('span', { class: 'month-name' }), h('span', { class: 'month-count' })]);
      this.nodes.set(key, el);
      this.root.append(el);
    }
    // Written only when something changed: this runs on every frame while scrolling.
    const stamp = `${s.count}|${s.top}|${this.headerH}`;
    if (el.dataset.stamp === stamp) return;
    el.dataset.stamp = stamp;
    /** @type {Node} */ (el.firstChild).textContent = monthName(s.year, s.month);
    /** @type {Node} */ (el.lastChild).textContent = plural(s.count, 'item', 'items');
    el.style.transform = `translateY(${s.top}px)`;
    el.style.height = `${this.headerH}px`;
  }

  /**
   * Renders one tile (a loaded item or a placeholder) at its place.
   * @param {string} key
   * @param {Section} s
   * @param {number} i
   */
  place(key, s, i) {
    const item = s.items[i];
    let el = this.nodes.get(key);
    if (!el) {
      el = this.pool.pop() || this.makeTile();
      delete el.dataset.id;
      this.nodes.set(key, el);
      this.root.append(el);
    }
    const x = (i % this.cols) * this.rowH;
    const top = this.itemTop(s, i);
    const pos = `translate(${x}px, ${top}px)`;
    if (el.style.transform !== pos) el.style.transform = pos;
    const size = `${this.tile}px`;
    if (el.style.width !== size) {
      el.style.width = size;
      el.style.height = size;
    }
    if (el.dataset.key !== key) el.dataset.key = key;
    // On screen: fetched at once and first (the first screen's largest paint is one of these);
    // the rows rendered ahead, only when the browser sees them coming.
    const img = /** @type {HTMLImageElement} */ (el.querySelector('img'));
    const seen = top < this.view[1] && top + this.rowH > this.view[0];
    if (img.loading !== (seen ? 'eager' : 'lazy')) {
      img.loading = seen ? 'eager' : 'lazy';
      img.fetchPriority = seen ? 'high' : 'auto';
    }
    if (!item) {
      if (el.dataset.id || !el.classList.contains('pending')) this.fillPending(el, s);
      return;
    }
    if (el.dataset.id !== item.id || this.dirty.has(item.id) || (!this.lazy && !img.dataset.src)) {
      this.fill(el, item);
    }
    const selected = this.selection.isSelected(item.id);
    const pressed = this.selection.active() ? String(selected) : null;
    if (el.classList.contains('selected') !== selected) el.classList.toggle('selected', selected);
    if (el.getAttribute('aria-pressed') !== pressed) {
      if (pressed === null) el.removeAttribute('aria-pressed');
      else el.setAttribute('aria-pressed', pressed);
    }
  }

  /** @returns {HTMLElement} a new, empty tile */
  makeTile() {
    const img = h('img', { alt: '', loading: 'lazy', decoding: 'async', draggable: 'false' });
    img.addEventListener('load', () => img.classList.add('loaded'));
    img.addEventListener('error', () => {
      if (img.getAttribute('src')) img.closest('.tile')?.classList.add('broken');
    });
    return h('button', { type: 'button', class: 'tile' }, [
      img,
      h('span', { class: 'badge video-badge' }, [icon('play'), h('span')]),
      h('span', { class: 'badge fav-badge' }, [icon('heart-fill')]),
      h('span', { class: 'check' }, [icon('check')]),
    ]);
  }

  /**
   * A tile whose item is not loaded yet.
   * @param {HTMLElement} el
   * @param {Section} s
   */
  fillPending(el, s) {
    delete el.dataset.id;
    el.className = 'tile pending';
    el.tabIndex = -1;
    el.setAttribute('aria-label', `Loading ${monthName(s.year, s.month)}`);
    el.style.backgroundImage = '';
    const img = /** @type {HTMLImageElement} */ (el.querySelector('img'));
    img.removeAttribute('src');
    delete img.dataset.src;
    img.alt = '';
    img.classList.remove('loaded');
  }

  /**
   * Shows an item in a tile.
   * @param {HTMLElement} el
   * @param {Item} item
   */
  fill(el, item) {
    const img = /** @type {HTMLImageElement} */ (el.querySelector('img'));
    const changed = el.dataset.id !== item.id;
    el.dataset.id = item.id;
    el.className = `tile${item.kind === 'video' ? ' is-video' : ''}${item.favorite ? ' is-fav' : ''}`;
    el.tabIndex = 0;
    el.setAttribute(
      'aria-label',
      `${item.name}, ${formatTaken(item.taken)}${item.kind === 'video' ? ', video' : ''}${item.favorite ? ', favorite' : ''}`,
    );
    // The average colour at once; the blurred picture when the worker has decoded it.
    el.style.backgroundColor = thumbHashColor(item.thumbhash);
    el.style.backgroundImage = '';
    thumbHashLater(item.thumbhash, (hash) => {
      if (hash && el.dataset.id === item.id) el.style.backgroundImage = `url("${hash}")`;
    });
    /** @type {HTMLElement} */ (el.querySelector('.video-badge span')).textContent = item.kind === 'video' ? formatDuration(item.duration_ms) : '';
    if (changed) {
      img.classList.remove('loaded');
      img.removeAttribute('src');
      delete img.dataset.src;
    }
    img.alt = item.name;
    const held = this.firstScreen && (img.loading === 'lazy' || this.lead === 'waiting');
    if (!this.lazy && !held && img.dataset.src !== item.thumb) {
      img.dataset.src = item.thumb;
      img.src = item.thumb;
      this.shownAny = true;
      if (this.firstScreen && this.lead === 'none') this.leadPainted(img);
      if (img.complete && img.naturalWidth) img.classList.add('loaded');
      else if (this.firstScreen) this.firstScreen.push(new Promise((done) => {
        // Loaded and decoded: ready to paint.
        img.addEventListener('load', () => img.decode().then(done, done), { once: true });
        img.addEventListener('error', done, { once: true });
      }));
    }
  }

  /**
   * Holds the rest of the first screen until `img` is painted (or for 1 s at most).
   * @param {HTMLImageElement} img
   */
  leadPainted(img) {
    this.lead = 'waiting';
    const loaded = new Promise((done) => {
      if (img.complete) done(undefined);
      img.addEventListener('load', done, { once: true });
      img.addEventListener('error', done, { once: true });
    });
    const painted = loaded
      .then(() => img.decode().catch(() => {}))
      .then(() => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0))));
    Promise.race([painted, new Promise((done) => setTimeout(done, 1000))]).then(() => {
      this.lead = 'done';
      this.schedule();
    });
  }

  /** Lets the rows ahead load once the first screen's thumbnails have (or after 3 s at most). */
  releaseFirstScreen() {
    const waiting = this.firstScreen;
    // Nothing shown yet (the first page has not arrived), or only the first picture: wait.
    if (!waiting || !this.shownAny || this.releasing || this.lead === 'waiting') return;
    this.releasing = true;
    // Released after the frame that paints them, so that nothing competes with the first screen.
    const painted = () => new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)));
    Promise.race([Promise.all(waiting).then(painted), new Promise((done) => setTimeout(done, 3000))]).then(() => {
      this.firstScreen = null;
      this.root.classList.remove('first-screen');
      this.schedule();
    });
  }

  /**
   * The rendered tile of an item, if it is in view.
   * @param {string} id
   * @returns {HTMLElement|null}
   */
  tileOf(id) {
    for (const el of this.nodes.values()) if (el.dataset.id === id) return el;
    return null;
  }

  /**
   * Scrolls so that an item's row is in view (centred when it was far away).
   * @param {string} id
   * @param {boolean} [onlyIfHidden]
   */
  scrollToItem(id, onlyIfHidden = true) {
    const pos = this.timeline?.position(id);
    if (!pos) return;
    if (this.layoutDirty) this.layout();
    const top = this.rootTop + this.itemTop(pos.s, pos.i);
    if (onlyIfHidden && top >= scrollY + topBarHeight() && top + this.tile <= scrollY + innerHeight) return;
    scrollTo(0, Math.max(0, top - innerHeight / 2 + this.tile / 2));
    this.render();
  }

  /**
   * Scrolls to a month's header.
   * @param {string} key
   */
  scrollToSection(key) {
    const s = this.timeline?.byKey.get(key);
    if (!s) return;
    if (this.layoutDirty) this.layout();
    scrollTo(0, this.rootTop + s.top - topBarHeight());
  }

  /** Redraws the selection state of the rendered tiles. */
  refreshSelection() {
    for (const el of this.nodes.values()) if (el.dataset.id) this.dirty.add(el.dataset.id);
    this.root.classList.toggle('selecting', this.selection.active());
    this.schedule();
  }

  /** Clicks, keyboard moves between tiles, and long presses. */
  bindInput() {
    let pressTimer = 0;
    /** @type {{el: HTMLElement, x: number, y: number}|null} the tile a finger is on, until it moves */
    let pressed = null;
    let suppressClick = false;
    /** @param {HTMLElement|null|undefined} el @returns {Item|null|undefined} */
    const itemOf = (el) => (el?.dataset.id ? this.timeline?.byId.get(el.dataset.id) : null);

    this.root.addEventListener('click', (e) => {
      const el = closestTile(e.target);
      const item = itemOf(el);
      if (!item) return;
      e.preventDefault();
      if (suppressClick) {
        suppressClick = false;
        return;
      }
      if (e.shiftKey || e.ctrlKey || e.metaKey || this.selection.active()) {
        this.dispatchEvent(new CustomEvent('select', { detail: { item, range: e.shiftKey, toggle: true } }));
      } else {
        this.dispatchEvent(new CustomEvent('open', { detail: { item } }));
      }
    });
    this.root.addEventListener('pointerdown', (e) => {
      if (e.pointerType !== 'touch') return;
      const el = closestTile(e.target);
      if (!el || !itemOf(el)) return;
      pressed = { el, x: e.clientX, y: e.clientY };
      clearTimeout(pressTimer);
      pressTimer = setTimeout(() => {
        const item = itemOf(pressed?.el);
        if (!item) return;
        suppressClick = true;
        navigator.vibrate?.(15);
        this.dispatchEvent(new CustomEvent('select', { detail: { item, range: false, toggle: true, longPress: true } }));
      }, 450);
    });
    /** @param {PointerEvent} e */
    const cancel = (e) => {
      if (pressed && e.type === 'pointermove' && Math.hypot(e.clientX - pressed.x, e.clientY - pressed.y) < 10) return;
      clearTimeout(pressTimer);
      pressed = null;
    };
    for (const type of /** @type {const} */ (['pointermove', 'pointerup', 'pointercancel'])) this.root.addEventListener(type, cancel, { passive: true });
    addEventListener('scroll', () => clearTimeout(pressTimer), { passive: true });
    this.root.addEventListener('contextmenu', (e) => {
      if (closestTile(e.target) && (pressed || suppressClick)) e.preventDefault();
    });
    this.root.addEventListener('keydown', (e) => {
      const el = closestTile(e.target);
      const item = itemOf(el);
      if (!item) return;
      const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -this.cols, ArrowDown: this.cols }[e.key];
      if (step) {
        e.preventDefault();
        this.focusStep(item.id, step);
      } else if (e.key === ' ' && this.selection.active()) {
        e.preventDefault();
        this.dispatchEvent(new CustomEvent('select', { detail: { item, range: e.shiftKey, toggle: true } }));
      }
    });
  }

  /**
   * Moves keyboard focus from an item's tile by `step` items (across months).
   * @param {string} id
   * @param {number} step
   */
  async focusStep(id, step) {
    const t = this.timeline;
    const pos = t?.position(id);
    if (!t || !pos) return;
    const target = await t.itemAt(t.locate(pos.s.key, pos.i + step));
    if (!target) return;
    this.scrollToItem(target.id);
    this.tileOf(target.id)?.focus({ preventScroll: true });
  }

  /**
   * The month shown at a height of the grid (for the scrubber's label).
   * @param {number} y relative to the grid
   * @returns {Section|null}
   */
  sectionAt(y) {
    const ss = this.timeline?.sections || [];
    let lo = 0;
    let hi = ss.length - 1;
    if (hi < 0) return null;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (ss[mid].bottom <= y) lo = mid + 1;
      else hi = mid;
    }
    return ss[lo];
  }
}
