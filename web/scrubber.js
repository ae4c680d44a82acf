// @ts-check
// The timeline scrubber on the right edge: drag it to any month of any year in one gesture,
// with year marks and a bubble naming the month under the finger. Also a keyboard slider.

import { monthName, topBarHeight } from './ui.js';

/** @typedef {import('./grid.js').Grid} Grid */

export class Scrubber {
  /**
   * @param {HTMLElement} root the `.scrubber` element
   * @param {Grid} grid
   */
  constructor(root, grid) {
    this.root = root;
    this.grid = grid;
    this.years = /** @type {HTMLElement} */ (root.querySelector('.scrub-years'));
    this.thumb = /** @type {HTMLElement} */ (root.querySelector('.scrub-thumb'));
    this.bubble = /** @type {HTMLElement} */ (root.querySelector('.scrub-bubble'));
    this.dragging = false;
    this.hideTimer = 0;
    this.thumbH = 40;
    grid.addEventListener('layout', () => this.build());
    addEventListener('scroll', () => this.onScroll(), { passive: true });
    addEventListener('resize', () => this.build());
    this.bindInput();
  }

  /** @returns {number} how far the page can scroll */
  get maxScroll() {
    return Math.max(1, document.documentElement.scrollHeight - innerHeight);
  }

  /** @returns {{top: number, height: number}} the rail's box */
  get rail() {
    const r = this.root.getBoundingClientRect();
    return { top: r.top, height: Math.max(1, r.height - this.thumbH) };
  }

  /** Places the year marks for the current layout. */
  build() {
    const g = this.grid;
    const sections = g.timeline?.sections || [];
    const show = sections.length > 1 && g.total > innerHeight * 2.5;
    this.root.hidden = !show;
    if (!show) return;
    const { height } = this.rail;
    const top0 = topBarHeight();
    const marks = [];
    let lastYear = null;
    let lastTop = -Infinity;
    for (const s of sections) {
      if (s.year === lastYear) continue;
      lastYear = s.year;
      const f = Math.min(1, Math.max(0, (g.rootTop + s.top - top0) / this.maxScroll));
      const top = f * height + this.thumbH / 2;
      if (top - lastTop < 22) continue;
      lastTop = top;
      const el = document.createElement('span');
      el.textContent = String(s.year);
      el.style.transform = `translateY(${Math.round(top - 8)}px)`;
      marks.push(el);
    }
    this.years.replaceChildren(...marks);
    this.place();
  }

  /** Shows the scrubber for a moment when the page scrolls (touch screens hide it at rest). */
  onScroll() {
    if (this.root.hidden) return;
    this.place();
    this.root.classList.add('active');
    clearTimeout(this.hideTimer);
    this.hideTimer = setTimeout(() => {
      if (!this.dragging) this.root.classList.remove('active');
    }, 1500);
  }

  /** Moves the thumb with the page and names the month in view. */
  place() {
    const f = Math.min(1, scrollY / this.maxScroll);
    this.thumb.style.transform = `translateY(${Math.round(f * this.rail.height)}px)`;
    const s = this.grid.sectionAt(scrollY - this.grid.rootTop + topBarHeight() + 24);
    const label = s ? monthName(s.year, s.month) : '';
    this.thumb.setAttribute('aria-valuenow', String(Math.round(f * 100)));
    this.thumb.setAttribute('aria-valuetext', label);
    if (this.dragging) this.bubble.textContent = label;
  }

  /**
   * Scrolls to the fraction of the rail under a pointer.
   * @param {number} clientY
   */
  seek(clientY) {
    const { top, height } = this.rail;
    const f = Math.min(1, Math.max(0, (clientY - top - this.thumbH / 2) / height));
    scrollTo(0, f * this.maxScroll);
    this.bubble.style.transform = `translateY(${Math.round(f * height)}px)`;
  }

  /** Pointer dragging and keyboard steps. */
  bindInput() {
    this.root.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      e.preventDefault();
      this.root.setPointerCapture(e.pointerId);
      this.dragging = true;
      this.grid.fast = true;
      this.root.classList.add('dragging');
      this.seek(e.clientY);
    });
    this.root.addEventListener('pointermove', (e) => {
      if (this.dragging) this.seek(e.clientY);
    });
    const end = () => {
      if (!this.dragging) return;
      this.dragging = false;
      this.grid.fast = false;
      this.root.classList.remove('dragging');
      this.grid.schedule();
      this.onScroll();
    };
    this.root.addEventListener('pointerup', end);
    this.root.addEventListener('pointercancel', end);
    this.thumb.addEventListener('keydown', (e) => {
      const g = this.grid;
      const ss = g.timeline?.sections || [];
      const cur = g.sectionAt(scrollY - g.rootTop + topBarHeight() + 24);
      const i = cur ? ss.indexOf(cur) : 0;
      let target = null;
      // The newest month of a year, the first of it in the list.
      /** @param {number|undefined} year */
      const yearStart = (year) => ss.find((x) => x.year === year);
      if (e.key === 'ArrowDown') target = ss[Math.min(ss.length - 1, i + 1)];
      else if (e.key === 'ArrowUp') target = ss[Math.max(0, i - 1)];
      else if (e.key === 'PageDown') target = ss.find((x, j) => j > i && x.year !== cur?.year) || ss[ss.length - 1];
      else if (e.key === 'PageUp') target = cur && yearStart(cur.year) !== cur ? yearStart(cur.year) : yearStart(ss[Math.max(0, i - 1)]?.year);
      else if (e.key === 'Home') target = ss[0];
      else if (e.key === 'End') target = ss[ss.length - 1];
      else return;
      e.preventDefault();
      if (target) g.scrollToSection(target.key);
    });
  }
}
