// The dashboard's pages. Each view draws itself into <main> and returns
// {update(detail)} to follow the chain live; `ctx.alive()` turns false once the user has
// gone elsewhere, so a slow answer never draws over the next page.

import { ApiError, get, isMissing, isNotFound, post } from './api.js';
import { chart } from './charts.js';
import {
  badge, bytes, clear, fields, h, hexBlock, int, link, notice, panel, printable, short, table,
  timeAgo, yesNo,
} from './dom.js';
import { throttle } from './live.js';

const HEX = /^[0-9a-fA-F]*$/;
const CONSENSUS_POLL_MS = 3000;
const PACE_NOTICE = { sealing: 'ok', idle: 'info', late: 'warn', waiting: 'bad' };
const AUTHORITY_BADGE = { live: 'ok', offline: 'bad' };
const MAX_AMOUNT = 2n ** 63n - 1n;
const MAX_DATA_BYTES = 1024;
const CONSENSUS_QUIET_MS = 10000; // the consensus record is re-read this often without blocks

export function strip0x(text) {
  return /^0x/i.test(text) ? text.slice(2) : text;
}

function heading(text, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', { tabindex: '-1', text }), ...extra);
}

function errorText(err) {
  if (err instanceof ApiError) return `${err.code}: ${err.message}`;
  return String(err && err.message ? err.message : err);
}

function failed(main, title, err) {
  clear(main, heading(title), notice(isNotFound(err) ? err.message : `Could not load: ${errorText(err)}`,
    isNotFound(err) ? 'info' : 'bad'));
}

// --- shared tables -------------------------------------------------------------------------

function signerOf(block) {
  const hd = block.header;
  return hd.signer && !/^0+$/.test(hd.signer) ? hd.signer : hd.coinbase;
}

export function blocksTable(blocks, caption) {
  return table(caption, [
    { title: 'Height', cls: 'num' }, { title: 'Hash' }, { title: 'Age' },
    { title: 'Txs', cls: 'num' }, { title: 'Sealed by', cls: 'opt' }, { title: 'Size', cls: 'num opt' },
  ], blocks.map((b) => [
    link('block', b.header.height, `#${b.header.height}`),
    link('block', b.hash),
    timeAgo(b.header.timestamp),
    int(b.tx_count ?? b.txs.length),
    link('account', signerOf(b)),
    bytes(b.size),
  ]), { empty: 'No blocks yet.', cls: 'blocks' });
}

function txsTable(txs, caption, { empty = 'No transactions.' } = {}) {
  return table(caption, [
    { title: 'Transaction' }, { title: 'From' }, { title: 'To' },
    { title: 'Amount', cls: 'num' }, { title: 'Fee', cls: 'num' }, { title: 'Nonce', cls: 'num opt' },
  ], txs.map((t) => [
    link('tx', t.id), link('account', t.from), link('account', t.to),
    int(t.amount), int(t.fee), int(t.nonce),
  ]), { empty, cls: 'txs' });
}

// --- overview ------------------------------------------------------------------------------

/** A count, or an average of counts with one decimal. */
function count(v) {
  return Number.isInteger(v) ? int(v) : v.toFixed(1);
}

function stat(label, value, extra) {
  return h('div', { class: 'stat' }, h('dt', { text: label }),
    h('dd', {}, value instanceof Node ? value : String(value), extra ? h('small', {}, extra) : null));
}

/** Peers, syncing and mining as the status says them; a service that does not answer is
 *  shown as such, never as 0 peers or an idle miner (an older node lacks `p2p` and
 *  `validator`: its figures are shown as they come). */
function nodeStats(st) {
  const p2p = st.p2p !== false;
  return [
    p2p ? stat('Peers', int(st.peers), st.peers === 0 ? 'none connected' : null)
      : stat('Peers', badge('unknown', 'warn'), 'no p2p service answers'),
    stat('Syncing', p2p ? yesNo(st.syncing) : 'unknown'),
    st.validator === false ? stat('Mining', badge('none'), 'no miner on this node')
      : stat('Mining', st.mining ? badge('mining', 'ok') : badge('stopped', 'warn')),
  ];
}

