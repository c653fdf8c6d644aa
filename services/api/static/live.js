// What the page knows about the chain, kept current from the node's event stream.
//
// Events only say that something changed; the data comes from the REST routes, fetched at
// most once per MIN_GAP_MS however fast blocks come, one request at a time, and not at all
// while the tab is hidden. The node publishes no event when mining stops, a peer leaves or
// p2p goes down, so /api/v1/status is also re-read POLL_MS after the last read while the
// page is visible (a quiet chain still shows the truth within seconds), later while the
// node does not answer, and never while the tab is hidden. Without a stream (an older node
// answers 404, or it broke) that read is all there is, and the stream is tried again now
// and then. Every status read is also a sample of the pool's size, over time: a pool that
// fills while no block comes (mining stopped) shows on its chart.

import { get, isMissing } from './api.js';

export const WINDOW = 50; // blocks kept for the charts and the live list
export const POOL_SAMPLES = 150; // pool size samples kept (one per status read, >= 1 s apart)
const MIN_GAP_MS = 1000;
export const POLL_MS = 2000;
const BACKOFF_MS = 10000; // the longest wait between reads while the node does not answer
const SSE_RETRY_MS = 60000;
const EVENT_TYPES = ['head', 'reorg', 'txs_added', 'txs_removed', 'resync'];

export class Live extends EventTarget {
  constructor() {
    super();
    this.status = null;
    this.blocks = []; // block summaries, newest first
    this.mempool = []; // [{x: time in ms, y: pool count}] samples, oldest first
    this.mode = 'connecting';
    this.error = null;
    this.lastSeq = null;
    this.timer = null;
    this.running = false;
    this.dirty = false;
    this.reload = false;
    this.lastRun = 0;
    this.source = null;
    this.retry = null;
    this.beat = null; // the next status read when nothing else asks for one
    this.failures = 0;
  }

  start() {
    document.addEventListener('visibilitychange', () => {
      // nothing is read while hidden: once shown again, read at once, then every POLL_MS
      if (!document.hidden) this.refresh();
    });
    this.connect();
    this.refresh({ reload: true });
  }

  setMode(mode) {
    if (mode === this.mode) return;
    this.mode = mode;
    this.dispatchEvent(new CustomEvent('mode', { detail: mode }));
  }

  // --- the event stream, or polling -------------------------------------------------------

