// @ts-check
// Pointer gestures on the viewer's stage: swipe sideways to move, swipe down to close, pinch or
// double tap or the wheel to zoom, drag to pan a zoomed picture, tap to show or hide the bars.
// The rule: the only state kept here is the gesture under way; what it leads to (another item,
// closing, the zoom) the viewer does, through its own methods.

/** @typedef {import('./viewer.js').Viewer} Viewer */

/**
 * Wires the gestures of a viewer's stage (pointer events, so touch, pen and mouse alike).
 * @param {Viewer} v
 */
export function bindGestures(v) {
  const stage = v.stage;
  /** @type {Map<number, {x: number, y: number}>} */
  const pts = new Map();
  /**
   * The gesture under way: two fingers pinching, or one pointer that is a tap until it moves
   * far enough to become a pan, swipe, dismiss or nothing (`none`).
   * @type {{mode: 'pinch', d0: number, s0: number, mid: {x: number, y: number}}
   *   | {mode: null|'pan'|'swipe'|'dismiss'|'none', x0: number, y0: number, t0: number, zx: number,
   *     zy: number, last: {x: number, y: number}, lastT: number, vx: number, vy: number}
   *   | null}
   */
  let g = null;
  let lastTap = { t: 0, x: 0, y: 0 };
  let tapTimer = 0;
  /** @param {MouseEvent} e @returns {{x: number, y: number}} the pointer on the stage */
  const local = (e) => {
    const r = stage.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  };

  stage.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 && e.pointerType === 'mouse') return;
    const target = /** @type {HTMLElement} */ (e.target);
    if (target.tagName === 'VIDEO') {
      // Leave the video's own controls alone.
      const r = target.getBoundingClientRect();
      if (e.clientY > r.bottom - 72) return;
    }
    stage.setPointerCapture(e.pointerId);
    pts.set(e.pointerId, local(e));
    if (pts.size === 2) {
      const [a, b] = [...pts.values()];
      v.track.style.transform = 'translateX(0)';
      g = { mode: 'pinch', d0: Math.hypot(a.x - b.x, a.y - b.y) || 1, s0: v.zoom.s, mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } };
    } else if (pts.size === 1) {
      const p = local(e);
      g = { mode: null, x0: p.x, y0: p.y, t0: performance.now(), zx: v.zoom.x, zy: v.zoom.y, last: p, lastT: performance.now(), vx: 0, vy: 0 };
    }
  });

  stage.addEventListener('pointermove', (e) => {
    if (!pts.has(e.pointerId) || !g) return;
    const p = local(e);
    pts.set(e.pointerId, p);
    if (g.mode === 'pinch' && pts.size >= 2) {
      const [a, b] = [...pts.values()];
      const d = Math.hypot(a.x - b.x, a.y - b.y);
      const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
      v.zoom.x += mid.x - g.mid.x;
      v.zoom.y += mid.y - g.mid.y;
      g.mid = mid;
      v.zoomTo(g.s0 * (d / g.d0), mid.x, mid.y);
      return;
    }
    if (g.mode === 'pinch') return;
    const dx = p.x - g.x0;
    const dy = p.y - g.y0;
    const now = performance.now();
    const dt = Math.max(1, now - g.lastT);
    g.vx = (p.x - g.last.x) / dt;
    g.vy = (p.y - g.last.y) / dt;
    g.last = p;
    g.lastT = now;
    if (!g.mode) {
      if (Math.hypot(dx, dy) < 8) return;
      g.mode = v.zoom.s > 1 ? 'pan' : Math.abs(dx) > Math.abs(dy) ? 'swipe' : dy > 0 ? 'dismiss' : 'none';
      v.track.style.transition = 'none';
    }
    if (g.mode === 'pan') {
      v.zoom.x = g.zx + dx;
      v.zoom.y = g.zy + dy;
      v.applyZoom();
    } else if (g.mode === 'swipe') {
      const blocked = (dx > 0 && !v.prevItem) || (dx < 0 && !v.nextItem);
      v.track.style.transform = `translateX(${blocked ? dx / 3 : dx}px)`;
    } else if (g.mode === 'dismiss') {
      const slide = v.item && v.slides.get(v.item.id);
      const k = Math.max(0, dy);
      if (slide) slide.style.transform = `translateY(${k}px) scale(${1 - Math.min(0.3, k / 1500)})`;
      v.root.style.setProperty('--backdrop', String(Math.max(0.2, 1 - k / 400)));
    }
  });

  /** @param {PointerEvent} e */
  const end = (e) => {
    if (!pts.has(e.pointerId)) return;
    pts.delete(e.pointerId);
    if (!g) return;
    if (g.mode === 'pinch') {
      if (pts.size === 0) {
        if (v.zoom.s < 1.05) v.resetZoom();
        g = null;
      }
      return;
    }
    const p = local(e);
    const dx = p.x - g.x0;
    const dy = p.y - g.y0;
    v.track.style.transition = '';
    if (g.mode === 'swipe') {
      const w = stage.clientWidth;
      const dir = dx < -w * 0.2 || g.vx < -0.5 ? 1 : dx > w * 0.2 || g.vx > 0.5 ? -1 : 0;
      if (!dir || !v.go(dir, dx)) v.track.style.transform = 'translateX(0)';
    } else if (g.mode === 'dismiss') {
      const slide = v.item && v.slides.get(v.item.id);
      v.root.style.removeProperty('--backdrop');
      if (dy > 120 || g.vy > 0.6) v.close();
      else if (slide) {
        slide.classList.add('settle');
        slide.style.transform = 'translateX(0)';
        setTimeout(() => slide.classList.remove('settle'), 250);
      }
    } else if (!g.mode && e.type === 'pointerup') {
      // A tap: two quick ones zoom, one alone shows or hides the bars.
      const now = performance.now();
      if (now - lastTap.t < 300 && Math.hypot(p.x - lastTap.x, p.y - lastTap.y) < 40) {
        clearTimeout(tapTimer);
        lastTap = { t: 0, x: 0, y: 0 };
        if (v.zoom.s > 1) v.resetZoom();
        else v.zoomTo(2.5, p.x, p.y);
        v.frame?.classList.add('animate');
      } else {
        lastTap = { t: now, x: p.x, y: p.y };
        clearTimeout(tapTimer);
        tapTimer = setTimeout(() => v.root.classList.toggle('chrome-hidden'), 300);
      }
    }
    g = null;
  };
  stage.addEventListener('pointerup', end);
  stage.addEventListener('pointercancel', end);
  stage.addEventListener('transitionend', (e) => {
    if (/** @type {HTMLElement} */ (e.target).classList.contains('frame')) /** @type {HTMLElement} */ (e.target).classList.remove('animate');
  });
  stage.addEventListener(
    'wheel',
    (e) => {
      if (v.item?.kind === 'video') return;
      e.preventDefault();
      const p = local(e);
      v.frame?.classList.remove('animate');
      v.zoomTo(v.zoom.s * Math.exp(-e.deltaY * (e.ctrlKey ? 0.01 : 0.002)), p.x, p.y);
    },
    { passive: false },
  );
}