export function overview(main, _params, ctx) {
  const { live } = ctx;
  const stats = h('dl', { class: 'stats', id: 'stats' });
  const banner = h('div', { id: 'banner' });
  const turn = h('div', { id: 'authorities' });
  const charts = h('div', { class: 'charts', id: 'charts' });
  const latest = h('div', { id: 'latest' });
  clear(main, heading('Node overview'),
    h('section', { 'aria-label': 'Node status' }, banner, stats),
    panel('Consensus', turn),
    panel('Last blocks', charts),
    panel('Latest blocks', latest, h('p', {}, h('a', { href: '#/blocks', text: 'All blocks →' }))));

  let consensus = null;
  let consensusMissing = false;
  let consensusAt = 0;
  const loadConsensus = throttle(async () => {
    if (consensusMissing) return;
    consensusAt = Date.now();
    try {
      consensus = await get('/api/v1/consensus');
    } catch (err) {
      if (isMissing(err)) consensusMissing = true;
      consensus = null;
    }
    if (ctx.alive()) drawConsensus();
  }, 3000);
  // a stalled chain sends no head event: look again every few seconds while this page shows
  const pollConsensus = () => {
    if (!ctx.alive() || consensusMissing) return;
    if (!document.hidden) loadConsensus();
    setTimeout(pollConsensus, CONSENSUS_POLL_MS);
  };
  setTimeout(pollConsensus, CONSENSUS_POLL_MS);

  function drawStats() {
    const st = live.status;
    if (!st) {
      clear(banner, live.error ? notice(`The node does not answer: ${errorText(live.error)}`, 'bad')
        : h('p', { class: 'muted', text: 'Loading…' }));
      return;
    }
    const mempool = st.mempool || {};
    clear(banner, live.error ? notice(`The node does not answer right now (${errorText(live.error)}); `
      + 'showing what it said last.', 'warn') : null);
    clear(stats,
      stat('Network', `#${st.network_id}`, st.consensus === 'pow' ? 'proof of work' : 'proof of authority'),
      stat('Height', int(st.height)),
      stat('Head', link('block', st.head), timeAgo(st.head_timestamp)),
      ...nodeStats(st),
      stat('Pool', `${int(mempool.count)} txs`, `${int(mempool.ready)} ready · ${bytes(mempool.bytes)}`),
      stat('Difficulty', `${int(st.difficulty)} bits`, `weight ${int(st.total_weight)}`));
  }

  function drawConsensus() {
    const st = live.status;
    if (!st) return;
    // the health sentence, once the consensus route has said it for the current head
    const said = consensus && consensus.summary && consensus.next_height === st.height + 1
      ? notice(consensus.summary, PACE_NOTICE[consensus.state] || 'info') : null;
    if (st.consensus === 'pow' || !(st.authorities || []).length) {
      clear(turn, said, h('p', {}, 'Open proof-of-work mining: anyone may seal a block at ',
        h('strong', { text: `${int(st.difficulty)} bits` }), ' of difficulty.'));
      return;
    }
    // whose turn follows the live head (DESIGN §3: block h is miners[h % n]'s); the slower
    // consensus route only adds each signer's record
    const authorities = st.authorities;
    const nextHeight = st.height + 1;
    const inTurn = authorities[nextHeight % authorities.length];
    const signers = new Map();
    for (const s of consensus?.signers ?? []) signers.set(s.address, s);
    const recent = new Set(st.recent_signers || []);
    const columns = [{ title: 'Authority' }, { title: 'Block ' + `#${nextHeight}` }];
    if (consensus) {
      columns.push({ title: 'Sealed', cls: 'num' }, { title: 'Last block', cls: 'num' },
        { title: 'Missed turns', cls: 'num' }, { title: 'State' });
    }
    const rows = authorities.map((a) => {
      const address = typeof a === 'string' ? a : a.address;
      const info = signers.get(address) || (typeof a === 'object' ? a : {});
      const row = [
        link('account', address),
        address === inTurn ? badge('in turn', 'ok')
          : recent.has(address) ? badge('sealed recently') : badge('out of turn'),
      ];
      if (consensus) {
        const lastHeight = info.last_height ?? info.last_block ?? info.last_sealed;
        row.push(int(info.sealed), lastHeight || lastHeight === 0 ? link('block', lastHeight, `#${lastHeight}`) : '—',
          int(info.missed ?? info.missed_turns), badge(info.state || '—', AUTHORITY_BADGE[info.state] || ''));
      }
      return row;
    });
    clear(turn, said,
      h('p', {}, `Proof of authority, ${authorities.length} authorit${authorities.length === 1 ? 'y' : 'ies'}`,
        consensus && consensus.needed_online ? ` (at least ${consensus.needed_online} must be online)` : '', '. ',
        'Whose turn for block ', h('strong', { text: `#${nextHeight}` }), ': ', link('account', inTurn), '.'),
      table({ text: 'Authorities and whose turn it is', hidden: true }, columns, rows),
      consensusMissing ? h('p', { class: 'muted small', text: 'Per-signer statistics are not available on this node yet.' }) : null);
  }

  function drawCharts() {
    const s = live.series();
    clear(charts,
      chart({ id: 'chart-interval', title: 'Block interval', points: s.intervals, format: (v) => `${v.toFixed(2)} s` }),
      chart({ id: 'chart-txs', title: 'Transactions per block', points: s.txs, kind: 'bars', format: count }),
      chart({ id: 'chart-mempool', title: 'Pool size', points: s.mempool, format: (v) => `${count(v)} txs`,
        empty: 'Sampled at each new block…' }));
  }

  function draw() {
    drawStats();
    drawConsensus();
    drawCharts();
    clear(latest, blocksTable(live.blocks.slice(0, 8), { text: 'Latest blocks', hidden: true }));
  }

  draw();
  loadConsensus();
  return {
    update(detail) {
      draw();
      // a stalled chain has no new head, but its signers' record still moves (missed turns)
      if (detail.headChanged || Date.now() - consensusAt > CONSENSUS_QUIET_MS) loadConsensus();
    },
  };
}

// --- explorer: latest blocks ----------------------------------------------------------------

