// @ts-check
// Live changes over the /api/events WebSocket, for the current filter, reconnecting with backoff.

/**
 * Progress of the first index and of the background thumbnails (`type: 'indexing'`).
 * @typedef {{type: 'indexing', done: boolean, found: number, indexed: number,
 *   thumbnails: {done: number, total: number, per_second: number, eta_s: number|null}}} Indexing
 */

/**
 * Fires `message` (detail: the parsed JSON message), `status` (detail: {connected}) and `resync`
 * when changes may have been missed (the server said so, or we reconnected to a changed index).
 */
export class Live extends EventTarget {
  /** Not connected until `start`; reconnects by itself when back online or visible again. */
  constructor() {
    super();
    /** @type {WebSocket|null} */
    this.ws = null;
    this.query = '';
    this.attempt = 0;
    this.timer = 0;
    this.generation = null;
    this.connected = false;
    this.stopped = true;
    addEventListener('online', () => this.retryNow());
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.retryNow();
    });
  }

  /**
   * (Re)connects for a filter query (the `/api/media` parameters).
   * @param {string} query
   */
  start(query) {
    this.query = query;
    this.stopped = false;
    // A new filter starts afresh: its first hello is not a reconnect.
    this.generation = null;
    this.attempt = 0;
    this.close();
    this.open();
  }

  /** Closes the socket without reconnecting. */
  stop() {
    this.stopped = true;
    this.close();
  }

  /** Closes the current socket, if any. */
  close() {
    clearTimeout(this.timer);
    if (this.ws) {
      this.ws.onclose = this.ws.onmessage = this.ws.onopen = this.ws.onerror = null;
      this.ws.close();
      this.ws = null;
    }
    this.setConnected(false);
  }

  /** Reconnects at once when disconnected (back online, tab visible again). */
  retryNow() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    this.open();
  }

  /** Opens the socket. */
  open() {
    if (this.stopped) return;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/api/events${this.query ? `?${this.query}` : ''}`);
    this.ws = ws;
    ws.onmessage = (e) => {
      let msg;
      try {
        msg = JSON.parse(e.data);
      } catch {
        return;
      }
      if (msg.type === 'hello') {
        this.attempt = 0;
        this.setConnected(true);
        // Reconnected: what happened while we were away is unknown (the server may even have
        // restarted, with a new generation count), so the gallery refetches what it shows.
        if (this.generation !== null) this.dispatchEvent(new Event('resync'));
        this.generation = msg.generation;
        return;
      }
      if (msg.type === 'resync') {
        this.dispatchEvent(new Event('resync'));
        return;
      }
      this.dispatchEvent(new CustomEvent('message', { detail: msg }));
    };
    ws.onclose = () => {
      this.ws = null;
      this.setConnected(false);
      this.schedule();
    };
    ws.onerror = () => {};
  }

  /** Plans the next attempt: 1 s, 2 s, 4 s ... up to 30 s, with jitter; waits while offline. */
  schedule() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (!navigator.onLine) return;
    const delay = Math.min(30000, 1000 * 2 ** this.attempt) * (0.75 + Math.random() * 0.5);
    this.attempt = Math.min(this.attempt + 1, 6);
    this.timer = setTimeout(() => this.open(), delay);
  }

  /** @param {boolean} on */
  setConnected(on) {
    if (on === this.connected) return;
    this.connected = on;
    this.dispatchEvent(new CustomEvent('status', { detail: { connected: on } }));
  }
}
