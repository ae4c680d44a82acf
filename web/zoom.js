// @ts-check
// The zoom of the viewer's current picture: a scale and an offset, applied as its frame's
// transform. The rule: a zoomed picture covers the stage (or, while smaller than it, stays
// centred), whichever way it got there: pinch, pan, wheel, double tap or keys.

/** The largest scale, over the picture fitted to the stage. */
export const MAX_ZOOM = 8;

export class Zoom {
  /**
   * @param {HTMLElement} stage the viewer's stage, which the frames are placed in
   * @param {HTMLElement} root has the class `zoomed` while the picture is zoomed in
   */
  constructor(stage, root) {
    this.stage = stage;
    this.root = root;
    /** The scale (1 is fitted to the stage) and the frame's offset, in stage pixels. */
    this.s = 1;
    this.x = 0;
    this.y = 0;
  }

  /**
   * Scales a frame to `s` about a point of the stage.
   * @param {HTMLElement} frame
   * @param {number} s
   * @param {number} cx
   * @param {number} cy
   * @returns {number} the scale set, within 1 and MAX_ZOOM
   */
  to(frame, s, cx, cy) {
    s = Math.min(MAX_ZOOM, Math.max(1, s));
    const left = frame.offsetLeft;
    const top = frame.offsetTop;
    // The frame point under (cx, cy) stays under it.
    const ux = (cx - left - this.x) / this.s;
    const uy = (cy - top - this.y) / this.s;
    this.x = cx - left - s * ux;
    this.y = cy - top - s * uy;
    this.s = s;
    this.apply(frame);
    return s;
  }

  /**
   * Keeps the zoomed picture covering the stage and applies the transform.
   * @param {HTMLElement|null} frame
   */
  apply(frame) {
    if (!frame) return;
    const sw = this.stage.clientWidth;
    const sh = this.stage.clientHeight;
    const fw = frame.offsetWidth * this.s;
    const fh = frame.offsetHeight * this.s;
    /** @param {number} pos @param {number} size @param {number} stage @param {number} offset */
    const clamp = (pos, size, stage, offset) => {
      const min = size <= stage ? (stage - size) / 2 : stage - size;
      const max = size <= stage ? (stage - size) / 2 : 0;
      return Math.min(max, Math.max(min, pos + offset)) - offset;
    };
    this.x = clamp(this.x, fw, sw, frame.offsetLeft);
    this.y = clamp(this.y, fh, sh, frame.offsetTop);
    frame.style.transform = this.s === 1 ? '' : `translate(${this.x}px, ${this.y}px) scale(${this.s})`;
    this.root.classList.toggle('zoomed', this.s > 1);
  }

  /**
   * Back to the fitted picture.
   * @param {HTMLElement|null} frame
   * @param {boolean} animate
   */
  reset(frame, animate) {
    this.s = 1;
    this.x = 0;
    this.y = 0;
    if (frame) {
      frame.classList.toggle('animate', animate);
      frame.style.transform = '';
    }
    this.root.classList.remove('zoomed');
  }
}