export function blocks(main, _params, ctx) {
  const { live } = ctx;
  const latest = h('div', { id: 'block-list' });
  const older = h('div');
  const more = h('button', { type: 'button', class: 'secondary', text: 'Show older blocks', onclick: loadOlder });
  let olderBlocks = [];
  clear(main, heading('Explorer'),
    h('p', { class: 'muted' }, 'The newest blocks, as they arrive. Search above for a height, a block hash, a transaction id or an address.'),
    panel('Latest blocks', latest), older, h('p', {}, more));

  async function loadOlder() {
    const all = [...live.blocks, ...olderBlocks];
    const lowest = all.length ? all.at(-1).header.height : null;
    if (lowest === null || lowest === 0) {
      more.disabled = true;
      return;
    }
    more.disabled = true;
    try {
      const page = await get(`/api/v1/blocks?start=${lowest - 1}&limit=50`);
      olderBlocks = [...olderBlocks, ...page.blocks];
      clear(older, panel('Older blocks', blocksTable(olderBlocks, { text: 'Older blocks', hidden: true })));
      more.disabled = olderBlocks.at(-1)?.header.height === 0;
    } catch (err) {
      clear(older, notice(`Could not load older blocks: ${errorText(err)}`, 'bad'));
      more.disabled = false;
    }
  }

  function draw() {
    clear(latest, live.status ? blocksTable(live.blocks, { text: 'Latest blocks', hidden: true })
      : h('p', { class: 'muted', text: 'Loading…' }));
  }

  draw();
  return { update: draw };
}

// --- the pool --------------------------------------------------------------------------------

export function pool(main, _params, ctx) {
  const summary = h('div');
  const list = h('div', { id: 'pool-list' });
  clear(main, heading('Transaction pool'),
    h('p', { class: 'muted', text: 'Transactions the node accepted and will put in its next blocks.' }),
    summary, panel('Pending transactions', list));

  async function load() {
    try {
      const doc = await get('/api/v1/mempool?limit=100');
      if (!ctx.alive()) return;
      const ready = ctx.live.status?.mempool?.ready;
      clear(summary, h('dl', { class: 'stats compact' },
        stat('In the pool', int(doc.count)), stat('Ready', int(ready)), stat('Size', bytes(doc.bytes))));
      clear(list, txsTable(doc.txs, { text: 'Pending transactions', hidden: true }, { empty: 'The pool is empty.' }),
        doc.count > doc.txs.length ? h('p', { class: 'muted', text: `Showing ${doc.txs.length} of ${int(doc.count)}.` }) : null);
    } catch (err) {
      if (ctx.alive()) clear(list, notice(`Could not load the pool: ${errorText(err)}`, 'bad'));
    }
  }

  load();
  return {
    update(detail) {
      if (detail.poolChanged) load();
    },
  };
}

// --- one block -------------------------------------------------------------------------------

export async function block(main, [ref], ctx) {
  clear(main, heading('Block'), h('p', { class: 'muted', text: 'Loading…' }));
  let b;
  try {
    b = await get(`/api/v1/blocks/${encodeURIComponent(ref)}`);
  } catch (err) {
    if (!ctx.alive()) return null;
    if (isNotFound(err)) {
      clear(main, heading('Block'), notice(/^\d+$/.test(ref)
        ? `There is no block at height ${ref} yet.` : `No block has the hash ${ref}.`, 'info'));
    } else failed(main, 'Block', err);
    return null;
  }
  if (!ctx.alive()) return null;
  const hd = b.header;
  const height = hd.height;
  const extraText = printable(hd.extra);
  const nav = h('nav', { class: 'pager', 'aria-label': 'Neighbouring blocks' },
    height > 0 ? h('a', { href: `#/block/${height - 1}`, text: `← #${height - 1}` }) : null,
    h('a', { href: `#/block/${height + 1}`, text: `#${height + 1} →` }));
  const sealed = hd.signer && !/^0+$/.test(hd.signer);
  clear(main,
    heading(`Block #${int(height)}`, nav),
    panel('Header', fields([
      ['Hash', hexBlock(b.hash)],
      ['Height', int(height)],
      ['Time', h('span', {}, new Date(hd.timestamp).toLocaleString(), ' (', timeAgo(hd.timestamp), ')')],
      ['Parent', height > 0 ? link('block', hd.parent, hd.parent) : hexBlock(hd.parent)],
      ['Confirmations', b.confirmations !== undefined ? int(b.confirmations) : null],
      ['On the main chain', b.on_main_chain !== undefined ? yesNo(b.on_main_chain) : null],
      ['Total weight', b.total_weight !== undefined ? int(b.total_weight) : null],
      ['Transactions', int(b.tx_count ?? b.txs.length)],
      ['Size', bytes(b.size)],
    ])),
    panel('Seal', fields([
      ['Coinbase', link('account', hd.coinbase, hd.coinbase)],
      ['Signer', sealed ? link('account', hd.signer, hd.signer) : 'none (proof of work)'],
      ['Signer key', sealed ? h('span', {}, `${hd.signer_key_type} `, hexBlock(hd.signer_public_key)) : null],
      ['Signature', sealed ? hexBlock(hd.signature) : null],
      ['Seal hash', hexBlock(hd.seal_hash)],
      ['Difficulty', `${int(hd.difficulty)} bits`],
      ['Nonce', int(hd.nonce)],
      ['Extra data', h('span', {}, hexBlock(hd.extra), extraText ? h('span', { class: 'muted', text: ` “${extraText}”` }) : null)],
    ])),
    panel('Roots', fields([
      ['State root', hexBlock(hd.state_root)],
      ['Transactions root', hexBlock(hd.tx_root)],
    ])),
    panel('Transactions', txsTable(b.txs.map((t) => (typeof t === 'string' ? { id: t } : t)),
      { text: `Transactions of block #${height}`, hidden: true }, { empty: 'This block has no transactions.' })));
  return null;
}