  connect() {
    clearTimeout(this.retry);
    if (!('EventSource' in window)) {
      this.startPolling();
      return;
    }
    const source = new EventSource('/api/v1/events');
    this.source = source;
    source.onopen = () => {
      this.setMode('live');
      this.refresh(); // whatever happened while we were not listening
    };
    source.onmessage = (e) => this.onEvent(e);
    for (const type of EVENT_TYPES) source.addEventListener(type, (e) => this.onEvent(e));
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        // refused (e.g. 404: this node has no event stream): poll, try again later
        this.source = null;
        this.startPolling();
        this.retry = setTimeout(() => this.connect(), SSE_RETRY_MS);
      } else {
        this.setMode('reconnecting'); // the browser reconnects by itself, with Last-Event-ID
        this.startPolling();
      }
    };
  }

  /** No stream: the periodic status read (see `schedule`) is all the page gets. */
  startPolling() {
    if (this.mode !== 'offline' && this.mode !== 'reconnecting') this.setMode('polling');
  }

  onEvent(e) {
    let doc;
    try {
      doc = JSON.parse(e.data);
    } catch {
      return;
    }
    const seq = Number(doc.seq ?? e.lastEventId);
    let gap = false;
    if (Number.isSafeInteger(seq)) {
      gap = this.lastSeq !== null && seq > this.lastSeq + 1;
      this.lastSeq = seq;
    }
    const type = String(doc.type || e.type);
    if (gap || type === 'reorg' || type === 'resync') this.refresh({ reload: true });
    else if (type === 'head' || type.startsWith('txs')) this.refresh();
    this.dispatchEvent(new CustomEvent('event', { detail: doc }));
  }

  // --- refreshing -------------------------------------------------------------------------

  /** Ask for fresh data: coalesced, at most one run per MIN_GAP_MS, one at a time. */
  refresh({ reload = false } = {}) {
    if (reload) this.reload = true;
    this.dirty = true;
    if (this.running || this.timer) return;
    const wait = Math.max(0, this.lastRun + MIN_GAP_MS - Date.now());
    this.timer = setTimeout(() => this.run(), wait);
  }

  async run() {
    this.timer = null;
    clearTimeout(this.beat);
    this.beat = null;
    if (document.hidden) return; // stays dirty, and no read is scheduled: see start()
    this.running = true;
    this.dirty = false;
    this.lastRun = Date.now();
    const reload = this.reload;
    this.reload = false;
    let detail = { headChanged: false, poolChanged: false, nodeChanged: false };
    try {
      detail = await this.load(reload);
      this.error = null;
      this.failures = 0;
      if (this.mode === 'offline') this.setMode(this.source ? 'live' : 'polling');
    } catch (err) {
      this.error = err;
      this.failures += 1;
      if (!this.source || this.mode !== 'live') this.setMode('offline');
    } finally {
      this.running = false;
    }
    this.dispatchEvent(new CustomEvent('update', { detail }));
    if (this.dirty) this.refresh();
    else this.schedule();
  }

  /** The next status read, POLL_MS after this one (doubling while the node does not answer,
   *  up to BACKOFF_MS); any earlier read, for an event, puts it off again. */
  schedule() {
    clearTimeout(this.beat);
    const wait = Math.min(POLL_MS * 2 ** Math.min(this.failures, 8), BACKOFF_MS);
    this.beat = setTimeout(() => {
      this.beat = null;
      this.refresh();
    }, wait);
  }

  async load(reload) {
    const prev = this.status;
    const status = await get('/api/v1/status');
    const headChanged = !prev || prev.head !== status.head;
    if (reload || headChanged || !this.blocks.length) await this.loadBlocks(status, reload);
    if (reload || !prev) await this.loadPoolHistory(status);
    this.status = status;
    const count = Number(status.mempool?.count ?? 0);
    const now = Math.max(Date.now(), (this.mempool.at(-1)?.x ?? 0) + 1);
    this.mempool.push({ x: now, y: count });
    if (this.mempool.length > POOL_SAMPLES) this.mempool.splice(0, this.mempool.length - POOL_SAMPLES);
    const poolChanged = headChanged || !prev || prev.mempool?.count !== status.mempool?.count;
    // what no event announces: the miner, p2p and its peers
    const nodeChanged = !prev || ['mining', 'validator', 'p2p', 'peers', 'syncing']
      .some((key) => prev[key] !== status[key]);
    return { headChanged, poolChanged, nodeChanged };
  }

  /** The pool's size after each recent head, as the node saw it, at the time of that
   *  block: the chart starts filled. */
  async loadPoolHistory(status) {
    let samples;
    try {
      samples = (await get('/api/v1/mempool/history')).samples;
    } catch (err) {
      if (isMissing(err)) return; // an older node: sample from now on
      throw err;
    }
    const sealed = new Map(this.blocks.map((b) => [b.header.height, b.header.timestamp]));
    const since = this.mempool.length ? this.mempool[0].x : Infinity;
    const earlier = samples
      .filter((s) => s.height <= status.height && sealed.has(s.height))
      .map((s) => ({ x: Number(sealed.get(s.height)), y: s.count }))
      .filter((p) => p.x < since);
    this.mempool = [...earlier, ...this.mempool].slice(-POOL_SAMPLES);
  }

  async loadBlocks(status, reload) {
    const top = this.blocks[0];
    const missing = top ? status.height - top.header.height : WINDOW;
    if (reload || !top || missing <= 0 || missing >= WINDOW) {
      const page = await get(`/api/v1/blocks?start=${status.height}&limit=${WINDOW}`);
      this.blocks = page.blocks;
      return;
    }
    // the new blocks and the old top again, to check that they link up
    const page = await get(`/api/v1/blocks?start=${status.height}&limit=${missing + 1}`);
    const overlap = page.blocks.at(-1);
    if (!overlap || overlap.hash !== top.hash) {
      await this.loadBlocks(status, true); // the chain moved under us: start over
      return;
    }
    this.blocks = [...page.blocks.slice(0, -1), ...this.blocks].slice(0, WINDOW);
  }

  /** Chart series over the blocks held, oldest first. */
  series() {
    const asc = [...this.blocks].reverse();
    const intervals = [];
    for (let i = 1; i < asc.length; i += 1) {
      const a = asc[i - 1].header;
      const b = asc[i].header;
      // genesis carries a fixed timestamp, not a sealing time
      if (a.height > 0 && b.height === a.height + 1) intervals.push({ x: b.height, y: (b.timestamp - a.timestamp) / 1000 });
    }
    const txs = asc.map((b) => ({ x: b.header.height, y: b.tx_count ?? b.txs.length }));
    return { intervals, txs, mempool: this.mempool };
  }
}

/** Run fn at most once per `ms`, the last call winning (for per-view extra fetches). */
export function throttle(fn, ms) {
  let last = 0;
  let timer = null;
  return (...args) => {
    const wait = last + ms - Date.now();
    clearTimeout(timer);
    if (wait <= 0) {
      last = Date.now();
      fn(...args);
    } else {
      timer = setTimeout(() => {
        last = Date.now();
        fn(...args);
      }, wait);
    }
  };
}