// --- one transaction -------------------------------------------------------------------------

const STATUS_KIND = { confirmed: 'ok', pending: 'warn', queued: 'warn', rejected: 'bad', replaced: 'bad', dropped: 'bad' };

function explain(t) {
  if (t.explanation && !['confirmed', 'replaced'].includes(t.status)) {
    const text = `${t.explanation[0].toUpperCase()}${t.explanation.slice(1)}`;
    return /[.!?]$/.test(text) ? text : `${text}.`;
  }
  switch (t.status) {
    case 'confirmed':
      return h('span', {}, 'Included in block ', link('block', t.height, `#${t.height}`),
        ` at position ${t.index}, with ${int(t.confirmations)} confirmation${t.confirmations === 1 ? '' : 's'}.`);
    case 'pending':
      return 'In the pool and ready: it will be included in one of the next blocks.';
    case 'queued': {
      const want = t.expected_nonce ?? t.next_nonce;
      return `In the pool, but waiting for an earlier transaction of the same sender`
        + (want !== undefined ? ` (the account needs nonce ${want} first).` : '.');
    }
    case 'rejected':
      return `The node refused it: ${t.reason || t.code || 'invalid'}${t.message ? ` (${t.message})` : ''}.`;
    case 'replaced':
      return h('span', {}, 'Replaced in the pool by another transaction with the same nonce and a higher fee',
        t.replaced_by ? [': ', link('tx', t.replaced_by)] : '', '.');
    case 'dropped':
      return `Removed from the pool${t.reason ? ` (${t.reason})` : ''}: it will not be mined unless sent again.`;
    default:
      return `Status: ${t.status}.`;
  }
}

async function sha256(...parts) {
  const size = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    buf.set(p, at);
    at += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

function unhex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function tohex(buf) {
  return Array.from(buf, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Proof steps as [{left, hash}] from the shapes a node may send. */
function proofSteps(doc) {
  const raw = doc.steps ?? doc.proof ?? doc.path ?? doc.siblings ?? [];
  return raw.map((s) => (Array.isArray(s) ? { left: Boolean(s[0]), hash: s[1] }
    : { left: Boolean(s.left ?? s.sibling_is_left ?? (s.side === 'left' || s.position === 'left')), hash: s.hash }));
}

/** docs/protocol.md §7: leaf = H(0x00 || id), node = H(0x01 || left || right). */
async function verifyProof(id, steps, root) {
  let acc = await sha256(Uint8Array.of(0), unhex(id));
  for (const step of steps) {
    const sib = unhex(step.hash);
    acc = step.left ? await sha256(Uint8Array.of(1), sib, acc) : await sha256(Uint8Array.of(1), acc, sib);
  }
  return tohex(acc) === root.toLowerCase();
}

async function proofPanel(t, ctx) {
  const body = h('div', {}, h('p', { class: 'muted', text: 'Loading the proof…' }));
  const section = panel('Merkle proof', body);
  (async () => {
    let doc;
    try {
      doc = await get(`/api/v1/txs/${t.id}/proof`);
    } catch (err) {
      if (!ctx.alive()) return;
      clear(body, notice(isMissing(err) ? 'Merkle proofs are not available on this node yet.'
        : `No proof: ${errorText(err)}`, 'info'));
      return;
    }
    if (!ctx.alive()) return;
    const steps = proofSteps(doc);
    const root = doc.tx_root ?? doc.root;
    let verdict;
    if (!root) verdict = notice('The node sent no root to check the proof against.', 'warn');
    else if (!globalThis.crypto?.subtle) {
      verdict = notice('This browser cannot check the proof here: it needs a secure context (open the dashboard as localhost or over HTTPS).', 'info');
    } else {
      try {
        const ok = await verifyProof(t.id, steps, root);
        verdict = ok ? notice('Checked in this browser: the proof leads from the transaction id to the block’s transactions root.', 'ok')
          : notice('This proof does NOT lead to the block’s transactions root.', 'bad');
      } catch (err) {
        verdict = notice(`Could not check the proof: ${errorText(err)}`, 'warn');
      }
    }
    if (!ctx.alive()) return;
    clear(body,
      h('p', { class: 'muted' }, 'Leaves are SHA-256(0x00 ‖ id), inner nodes SHA-256(0x01 ‖ left ‖ right); each step names the sibling hash and its side.'),
      fields([['Block', link('block', doc.block ?? doc.block_hash ?? t.block, doc.block ?? doc.block_hash ?? t.block)],
        ['Transactions root', hexBlock(root)], ['Index', int(doc.index ?? t.index)]]),
      table({ text: 'Proof steps from the leaf up', hidden: true }, [{ title: 'Level', cls: 'num' }, { title: 'Sibling side' }, { title: 'Sibling hash' }],
        steps.map((s, i) => [String(i), s.left ? 'left' : 'right', hexBlock(s.hash)]),
        { empty: 'The block holds only this transaction: its leaf is the root.' }),
      verdict);
  })();
  return section;
}

export async function tx(main, [id], ctx) {
  clear(main, heading('Transaction'), h('p', { class: 'muted', text: 'Loading…' }));
  let shown = null;

  async function load() {
    let t;
    try {
      t = await get(`/api/v1/txs/${id}`);
    } catch (err) {
      if (!ctx.alive()) return;
      if (isNotFound(err)) clear(main, heading('Transaction'), notice(`This node knows no transaction ${id}.`, 'info'));
      else if (!shown) failed(main, 'Transaction', err);
      return;
    }
    if (!ctx.alive()) return;
    const key = `${t.status}/${t.confirmations}/${t.block}`;
    if (key === shown) return;
    const first = shown === null;
    shown = key;
    const text = printable(t.data);
    const status = h('div', { class: 'tx-status', id: 'tx-status' },
      badge(t.status, STATUS_KIND[t.status] || ''), ' ', h('span', {}, explain(t)));
    const sections = [
      heading('Transaction'),
      status,
      panel('Details', fields([
        ['Id', hexBlock(t.id)],
        ['From', link('account', t.from, t.from)],
        ['To', link('account', t.to, t.to)],
        ['Amount', int(t.amount)],
        ['Fee', int(t.fee)],
        ['Nonce', int(t.nonce)],
        ['Block', t.block ? link('block', t.block, t.block) : null],
        ['Height', t.height !== null && t.height !== undefined ? link('block', t.height, `#${t.height}`) : null],
        ['Chain id', int(t.chain_id)],
        ['Size', bytes(t.size)],
        ['Data', t.data ? h('span', {}, hexBlock(t.data), text ? h('span', { class: 'muted', text: ` “${text}”` }) : null) : 'none'],
      ])),
      h('details', { class: 'panel' }, h('summary', { text: 'Signature' }), fields([
        ['Key type', t.key_type], ['Public key', hexBlock(t.public_key)], ['Signature', hexBlock(t.signature)]])),
    ];
    if (t.status === 'confirmed') sections.push(await proofPanel(t, ctx));
    if (!ctx.alive()) return;
    clear(main, ...sections);
    if (!first) status.classList.add('flash');
  }

  await load();
  return {
    update(detail) {
      if (detail.headChanged || detail.poolChanged) load();
    },
  };
}

// --- one account -----------------------------------------------------------------------------

function historyItems(doc) {
  if (Array.isArray(doc)) return doc;
  return doc.txs ?? doc.items ?? doc.history ?? [];
}

export async function account(main, [raw], ctx) {
  const address = strip0x(raw).toLowerCase();
  const summary = h('div', {}, h('p', { class: 'muted', text: 'Loading…' }));
  const history = h('div', {}, h('p', { class: 'muted', text: 'Loading…' }));
  const HISTORY_PAGE = 50;
  let offset = 0; // entries skipped, newest first: stays put as new blocks arrive
  const newer = h('button', { type: 'button', class: 'secondary', text: '← Newer', onclick: () => turn(-HISTORY_PAGE) });
  const olderBtn = h('button', { type: 'button', class: 'secondary', text: 'Older →', onclick: () => turn(HISTORY_PAGE) });
  const range = h('span', { class: 'muted', id: 'history-range' });
  const pager = h('nav', { class: 'pager', 'aria-label': 'History pages', hidden: true }, newer, range, olderBtn);
  clear(main, heading('Account'), h('p', {}, hexBlock(address)), summary,
    panel('History', h('div', {}, history, pager)));
  let historyMissing = false;

  function turn(step) {
    offset = Math.max(0, offset + step);
    newer.disabled = olderBtn.disabled = true; // until this page is drawn
    load();
  }

  async function load() {
    try {
      const acc = await get(`/api/v1/accounts/${address}`);
      if (!ctx.alive()) return;
      clear(summary, h('dl', { class: 'stats compact', id: 'account-stats' },
        stat('Balance', int(acc.balance)), stat('Nonce', int(acc.nonce)),
        stat('Next nonce', int(acc.pending_nonce), acc.pending_nonce > acc.nonce
          ? `${int(acc.pending_nonce - acc.nonce)} pending` : null)));
    } catch (err) {
      if (ctx.alive()) clear(summary, notice(`Could not load the account: ${errorText(err)}`, 'bad'));
    }
    if (historyMissing) return;
    try {
      const doc = await get(`/api/v1/accounts/${address}/txs?offset=${offset}&limit=${HISTORY_PAGE}`);
      if (!ctx.alive()) return;
      const items = historyItems(doc);
      const total = doc.total ?? items.length;
      if (offset > 0 && offset >= total) { // the history shrank (a reorg): back to a page that exists
        offset = Math.max(0, Math.floor((total - 1) / HISTORY_PAGE) * HISTORY_PAGE);
        return load();
      }
      pager.hidden = total <= HISTORY_PAGE && offset === 0;
      range.textContent = items.length ? `${int(offset + 1)}–${int(offset + items.length)} of ${int(total)}` : '';
      newer.disabled = offset === 0;
      olderBtn.disabled = offset + items.length >= total;
      clear(history, table({ text: 'Transactions of this account', hidden: true }, [
        { title: 'Transaction' }, { title: 'Status' }, { title: 'Block', cls: 'num' },
        { title: 'Direction' }, { title: 'Counterparty' }, { title: 'Amount', cls: 'num' }, { title: 'Fee', cls: 'num' },
      ], items.map((t) => {
        const dir = t.direction || ((t.from || '').toLowerCase() === address ? 'out' : 'in');
        const out = dir === 'out';
        const hgt = t.height ?? t.block_height;
        return [link('tx', t.id), badge(t.status || 'confirmed', STATUS_KIND[t.status || 'confirmed'] || ''),
          hgt !== null && hgt !== undefined ? link('block', hgt, `#${hgt}`) : '—',
          dir, link('account', out ? t.to : t.from),
          dir === 'self' ? int(t.amount) : `${out ? '−' : '+'}${int(t.amount)}`, dir === 'in' ? '—' : int(t.fee)];
      }), { empty: 'No transactions yet.' }));
    } catch (err) {
      if (!ctx.alive()) return;
      historyMissing = isMissing(err);
      clear(history, notice(historyMissing ? 'Account history is not available on this node yet.'
        : `Could not load the history: ${errorText(err)}`, historyMissing ? 'info' : 'bad'));
    }
  }

  await load();
  return {
    update(detail) {
      if (detail.headChanged || detail.poolChanged) load();
    },
  };
}

// --- admin: wallet ---------------------------------------------------------------------------

export function adminOnly(main, title) {
  clear(main, heading(title), notice('This page is for the node’s operator.', 'info'),
    h('p', {}, 'Open the dashboard on the node’s own machine (http://127.0.0.1 or localhost), or give the node’s admin token under “Admin access” at the bottom of the page.'));
  return null;
}

function field(id, label, hint, attrs = {}) {
  const input = h('input', { id, name: id, autocomplete: 'off', spellcheck: 'false',
    'aria-describedby': `${id}-hint ${id}-error`, ...attrs });
  return {
    input,
    el: h('div', { class: 'field' }, h('label', { for: id, text: label }), input,
      h('p', { class: 'hint', id: `${id}-hint`, text: hint }),
      h('p', { class: 'error', id: `${id}-error` })),
  };
}

function setError(f, message) {
  f.input.setAttribute('aria-invalid', message ? 'true' : 'false');
  f.el.querySelector('.error').textContent = message || '';
  return !message;
}

/** Client-side checks of the send form; the node checks everything again. */
export function validateSend({ to, amount, fee, data }, balance) {
  const errors = {};
  const addr = strip0x(to.trim());
  if (!addr) errors.to = 'Enter the recipient’s address.';
  else if (addr.length !== 40 || !HEX.test(addr)) errors.to = 'An address is 40 hex characters (0-9, a-f).';
  const amt = amount.trim();
  if (!/^\d+$/.test(amt) || BigInt(amt) < 1n) errors.amount = 'Enter a whole number of coins, at least 1.';
  else if (BigInt(amt) > MAX_AMOUNT) errors.amount = 'That amount is too large.';
  const f = fee.trim() || '0';
  if (!/^\d+$/.test(f)) errors.fee = 'The fee is a whole number, 0 or more.';
  else if (BigInt(f) > MAX_AMOUNT) errors.fee = 'That fee is too large.';
  const d = strip0x(data.trim());
  if (d && (d.length % 2 || !HEX.test(d))) errors.data = 'Data is hex: an even number of 0-9, a-f.';
  else if (d.length / 2 > MAX_DATA_BYTES) errors.data = `Data is at most ${MAX_DATA_BYTES} bytes.`;
  if (!errors.amount && !errors.fee && balance !== undefined && balance !== null
      && BigInt(amt) + BigInt(f) > BigInt(balance)) {
    errors.amount = `Amount plus fee exceeds the balance (${int(balance)}).`;
  }
  const body = `{"to":"${addr.toLowerCase()}","amount":${errors.amount ? 0 : BigInt(amt)},"fee":${errors.fee ? 0 : BigInt(f)}`
    + `${d ? `,"data":"${d.toLowerCase()}"` : ''}}`;
  return { errors, body };
}

export async function wallet(main, _params, ctx) {
  if (!ctx.admin) return adminOnly(main, 'Wallet');
  const info = h('div', { id: 'wallet-info' }, h('p', { class: 'muted', text: 'Loading…' }));
  const to = field('send-to', 'Recipient address', '40 hex characters', { placeholder: 'e.g. 3f1c…', maxlength: '42' });
  const amount = field('send-amount', 'Amount', 'Whole coins, at least 1', { inputmode: 'numeric' });
  const fee = field('send-fee', 'Fee (optional)', 'Paid to the block’s sealer; 0 if empty', { inputmode: 'numeric', placeholder: '0' });
  const data = field('send-data', 'Data (optional)', 'Hex bytes stored with the transaction, at most 1024', { placeholder: 'e.g. cafe' });
  const button = h('button', { type: 'submit', text: 'Send' });
  const result = h('div', { id: 'send-result', class: 'result', role: 'status', 'aria-live': 'polite' });
  const form = h('form', { id: 'send-form', novalidate: true, 'aria-labelledby': 'p-send-coins' },
    to.el, amount.el, fee.el, data.el, h('div', { class: 'actions' }, button));
  clear(main, heading('Wallet'),
    h('p', { class: 'muted', text: 'The node’s own account. The node signs with its key; the key never leaves the node.' }),
    panel('Account', info), panel('Send coins', form, result));
  let balance = null;

  async function load() {
    try {
      const w = await get('/api/v1/wallet');
      if (!ctx.alive()) return;
      balance = w.balance;
      clear(info, h('dl', { class: 'stats compact', id: 'wallet-stats' },
        stat('Balance', int(w.balance)), stat('Nonce', int(w.nonce)), stat('Next nonce', int(w.pending_nonce))),
      fields([['Address', link('account', w.address, w.address)], ['Key type', w.key_type || '—'],
        ['Can sign', yesNo(w.can_sign)]]));
      button.disabled = !w.can_sign;
      if (!w.can_sign) clear(result, notice('The node cannot sign: its key is not loaded (check the keystore password).', 'warn'));
    } catch (err) {
      if (!ctx.alive()) return;
      clear(info, notice(err.code === 'no_wallet' ? 'This node has no account configured (client.account_address).'
        : `Could not load the wallet: ${errorText(err)}`, 'bad'));
    }
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const { errors, body } = validateSend({ to: to.input.value, amount: amount.input.value,
      fee: fee.input.value, data: data.input.value }, balance);
    const all = [['to', to], ['amount', amount], ['fee', fee], ['data', data]];
    for (const [name, f] of all) setError(f, errors[name]);
    const bad = all.find(([name]) => errors[name]);
    if (bad) {
      clear(result, notice('Please correct the highlighted fields.', 'bad'));
      bad[1].input.focus();
      return;
    }
    button.disabled = true;
    clear(result, h('p', { class: 'muted', text: 'Sending…' }));
    try {
      const sent = await post('/api/v1/wallet/send', body);
      clear(result, h('p', { class: 'notice ok' }, 'Sent. Transaction ', link('tx', sent.id),
        ` (nonce ${sent.nonce}) is in the pool and will be in one of the next blocks.`));
      amount.input.value = '';
      data.input.value = '';
      load();
    } catch (err) {
      clear(result, h('p', { class: 'notice bad' }, h('strong', { class: 'code', text: err.code || 'error' }),
        ` — ${err.message || 'the send failed'}`));
    } finally {
      button.disabled = false;
    }
  });

  await load();
  return {
    update(detail) {
      if (detail.headChanged) load();
    },
  };
}

// --- admin: operate --------------------------------------------------------------------------

function peerRows(doc) {
  return Array.isArray(doc) ? doc : doc.peers ?? [];
}

/** This node's p2p address, for another node's add-peer form, with a button to copy it. */
function ownEndpoint(endpoint) {
  if (!endpoint) return h('p', { class: 'muted', id: 'own-endpoint', text: 'This node listens on no address other nodes can dial.' });
  const code = h('code', { class: 'mono', text: endpoint });
  const copy = h('button', { type: 'button', class: 'secondary small', id: 'copy-endpoint', text: 'Copy' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(endpoint);
      copy.textContent = 'Copied';
    } catch {
      // no clipboard (plain http from another host): select it for Ctrl+C instead
      getSelection().selectAllChildren(code);
    }
  });
  return h('p', { id: 'own-endpoint' }, 'This node’s address for other nodes: ', code, ' ', copy);
}

export async function operate(main, _params, ctx) {
  if (!ctx.admin) return adminOnly(main, 'Operate');
  const mining = h('div', { id: 'mining' }, h('p', { class: 'muted', text: 'Loading…' }));
  const miningResult = h('div', { class: 'result', role: 'status', 'aria-live': 'polite', id: 'mining-result' });
  const network = h('div', { id: 'network' }, h('p', { class: 'muted', text: 'Loading…' }));
  const networkResult = h('div', { class: 'result', role: 'status', 'aria-live': 'polite', id: 'network-result' });
  clear(main, heading('Operate'),
    panel('Mining', mining, miningResult), panel('Peers', network, networkResult));

  async function act(button, resultEl, path, body, done, explain = {}) {
    button.disabled = true;
    try {
      const reply = await post(path, body);
      clear(resultEl, notice(done(reply), 'ok'));
      return reply;
    } catch (err) {
      clear(resultEl, explain[err.code] ? notice(explain[err.code], 'warn')
        : h('p', { class: 'notice bad' }, h('strong', { class: 'code', text: err.code }), ` — ${err.message}`));
      return null;
    } finally {
      button.disabled = false;
    }
  }

  async function loadMining() {
    let m;
    try {
      m = await get('/api/v1/mining');
    } catch (err) {
      if (ctx.alive()) clear(mining, notice(`Could not read the miner: ${errorText(err)}`, 'bad'));
      return;
    }
    if (ctx.alive()) drawMining(m);
  }

  /** The miner panel from a status (GET /mining, or the reply of start/stop). */
  function drawMining(m) {
    if (!m.validator) {
      clear(mining, notice('No miner on this node: it relays and checks blocks but does not seal them '
        + '(a basic node runs none; on a validator, its miner service is not answering).', 'info'));
      return;
    }
    const start = h('button', { type: 'button', id: 'mining-start', text: 'Start mining', disabled: m.mining });
    const stop = h('button', { type: 'button', id: 'mining-stop', class: 'secondary', text: 'Stop mining', disabled: !m.mining });
    start.addEventListener('click', async () => {
      const reply = await act(start, miningResult, '/api/v1/mining/start', {}, () => 'Mining started.');
      if (reply && ctx.alive()) drawMining(reply);
    });
    stop.addEventListener('click', async () => {
      const reply = await act(stop, miningResult, '/api/v1/mining/stop', {}, () => 'Mining stopped.');
      if (reply && ctx.alive()) drawMining(reply);
    });
    clear(mining,
      h('dl', { class: 'stats compact', id: 'mining-stats' },
        stat('Mining', m.mining ? badge('mining', 'ok') : badge('stopped', 'warn')),
        stat('Blocks sealed', int(m.blocks_sealed)),
        stat('Last sealed', m.last_sealed_ms ? timeAgo(m.last_sealed_ms) : '—')),
      fields([['Sealer account', link('account', m.address, m.address)],
        ['Last block', m.last_block ? link('block', m.last_block, m.last_block) : null]]),
      h('div', { class: 'actions' }, start, stop));
  }

  // the add-peer form and the buttons are built once, so a live refresh of the table never
  // wipes what the operator is typing
  const endpoint = h('input', { id: 'peer-endpoint', name: 'endpoint', autocomplete: 'off', spellcheck: 'false',
    placeholder: 'tcp://127.0.0.1:30333', 'aria-describedby': 'peer-endpoint-hint' });
  // POST /peers answers once the handshake is done: say what it achieved
  const added = (r) => `${r.outcome === 'already_connected' ? 'Already connected' : 'Connected'} to node `
    + `${short(r.node_id)} at ${r.endpoint} (${r.direction}).`;
  const add = h('button', { type: 'submit', text: 'Add peer' });
  const form = h('form', { id: 'peer-form', class: 'inline', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'peer-endpoint', text: 'Peer endpoint' }), endpoint,
      h('p', { class: 'hint', id: 'peer-endpoint-hint',
        text: 'The other node’s p2p address, e.g. tcp://host:30333 (with #<key> when it uses CurveZMQ): its Operate page shows it' })),
    h('div', { class: 'actions' }, add));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const typed = endpoint.value.trim();
    const value = /^tcp:\/\//.test(typed) ? typed : `tcp://${typed}`;
    if (!/^tcp:\/\/[^\s/#]+:\d{1,5}(#[0-9a-fA-F]{64})?$/.test(value)) {
      endpoint.setAttribute('aria-invalid', 'true');
      clear(networkResult, notice('Give the endpoint as tcp://host:port (or tcp://host:port#<64 hex key>).', 'bad'));
      endpoint.focus();
      return;
    }
    endpoint.setAttribute('aria-invalid', 'false');
    clear(networkResult, h('p', { class: 'muted', text: `Connecting to ${value}…` }));
    if (await act(add, networkResult, '/api/v1/peers', { endpoint: value }, added)) {
      endpoint.value = '';
      loadPeers();
    }
  });
  const sync = h('button', { type: 'button', id: 'sync-now', class: 'secondary', text: 'Sync now' });
  sync.addEventListener('click', () => act(sync, networkResult, '/api/v1/sync', {},
    () => 'Sync requested: the node asks its best peer for blocks it lacks.',
    { no_peers: 'No peer to sync from: this node has no peer connected. Add one above first.' }));
  const refresh = h('button', { type: 'button', class: 'secondary', text: 'Refresh', onclick: () => loadPeers() });
  const peerList = h('div', { id: 'peer-list' });
  const controls = h('div', { class: 'controls' }, form, h('div', { class: 'actions' }, sync, refresh));

  let peersMissing = false;
  async function loadPeers() {
    let doc;
    try {
      doc = await get('/api/v1/peers');
    } catch (err) {
      if (!ctx.alive()) return;
      peersMissing = isMissing(err);
      clear(network, notice(peersMissing
        ? 'Peer-to-peer networking is not available on this node yet: no p2p service answers.'
        : `Could not list peers: ${errorText(err)}`, peersMissing ? 'info' : 'bad'));
      return;
    }
    if (!ctx.alive()) return;
    if (doc && doc.p2p === false) { // not latched: the panel comes back with the service
      clear(network, notice('Peer-to-peer networking is not running on this node: no p2p service answers.', 'info'));
      return;
    }
    const peers = peerRows(doc);
    clear(peerList, ownEndpoint(doc.endpoint),
      h('p', {}, `${peers.length} peer${peers.length === 1 ? '' : 's'}`,
        doc.syncing !== undefined ? ` · syncing: ${yesNo(doc.syncing)}` : '',
        doc.sync_target !== undefined && doc.sync_target !== null ? ` towards #${doc.sync_target}` : '',
        doc.banned ? ` · ${doc.banned} banned` : ''),
      table({ text: 'Connected peers', hidden: true }, [
        { title: 'Endpoint' }, { title: 'Direction' }, { title: 'Height', cls: 'num' }, { title: 'Head' },
        { title: 'Score', cls: 'num' }, { title: 'Latency', cls: 'num' },
      ], peers.map((p) => [h('span', { class: 'mono', text: p.endpoint || p.address || '—' }), p.direction || '—',
        int(p.height), p.head ? link('block', p.head) : '—', int(p.score),
        Number(p.latency_ms) >= 0 && p.latency_ms !== null ? `${int(p.latency_ms)} ms` : '—']),
      { empty: 'No peers connected.', cls: 'peers' }));
    if (!network.contains(controls)) clear(network, peerList, controls);
  }

  const refreshLive = throttle(() => {
    loadMining();
    if (!peersMissing) loadPeers();
  }, 3000);
  await Promise.all([loadMining(), loadPeers()]);
  return {
    update(detail) {
      if (detail.headChanged || detail.nodeChanged) refreshLive();
    },
  };
}
